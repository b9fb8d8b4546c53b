// EvaluationService.Evaluate in its log-estimator mode, through the client
// library against an in-process server: hand-computed IPS on uploaded
// scores, the request validation, and a served model with intervals and a
// MAR sample side by side.
#include <algorithm>
#include <filesystem>
#include <unistd.h>

#include "client/client.h"
#include "core/synth/mnar_world.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/util/status_matchers.h"

namespace debias {
namespace {

using ::debias::testing::StatusIs;

class LogEvaluationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("debias_logeval_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    server::ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.data_dir = dir_.string();
    o.limits.max_bootstrap = 500;
    auto s = server::DebiasServer::Start(o);
    ASSERT_OK(s);
    server_ = std::move(*s);
    client_ = Client::Connect("127.0.0.1:" + std::to_string(server_->port()));
    // A tiny log with the logging policy's propensities.
    std::vector<data::Interaction> log;
    auto click = [&](std::string u, std::string i, float p) {
      data::Interaction e;
      e.user = std::move(u);
      e.item = std::move(i);
      e.propensity = p;
      log.push_back(std::move(e));
    };
    click("a", "i1", 0.5f);
    click("a", "i3", 0.25f);
    click("b", "i2", 1.0f);
    ASSERT_OK(client_->Ingest("log", log).status);
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  static void AddScores(v1::EvaluateRequest* r, const std::string& user,
                        std::vector<std::pair<std::string, float>> scores) {
    auto* us = r->add_scores();
    us->set_user(user);
    for (auto& [item, s] : scores) {
      us->add_items(item);
      us->add_scores(s);
    }
  }
  // A quick training request on dataset "clicks".
  static v1::TrainRequest SmallTrain(const std::string& loss) {
    v1::TrainRequest t;
    t.set_dataset("clicks");
    t.set_loss(loss);
    t.set_seed(1);
    (*t.mutable_params())["epochs"] = "3";
    (*t.mutable_params())["dim"] = "8";
    return t;
  }
  v1::EvaluateRequest Uploaded(const std::string& estimator) {
    v1::EvaluateRequest r;
    r.set_dataset("log");
    r.set_estimator(estimator);
    r.set_propensity_from("logged");
    r.add_k(1);
    r.add_k(2);
    r.add_k(3);
    AddScores(&r, "a", {{"i1", 0.9f}, {"i2", 0.5f}, {"i3", 0.1f}});
    AddScores(&r, "b", {{"i2", 1.0f}, {"i1", 0.0f}});
    return r;
  }

  std::filesystem::path dir_;
  std::unique_ptr<server::DebiasServer> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(LogEvaluationTest, IpsOnUploadedScoresMatchesAHandComputation) {
  auto ips = client_->Evaluate(Uploaded("ips"));
  ASSERT_OK(ips);
  // a ranks i1 (clicked, p = 0.5) first: relevance 1 / 0.5 = 2 at rank 1;
  // b ranks i2 (clicked, p = 1) first: 1. Rank 2 holds no clicks.
  EXPECT_NEAR(ips->metrics().at("dcg@1"), (2.0 + 1.0) / 2, 1e-9);
  EXPECT_NEAR(ips->metrics().at("dcg@2"), (2.0 + 1.0) / 2, 1e-9);
  EXPECT_NEAR(ips->metrics().at("precision@2"), (2.0 / 2 + 1.0 / 2) / 2, 1e-9);
  // Rank 3 of a holds i3 (clicked, p = 0.25): 4 / log2(4) = 2.
  EXPECT_NEAR(ips->metrics().at("dcg@3"), (2.0 + 2.0 + 1.0) / 2, 1e-9);
  // recall@3 takes in all of each user's clicks.
  EXPECT_NEAR(ips->metrics().at("recall@3"), 1.0, 1e-9);
  EXPECT_EQ(ips->normal_intervals().count("dcg@1"), 1u);
  EXPECT_EQ(ips->intervals().count("dcg@1"), 0u);  // no bootstrap asked

  auto naive = client_->Evaluate(Uploaded("naive"));
  ASSERT_OK(naive);
  EXPECT_NEAR(naive->metrics().at("dcg@1"), 1.0, 1e-9);
  EXPECT_NEAR(naive->metrics().at("recall@2"), (1.0 / 2 + 1.0) / 2, 1e-9);

  // Clipping at 0.5 lifts a's p = 0.25 click to 0.5 (reported as clipped).
  v1::EvaluateRequest clipped = Uploaded("ips");
  clipped.set_clip(0.5);
  auto c = client_->Evaluate(clipped);
  ASSERT_OK(c);
  EXPECT_NEAR(c->metrics().at("dcg@3"), (2.0 + 1.0 + 1.0) / 2, 1e-9);
  const auto& weights = c->diagnostics().fields().at("weights").struct_value().fields();
  EXPECT_EQ(weights.at("clipped").number_value(), 1);
}

TEST_F(LogEvaluationTest, BadRequestsNameTheField) {
  v1::EvaluateRequest r = Uploaded("ipw");
  EXPECT_THAT(client_->Evaluate(r), StatusIs(absl::StatusCode::kInvalidArgument, "estimator"));
  r = Uploaded("ips");
  r.set_clip(1.5);
  EXPECT_THAT(client_->Evaluate(r), StatusIs(absl::StatusCode::kInvalidArgument, "clip=1.5"));
  r = Uploaded("ips");
  r.set_bootstrap(501);
  EXPECT_THAT(client_->Evaluate(r),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_bootstrap"));
  r = Uploaded("ips");
  r.set_model_id(3);
  EXPECT_THAT(client_->Evaluate(r), StatusIs(absl::StatusCode::kInvalidArgument, "exactly one"));
  r = Uploaded("ips");
  r.clear_scores();
  EXPECT_THAT(client_->Evaluate(r), StatusIs(absl::StatusCode::kInvalidArgument, "exactly one"));
  r = Uploaded("ips");
  r.mutable_scores(0)->add_scores(1.0f);  // one more score than items
  EXPECT_THAT(client_->Evaluate(r), StatusIs(absl::StatusCode::kInvalidArgument, "scores[0]"));
  r = Uploaded("ips");
  r.mutable_scores(1)->set_scores(0, std::numeric_limits<float>::quiet_NaN());
  EXPECT_THAT(client_->Evaluate(r),
              StatusIs(absl::StatusCode::kInvalidArgument, "scores[1].scores[0]"));
  r = Uploaded("ips");
  r.set_confidence(0.2);
  EXPECT_THAT(client_->Evaluate(r), StatusIs(absl::StatusCode::kInvalidArgument, "confidence"));
  r = Uploaded("dr");
  EXPECT_THAT(client_->Evaluate(r),
              StatusIs(absl::StatusCode::kInvalidArgument, "imputation_model_id"));
  r = Uploaded("ips");
  r.set_dataset("nosuchlog");
  EXPECT_THAT(client_->Evaluate(r), StatusIs(absl::StatusCode::kNotFound, "nosuchlog"));
  r = Uploaded("ips");
  r.set_propensity_from("nosuchestimator");
  EXPECT_THAT(client_->Evaluate(r), StatusIs(absl::StatusCode::kNotFound, "nosuchestimator"));
  // A log without recorded propensities cannot give "logged" ones.
  data::Interaction e;
  e.user = "a";
  e.item = "i1";
  ASSERT_OK(client_->Ingest("plain", std::vector<data::Interaction>{e}).status);
  r = Uploaded("ips");
  r.set_dataset("plain");
  EXPECT_THAT(client_->Evaluate(r), StatusIs(absl::StatusCode::kFailedPrecondition, "logged"));
  // The labelled-test mode refuses the log-mode fields instead of ignoring them.
  r = Uploaded("");
  r.clear_scores();
  r.set_model_id(1);
  EXPECT_THAT(client_->Evaluate(r), StatusIs(absl::StatusCode::kInvalidArgument, "estimator"));
  EXPECT_OK(client_->Health());
}

TEST_F(LogEvaluationTest, ServedModelGetsIntervalsDiagnosticsAndTheMarSample) {
  synth::MnarWorldOptions o;
  o.num_users = 150;
  o.num_items = 80;
  o.expected_clicks = 2000;
  o.mar_test_items_per_user = 10;
  o.seed = 3;
  auto world = synth::MnarWorld::Generate(o);
  ASSERT_OK(world);
  ASSERT_OK(client_->Ingest("clicks", world->ClickEvents()).status);
  ASSERT_OK(client_->Ingest("mar", world->TestEvents()).status);
  v1::TrainRequest t = SmallTrain("naive");
  auto m = client_->Train(t);
  ASSERT_OK(m);
  ASSERT_EQ(m->state(), "ready") << m->error();

  v1::EvaluateRequest r;
  r.set_model_id(m->id());
  r.set_dataset("clicks");
  r.set_estimator("snips");
  r.set_bootstrap(100);
  r.set_seed(9);
  r.set_mar_dataset("mar");
  auto a = client_->Evaluate(r);
  ASSERT_OK(a);
  for (const char* k : {"dcg@5", "precision@10", "recall@5", "map@10"}) {
    ASSERT_EQ(a->metrics().count(k), 1u) << k;
    ASSERT_EQ(a->intervals().count(k), 1u) << k;
    const v1::Interval& iv = a->intervals().at(k);
    EXPECT_LE(iv.low(), a->metrics().at(k)) << k;
    EXPECT_GE(iv.high(), a->metrics().at(k)) << k;
    EXPECT_LT(iv.low(), iv.high()) << k;
    EXPECT_EQ(a->mar_metrics().count(k), 1u) << k;
  }
  const auto& d = a->diagnostics().fields();
  EXPECT_EQ(d.at("propensity_from").string_value(), "popularity");
  EXPECT_EQ(d.at("population_users").number_value(), 150);
  EXPECT_GT(d.at("weights").struct_value().fields().at("ess").number_value(), 0);
  // SNIPS's scale is said with the numbers.
  bool scale_said = false;
  for (const auto& w : d.at("warnings").list_value().values()) {
    scale_said |= w.string_value().rfind("snips scale:", 0) == 0;
  }
  EXPECT_TRUE(scale_said);
  // Same seed, same answer.
  auto b = client_->Evaluate(r);
  ASSERT_OK(b);
  EXPECT_EQ(a->intervals().at("dcg@5").low(), b->intervals().at("dcg@5").low());
  EXPECT_EQ(a->intervals().at("dcg@5").high(), b->intervals().at("dcg@5").high());

  // DR with the model as its own imputation, and propensities taken from a
  // model id (one trained with a propensity estimator).
  auto relmf = client_->Train(SmallTrain("relmf"));
  ASSERT_OK(relmf);
  r.set_estimator("dr");
  r.set_bootstrap(0);
  r.set_clip(0.05);
  r.set_propensity_from(std::to_string(relmf->id()));
  r.clear_mar_dataset();
  auto dr = client_->Evaluate(r);
  ASSERT_OK(dr);
  EXPECT_EQ(dr->metrics().count("dcg@5"), 1u);
  EXPECT_EQ(dr->metrics().count("recall@5"), 0u);  // DR reports dcg and precision
  EXPECT_GT(dr->metrics().at("dcg@5"), 0);
}

TEST_F(LogEvaluationTest, PolicyValueOfAServedModelMatchesAHandComputation) {
  synth::MnarWorldOptions o;
  o.num_users = 60;
  o.num_items = 40;
  o.expected_clicks = 400;
  o.seed = 11;
  auto world = synth::MnarWorld::Generate(o);
  ASSERT_OK(world);
  ASSERT_OK(client_->Ingest("clicks", world->ClickEvents()).status);
  v1::TrainRequest t = SmallTrain("naive");
  auto m = client_->Train(t);
  ASSERT_OK(m);
  ASSERT_EQ(m->state(), "ready") << m->error();

  // A log of single actions: each user was shown its model-top item (with
  // logging probability 0.2) and one other item (0.05), rewards given.
  std::vector<data::Interaction> log;
  double ips_sum = 0;
  int decisions = 0;
  for (int u = 0; u < 20; ++u) {
    const std::string user = world->ClickEvents()[u * 10].user;
    v1::TopKRequest q;
    q.set_model_id(m->id());
    q.set_user(user);
    q.set_k(2);
    auto top = client_->TopK(q);
    ASSERT_OK(top);
    ASSERT_EQ(top->items_size(), 2);
    const bool reward = u % 3 != 0;
    data::Interaction a;
    a.user = user;
    a.item = top->items(0);
    a.label = reward ? 1.0f : 0.0f;
    a.propensity = 0.2f;
    a.timestamp = 2 * u;
    data::Interaction b = a;
    b.item = top->items(1);
    b.label = 1.0f;
    b.propensity = 0.05f;
    b.timestamp = 2 * u + 1;
    log.push_back(a);
    log.push_back(b);
    ips_sum += (reward ? 1.0 : 0.0) / 0.2;  // greedy pi = 1 on the top item only
    decisions += 2;
  }
  ASSERT_OK(client_->Ingest("decisions", log).status);
  v1::EvaluateRequest r;
  r.set_model_id(m->id());
  r.set_dataset("decisions");
  r.set_policy_estimator("ips");
  r.set_bootstrap(50);
  auto ips = client_->Evaluate(r);
  ASSERT_OK(ips);
  EXPECT_NEAR(ips->metrics().at("policy_value"), ips_sum / decisions, 1e-6);
  EXPECT_EQ(ips->intervals().count("policy_value"), 1u);
  EXPECT_EQ(ips->diagnostics().fields().at("single_actions").number_value(), decisions);

  // Model-based estimators run and the slate form is accepted.
  r.set_policy_estimator("dr");
  ASSERT_OK(client_->Evaluate(r));
  r.set_policy_estimator("dm");
  auto dm = client_->Evaluate(r);
  ASSERT_OK(dm);
  EXPECT_GT(dm->metrics().at("policy_value"), 0);
  EXPECT_LT(dm->metrics().at("policy_value"), 1);
  r.set_policy_estimator("ips");
  r.set_target("softmax");
  r.set_temperature(0.5);
  auto soft = client_->Evaluate(r);
  ASSERT_OK(soft);
  EXPECT_GT(soft->metrics().at("policy_value"), 0);

  // A slate of 2 in the model's order: both positions count (pi = 1).
  std::vector<data::Interaction> slate;
  for (int k = 0; k < 2; ++k) {
    data::Interaction e = log[k];
    e.list_id = "list-1";
    e.position = k + 1;
    e.propensity = 0.5f;
    e.label = 1.0f;
    slate.push_back(e);
  }
  ASSERT_OK(client_->Ingest("slates", slate).status);
  v1::EvaluateRequest sr;
  sr.set_model_id(m->id());
  sr.set_dataset("slates");
  sr.set_policy_estimator("ips");
  auto sv = client_->Evaluate(sr);
  ASSERT_OK(sv);
  EXPECT_NEAR(sv->metrics().at("policy_value"), 1 / 0.5 + 1 / 0.5, 1e-6);

  // Several estimators in one call: one metric each, equal to the
  // single-estimator calls; the single-estimator format is unchanged.
  r.set_target("greedy");
  r.clear_temperature();
  r.set_policy_estimator("ipw, snips,dr");
  auto many = client_->Evaluate(r);
  ASSERT_OK(many);
  EXPECT_EQ(many->metrics().count("policy_value"), 0u);
  EXPECT_NEAR(many->metrics().at("policy_value/ipw"), ips_sum / decisions, 1e-6);
  for (const std::string name : {"snips", "dr"}) {
    v1::EvaluateRequest one = r;
    one.set_policy_estimator(name);
    auto single = client_->Evaluate(one);
    ASSERT_OK(single);
    const std::string key = "policy_value/" + name;
    EXPECT_EQ(many->metrics().at(key), single->metrics().at("policy_value")) << name;
    EXPECT_EQ(many->intervals().at(key).low(), single->intervals().at("policy_value").low());
    EXPECT_EQ(many->normal_intervals().count(key), 1u);
    EXPECT_TRUE(many->diagnostics().fields().at("estimators").struct_value().fields().contains(
        name));
  }
  r.set_policy_estimator("ips,ipw");
  EXPECT_THAT(client_->Evaluate(r),
              StatusIs(absl::StatusCode::kInvalidArgument, "'ipw' is named twice"));

  // Your own policy as uploaded scores (OBP-style, no served model): the
  // model's own scores over every item give the same estimates; scores that
  // put the logged second item first give the hand-computed value of that
  // policy.
  v1::EvaluateRequest up = r;
  up.set_model_id(0);
  v1::EvaluateRequest flipped = up;
  double flipped_sum = 0;
  for (int u = 0; u < 20; ++u) {
    const std::string user = log[2 * u].user;
    v1::TopKRequest q;
    q.set_model_id(m->id());
    q.set_user(user);
    q.set_k(40);
    auto all = client_->TopK(q);
    ASSERT_OK(all);
    v1::UserScores* us = up.add_scores();
    us->set_user(user);
    for (int i = 0; i < all->items_size(); ++i) {
      us->add_items(all->items(i));
      us->add_scores(all->scores(i));
    }
    v1::UserScores* fs = flipped.add_scores();
    fs->set_user(user);
    fs->add_items(log[2 * u].item);
    fs->add_scores(0.0f);
    fs->add_items(log[2 * u + 1].item);
    fs->add_scores(1.0f);
    flipped_sum += 1.0 / 0.05;  // the second item always had reward 1
  }
  up.set_policy_estimator("ipw,snips");
  auto own = client_->Evaluate(up);
  ASSERT_OK(own);
  EXPECT_NEAR(own->metrics().at("policy_value/ipw"), many->metrics().at("policy_value/ipw"),
              1e-9);
  EXPECT_NEAR(own->metrics().at("policy_value/snips"), many->metrics().at("policy_value/snips"),
              1e-9);
  flipped.set_policy_estimator("ipw");
  auto fl = client_->Evaluate(flipped);
  ASSERT_OK(fl);
  EXPECT_NEAR(fl->metrics().at("policy_value"), flipped_sum / decisions, 1e-6);
  flipped.set_policy_estimator("dr");  // scores are not rewards: name a reward model
  EXPECT_THAT(client_->Evaluate(flipped),
              StatusIs(absl::StatusCode::kInvalidArgument, "imputation_model_id"));
  flipped.set_imputation_model_id(m->id());
  ASSERT_OK(client_->Evaluate(flipped));
  flipped.set_model_id(m->id());
  EXPECT_THAT(client_->Evaluate(flipped),
              StatusIs(absl::StatusCode::kInvalidArgument, "give exactly one"));
  // 0 is a value (OBP): switch-dr with tau = 0 and dr-os with lambda = 0 are DM.
  r.set_policy_estimator("dm,switch-dr,dr-os");
  r.set_tau(0);
  r.set_lambda(0);
  auto zero = client_->Evaluate(r);
  ASSERT_OK(zero);
  EXPECT_NEAR(zero->metrics().at("policy_value/switch-dr"), zero->metrics().at("policy_value/dm"),
              1e-12);
  EXPECT_NEAR(zero->metrics().at("policy_value/dr-os"), zero->metrics().at("policy_value/dm"),
              1e-12);
  r.clear_tau();
  r.clear_lambda();
  // The reward model is the evaluated model, which knows every key asked.
  const auto& rm = zero->diagnostics().fields().at("reward_model").struct_value().fields();
  EXPECT_EQ(rm.at("unknown_keys").number_value(), 0);
  EXPECT_GT(rm.at("lookups").number_value(), 0);
  // A reward model trained on the first 10 users only does not know the
  // others: their predictions are 0, counted and warned about.
  std::vector<data::Interaction> half;
  std::vector<std::string> known_users;
  for (const auto& e : world->ClickEvents()) {
    if (std::find(known_users.begin(), known_users.end(), e.user) == known_users.end()) {
      if (known_users.size() == 10) continue;
      known_users.push_back(e.user);
    }
    half.push_back(e);
  }
  ASSERT_OK(client_->Ingest("clicks-half", half).status);
  v1::TrainRequest t2 = SmallTrain("naive");
  t2.set_dataset("clicks-half");
  auto m2 = client_->Train(t2);
  ASSERT_OK(m2);
  ASSERT_EQ(m2->state(), "ready") << m2->error();
  r.set_policy_estimator("dr");
  r.set_imputation_model_id(m2->id());
  auto unknown = client_->Evaluate(r);
  ASSERT_OK(unknown);
  const auto& urm = unknown->diagnostics().fields().at("reward_model").struct_value().fields();
  EXPECT_GT(urm.at("unknown_keys").number_value(), 0);
  EXPECT_EQ(urm.at("model_id").number_value(), m2->id());
  bool warned = false;
  for (const auto& w : unknown->diagnostics().fields().at("warnings").list_value().values()) {
    warned = warned || w.string_value().find("does not know") != std::string::npos;
  }
  EXPECT_TRUE(warned);
  r.clear_imputation_model_id();

  // Validation.
  sr.set_policy_estimator("ipx");
  EXPECT_THAT(client_->Evaluate(sr),
              StatusIs(absl::StatusCode::kInvalidArgument, "policy_estimator"));
  sr.set_policy_estimator("ips");
  sr.set_target("softmax");
  EXPECT_THAT(client_->Evaluate(sr), StatusIs(absl::StatusCode::kInvalidArgument, "softmax"));
  sr.set_target("greedy");
  sr.set_estimator("ips");
  EXPECT_THAT(client_->Evaluate(sr), StatusIs(absl::StatusCode::kInvalidArgument, "not both"));
  sr.clear_estimator();
  sr.set_dataset("clicks");  // no logged propensities
  EXPECT_THAT(client_->Evaluate(sr), StatusIs(absl::StatusCode::kFailedPrecondition, "propensit"));
}

// Issue 27 through the server, on uploaded scores (no training): the
// cross-fitted reward model, MIPS over uploaded categories, the slate
// estimators, SLOPE and the trust report, with hand-computed values.
TEST_F(LogEvaluationTest, Issue27EstimatorsThroughTheServer) {
  auto event = [](std::string u, std::string i, float p, float label, std::string list = "",
                  int pos = 0) {
    data::Interaction e;
    e.user = std::move(u);
    e.item = std::move(i);
    e.propensity = p;
    e.label = label;
    if (!list.empty()) {
      e.list_id = std::move(list);
      e.position = pos;
    }
    return e;
  };
  // Single actions; greedy targets: a -> i1, b -> i2 (weights 2, 0, 1).
  ASSERT_OK(client_->Ingest("cats", std::vector<data::Interaction>{
                                        event("a", "i1", 0.5f, 1), event("a", "i3", 0.25f, 0),
                                        event("b", "i2", 1.0f, 1)})
                .status);
  v1::EvaluateRequest r;
  r.set_dataset("cats");
  AddScores(&r, "a", {{"i1", 0.9f}, {"i2", 0.5f}, {"i3", 0.1f}});
  AddScores(&r, "b", {{"i2", 1.0f}, {"i1", 0.0f}});
  r.set_policy_estimator("ipw,mips,snmips");
  EXPECT_THAT(client_->Evaluate(r),
              StatusIs(absl::StatusCode::kFailedPrecondition, "give item_category"));
  (*r.mutable_item_category())["i1"] = "A";
  EXPECT_THAT(client_->Evaluate(r), StatusIs(absl::StatusCode::kFailedPrecondition,
                                             "no category for logged item 'i"));
  (*r.mutable_item_category())["i3"] = "A";
  (*r.mutable_item_category())["i2"] = "B";
  auto mips = client_->Evaluate(r);
  ASSERT_OK(mips);
  EXPECT_NEAR(mips->metrics().at("policy_value/ipw"), 1.0, 1e-9);  // (2 + 0 + 1) / 3
  // User a's category A averages the weights 2 and 0: (1 + 0 + 1) / 3.
  EXPECT_NEAR(mips->metrics().at("policy_value/mips"), 2.0 / 3, 1e-9);
  EXPECT_NEAR(mips->metrics().at("policy_value/snmips"), 2.0 / 3, 1e-9);
  const auto& trust = mips->diagnostics().fields().at("trust").struct_value().fields();
  EXPECT_EQ(trust.at("reference").string_value(), "ipw");
  EXPECT_FALSE(trust.at("recommended").string_value().empty());
  (*r.mutable_item_category())["i2"] = "";
  EXPECT_THAT(client_->Evaluate(r),
              StatusIs(absl::StatusCode::kInvalidArgument, "item_category['i2']"));
  r.clear_item_category();

  // The cross-fitted reward model: with every reward 1 it predicts 1, so DM
  // and DR are 1 exactly; the diagnostics name it.
  v1::EvaluateRequest c = r;
  c.set_dataset("ones");
  ASSERT_OK(client_->Ingest("ones", std::vector<data::Interaction>{
                                        event("a", "i1", 0.5f, 1), event("a", "i3", 0.25f, 1),
                                        event("b", "i2", 1.0f, 1)})
                .status);
  c.set_policy_estimator("dm,dr,cascade-dr");
  EXPECT_THAT(client_->Evaluate(c), StatusIs(absl::StatusCode::kInvalidArgument,
                                             "imputation_model_id"));
  c.set_reward_model("crossfit");
  c.set_crossfit_folds(3);
  auto cf = client_->Evaluate(c);
  ASSERT_OK(cf);
  EXPECT_NEAR(cf->metrics().at("policy_value/dm"), 1.0, 1e-12);
  EXPECT_NEAR(cf->metrics().at("policy_value/dr"), 1.0, 1e-12);
  EXPECT_NEAR(cf->metrics().at("policy_value/cascade-dr"), 1.0, 1e-12);
  const auto& rm = cf->diagnostics().fields().at("reward_model").struct_value().fields();
  EXPECT_EQ(rm.at("kind").string_value(), "crossfit");
  EXPECT_EQ(rm.at("folds").number_value(), 3);
  c.set_crossfit_folds(4);  // 3 decisions cannot fill 4 folds
  EXPECT_THAT(client_->Evaluate(c), StatusIs(absl::StatusCode::kFailedPrecondition,
                                             "cannot be cross-fitted in 4 folds"));
  c.set_crossfit_folds(1);
  EXPECT_THAT(client_->Evaluate(c),
              StatusIs(absl::StatusCode::kInvalidArgument, "crossfit_folds=1: must be in [2, 20]"));
  c.set_reward_model("self");
  EXPECT_THAT(client_->Evaluate(c), StatusIs(absl::StatusCode::kInvalidArgument,
                                             "crossfit_folds: only with reward_model=crossfit"));
  c.clear_crossfit_folds();
  c.set_reward_model("best");
  EXPECT_THAT(client_->Evaluate(c), StatusIs(absl::StatusCode::kInvalidArgument,
                                             "reward_model='best': must be self, imputation"));
  c.set_reward_model("imputation");
  EXPECT_THAT(client_->Evaluate(c), StatusIs(absl::StatusCode::kInvalidArgument,
                                             "reward_model=imputation: needs"));

  // Slates: a's slate (i3, i1) is not its target order (i1, i3): weights 0;
  // b's slate (i2, i1) is: w = 2, 4, prefix weights 2, 8; a's (i1, i3) is
  // its re-ranked order (w = 2, 2) but not its top-2 (i1, i2): w = 2, 0.
  ASSERT_OK(client_->Ingest("slates", std::vector<data::Interaction>{
                                          event("a", "i3", 0.5f, 1, "L1", 1),
                                          event("a", "i1", 0.5f, 1, "L1", 2),
                                          event("b", "i2", 0.5f, 1, "L2", 1),
                                          event("b", "i1", 0.25f, 1, "L2", 2),
                                          event("a", "i1", 0.5f, 1, "L3", 1),
                                          event("a", "i3", 0.5f, 1, "L3", 2)})
                .status);
  v1::EvaluateRequest s = r;
  s.set_dataset("slates");
  s.set_policy_estimator("iips,sips,rips");
  auto sl = client_->Evaluate(s);
  ASSERT_OK(sl);
  EXPECT_NEAR(sl->metrics().at("policy_value/iips"), (0 + 6 + 4) / 3.0, 1e-9);
  EXPECT_NEAR(sl->metrics().at("policy_value/sips"), (0 + 16 + 8) / 3.0, 1e-9);
  EXPECT_NEAR(sl->metrics().at("policy_value/rips"), (0 + 10 + 6) / 3.0, 1e-9);
  s.set_target("ranking");
  auto rk = client_->Evaluate(s);
  ASSERT_OK(rk);
  EXPECT_NEAR(rk->metrics().at("policy_value/iips"), (0 + 6 + 2) / 3.0, 1e-9);
  EXPECT_NEAR(rk->metrics().at("policy_value/sips"), (0 + 16 + 0) / 3.0, 1e-9);
  EXPECT_NEAR(rk->metrics().at("policy_value/rips"), (0 + 10 + 2) / 3.0, 1e-9);
  s.set_target("best");
  EXPECT_THAT(client_->Evaluate(s), StatusIs(absl::StatusCode::kInvalidArgument,
                                             "must be greedy, softmax or ranking"));
  s.set_target("");
  EXPECT_EQ(sl->diagnostics().fields().at("trust").struct_value().fields().at("reference")
                .string_value(),
            "sips");

  // SLOPE: the knobbed estimators report their grid and choice.
  r.set_policy_estimator("ipw,snips");
  r.set_slope(true);
  auto sp = client_->Evaluate(r);
  ASSERT_OK(sp);
  const auto& slope = sp->diagnostics().fields().at("slope").struct_value().fields();
  EXPECT_EQ(slope.at("ipw").struct_value().fields().at("knob").string_value(), "clip");
  EXPECT_FALSE(slope.contains("snips"));
  r.set_clip(2);
  EXPECT_THAT(client_->Evaluate(r), StatusIs(absl::StatusCode::kInvalidArgument,
                                             "slope: chooses clip, tau"));
  // Outside policy_estimator the new fields are refused.
  v1::EvaluateRequest plain;
  plain.set_model_id(1);
  plain.set_dataset("cats");
  plain.set_slope(true);
  EXPECT_THAT(client_->Evaluate(plain),
              StatusIs(absl::StatusCode::kInvalidArgument, "need policy_estimator"));
}

}  // namespace
}  // namespace debias
