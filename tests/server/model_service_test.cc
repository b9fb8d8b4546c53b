// Integration test of the training and serving loop through the client
// library: ingest -> train -> score/topk -> evaluate -> restart.
#include <atomic>
#include <filesystem>
#include <thread>
#include <unistd.h>

#include "client/client.h"
#include "core/synth/mnar_world.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/util/status_matchers.h"

namespace debias {
namespace {

using ::debias::testing::StatusIs;

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
  std::filesystem::path dir_;
  std::unique_ptr<server::DebiasServer> server_;
  std::unique_ptr<Client> client_;
  std::string user_;
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
  EXPECT_EQ(m->spec().fields().at("params").struct_value().fields().at("dim").string_value(), "8");
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
  std::thread trainer([&] {
    auto m = client_->Train(r, [&](const v1::TrainEvent& ev) {
      if (ev.has_started()) id = ev.started().model_id();
    });
    ASSERT_OK(m);
    EXPECT_EQ(m->state(), "cancelled");
  });
  while (id == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
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

}  // namespace
}  // namespace debias
