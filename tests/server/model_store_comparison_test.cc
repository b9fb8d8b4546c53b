// Model-store comparison test (issue 9, "Faults"): random sequences of
// dataset and model operations run against the real InteractionStore and the
// server's ModelManager, and against a plain in-memory reference; the store
// is closed and reopened at random points. After every step and every reopen
// both must agree on the datasets (names, feedback, versions, key counts and
// the order ids were given to keys), on every stored event field by field,
// and on the models (ids, datasets, versions, states, key tables; every
// ready model loads and scores).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/data/dataset_view.h"
#include "core/store/interaction_store.h"
#include "gtest/gtest.h"
#include "server/model_manager.h"
#include "tests/util/status_matchers.h"

namespace debias {
namespace {

namespace fs = std::filesystem;
using store::ModelState;

// An event as the store must give it back (the view keeps no event ids).
using Row = std::tuple<std::string, std::string, float, std::optional<int64_t>,
                       std::optional<std::string>, std::optional<int32_t>, std::optional<float>>;

Row RowOf(const data::Interaction& e) {
  return {e.user, e.item, e.label, e.timestamp, e.list_id, e.position, e.propensity};
}

// The identity of an event (proto/debias/v1/common.proto): its event id
// when set (unique in the dataset), else a sequence number: every event
// without an id is stored.
using DedupKey = std::pair<std::string, uint64_t>;

// Whether two events with the same id carry the same content (a resend).
bool SameContent(const data::Interaction& a, const data::Interaction& b) {
  return a.user == b.user && a.item == b.item && a.label == b.label &&
         a.timestamp == b.timestamp && a.list_id == b.list_id && a.position == b.position &&
         a.propensity == b.propensity && a.features == b.features;
}

struct RefDataset {
  std::string description, feedback;
  uint64_t data_version = 0;
  // Keys in the order they were first ingested: the store's dense ids.
  std::vector<std::string> users, items, lists;
  std::map<DedupKey, data::Interaction> events;
  uint64_t next_seq = 1;

  void Intern(std::vector<std::string>* keys, const std::string& k) {
    if (std::find(keys->begin(), keys->end(), k) == keys->end()) keys->push_back(k);
  }
};

struct RefModel {
  std::string dataset;
  uint64_t data_version = 0;
  // Unset while an asynchronous job may still be running.
  std::optional<ModelState> state;
  std::vector<std::string> user_keys, item_keys;  // for synchronous jobs
  bool async = false;
};

class ModelStoreComparison {
 public:
  ModelStoreComparison(uint64_t seed, fs::path dir) : rng_(seed), dir_(std::move(dir)) {
    fs::remove_all(dir_);
    Open();
  }
  ~ModelStoreComparison() {
    Close();
    fs::remove_all(dir_);
  }

  void Run(int steps) {
    for (int step = 0; step < steps && !::testing::Test::HasFatalFailure(); ++step) {
      const int op = Uniform(0, 99);
      std::string what;
      if (op < 12) {
        what = CreateDataset();
      } else if (op < 55) {
        what = Ingest();
      } else if (op < 62) {
        what = DeleteDataset();
      } else if (op < 74) {
        what = Train(/*async=*/false);
      } else if (op < 79) {
        what = Train(/*async=*/true);
      } else if (op < 91) {
        what = DeleteModel();
      } else {
        what = "reopen";
        Close();
        Open();
        ++reopens_;
      }
      SCOPED_TRACE(absl::StrCat("step ", step, ": ", what));
      Compare();
    }
    Close();
    Open();
    SCOPED_TRACE("final reopen");
    Compare();
  }

  int reopens() const { return reopens_; }
  int trained() const { return trained_; }
  size_t events_checked() const { return events_checked_; }

 private:
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  std::string PickName() { return absl::StrCat("ds", Uniform(0, 3)); }

  void Open() {
    store::StoreOptions so;
    so.path = dir_.string();
    auto st = store::InteractionStore::Open(so);
    ASSERT_OK(st);
    store_ = std::move(*st);
    server::ModelManager::Options mo;
    mo.max_jobs = 2;
    manager_ = std::make_unique<server::ModelManager>(store_.get(), mo);
  }

  // The manager's destructor cancels running jobs; a job caught by it ends
  // cancelled (or ready/failed if it got there first).
  void Close() {
    manager_.reset();
    store_.reset();
  }

  std::string CreateDataset() {
    const std::string name = PickName();
    const char* kinds[] = {"", "implicit", "explicit", "clicklog"};
    const std::string feedback = kinds[Uniform(0, 3)];
    auto r = store_->CreateDataset(name, "desc of " + name, feedback);
    if (ref_.count(name)) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists) << r.status();
    } else {
      EXPECT_OK(r);
      ref_[name].feedback = feedback;
      ref_[name].description = "desc of " + name;
    }
    return absl::StrCat("create ", name);
  }

  data::Interaction RandomEvent() {
    data::Interaction e;
    e.user = absl::StrCat("u", Uniform(0, 7));
    e.item = absl::StrCat("i", Uniform(0, 9));
    const float labels[] = {1.0f, 2.0f, 0.5f, 1.0f};
    e.label = labels[Uniform(0, 3)];
    if (Chance(0.3)) e.event_id = absl::StrCat("e", Uniform(0, 19));
    // A resend of a stored event (a retried batch).
    auto it = ref_.find(PickName());
    if (Chance(0.15) && it != ref_.end()) {
      for (const auto& [key, stored] : it->second.events) {
        if (!key.first.empty() && Chance(0.5)) return stored;
      }
    }
    if (Chance(0.5)) e.timestamp = Uniform(-3, 3) * int64_t{1000000007};
    if (Chance(0.2)) e.list_id = absl::StrCat("l", Uniform(0, 2));
    if (Chance(0.2)) e.position = Uniform(1, 5);
    if (Chance(0.3)) e.propensity = static_cast<float>(Uniform(1, 100)) / 100.0f;
    return e;
  }

  std::string Ingest() {
    const std::string name = PickName();
    const bool create = Chance(0.5);
    std::vector<data::Interaction> batch(Uniform(0, 25));
    for (auto& e : batch) e = RandomEvent();
    const bool poison = !batch.empty() && Chance(0.08);
    if (poison) {
      auto& bad = batch[Uniform(0, static_cast<int>(batch.size()) - 1)];
      if (Chance(0.5)) {
        bad.label = std::nanf("");
      } else {
        bad.user.clear();
      }
    }
    // What the store must answer: a reused id with other content in the
    // batch is INVALID_ARGUMENT, against a stored event ALREADY_EXISTS.
    std::optional<absl::StatusCode> conflict;
    {
      std::map<std::string, const data::Interaction*> seen;
      for (const auto& e : batch) {
        if (e.event_id.empty()) continue;
        auto [it, inserted] = seen.try_emplace(e.event_id, &e);
        if (!inserted && !SameContent(*it->second, e)) {
          conflict = absl::StatusCode::kInvalidArgument;
        }
      }
      if (!conflict && ref_.count(name)) {
        for (const auto& e : batch) {
          auto it = ref_[name].events.find({e.event_id, 0});
          if (!e.event_id.empty() && it != ref_[name].events.end() &&
              !SameContent(it->second, e)) {
            conflict = absl::StatusCode::kAlreadyExists;
          }
        }
      }
    }
    auto r = store_->Ingest(name, batch, create);
    const std::string what = absl::StrCat("ingest ", batch.size(), " into ", name,
                                          create ? " (create)" : "", poison ? " (poisoned)" : "");
    if (poison) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
      return what;
    }
    if (!ref_.count(name) && !create) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
      return what;
    }
    RefDataset& d = ref_[name];  // created empty when missing
    if (conflict) {
      EXPECT_EQ(r.status().code(), *conflict) << r.status();
      return what + " (reused event id)";
    }
    EXPECT_OK(r);
    if (!r.ok()) return what;
    uint64_t stored = 0;
    for (const auto& e : batch) {
      d.Intern(&d.users, e.user);
      d.Intern(&d.items, e.item);
      if (e.list_id) d.Intern(&d.lists, *e.list_id);
      const DedupKey key = e.event_id.empty() ? DedupKey{"", d.next_seq++} : DedupKey{e.event_id, 0};
      stored += d.events.emplace(key, e).second;  // a resend adds nothing
    }
    if (stored > 0) ++d.data_version;
    EXPECT_EQ(r->events_stored, stored);
    EXPECT_EQ(r->events_duplicate, batch.size() - stored);
    EXPECT_EQ(r->data_version, d.data_version);
    return what;
  }

  std::string DeleteDataset() {
    const std::string name = PickName();
    auto r = store_->DeleteDataset(name);
    auto it = ref_.find(name);
    if (it == ref_.end()) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
    } else {
      EXPECT_OK(r);
      if (r.ok()) {
        EXPECT_EQ(*r, it->second.events.size());
      }
      ref_.erase(it);
    }
    return absl::StrCat("delete ", name);
  }

  std::string Train(bool async) {
    // An asynchronous job at a time, so the job slots (2) never run out.
    if (async && pending_) return "train skipped";
    const std::string name = PickName();
    server::TrainJobRequest req;
    req.dataset = name;
    req.feedback = "implicit";
    req.spec.loss = "relmf";
    req.spec.seed = static_cast<uint64_t>(Uniform(1, 1000));
    req.spec.params = {{"epochs", async ? "3" : "1"}, {"dim", "2"}};
    auto id = manager_->StartTraining(req);
    const std::string what = absl::StrCat(async ? "train async on " : "train on ", name);
    auto it = ref_.find(name);
    if (it == ref_.end()) {
      EXPECT_EQ(id.status().code(), absl::StatusCode::kNotFound) << id.status();
      return what;
    }
    EXPECT_OK(id);
    if (!id.ok()) return what;
    EXPECT_GT(*id, max_model_id_) << "model ids are never reused";
    max_model_id_ = std::max(max_model_id_, *id);
    ++trained_;
    RefModel m;
    m.dataset = name;
    m.data_version = it->second.data_version;
    m.async = async;
    if (!async) {
      auto rec = WaitFinished(*id);
      if (!rec.ok()) return what;
      // relmf needs at least one positive; an empty dataset fails.
      m.state = it->second.events.empty() ? ModelState::kFailed : ModelState::kReady;
      if (*m.state == ModelState::kReady) {
        m.user_keys = it->second.users;
        m.item_keys = it->second.items;
      }
      EXPECT_EQ(rec->state, *m.state) << rec->error;
    } else {
      pending_ = *id;
    }
    models_[*id] = std::move(m);
    return what;
  }

  absl::StatusOr<store::ModelRecord> WaitFinished(uint64_t id) {
    for (int k = 0; k < 400; ++k) {
      auto u = manager_->WaitForUpdate(id, 1u << 30, absl::Milliseconds(50));
      if (!u.ok()) {
        ADD_FAILURE() << "model " << id << ": " << u.status();
        return u.status();
      }
      if (u->finished) return u->record;
    }
    ADD_FAILURE() << "model " << id << " did not finish in 20 s";
    return absl::DeadlineExceededError("training");
  }

  std::string DeleteModel() {
    uint64_t id = max_model_id_ + 1;  // absent, unless a live one is picked
    if (!models_.empty() && Chance(0.85)) {
      auto it = models_.begin();
      std::advance(it, Uniform(0, static_cast<int>(models_.size()) - 1));
      id = it->first;
    }
    absl::Status s = manager_->Delete(id);
    if (models_.count(id)) {
      EXPECT_OK(s);
      models_.erase(id);
      if (pending_ == id) pending_ = 0;
    } else {
      EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
    }
    return absl::StrCat("delete model ", id);
  }

  void Compare() {
    CompareDatasets();
    CompareModels();
  }

  void CompareDatasets() {
    std::vector<store::DatasetInfo> listed = store_->ListDatasets();
    std::vector<std::string> names;
    for (const auto& d : listed) names.push_back(d.name);
    std::vector<std::string> ref_names;
    for (const auto& [n, _] : ref_) ref_names.push_back(n);
    ASSERT_EQ(names, ref_names) << "dataset names, ordered";
    for (const auto& info : listed) {
      const RefDataset& d = ref_.at(info.name);
      EXPECT_EQ(info.feedback, d.feedback) << info.name;
      EXPECT_EQ(info.description, d.description) << info.name;
      EXPECT_EQ(info.data_version, d.data_version) << info.name;
      EXPECT_EQ(info.users, d.users.size()) << info.name;
      EXPECT_EQ(info.items, d.items.size()) << info.name;
      EXPECT_EQ(info.lists, d.lists.size()) << info.name;
      auto view = store_->LoadView(info.name);
      ASSERT_OK(view);
      const data::DatasetView& v = **view;
      EXPECT_EQ(v.data_version, d.data_version) << info.name;
      EXPECT_EQ(v.user_keys, d.users) << info.name << ": ids follow first ingestion";
      EXPECT_EQ(v.item_keys, d.items) << info.name;
      EXPECT_EQ(v.list_keys, d.lists) << info.name;
      std::vector<Row> got, want;
      for (size_t e = 0; e < v.num_events(); ++e) {
        data::Interaction x;
        x.user = v.user_keys[v.user[e]];
        x.item = v.item_keys[v.item[e]];
        x.label = v.label[e];
        if (!v.timestamp.empty() && v.timestamp[e] != INT64_MIN) x.timestamp = v.timestamp[e];
        if (!v.list.empty() && v.list[e] != data::kNoList) x.list_id = v.list_keys[v.list[e]];
        if (!v.position.empty() && v.position[e] > 0) x.position = v.position[e];
        if (!v.propensity.empty() && v.propensity[e] > 0) x.propensity = v.propensity[e];
        got.push_back(RowOf(x));
      }
      for (const auto& [_, e] : d.events) want.push_back(RowOf(e));
      std::sort(got.begin(), got.end());
      std::sort(want.begin(), want.end());
      EXPECT_EQ(got.size(), want.size()) << info.name << ": event count";
      EXPECT_TRUE(got == want) << info.name << ": event contents differ";
      events_checked_ += got.size();
      // User-major order with a consistent CSR index.
      ASSERT_EQ(v.user_offsets.size(), v.num_users() + 1);
      for (uint32_t u = 0; u < v.num_users(); ++u) {
        auto [b, e] = v.UserRange(u);
        for (uint64_t k = b; k < e; ++k) EXPECT_EQ(v.user[k], u);
      }
    }
    for (const auto& [name, _] : ref_) EXPECT_OK(store_->GetDataset(name));
  }

  void CompareModels() {
    std::vector<store::ModelRecord> records = manager_->ListRecords();
    std::vector<uint64_t> ids, ref_ids;
    for (const auto& r : records) ids.push_back(r.id);
    for (auto it = models_.rbegin(); it != models_.rend(); ++it) ref_ids.push_back(it->first);
    ASSERT_EQ(ids, ref_ids) << "model ids, newest first";
    for (const auto& r : records) {
      RefModel& m = models_.at(r.id);
      EXPECT_EQ(r.dataset, m.dataset) << "model " << r.id;
      if (!m.state) {
        // An asynchronous job: still training, or ended one way or another.
        if (r.state == ModelState::kTraining) continue;
        m.state = r.state;
        if (r.id == pending_) pending_ = 0;
      }
      EXPECT_EQ(r.state, *m.state) << "model " << r.id << ": " << r.error;
      if (m.async) {
        EXPECT_GE(r.data_version, m.data_version) << "model " << r.id;
      } else {
        EXPECT_EQ(r.data_version, m.data_version) << "model " << r.id;
      }
      auto loaded = manager_->Get(r.id);
      if (r.state != ModelState::kReady) {
        EXPECT_EQ(loaded.status().code(), absl::StatusCode::kFailedPrecondition)
            << "model " << r.id << ": " << loaded.status();
        continue;
      }
      ASSERT_OK(loaded);
      const server::LoadedModel& lm = **loaded;
      if (!m.async) {
        EXPECT_EQ(lm.record.user_keys, m.user_keys) << "model " << r.id;
        EXPECT_EQ(lm.record.item_keys, m.item_keys) << "model " << r.id;
      }
      ASSERT_EQ(lm.model->num_users(), lm.record.user_keys.size()) << "model " << r.id;
      ASSERT_EQ(lm.model->num_items(), lm.record.item_keys.size()) << "model " << r.id;
      ASSERT_GT(lm.model->num_items(), 0u);
      std::vector<uint32_t> items(lm.model->num_items());
      for (uint32_t i = 0; i < items.size(); ++i) items[i] = i;
      std::vector<float> scores(items.size());
      lm.model->ScoreItems(0, items, scores);
      for (float s : scores) EXPECT_TRUE(std::isfinite(s)) << "model " << r.id;
    }
  }

  std::mt19937_64 rng_;
  fs::path dir_;
  std::unique_ptr<store::InteractionStore> store_;
  std::unique_ptr<server::ModelManager> manager_;
  std::map<std::string, RefDataset> ref_;
  std::map<uint64_t, RefModel> models_;
  uint64_t max_model_id_ = 0;
  uint64_t pending_ = 0;
  int reopens_ = 0;
  int trained_ = 0;
  size_t events_checked_ = 0;
};

class ModelStoreComparisonTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ModelStoreComparisonTest, StoreAndManagerAgreeWithTheReference) {
  const fs::path dir = fs::temp_directory_path() /
                       absl::StrCat("debias_model_store_cmp_", ::getpid(), "_", GetParam());
  ModelStoreComparison cmp(GetParam(), dir);
  cmp.Run(150);
  // The run exercised what it claims to.
  EXPECT_GT(cmp.reopens(), 5);
  EXPECT_GT(cmp.trained(), 5);
  EXPECT_GT(cmp.events_checked(), 1000u);
  std::printf("seed %llu: %d reopens, %d models trained, %zu stored events compared\n",
              static_cast<unsigned long long>(GetParam()), cmp.reopens(), cmp.trained(),
              cmp.events_checked());
}

INSTANTIATE_TEST_SUITE_P(Seeds, ModelStoreComparisonTest, ::testing::Values(1, 2, 3, 4));

}  // namespace
}  // namespace debias
