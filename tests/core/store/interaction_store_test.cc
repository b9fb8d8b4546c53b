#include "core/store/interaction_store.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <unistd.h>
#include <random>

#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::store {
namespace {

using ::debias::testing::StatusIs;
using data::Interaction;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("debias_store_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    store_.reset();
    StoreOptions o;
    o.path = dir_.string();
    auto s = InteractionStore::Open(o);
    ASSERT_OK(s);
    store_ = std::move(*s);
  }
  static Interaction Ev(std::string u, std::string i, float label) {
    Interaction e;
    e.user = std::move(u);
    e.item = std::move(i);
    e.label = label;
    return e;
  }
  std::filesystem::path dir_;
  std::unique_ptr<InteractionStore> store_;
};

// Model names: versions never reused (also across a reopen), an exact
// version moves the next one past it, labels persist, names are checked.
TEST_F(StoreTest, ModelNamesKeepVersionsAndLabelsAcrossAReopen) {
  EXPECT_EQ(*store_->ReserveModelVersion("rec", 0), 1u);
  EXPECT_EQ(*store_->ReserveModelVersion("rec", 0), 2u);
  EXPECT_EQ(*store_->ReserveModelVersion("rec", 7), 7u);  // an import keeping its version
  EXPECT_EQ(*store_->ReserveModelVersion("rec", 3), 3u);  // an older one: next stays 8
  ASSERT_OK(store_->PutModelLabels("rec", {{"stable", 2}, {"canary", 7}}));
  EXPECT_THAT(store_->PutModelLabels("nosuch", {}), StatusIs(absl::StatusCode::kNotFound, "nosuch"));
  ModelRecord r;
  r.id = 1;
  r.name = "rec";
  r.version = 2;
  r.state = ModelState::kReady;
  ASSERT_OK(store_->PutModel(r, nullptr));
  Reopen();
  EXPECT_EQ(*store_->ReserveModelVersion("rec", 0), 8u);
  auto n = store_->GetModelName("rec");
  ASSERT_OK(n);
  EXPECT_EQ(n->labels, (std::map<std::string, uint64_t>{{"canary", 7}, {"stable", 2}}));
  EXPECT_EQ(store_->ListModelNames().size(), 1u);
  auto back = store_->GetModel(1);
  ASSERT_OK(back);
  EXPECT_EQ(back->name, "rec");
  EXPECT_EQ(back->version, 2u);
  // The record's JSON (the snapshot header's record_json) carries them too.
  auto decoded = DecodeModelRecord(EncodeModelRecord(*back));
  ASSERT_OK(decoded);
  EXPECT_EQ(decoded->name, "rec");
  EXPECT_EQ(decoded->version, 2u);
  EXPECT_THAT(store_->GetModelName("other"), StatusIs(absl::StatusCode::kNotFound, "other"));
  const std::vector<std::string> bad_names = {"", "Rec", "-rec", ".rec", "a b",
                                              std::string(64, 'a')};
  for (const std::string& bad : bad_names) {
    EXPECT_THAT(store_->ReserveModelVersion(bad, 0),
                StatusIs(absl::StatusCode::kInvalidArgument, "[a-z0-9]"))
        << bad;
  }
  EXPECT_OK(ValidateModelName(std::string(63, 'a')));
  EXPECT_OK(ValidateModelName("rec-2.v_1"));
}

TEST_F(StoreTest, IngestThenReopenFindsEveryAcknowledgedEvent) {
  std::vector<Interaction> events;
  std::mt19937 rng(7);
  for (int k = 0; k < 5000; ++k) {
    Interaction e = Ev("u" + std::to_string(rng() % 300), "i" + std::to_string(rng() % 200),
                       static_cast<float>(rng() % 2));
    e.timestamp = k;  // distinct natural keys
    events.push_back(e);
  }
  for (size_t off = 0; off < events.size(); off += 1000) {
    auto r = store_->Ingest("d", std::span(events).subspan(off, 1000), true);
    ASSERT_OK(r);
    EXPECT_EQ(r->events_stored, 1000u);
  }
  Reopen();
  auto view = store_->LoadView("d");
  ASSERT_OK(view);
  const data::DatasetView& v = **view;
  ASSERT_EQ(v.num_events(), events.size());
  EXPECT_EQ(v.data_version, 5u);
  // Every (user, item, timestamp, label) ingested is present exactly once.
  std::multiset<std::tuple<std::string, std::string, int64_t, float>> want, got;
  for (const auto& e : events) want.emplace(e.user, e.item, *e.timestamp, e.label);
  for (size_t k = 0; k < v.num_events(); ++k) {
    got.emplace(v.user_keys[v.user[k]], v.item_keys[v.item[k]], v.timestamp[k], v.label[k]);
  }
  EXPECT_EQ(want, got);
  // CSR offsets are consistent.
  for (uint32_t u = 0; u < v.num_users(); ++u) {
    auto [b, e] = v.UserRange(u);
    for (uint64_t k = b; k < e; ++k) EXPECT_EQ(v.user[k], u);
  }
}

TEST_F(StoreTest, ReingestingEventsWithIdsCreatesNoDuplicates) {
  std::vector<Interaction> events = {Ev("a", "x", 1), Ev("a", "y", 0), Ev("b", "x", 1)};
  events[1].timestamp = 5;
  events[2].list_id = "l1";
  events[2].position = 2;
  for (size_t k = 0; k < events.size(); ++k) events[k].event_id = "ev" + std::to_string(k);
  ASSERT_OK(store_->Ingest("d", events, true));
  auto again = store_->Ingest("d", events, false);
  ASSERT_OK(again);
  EXPECT_EQ(again->events_duplicate, 3u);
  Reopen();
  again = store_->Ingest("d", events, false);
  ASSERT_OK(again);
  EXPECT_EQ(again->events_stored, 0u);
  auto v = store_->LoadView("d");
  ASSERT_OK(v);
  EXPECT_EQ((*v)->num_events(), 3u);
  EXPECT_EQ((*v)->num_users(), 2u);
  EXPECT_EQ((*v)->num_items(), 2u);
  data::DatasetStats s = data::ComputeStats(**v);
  EXPECT_EQ(s.positives, 2u);
  EXPECT_EQ(s.zero_labels, 1u);
  EXPECT_EQ(s.lists, 1u);
  EXPECT_EQ(s.max_position, 2);
}

TEST_F(StoreTest, EventsWithoutIdAreNeverMerged) {
  // A bandit log: the same user sees the same item again, no timestamps.
  // Before, these collapsed by natural key (20,000 decisions stored as 3,598)
  // and a later label 0 overwrote a click.
  std::vector<Interaction> events = {Ev("b", "y", 1), Ev("a", "x", 1), Ev("b", "y", 0),
                                     Ev("a", "z", 1)};
  auto r = store_->Ingest("d", events, true);
  ASSERT_OK(r);
  EXPECT_EQ(r->events_stored, 4u);
  EXPECT_EQ(r->events_duplicate, 0u);
  r = store_->Ingest("d", std::vector{Ev("b", "y", 1)}, false);
  ASSERT_OK(r);
  EXPECT_EQ(r->events_stored, 1u);
  Reopen();  // the sequence numbers survive a restart: nothing is overwritten
  r = store_->Ingest("d", std::vector{Ev("b", "y", 1)}, false);
  ASSERT_OK(r);
  auto v = store_->LoadView("d");
  ASSERT_OK(v);
  ASSERT_EQ((*v)->num_events(), 6u);
  float by_clicks = 0;
  for (size_t k = 0; k < 6; ++k) {
    if ((*v)->user_keys[(*v)->user[k]] == "b") by_clicks += (*v)->label[k];
  }
  EXPECT_EQ(by_clicks, 3.0f);  // 1 + 0 + 1 + 1: the click is still there
}

TEST_F(StoreTest, NaturalKeyDedupIsAnExplicitDatasetPolicy) {
  EXPECT_THAT(store_->CreateDataset("bad", "", "", "by_user"),
              StatusIs(absl::StatusCode::kInvalidArgument, "dedup='by_user'"));
  ASSERT_OK(store_->CreateDataset("nk", "", "", "natural_key"));
  auto r = store_->Ingest("nk", std::vector{Ev("b", "y", 1), Ev("a", "x", 1), Ev("b", "y", 0)},
                          false);
  ASSERT_OK(r);
  EXPECT_EQ(r->events_stored, 2u);
  EXPECT_EQ(r->events_duplicate, 1u);
  r = store_->Ingest("nk", std::vector{Ev("a", "x", 0)}, false);
  ASSERT_OK(r);
  EXPECT_EQ(r->events_stored, 0u);
  EXPECT_EQ(r->events_duplicate, 1u);  // replaced the stored one
  auto info = store_->GetDataset("nk");
  ASSERT_OK(info);
  EXPECT_EQ(info->dedup, "natural_key");
  auto v = store_->LoadView("nk");
  ASSERT_OK(v);
  ASSERT_EQ((*v)->num_events(), 2u);
  for (size_t k = 0; k < 2; ++k) EXPECT_EQ((*v)->label[k], 0.0f);  // last copy wins
}

TEST_F(StoreTest, EventIdIsTheIdempotencyKey) {
  Interaction a = Ev("u", "i", 1);
  a.event_id = "e1";
  auto r = store_->Ingest("d", std::vector{a, a}, true);
  ASSERT_OK(r);
  EXPECT_EQ(r->events_stored, 1u);
  EXPECT_EQ(r->events_duplicate, 1u);
  const uint64_t version = r->data_version;
  // A retried batch (same content) is a no-op: nothing written, the data
  // version stays, so models trained on it stay current.
  Reopen();
  r = store_->Ingest("d", std::vector{a}, false);
  ASSERT_OK(r);
  EXPECT_EQ(r->events_stored, 0u);
  EXPECT_EQ(r->events_duplicate, 1u);
  EXPECT_EQ(r->data_version, version);

  // The same id with other content is refused, naming the field; nothing of
  // the batch is written.
  Interaction relabelled = a;
  relabelled.label = 0;
  Interaction fresh = Ev("u", "j", 1);
  fresh.event_id = "e2";
  EXPECT_THAT(store_->Ingest("d", std::vector{fresh, relabelled}, false),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       "events[1].event_id='e1': already stored with other content (label=1 vs "
                       "label=0)"));
  Interaction moved = a;
  moved.item = "other";
  EXPECT_THAT(store_->Ingest("d", std::vector{moved}, false),
              StatusIs(absl::StatusCode::kAlreadyExists, "another user or item"));
  Interaction stamped = a;
  stamped.timestamp = 9;
  EXPECT_THAT(store_->Ingest("d", std::vector{stamped}, false),
              StatusIs(absl::StatusCode::kAlreadyExists, "timestamp=unset vs timestamp=9"));
  // In one batch: the same id twice with other content, or for other items.
  Interaction b1 = Ev("v", "i", 1), b2 = Ev("v", "i", 0);
  b1.event_id = b2.event_id = "e3";
  EXPECT_THAT(store_->Ingest("d", std::vector{b1, b2}, false),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "events[1].event_id='e3': repeats events[0] with other content"));
  b2 = Ev("w", "i", 1);
  b2.event_id = "e3";
  EXPECT_THAT(store_->Ingest("d", std::vector{b1, b2}, false),
              StatusIs(absl::StatusCode::kInvalidArgument, "another user or item"));

  auto v = store_->LoadView("d");
  ASSERT_OK(v);
  ASSERT_EQ((*v)->num_events(), 1u);
  EXPECT_EQ((*v)->label[0], 1.0f);
  EXPECT_EQ((*v)->item_keys[(*v)->item[0]], "i");
}

TEST_F(StoreTest, InvalidEventRejectsTheWholeBatch) {
  std::vector<Interaction> events = {Ev("a", "x", 1), Ev("", "y", 1)};
  EXPECT_THAT(store_->Ingest("d", events, true),
              StatusIs(absl::StatusCode::kInvalidArgument, "events[1].user"));
  EXPECT_THAT(store_->GetDataset("d"), StatusIs(absl::StatusCode::kNotFound, "d"));
  events[1].user = "b";
  events[1].propensity = 0.0f;
  EXPECT_THAT(store_->Ingest("d", events, true),
              StatusIs(absl::StatusCode::kInvalidArgument, "events[1].propensity"));
}

TEST_F(StoreTest, OpenCreatesMissingParentDirectories) {
  // `debiasd --data_dir ./var/db` on a fresh checkout: ./var does not exist.
  StoreOptions o;
  o.path = (dir_ / "var" / "db").string();
  auto nested = InteractionStore::Open(o);
  ASSERT_OK(nested);
  ASSERT_OK((*nested)->Ingest("d", std::vector<Interaction>{Ev("a", "x", 1)}, true));
  EXPECT_TRUE(std::filesystem::is_directory(dir_ / "var" / "db"));
}

TEST_F(StoreTest, ImplicitDatasetRefusesNegativeLabels) {
  // A dataset created as implicit feedback holds clicks and impressions; a
  // label of -1 would silently be stored as something the docs exclude.
  ASSERT_OK(store_->CreateDataset("clicks", "", "implicit"));
  EXPECT_THAT(store_->Ingest("clicks", std::vector<Interaction>{Ev("a", "x", 1), Ev("a", "y", -1)},
                             false),
              StatusIs(absl::StatusCode::kInvalidArgument, "events[1].label=-1"));
  auto ok = store_->Ingest("clicks", std::vector<Interaction>{Ev("a", "x", 1), Ev("a", "y", 0),
                                                              Ev("b", "x", 0.25f)},
                           false);
  ASSERT_OK(ok);
  EXPECT_EQ(ok->events_stored, 3u);
  // An explicit (or undeclared) dataset takes any finite label.
  ASSERT_OK(store_->Ingest("ratings", std::vector<Interaction>{Ev("a", "x", -1)}, true));
}

TEST_F(StoreTest, MissingDatasetIsNotFoundUnlessCreated) {
  EXPECT_THAT(store_->Ingest("nope", std::vector{Ev("a", "b", 1)}, false),
              StatusIs(absl::StatusCode::kNotFound, "nope"));
  EXPECT_THAT(store_->LoadView("nope"), StatusIs(absl::StatusCode::kNotFound, "nope"));
  EXPECT_THAT(store_->CreateDataset("bad name!", "", ""),
              StatusIs(absl::StatusCode::kInvalidArgument, "dataset name"));
  EXPECT_THAT(store_->CreateDataset("ok", "", "sideways"),
              StatusIs(absl::StatusCode::kInvalidArgument, "feedback"));
  ASSERT_OK(store_->CreateDataset("ok", "desc", "implicit"));
  EXPECT_THAT(store_->CreateDataset("ok", "", ""),
              StatusIs(absl::StatusCode::kAlreadyExists, "ok"));
}

TEST_F(StoreTest, DeleteRemovesOneDatasetAndNothingElse) {
  ASSERT_OK(store_->Ingest("keep", std::vector{Ev("a", "x", 1), Ev("b", "y", 1)}, true));
  ASSERT_OK(store_->Ingest("drop", std::vector{Ev("a", "x", 1)}, true));
  auto deleted = store_->DeleteDataset("drop");
  ASSERT_OK(deleted);
  EXPECT_EQ(*deleted, 1u);
  EXPECT_THAT(store_->DeleteDataset("drop"), StatusIs(absl::StatusCode::kNotFound, "drop"));
  Reopen();
  EXPECT_THAT(store_->GetDataset("drop"), StatusIs(absl::StatusCode::kNotFound, "drop"));
  auto v = store_->LoadView("keep");
  ASSERT_OK(v);
  EXPECT_EQ((*v)->num_events(), 2u);
  // A re-created name starts empty.
  ASSERT_OK(store_->Ingest("drop", std::vector{Ev("z", "z", 1)}, true));
  auto v2 = store_->LoadView("drop");
  ASSERT_OK(v2);
  EXPECT_EQ((*v2)->num_events(), 1u);
  EXPECT_EQ((*v2)->user_keys[0], "z");
  ASSERT_EQ(store_->ListDatasets().size(), 2u);
  EXPECT_EQ(store_->ListDatasets()[0].name, "drop");
}

TEST_F(StoreTest, FeaturesAndOptionalColumnsRoundTrip) {
  Interaction e = Ev("q1", "d1", 1);
  e.list_id = "q1-l0";
  e.position = 3;
  e.propensity = 0.25f;
  e.features = {0.5f, -1.0f, 2.0f};
  Interaction f = Ev("q1", "d2", 0);
  ASSERT_OK(store_->Ingest("ltr", std::vector{e, f}, true));
  auto v = store_->LoadView("ltr");
  ASSERT_OK(v);
  const auto& view = **v;
  ASSERT_EQ(view.feature_dim, 3);
  ASSERT_EQ(view.num_events(), 2u);
  // d1 has id 0 and sorts first.
  EXPECT_EQ(view.position[0], 3);
  EXPECT_EQ(view.position[1], 0);
  EXPECT_FLOAT_EQ(view.propensity[0], 0.25f);
  EXPECT_EQ(view.list_keys[view.list[0]], "q1-l0");
  EXPECT_EQ(view.list[1], data::kNoList);
  EXPECT_FLOAT_EQ(view.FeaturesOf(0)[2], 2.0f);
  EXPECT_FLOAT_EQ(view.FeaturesOf(1)[0], 0.0f);
}

TEST_F(StoreTest, ModelsPersistAcrossReopen) {
  auto id = store_->NextModelId();
  ASSERT_OK(id);
  ModelRecord r;
  r.id = *id;
  r.dataset = "d";
  r.state = ModelState::kReady;
  r.spec = {{"loss", "relmf"}};
  r.metrics = {{"auc", 0.7}};
  r.user_keys = {"a", "b"};
  r.item_keys = {"x"};
  const std::string snapshot = "params";
  ASSERT_OK(store_->PutModel(r, &snapshot));
  Reopen();
  auto id2 = store_->NextModelId();
  ASSERT_OK(id2);
  EXPECT_GT(*id2, *id);  // ids are never reused
  auto got = store_->GetModel(*id);
  ASSERT_OK(got);
  EXPECT_EQ(got->spec["loss"], "relmf");
  EXPECT_EQ(got->state, ModelState::kReady);
  EXPECT_EQ(got->user_keys, r.user_keys);
  EXPECT_EQ(*store_->GetModelSnapshot(*id), "params");
  EXPECT_EQ(store_->ListModels().size(), 1u);
  ASSERT_OK(store_->DeleteModel(*id));
  EXPECT_THAT(store_->GetModel(*id), StatusIs(absl::StatusCode::kNotFound, "model"));
}

TEST_F(StoreTest, CorruptDatabaseRefusesToOpen) {
  ASSERT_OK(store_->Ingest("d", std::vector{Ev("a", "x", 1)}, true));
  store_.reset();
  // Overwrite the CURRENT file so that it points nowhere.
  {
    std::ofstream f(dir_ / "CURRENT", std::ios::trunc);
    f << "MANIFEST-999999\n";
  }
  StoreOptions o;
  o.path = dir_.string();
  auto s = InteractionStore::Open(o);
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace debias::store
