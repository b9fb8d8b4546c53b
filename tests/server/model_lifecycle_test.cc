// Model names, versions and labels through the client library (issue 23),
// and a scoring server fed from a snapshot repository: import, warm-up and
// health, label moves, corrupt and half-written files, removed versions, a
// vanished repository.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "client/client.h"
#include "core/synth/mnar_world.h"
#include "gtest/gtest.h"
#include "server/model_manager.h"
#include "server/model_repository.h"
#include "server/server.h"
#include "tests/util/status_matchers.h"

namespace debias {
namespace {

namespace fs = std::filesystem;
using ::debias::testing::StatusIs;

fs::path TestDir(const std::string& what) {
  return fs::temp_directory_path() /
         ("debias_lifecycle_" + std::to_string(::getpid()) + "_" + what + "_" +
          ::testing::UnitTest::GetInstance()->current_test_info()->name());
}

v1::ModelRef Ref(const std::string& s) {
  auto r = ParseModelRef(s);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : v1::ModelRef();
}

class ModelLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TestDir("store");
    repo_ = TestDir("repo");
    fs::remove_all(dir_);
    fs::remove_all(repo_);
    server_ = StartServer(dir_, "");
    client_ = Connect(*server_);
    synth::MnarWorldOptions o;
    o.num_users = 60;
    o.num_items = 40;
    o.expected_clicks = 300;
    o.seed = 3;
    auto world = synth::MnarWorld::Generate(o);
    ASSERT_OK(world);
    auto clicks = world->ClickEvents();
    ASSERT_OK(client_->Ingest("clicks", clicks).status);
    user_ = clicks.front().user;
    item_ = clicks.front().item;
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    fs::remove_all(dir_);
    fs::remove_all(repo_);
    for (const auto& d : extra_dirs_) fs::remove_all(d);
  }
  std::unique_ptr<server::DebiasServer> StartServer(const fs::path& data, const fs::path& repo) {
    server::ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.data_dir = data.string();
    o.model_repository = repo.string();
    o.limits.poll_seconds = 1;
    auto s = server::DebiasServer::Start(o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::unique_ptr<Client> Connect(const server::DebiasServer& s) {
    return Client::Connect("127.0.0.1:" + std::to_string(s.port()));
  }
  absl::StatusOr<v1::Model> Train(const std::string& name, uint64_t seed = 1) {
    v1::TrainRequest r;
    r.set_dataset("clicks");
    r.set_loss("naive");
    r.set_name(name);
    r.set_seed(seed);
    (*r.mutable_params())["epochs"] = "2";
    (*r.mutable_params())["dim"] = "4";
    return client_->Train(r);
  }
  absl::StatusOr<v1::ScoreResponse> Score(Client& c, const std::string& ref) {
    v1::ScoreRequest req;
    *req.mutable_model() = Ref(ref);
    req.set_user(user_);
    req.add_items(item_);
    return c.Score(req);
  }
  // Writes `bytes` as the repository's NAME/VERSION/model.pb by rename.
  void Publish(const std::string& name, uint64_t version, const std::string& bytes) {
    const fs::path d = repo_ / name / std::to_string(version);
    fs::create_directories(d);
    { std::ofstream(d / ".model.pb.tmp", std::ios::binary) << bytes; }
    fs::rename(d / ".model.pb.tmp", d / "model.pb");
  }
  void WriteLabels(const std::string& name, const std::string& text) {
    fs::create_directories(repo_ / name);
    { std::ofstream(repo_ / name / ".labels.tmp") << text; }
    fs::rename(repo_ / name / ".labels.tmp", repo_ / name / "labels");
  }
  std::string Snapshot(const std::string& ref) {
    auto f = client_->ExportModel(Ref(ref));
    EXPECT_TRUE(f.ok()) << f.status();
    return f.ok() ? f->SerializeAsString() : "";
  }

  fs::path dir_, repo_;
  std::vector<fs::path> extra_dirs_;
  std::unique_ptr<server::DebiasServer> server_;
  std::unique_ptr<Client> client_;
  std::string user_, item_;
};

TEST_F(ModelLifecycleTest, NamesVersionsAndLabelsResolveAndPersist) {
  auto v1m = Train("rec", 1);
  ASSERT_OK(v1m);
  ASSERT_EQ(v1m->state(), "ready") << v1m->error();
  EXPECT_EQ(v1m->name(), "rec");
  EXPECT_EQ(v1m->version(), 1u);
  auto v2m = Train("rec", 2);
  ASSERT_OK(v2m);
  EXPECT_EQ(v2m->version(), 2u);

  // No stable label: the name alone is the latest ready version.
  auto s = Score(*client_, "rec");
  ASSERT_OK(s);
  EXPECT_EQ(s->served().version(), 2u);
  EXPECT_EQ(s->served().id(), v2m->id());
  // Stable wins over latest; a version and a label address exactly.
  ASSERT_OK(client_->SetModelLabel("rec", "stable", 1));
  ASSERT_OK(client_->SetModelLabel("rec", "canary", 2));
  EXPECT_EQ(Score(*client_, "rec")->served().version(), 1u);
  EXPECT_EQ(Score(*client_, "rec:2")->served().version(), 2u);
  EXPECT_EQ(Score(*client_, "rec@canary")->served().version(), 2u);
  // The numeric id still works, and says which name/version it is.
  auto by_id = Score(*client_, std::to_string(v1m->id()));
  ASSERT_OK(by_id);
  EXPECT_EQ(by_id->served().name(), "rec");
  EXPECT_EQ(by_id->served().version(), 1u);
  auto got = client_->GetModel(Ref("rec@canary"));
  ASSERT_OK(got);
  EXPECT_EQ(got->id(), v2m->id());
  ASSERT_EQ(got->labels_size(), 1);
  EXPECT_EQ(got->labels(0), "canary");

  // Errors: bad name, unknown version/label, id with a name.
  EXPECT_THAT(Score(*client_, "nosuch").status(), StatusIs(absl::StatusCode::kNotFound, "nosuch"));
  EXPECT_THAT(Score(*client_, "rec:9").status(),
              StatusIs(absl::StatusCode::kNotFound, "no version 9"));
  EXPECT_THAT(Score(*client_, "rec@gold").status(),
              StatusIs(absl::StatusCode::kNotFound, "no label 'gold'"));
  v1::TrainRequest bad;
  bad.set_dataset("clicks");
  bad.set_loss("naive");
  bad.set_name("Rec!");
  EXPECT_THAT(client_->Train(bad).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "name='Rec!'"));
  EXPECT_THAT(client_->SetModelLabel("rec", "stable", 7).status(),
              StatusIs(absl::StatusCode::kNotFound, "no version 7"));
  EXPECT_THAT(client_->SetModelLabel("rec", "BAD", 1).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "label='BAD'"));
  EXPECT_FALSE(ParseModelRef("rec:0").ok());
  EXPECT_FALSE(ParseModelRef("rec@x:1").ok());

  // A failed version: the label does not move to it.
  v1::TrainRequest failing;
  failing.set_dataset("clicks");
  failing.set_loss("naive");
  failing.set_name("rec");
  (*failing.mutable_params())["l2"] = "100";  // a degenerate model: the job fails
  auto f = client_->Train(failing);
  ASSERT_FALSE(f.ok() && f->state() == "ready");
  auto labels = client_->GetModelLabels("rec");
  ASSERT_OK(labels);
  ASSERT_EQ(labels->versions_size(), 3);
  EXPECT_THAT(client_->SetModelLabel("rec", "stable", 3).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, "stays where it was"));
  EXPECT_EQ(client_->GetModelLabels("rec")->labels().at("stable"), 1u);

  // Names, versions and labels survive a restart; versions are not reused.
  client_.reset();
  server_.reset();
  server_ = StartServer(dir_, "");
  client_ = Connect(*server_);
  EXPECT_EQ(Score(*client_, "rec")->served().version(), 1u);
  EXPECT_EQ(Score(*client_, "rec@canary")->served().version(), 2u);
  auto v4 = Train("rec", 4);
  ASSERT_OK(v4);
  EXPECT_EQ(v4->version(), 4u);
  // Deleting a version drops the labels on it; the name falls back to latest.
  ASSERT_OK(client_->DeleteModel(v1m->id()));
  EXPECT_EQ(client_->GetModelLabels("rec")->labels().count("stable"), 0u);
  EXPECT_EQ(Score(*client_, "rec")->served().version(), 4u);
}

TEST_F(ModelLifecycleTest, ImportKeepsTheSourceNameAndVersionWhenFree) {
  ASSERT_OK(Train("rec"));
  ASSERT_OK(Train("rec", 2));
  auto file = client_->ExportModel(Ref("rec:2"));
  ASSERT_OK(file);
  const fs::path other = TestDir("other");
  extra_dirs_.push_back(other);
  auto b = StartServer(other, "");
  auto cb = Connect(*b);
  auto m = cb->ImportModel(*file);
  ASSERT_OK(m);
  EXPECT_EQ(m->name(), "rec");
  EXPECT_EQ(m->version(), 2u);
  // Again: version 2 is taken, so the import becomes the next version.
  auto again = cb->ImportModel(*file);
  ASSERT_OK(again);
  EXPECT_EQ(again->version(), 3u);
  // An exact version that is taken is refused.
  v1::ModelSnapshotFile exact = *file;
  exact.mutable_header()->set_import_name("rec");
  exact.mutable_header()->set_import_version(2);
  EXPECT_THAT(cb->ImportModel(exact).status(), StatusIs(absl::StatusCode::kAlreadyExists, "already has version 2"));
  exact.mutable_header()->set_import_name("other-name");
  auto renamed = cb->ImportModel(exact);
  ASSERT_OK(renamed);
  EXPECT_EQ(renamed->name(), "other-name");
  EXPECT_EQ(renamed->version(), 2u);
}

// The poller, driven scan by scan on a ModelManager of its own store.
TEST_F(ModelLifecycleTest, RepositoryImportsWarmsLabelsAndUnloads) {
  ASSERT_OK(Train("rec"));
  ASSERT_OK(Train("rec", 2));
  const std::string v1 = Snapshot("rec:1"), v2 = Snapshot("rec:2");
  const fs::path replica_dir = TestDir("replica");
  extra_dirs_.push_back(replica_dir);
  store::StoreOptions so;
  so.path = replica_dir.string();
  auto st = store::InteractionStore::Open(so);
  ASSERT_OK(st);
  server::ModelManager models(st->get(), {});
  std::vector<bool> health;
  server::ModelRepository::Options ro;
  ro.dir = repo_.string();
  ro.on_ready = [&](bool r) { health.push_back(r); };
  server::ModelRepository repo(&models, ro);

  Publish("rec", 1, v1);
  // A half-written file (no rename: the writer is still at it) and junk.
  fs::create_directories(repo_ / "rec" / "2");
  { std::ofstream(repo_ / "rec" / "2" / "model.pb", std::ios::binary) << v2.substr(0, v2.size() / 2); }
  fs::create_directories(repo_ / "Bad Name" / "1");
  repo.Scan();
  EXPECT_TRUE(repo.ready());
  EXPECT_EQ(health.back(), true);
  EXPECT_EQ(repo.serving(), 1u);
  EXPECT_EQ(repo.rejected(), 1u);
  server::ModelRef name_only{0, "rec", 0, ""};
  auto id1 = models.Resolve(name_only);
  ASSERT_OK(id1);
  EXPECT_EQ(models.GetRecord(*id1)->version, 1u);
  // The same bad file is not retried (or counted) until it changes.
  repo.Scan();
  EXPECT_EQ(repo.rejected(), 1u);

  // The whole file arrives; the labels file moves stable to it.
  Publish("rec", 2, v2);
  WriteLabels("rec", "stable 2\ncanary 1\n");
  repo.Scan();
  EXPECT_EQ(repo.serving(), 2u);
  auto stable = models.Resolve(name_only);
  ASSERT_OK(stable);
  EXPECT_EQ(models.GetRecord(*stable)->version, 2u);
  auto canary = models.Resolve({0, "rec", 0, "canary"});
  ASSERT_OK(canary);
  EXPECT_EQ(models.GetRecord(*canary)->version, 1u);

  // A corrupt version 3 (one flipped parameter byte): never served, the
  // label pointing at it stays on version 2, which keeps serving.
  std::string corrupt = Snapshot("rec:2");
  corrupt[corrupt.size() - 3] ^= 0x5a;
  Publish("rec", 3, corrupt);
  WriteLabels("rec", "stable 3\ncanary 1\n");
  repo.Scan();
  EXPECT_EQ(repo.rejected(), 2u);
  EXPECT_THAT(models.Resolve({0, "rec", 3, ""}).status(),
              StatusIs(absl::StatusCode::kNotFound, "rec"));
  EXPECT_EQ(models.GetRecord(*models.Resolve(name_only))->version, 2u);

  // Version 1 leaves the repository: it is unloaded, canary goes with it.
  fs::remove_all(repo_ / "rec" / "1");
  WriteLabels("rec", "stable 2\n");
  repo.Scan();
  EXPECT_EQ(repo.unloaded(), 1u);
  EXPECT_THAT(models.Resolve({0, "rec", 1, ""}).status(), StatusIs(absl::StatusCode::kNotFound, "rec"));
  EXPECT_THAT(models.Resolve({0, "rec", 0, "canary"}).status(),
              StatusIs(absl::StatusCode::kNotFound, "rec"));

  // The repository vanishes: what is loaded keeps serving, still ready.
  fs::remove_all(repo_);
  repo.Scan();
  EXPECT_TRUE(repo.ready());
  EXPECT_EQ(models.GetRecord(*models.Resolve(name_only))->version, 2u);
  st->reset();
}

// A replica process: NOT_SERVING until the repository's models are warm,
// then serves them by name; a new version and label reach it by polling.
TEST_F(ModelLifecycleTest, ReplicaHealthWaitsForWarmUpAndFollowsTheRepository) {
  ASSERT_OK(Train("rec"));
  ASSERT_OK(Train("rec", 2));
  Publish("rec", 1, Snapshot("rec:1"));
  WriteLabels("rec", "stable 1\n");
  // A repository whose only model is corrupt never becomes ready.
  const fs::path bad_repo = TestDir("badrepo");
  extra_dirs_.push_back(bad_repo);
  fs::create_directories(bad_repo / "rec" / "1");
  { std::ofstream(bad_repo / "rec" / "1" / "model.pb") << "not a snapshot"; }
  const fs::path bad_data = TestDir("baddata");
  extra_dirs_.push_back(bad_data);
  auto bad = StartServer(bad_data, bad_repo);
  auto bad_client = Connect(*bad);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_THAT(bad_client->Health(), StatusIs(absl::StatusCode::kUnavailable, "NOT_SERVING"));

  const fs::path rdata = TestDir("rdata");
  extra_dirs_.push_back(rdata);
  auto replica = StartServer(rdata, repo_);
  auto rc = Connect(*replica);
  absl::Status health = absl::UnknownError("not checked");
  for (int i = 0; i < 100 && !health.ok(); ++i) {
    health = rc->Health();
    if (!health.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_OK(health);
  // Once SERVING, the model answers by name at once (it was warmed up).
  auto s = Score(*rc, "rec");
  ASSERT_OK(s);
  EXPECT_EQ(s->served().version(), 1u);

  Publish("rec", 2, Snapshot("rec:2"));
  WriteLabels("rec", "stable 2\n");
  uint64_t served = 1;
  for (int i = 0; i < 60 && served != 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto r = Score(*rc, "rec");
    ASSERT_OK(r);  // never an unknown model in between
    served = r->served().version();
  }
  EXPECT_EQ(served, 2u);
}

}  // namespace
}  // namespace debias
