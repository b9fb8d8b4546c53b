// Integration test of the training and serving loop through the client
// library: ingest -> train -> score/topk -> evaluate -> restart.
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <thread>
#include <unistd.h>

#include "client/client.h"
#include "core/synth/mnar_world.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/util/status_matchers.h"
#include "tests/util/wait.h"

namespace debias {
namespace {

using ::debias::testing::StatusIs;
using ::debias::testing::WaitUntil;

class ModelServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("debias_model_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    Start();
    synth::MnarWorldOptions o;
    o.num_users = 200;
    o.num_items = 100;
    o.exposure_power = 1.0;
    o.expected_clicks = 3000;
    o.mar_test_items_per_user = 10;
    o.seed = 5;
    auto world = synth::MnarWorld::Generate(o);
    ASSERT_OK(world);
    auto clicks = world->ClickEvents();
    ASSERT_OK(client_->Ingest("clicks", clicks).status);
    ASSERT_OK(client_->Ingest("mar", world->TestEvents()).status);
    user_ = clicks.front().user;
    for (const auto& e : clicks) {
      if (users_.size() < 40 && std::find(users_.begin(), users_.end(), e.user) == users_.end()) {
        users_.push_back(e.user);
      }
    }
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Start() {
    server::ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.data_dir = dir_.string();
    o.limits.max_training_jobs = 1;
    o.limits.ann_min_items = ann_min_items_;
    o.limits.max_loaded_model_bytes = max_loaded_model_bytes_;
    auto s = server::DebiasServer::Start(o);
    ASSERT_OK(s);
    server_ = std::move(*s);
    client_ = Client::Connect("127.0.0.1:" + std::to_string(server_->port()));
  }
  v1::TrainRequest Request(const std::string& loss) {
    v1::TrainRequest r;
    r.set_dataset("clicks");
    r.set_loss(loss);
    r.set_seed(1);
    (*r.mutable_params())["epochs"] = "3";
    (*r.mutable_params())["dim"] = "8";
    return r;
  }
  void Restart() {
    client_.reset();
    server_.reset();
    Start();
  }
  // The model's diagnostics["retrieval"] once its index build has ended
  // (empty while the model is not loaded).
  google::protobuf::Struct RetrievalWhenSettled(uint64_t id) {
    for (int tries = 0; tries < 500; ++tries) {
      auto m = client_->GetModel(id);
      if (!m.ok() || !m->diagnostics().fields().contains("retrieval")) return {};
      const auto& r = m->diagnostics().fields().at("retrieval").struct_value();
      if (r.fields().at("index").string_value() != "building") return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return {};
  }
  int ann_min_items_ = 250000;
  int64_t max_loaded_model_bytes_ = int64_t{8} << 30;
  std::filesystem::path dir_;
  std::unique_ptr<server::DebiasServer> server_;
  std::unique_ptr<Client> client_;
  std::string user_;
  std::vector<std::string> users_;  // the first 40 users with clicks
};

TEST_F(ModelServiceTest, TrainScoreTopKEvaluateAndSurviveARestart) {
  int progress_events = 0;
  uint64_t started_id = 0;
  auto m = client_->Train(Request("relmf"), [&](const v1::TrainEvent& ev) {
    if (ev.has_started()) started_id = ev.started().model_id();
    if (ev.has_progress()) ++progress_events;
  });
  ASSERT_OK(m);
  ASSERT_EQ(m->state(), "ready") << m->error();
  EXPECT_EQ(m->id(), started_id);
  EXPECT_EQ(progress_events, 3);
  EXPECT_EQ(m->progress_size(), 3);
  EXPECT_EQ(m->spec().fields().at("loss").string_value(), "relmf");
  EXPECT_EQ(m->spec().fields().at("feedback").string_value(), "implicit");
  EXPECT_EQ(m->spec().fields().at("params").struct_value().fields().at("dim").number_value(), 8);
  EXPECT_GT(m->diagnostics().fields_size(), 0);
  EXPECT_GT(m->users(), 100u);
  EXPECT_GT(m->items(), 50u);

  v1::ScoreRequest sr;
  sr.set_model_id(m->id());
  sr.set_user(user_);
  v1::TopKRequest tr;
  tr.set_model_id(m->id());
  tr.set_user(user_);
  tr.set_k(5);
  auto top = client_->TopK(tr);
  ASSERT_OK(top);
  ASSERT_EQ(top->items_size(), 5);
  for (int k = 1; k < 5; ++k) EXPECT_GE(top->scores(k - 1), top->scores(k));
  // Score agrees with TopK.
  for (const auto& i : top->items()) sr.add_items(i);
  auto scores = client_->Score(sr);
  ASSERT_OK(scores);
  for (int k = 0; k < 5; ++k) EXPECT_FLOAT_EQ(scores->scores(k), top->scores(k));
  // exclude_seen drops the user's clicked items.
  tr.set_exclude_seen(true);
  tr.set_k(1000);
  auto unseen = client_->TopK(tr);
  ASSERT_OK(unseen);
  EXPECT_LT(unseen->items_size(), static_cast<int>(m->items()));

  v1::EvaluateRequest er;
  er.set_model_id(m->id());
  er.set_dataset("mar");
  auto ev = client_->Evaluate(er);
  ASSERT_OK(ev);
  EXPECT_TRUE(ev->metrics().contains("ndcg@5"));
  EXPECT_TRUE(ev->metrics().contains("auc"));
  EXPECT_GT(ev->metrics().at("auc"), 0.0);

  v1::GetPropensitiesRequest pr;
  pr.set_model_id(m->id());
  auto* pair = pr.add_pairs();
  pair->set_user(user_);
  pair->set_item(top->items(0));
  auto props = client_->GetPropensities(pr);
  ASSERT_OK(props);
  ASSERT_EQ(props->pair_propensities_size(), 1);
  EXPECT_GT(props->pair_propensities(0), 0.0f);
  EXPECT_LE(props->pair_propensities(0), 1.0f);

  v1::SampleNegativesRequest nr;
  nr.set_model_id(m->id());
  nr.set_user(user_);
  nr.set_n(20);
  nr.set_seed(3);
  auto neg = client_->SampleNegatives(nr);
  ASSERT_OK(neg);
  EXPECT_EQ(neg->items_size(), 20);

  // The model survives a restart and scores the same.
  client_.reset();
  server_.reset();
  Start();
  auto again = client_->Score(sr);
  ASSERT_OK(again);
  for (int k = 0; k < 5; ++k) EXPECT_FLOAT_EQ(again->scores(k), scores->scores(k));
  auto list = client_->ListModels();
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].state(), "ready");
}

TEST_F(ModelServiceTest, BadRequestsGetClearErrors) {
  auto r = Request("nosuchloss");
  EXPECT_THAT(client_->Train(r), StatusIs(absl::StatusCode::kInvalidArgument, "nosuchloss"));
  r = Request("dla");  // needs click logs
  EXPECT_THAT(client_->Train(r), StatusIs(absl::StatusCode::kInvalidArgument, "clicklog"));
  // A 10 kB name: INVALID_ARGUMENT with the name cut short, not
  // RESOURCE_EXHAUSTED on the response's metadata (the echo used to exceed
  // the client's 8 kB limit).
  r = Request(std::string(10240, 'a'));
  auto huge = client_->Train(r);
  EXPECT_THAT(huge, StatusIs(absl::StatusCode::kInvalidArgument, "(10240 bytes)"));
  EXPECT_LT(huge.status().message().size(), 512u);
  r = Request("relmf");
  r.set_feedback("sideways");
  EXPECT_THAT(client_->Train(r), StatusIs(absl::StatusCode::kInvalidArgument, "feedback"));
  r = Request("relmf");
  (*r.mutable_params())["bogus"] = "1";
  // Refused before a job exists: no failed record is left behind.
  EXPECT_THAT(client_->Train(r), StatusIs(absl::StatusCode::kInvalidArgument, "bogus"));
  r = Request("relmf");
  (*r.mutable_params())["l2"] = "-1";
  EXPECT_THAT(client_->Train(r), StatusIs(absl::StatusCode::kInvalidArgument, "l2=-1"));
  auto listed = client_->ListModels();
  ASSERT_OK(listed);
  EXPECT_TRUE(listed->empty());
  r = Request("relmf");
  r.set_dataset("missing");
  EXPECT_THAT(client_->Train(r), StatusIs(absl::StatusCode::kNotFound, "missing"));
  r = Request("relmf");
  r.set_clip(0);
  EXPECT_THAT(client_->Train(r), StatusIs(absl::StatusCode::kInvalidArgument, "clip=0"));

  EXPECT_THAT(client_->GetModel(0), StatusIs(absl::StatusCode::kInvalidArgument, "model_id=0"));
  EXPECT_THAT(client_->GetModel(999), StatusIs(absl::StatusCode::kNotFound, "999"));
  v1::TopKRequest tr;
  tr.set_model_id(1);
  tr.set_user(user_);
  tr.set_k(0);
  EXPECT_THAT(client_->TopK(tr), StatusIs(absl::StatusCode::kInvalidArgument, "k=0"));
  tr.set_k(5);
  // A model whose job failed (here: degenerate under a huge l2) is not ready.
  r = Request("naive");
  (*r.mutable_params())["l2"] = "100";
  auto failed = client_->Train(r);
  ASSERT_OK(failed);
  ASSERT_EQ(failed->state(), "failed");
  EXPECT_EQ(failed->error_code(), "FAILED_PRECONDITION") << failed->error();
  tr.set_model_id(failed->id());
  EXPECT_THAT(client_->TopK(tr), StatusIs(absl::StatusCode::kFailedPrecondition, "not ready"));

  auto good = client_->Train(Request("naive"));
  ASSERT_OK(good);
  ASSERT_EQ(good->state(), "ready") << good->error();
  v1::ScoreRequest sr;
  sr.set_model_id(good->id());
  sr.set_user("nobody");
  sr.add_items("i1");
  EXPECT_THAT(client_->Score(sr), StatusIs(absl::StatusCode::kNotFound, "nobody"));
  sr.set_user(user_);
  sr.clear_items();
  sr.add_items("no-such-item");
  EXPECT_THAT(client_->Score(sr), StatusIs(absl::StatusCode::kNotFound, "items[0]"));
  sr.clear_items();
  EXPECT_THAT(client_->Score(sr), StatusIs(absl::StatusCode::kInvalidArgument, "at least one"));
  v1::SampleNegativesRequest nr;
  nr.set_dataset("clicks");
  nr.set_user(user_);
  nr.set_n(0);
  EXPECT_THAT(client_->SampleNegatives(nr), StatusIs(absl::StatusCode::kInvalidArgument, "n=0"));
  nr.set_n(5);
  nr.set_sampler("nbpo");
  EXPECT_THAT(client_->SampleNegatives(nr),
              StatusIs(absl::StatusCode::kInvalidArgument, "nbpo"));
  EXPECT_OK(client_->Health());
}

TEST_F(ModelServiceTest, CancelStopsAJobAndTheSlotFreesUp) {
  auto r = Request("relmf");
  (*r.mutable_params())["epochs"] = "100000";
  std::atomic<uint64_t> id{0};
  std::atomic<bool> returned{false};
  std::thread trainer([&] {
    auto m = client_->Train(r, [&](const v1::TrainEvent& ev) {
      if (ev.has_started()) id = ev.started().model_id();
    });
    returned = true;
    ASSERT_OK(m);
    EXPECT_EQ(m->state(), "cancelled");
  });
  const bool settled = WaitUntil([&] { return id != 0 || returned; });
  if (id == 0) {
    // Shutting the server down ends the stream, so the thread returns.
    if (!settled) server_->Shutdown(absl::ZeroDuration());
    trainer.join();
    FAIL() << (settled ? "Train returned without a started event"
                       : "no started event within 60 s");
  }
  // Only one job may run in this server.
  EXPECT_THAT(client_->Train(Request("naive")),
              StatusIs(absl::StatusCode::kResourceExhausted, "max_training_jobs=1"));
  auto c = client_->CancelTraining(id);
  ASSERT_OK(c);
  trainer.join();
  auto m = client_->GetModel(id);
  ASSERT_OK(m);
  EXPECT_EQ(m->state(), "cancelled");
  EXPECT_THAT(client_->CancelTraining(id),
              StatusIs(absl::StatusCode::kFailedPrecondition, "not training"));
  auto next = client_->Train(Request("naive"));
  ASSERT_OK(next);
  EXPECT_EQ(next->state(), "ready");
}

TEST_F(ModelServiceTest, TopKExactAndApproximateAndBatchTopK) {
  ann_min_items_ = 50;  // the world's 100 items get an index
  Restart();
  auto m = client_->Train(Request("naive"));
  ASSERT_OK(m);
  ASSERT_EQ(m->state(), "ready") << m->error();
  v1::TopKRequest tr;
  tr.set_model_id(m->id());
  tr.set_user(user_);
  tr.set_k(10);
  tr.set_retrieval("exact");
  auto exact = client_->TopK(tr);  // loads the model, starts the index build
  ASSERT_OK(exact);
  EXPECT_EQ(exact->retrieval(), "exact");
  ASSERT_EQ(exact->items_size(), 10);
  const auto diag = RetrievalWhenSettled(m->id());
  ASSERT_EQ(diag.fields().at("index").string_value(), "ready");
  EXPECT_EQ(diag.fields().at("exact").string_value(), "blocked");
  EXPECT_GE(diag.fields().at("recall_at_k").number_value(), 0.95);
  EXPECT_GT(diag.fields().at("index_bytes").number_value(), 0.0);

  tr.set_retrieval("");  // auto: the index
  auto approx = client_->TopK(tr);
  ASSERT_OK(approx);
  EXPECT_EQ(approx->retrieval(), "approximate");
  ASSERT_EQ(approx->items_size(), 10);
  EXPECT_EQ(approx->items(0), exact->items(0));
  // exclude_seen on the approximate path: none of the user's items, k back.
  tr.set_retrieval("approximate");
  tr.set_exclude_seen(true);
  auto unseen = client_->TopK(tr);
  ASSERT_OK(unseen);
  EXPECT_EQ(unseen->items_size(), 10);
  tr.set_retrieval("exact");
  auto unseen_exact = client_->TopK(tr);
  ASSERT_OK(unseen_exact);
  EXPECT_EQ(unseen_exact->items(0), unseen->items(0));
  // k beyond the catalogue: every item, ordered.
  tr.set_exclude_seen(false);
  tr.set_k(1000);
  auto all = client_->TopK(tr);
  ASSERT_OK(all);
  EXPECT_EQ(all->items_size(), static_cast<int>(m->items()));
  for (int r = 1; r < all->items_size(); ++r) EXPECT_GE(all->scores(r - 1), all->scores(r));
  tr.set_retrieval("fast");
  EXPECT_THAT(client_->TopK(tr), StatusIs(absl::StatusCode::kInvalidArgument,
                                          "retrieval='fast': must be auto, exact or approximate"));

  // BatchTopK equals per-user exact TopK calls, user by user.
  v1::BatchTopKRequest br;
  br.set_model_id(m->id());
  br.set_k(7);
  br.set_retrieval("exact");
  br.set_exclude_seen(true);
  v1::TopKRequest one;
  one.set_model_id(m->id());
  one.set_k(7);
  one.set_retrieval("exact");
  one.set_exclude_seen(true);
  const std::vector<std::string>& users = users_;
  ASSERT_GE(users.size(), 20u);
  for (const auto& u : users) br.add_users(u);
  std::string path;
  auto batch = client_->BatchTopK(br, &path);
  ASSERT_OK(batch);
  EXPECT_EQ(path, "exact");
  ASSERT_EQ(batch->size(), users.size());
  for (size_t r = 0; r < users.size(); ++r) {
    one.set_user(users[r]);
    auto single = client_->TopK(one);
    ASSERT_OK(single);
    EXPECT_EQ((*batch)[r].user(), users[r]);
    ASSERT_EQ((*batch)[r].items_size(), single->items_size());
    for (int i = 0; i < single->items_size(); ++i) {
      EXPECT_EQ((*batch)[r].items(i), single->items(i)) << users[r] << " rank " << i;
      EXPECT_EQ((*batch)[r].scores(i), single->scores(i)) << users[r] << " rank " << i;
    }
  }
  // Bad batches.
  v1::BatchTopKRequest bad = br;
  bad.clear_users();
  EXPECT_THAT(client_->BatchTopK(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, "users: 0 given; must be in [1, 1000]"));
  bad = br;
  bad.set_k(0);
  EXPECT_THAT(client_->BatchTopK(bad), StatusIs(absl::StatusCode::kInvalidArgument, "k=0"));
  bad = br;
  bad.add_users("nobody");
  EXPECT_THAT(client_->BatchTopK(bad),
              StatusIs(absl::StatusCode::kNotFound, "users[" + std::to_string(users.size()) + "]"));
  bad = br;
  bad.set_model_id(0);
  EXPECT_THAT(client_->BatchTopK(bad), StatusIs(absl::StatusCode::kInvalidArgument, "model_id=0"));

  // The index was kept beside the store: a restarted server reads it back.
  EXPECT_FALSE(diag.fields().at("loaded_from_file").bool_value());
  const std::string file = diag.fields().at("index_file").string_value();
  EXPECT_EQ(std::filesystem::path(file).parent_path(), dir_ / "ann-indexes");
  EXPECT_TRUE(std::filesystem::exists(file));
  Restart();
  tr.set_retrieval("auto");
  ASSERT_OK(client_->TopK(tr));
  const auto reloaded = RetrievalWhenSettled(m->id());
  ASSERT_EQ(reloaded.fields().at("index").string_value(), "ready");
  EXPECT_TRUE(reloaded.fields().at("loaded_from_file").bool_value());
  EXPECT_EQ(reloaded.fields().at("index_file").string_value(), file);
  // Deleting the model deletes its index file.
  ASSERT_OK(client_->DeleteModel(m->id()));
  EXPECT_FALSE(std::filesystem::exists(file));
}

TEST_F(ModelServiceTest, ApproximateWithoutAnIndexNamesTheModel) {
  auto m = client_->Train(Request("naive"));  // 100 items, under ann_min_items
  ASSERT_OK(m);
  v1::TopKRequest tr;
  tr.set_model_id(m->id());
  tr.set_user(user_);
  tr.set_k(5);
  tr.set_retrieval("approximate");
  EXPECT_THAT(client_->TopK(tr),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "model " + std::to_string(m->id()) + ": retrieval=approximate"));
  tr.set_retrieval("auto");
  auto top = client_->TopK(tr);
  ASSERT_OK(top);
  EXPECT_EQ(top->retrieval(), "exact");
  EXPECT_EQ(RetrievalWhenSettled(m->id()).fields().at("index").string_value(), "none");
  v1::BatchTopKRequest br;
  br.set_model_id(m->id());
  br.add_users(user_);
  br.set_k(5);
  br.set_retrieval("approximate");
  EXPECT_THAT(client_->BatchTopK(br),
              StatusIs(absl::StatusCode::kFailedPrecondition, "model " + std::to_string(m->id())));
}

TEST_F(ModelServiceTest, TheCacheEvictsByBytes) {
  max_loaded_model_bytes_ = 1;  // every model is over: only the latest stays
  Restart();
  auto a = client_->Train(Request("naive"));
  auto b = client_->Train(Request("relmf"));
  ASSERT_OK(a);
  ASSERT_OK(b);
  v1::TopKRequest tr;
  tr.set_user(user_);
  tr.set_k(3);
  tr.set_model_id(a->id());
  ASSERT_OK(client_->TopK(tr));
  EXPECT_TRUE(client_->GetModel(a->id())->diagnostics().fields().contains("retrieval"));
  tr.set_model_id(b->id());
  ASSERT_OK(client_->TopK(tr));
  EXPECT_FALSE(client_->GetModel(a->id())->diagnostics().fields().contains("retrieval"));
  EXPECT_TRUE(client_->GetModel(b->id())->diagnostics().fields().contains("retrieval"));
  // An evicted model is reloaded on its next use and answers the same.
  tr.set_model_id(a->id());
  EXPECT_OK(client_->TopK(tr));
}

}  // namespace
}  // namespace debias
