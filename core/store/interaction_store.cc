#include "core/store/interaction_store.h"

#include <filesystem>

#include <chrono>
#include <cstdio>
#include <map>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/store/integrity.h"
#include "core/store/keys.h"
#include "core/util/memory.h"
#include "core/util/status_macros.h"
#include "rocksdb/convenience.h"
#include "rocksdb/db.h"
#include "rocksdb/listener.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"

namespace debias::store {
namespace {

// A flush frees the memtable's arena blocks (64 MB); hand them back to the
// OS instead of leaving them resident in malloc's free lists.
class ReleaseMemoryAfterFlush : public rocksdb::EventListener {
 public:
  void OnFlushCompleted(rocksdb::DB*, const rocksdb::FlushJobInfo&) override {
    util::ReleaseFreeMemory();
  }
};

using nlohmann::json;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const std::string msg = absl::StrCat(std::string(what), ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  if (s.IsIOError() || s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) {
    return absl::UnavailableError(msg);
  }
  return absl::InternalError(msg);
}

// Successor of a prefix for range deletes and scan bounds.
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    unsigned char c = static_cast<unsigned char>(prefix.back());
    if (c != 0xFF) {
      prefix.back() = static_cast<char>(c + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;
}

// Calls fn(key, value) for every key with `prefix`; fn returns false to stop.
template <typename Fn>
absl::Status ScanPrefix(rocksdb::DB* db, const rocksdb::Snapshot* snap,
                        const std::string& prefix, Fn&& fn) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  const std::string end = PrefixEnd(prefix);
  rocksdb::Slice upper(end);
  ro.iterate_upper_bound = &upper;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    if (!fn(std::string_view(it->key().data(), it->key().size()),
            std::string_view(it->value().data(), it->value().size()))) {
      break;
    }
  }
  return FromRocks(it->status(), "scan");
}

// feature_dim < 0 (not known, see DatasetState) is left out.
json InfoToJson(uint32_t id, const DatasetInfo& d, int feature_dim, uint64_t next_event_seq) {
  json j{{"id", id},
         {"name", d.name},
         {"description", d.description},
         {"feedback", d.feedback},
         {"dedup", d.dedup},
         {"next_event_seq", next_event_seq},
         {"create_time_unix_ms", d.create_time_unix_ms},
         {"data_version", d.data_version},
         {"users", d.users},
         {"items", d.items},
         {"lists", d.lists}};
  if (feature_dim >= 0) j["feature_dim"] = feature_dim;
  return j;
}

absl::Status ValidateFeedback(const std::string& f) {
  if (f.empty() || f == "explicit" || f == "implicit" || f == "clicklog") {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "feedback='", f, "': must be empty, explicit, implicit or clicklog"));
}

absl::Status ValidateDedup(const std::string& d) {
  if (d.empty() || d == "natural_key") return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "dedup='", d.substr(0, 64),
      "': must be empty (every event without an event_id is stored) or natural_key"));
}

// The first field in which two stored event values differ, as
// "label=1 vs label=0", or "" when they are equal.
std::string FirstDifference(const keys::DecodedEvent& a, const keys::DecodedEvent& b) {
  auto opt = [](bool has, auto v) { return has ? absl::StrCat(v) : std::string("unset"); };
  const uint8_t fa = a.flags, fb = b.flags;
  if (a.label != b.label) return absl::StrCat("label=", a.label, " vs label=", b.label);
  for (auto [flag, name] : {std::pair{keys::kHasTimestamp, "timestamp"},
                            std::pair{keys::kHasList, "list_id"},
                            std::pair{keys::kHasPosition, "position"},
                            std::pair{keys::kHasPropensity, "propensity"}}) {
    const bool ha = fa & flag, hb = fb & flag;
    auto value = [&](const keys::DecodedEvent& e, bool has) -> std::string {
      if (flag == keys::kHasTimestamp) return opt(has, e.timestamp);
      if (flag == keys::kHasList) return opt(has, e.list);
      if (flag == keys::kHasPosition) return opt(has, e.position);
      return opt(has, e.propensity);
    };
    const std::string va = value(a, ha), vb = value(b, hb);
    if (va != vb) return absl::StrCat(name, "=", va, " vs ", name, "=", vb);
  }
  if (a.features != b.features) return "features differ";
  return "";
}

absl::StatusOr<ModelState> ParseModelState(std::string_view s) {
  for (ModelState m : {ModelState::kTraining, ModelState::kReady,
                       ModelState::kFailed, ModelState::kCancelled}) {
    if (ModelStateName(m) == s) return m;
  }
  return absl::DataLossError(
      absl::StrCat("model record: unknown state '", std::string(s), "'"));
}

json RecordToJson(const ModelRecord& r) {
  json j{{"id", r.id},
              {"dataset", r.dataset},
              {"data_version", r.data_version},
              {"state", std::string(ModelStateName(r.state))},
              {"spec", r.spec},
              {"metrics", r.metrics},
              {"diagnostics", r.diagnostics},
              {"progress", r.progress},
              {"error", r.error},
              {"error_code", r.error_code},
              {"create_time_unix_ms", r.create_time_unix_ms},
              {"finish_time_unix_ms", r.finish_time_unix_ms}};
  if (!r.name.empty()) {
    j["name"] = r.name;
    j["version"] = r.version;
  }
  return j;
}

absl::StatusOr<ModelRecord> RecordFromJson(std::string_view bytes) {
  try {
    json j = json::parse(bytes);
    ModelRecord r;
    r.id = j.at("id").get<uint64_t>();
    r.dataset = j.at("dataset").get<std::string>();
    r.name = j.value("name", "");
    r.version = j.value("version", uint64_t{0});
    r.data_version = j.at("data_version").get<uint64_t>();
    ASSIGN_OR_RETURN(r.state, ParseModelState(j.at("state").get<std::string>()));
    r.spec = j.at("spec");
    r.metrics = j.at("metrics");
    r.diagnostics = j.at("diagnostics");
    r.progress = j.value("progress", json::array());
    r.error = j.value("error", "");
    r.error_code = j.value("error_code", 0);
    r.create_time_unix_ms = j.value("create_time_unix_ms", int64_t{0});
    r.finish_time_unix_ms = j.value("finish_time_unix_ms", int64_t{0});
    return r;
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat("model record: ", e.what()));
  }
}

json ModelNameToJson(const ModelName& n) {
  return json{{"name", n.name}, {"next_version", n.next_version}, {"labels", n.labels}};
}

absl::StatusOr<ModelName> ModelNameFromJson(std::string_view bytes) {
  try {
    json j = json::parse(bytes);
    ModelName n;
    n.name = j.at("name").get<std::string>();
    n.next_version = j.at("next_version").get<uint64_t>();
    n.labels = j.value("labels", std::map<std::string, uint64_t>{});
    return n;
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat("model name entry: ", e.what()));
  }
}

std::string EncodeKeys(const std::vector<std::string>& users,
                       const std::vector<std::string>& items) {
  std::string out;
  for (const auto* keys : {&users, &items}) {
    util::PutFixed64(&out, keys->size());
    for (const auto& k : *keys) util::PutBytes(&out, k);
  }
  return out;
}

bool DecodeKeys(std::string_view in, std::vector<std::string>* users,
                std::vector<std::string>* items) {
  util::Reader r(in);
  for (auto* keys : {users, items}) {
    uint64_t n;
    if (!r.GetFixed64(&n) || n > r.remaining()) return false;
    keys->clear();
    keys->reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      std::string_view k;
      if (!r.GetBytes(&k)) return false;
      keys->emplace_back(k);
    }
  }
  return r.done();
}

}  // namespace

std::string_view ModelStateName(ModelState s) {
  switch (s) {
    case ModelState::kTraining: return "training";
    case ModelState::kReady: return "ready";
    case ModelState::kFailed: return "failed";
    case ModelState::kCancelled: return "cancelled";
  }
  return "unknown";
}

absl::Status ValidateDatasetName(const std::string& name) {
  auto ok_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  };
  bool ok = !name.empty() && name.size() <= 128 && ok_char(name[0]) &&
            name[0] != '.' && name[0] != '_' && name[0] != '-';
  for (char c : name) ok = ok && ok_char(c);
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dataset name '", name.substr(0, 160),
        "': must be 1-128 characters of [A-Za-z0-9._-] starting with a "
        "letter or digit"));
  }
  return absl::OkStatus();
}

absl::Status ValidateModelName(const std::string& name, std::string_view field) {
  auto ok_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  };
  bool ok = !name.empty() && name.size() <= 63 && ok_char(name[0]) && name[0] != '.' &&
            name[0] != '_' && name[0] != '-';
  for (char c : name) ok = ok && ok_char(c);
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        std::string(field), "='", name.substr(0, 80),
        "': must match [a-z0-9][a-z0-9._-]{0,62} (1-63 lower-case letters, digits, '.', '_', "
        "'-')"));
  }
  return absl::OkStatus();
}

// Per-dataset state: metadata, the key->id maps used by ingest (loaded on
// first use) and the cached view.
struct DatasetState {
  explicit DatasetState(uint32_t i) : id(i) {}
  const uint32_t id;
  absl::Mutex mu;
  DatasetInfo info ABSL_GUARDED_BY(mu);
  bool deleted ABSL_GUARDED_BY(mu) = false;
  bool maps_loaded ABSL_GUARDED_BY(mu) = false;
  absl::flat_hash_map<std::string, uint32_t> users ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, uint32_t> items ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, uint32_t> lists ABSL_GUARDED_BY(mu);
  std::shared_ptr<const data::DatasetView> view ABSL_GUARDED_BY(mu);
  // Length of the feature vectors of the dataset's events that carry any
  // (0: none so far). -1: not known yet, for a dataset whose metadata
  // predates the field; found by a scan when a batch with features comes.
  int feature_dim ABSL_GUARDED_BY(mu) = -1;
  // The sequence number the next event without an id gets.
  uint64_t next_event_seq ABSL_GUARDED_BY(mu) = 0;
};

// One event of an ingest batch on its way to the database.
struct EventRow {
  size_t index = 0;  // in the batch
  uint32_t user = 0, item = 0;
  std::string key, value;
  bool duplicate = false;  // adds nothing (see MarkDuplicates)
};

struct InteractionStore::Impl {
  std::unique_ptr<rocksdb::DB> db;
  rocksdb::WriteOptions write_options;
  mutable absl::Mutex catalog_mu;
  std::map<std::string, std::shared_ptr<DatasetState>> datasets
      ABSL_GUARDED_BY(catalog_mu);
  uint64_t next_dataset_id ABSL_GUARDED_BY(catalog_mu) = 1;
  absl::Mutex model_mu;
  uint64_t next_model_id ABSL_GUARDED_BY(model_mu) = 1;

  std::shared_ptr<DatasetState> Find(const std::string& name) const {
    absl::MutexLock l(&catalog_mu);
    auto it = datasets.find(name);
    return it == datasets.end() ? nullptr : it->second;
  }

  absl::Status LoadMaps(DatasetState& st) ABSL_EXCLUSIVE_LOCKS_REQUIRED(st.mu) {
    if (st.maps_loaded) return absl::OkStatus();
    for (auto [family, map_ptr] : {std::pair{'U', &st.users}, std::pair{'I', &st.items},
                                   std::pair{'L', &st.lists}}) {
      // A plain variable: clang before 16 cannot capture structured bindings.
      auto* map = map_ptr;
      const std::string prefix = keys::DatasetFamily(st.id, family);
      absl::Status decode = absl::OkStatus();
      RETURN_IF_ERROR(ScanPrefix(db.get(), nullptr, prefix,
                                 [&](std::string_view k, std::string_view v) {
                                   util::Reader r(v);
                                   uint32_t id;
                                   if (!r.GetFixed32(&id)) {
                                     decode = absl::DataLossError("corrupt id map");
                                     return false;
                                   }
                                   map->emplace(std::string(k.substr(prefix.size())), id);
                                   return true;
                                 }));
      RETURN_IF_ERROR(decode);
    }
    st.maps_loaded = true;
    return absl::OkStatus();
  }

  // Marks the rows that add nothing, or refuses the batch when an event id
  // is reused for another event. Event ids: a repeat in the batch or a
  // stored id with the same content is a duplicate; with other content,
  // INVALID_ARGUMENT (in the batch) or ALREADY_EXISTS (stored), naming the
  // field. Natural keys (dedup=natural_key): a key repeated in the batch
  // or already stored is a duplicate and replaces the stored event.
  absl::Status MarkDuplicates(DatasetState& st, std::span<const data::Interaction> events,
                              std::vector<EventRow>* rows, uint64_t max_features)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(st.mu) {
    const bool natural_key = st.info.dedup == "natural_key";
    auto differs = [&](std::string_view a, std::string_view b) -> std::string {
      keys::DecodedEvent da, db;
      if (!keys::DecodeEventValue(a, &da, max_features) ||
          !keys::DecodeEventValue(b, &db, max_features)) {
        return "corrupt stored event";
      }
      return FirstDifference(da, db);
    };
    // In the batch.
    absl::flat_hash_map<std::string_view, size_t> first;  // key -> row
    for (size_t k = 0; k < rows->size(); ++k) {
      EventRow& r = (*rows)[k];
      const std::string& id = events[r.index].event_id;
      if (id.empty() && !natural_key) continue;
      auto [it, inserted] = first.try_emplace(r.key, k);
      if (inserted) continue;
      if (!id.empty()) {
        const EventRow& f = (*rows)[it->second];
        std::string d = f.user != r.user || f.item != r.item
                            ? "user/item differ"
                            : differs(f.value, r.value);
        if (!d.empty()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "events[", r.index, "].event_id='", id, "': repeats events[", f.index,
              "] with other content (", d, "); an event id names one event"));
        }
        r.duplicate = true;
      } else {
        (*rows)[it->second].duplicate = true;  // the last copy counts as the new one
        it->second = k;
      }
    }
    // Across ids: the same id under another user or item has another key,
    // so check the id index too.
    absl::flat_hash_map<std::string_view, size_t> by_id;
    for (size_t k = 0; k < rows->size(); ++k) {
      const std::string& id = events[(*rows)[k].index].event_id;
      if (id.empty() || (*rows)[k].duplicate) continue;
      auto [it, inserted] = by_id.try_emplace(id, k);
      if (!inserted) {
        const EventRow& f = (*rows)[it->second];
        return absl::InvalidArgumentError(absl::StrCat(
            "events[", (*rows)[k].index, "].event_id='", id, "': repeats events[", f.index,
            "] with another user or item; an event id names one event"));
      }
    }
    // Against the store.
    std::string stored;
    for (EventRow& r : *rows) {
      if (r.duplicate) continue;
      const data::Interaction& e = events[r.index];
      if (e.event_id.empty()) {
        if (!natural_key) continue;
        rocksdb::Status g = db->Get(rocksdb::ReadOptions(), r.key, &stored);
        if (g.ok()) r.duplicate = true;
        else if (!g.IsNotFound()) return FromRocks(g, "ingest");
        continue;
      }
      std::string where;
      rocksdb::Status g =
          db->Get(rocksdb::ReadOptions(), keys::EventIdIndexKey(st.id, e.event_id), &where);
      if (g.IsNotFound()) continue;
      if (!g.ok()) return FromRocks(g, "ingest");
      util::Reader wr(where);
      uint32_t u = 0, i = 0;
      if (!wr.GetBigEndian32(&u) || !wr.GetBigEndian32(&i)) {
        return absl::DataLossError("corrupt event id index");
      }
      std::string d;
      if (u != r.user || i != r.item) {
        d = "stored for another user or item";
      } else {
        g = db->Get(rocksdb::ReadOptions(), r.key, &stored);
        if (!g.ok()) return FromRocks(g, "ingest (event of the id index)");
        d = differs(stored, r.value);
      }
      if (!d.empty()) {
        return absl::AlreadyExistsError(absl::StrCat(
            "events[", r.index, "].event_id='", e.event_id,
            "': already stored with other content (", d,
            "); resending an event is a no-op, a new event needs a new id"));
      }
      r.duplicate = true;
    }
    return absl::OkStatus();
  }

  // Sets st.feature_dim from the stored events when it is not known.
  absl::Status ResolveFeatureDim(DatasetState& st, uint64_t max_features)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(st.mu) {
    if (st.feature_dim >= 0) return absl::OkStatus();
    int dim = 0;
    bool corrupt = false;
    keys::DecodedEvent ev;
    RETURN_IF_ERROR(ScanPrefix(db.get(), nullptr, keys::DatasetFamily(st.id, 'E'),
                               [&](std::string_view, std::string_view v) {
                                 if (!keys::DecodeEventValue(v, &ev, max_features)) {
                                   corrupt = true;
                                   return false;
                                 }
                                 dim = static_cast<int>(ev.features.size());
                                 return dim == 0;
                               }));
    if (corrupt) return absl::DataLossError("corrupt event");
    st.feature_dim = dim;
    return absl::OkStatus();
  }
};

InteractionStore::InteractionStore(std::unique_ptr<Impl> impl, StoreOptions options)
    : impl_(std::move(impl)), options_(std::move(options)) {}

InteractionStore::~InteractionStore() {
  if (impl_ && impl_->db) {
    if (options_.flush_on_close) {
      rocksdb::FlushOptions fo;
      fo.wait = true;
      rocksdb::Status s = impl_->db->Flush(fo);
      if (!s.ok()) {
        // The log is still there and is replayed at the next open.
        std::fprintf(stderr, "debias store: flush on close failed: %s\n", s.ToString().c_str());
      }
    }
    impl_->db->FlushWAL(/*sync=*/true).PermitUncheckedError();
    impl_->db->Close().PermitUncheckedError();
  }
}

absl::StatusOr<std::unique_ptr<InteractionStore>> InteractionStore::Open(
    const StoreOptions& options) {
  if (options.path.empty()) {
    return absl::InvalidArgumentError("store path: must be non-empty");
  }
  rocksdb::Options ro;
  ro.create_if_missing = options.create_if_missing;
  ro.paranoid_checks = true;
  ro.IncreaseParallelism(2);
  ro.max_background_jobs = 2;
  ro.write_buffer_size = 64 << 20;
  if (options.release_memory_after_flush) {
    ro.listeners.push_back(std::make_shared<ReleaseMemoryAfterFlush>());
  }
  for (auto c : rocksdb::GetSupportedCompressions()) {
    if (c == rocksdb::kLZ4Compression) ro.compression = rocksdb::kLZ4Compression;
  }
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  ro.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  // RocksDB creates the last path component only: `--data_dir ./var/db` on a
  // fresh checkout needs ./var too.
  if (options.create_if_missing) {
    std::error_code ec;
    std::filesystem::create_directories(options.path, ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat("creating the store directory ", options.path,
                                                 ": ", ec.message()));
    }
  }
  // A damaged MANIFEST must stop us before RocksDB deletes what it misses.
  RETURN_IF_ERROR(CheckTableFilesReferenced(options.path, ro));
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(ro, options.path, &raw);
  if (!s.ok()) {
    return FromRocks(s, absl::StrCat("opening the store at ", options.path));
  }
  auto impl = std::make_unique<Impl>();
  impl->db.reset(raw);
  impl->write_options.sync = options.sync;

  // Load the catalog and counters.
  absl::Status decode = absl::OkStatus();
  {
    absl::MutexLock l(&impl->catalog_mu);
    RETURN_IF_ERROR(ScanPrefix(
        impl->db.get(), nullptr, std::string{keys::kCatalog, 'D'},
        [&](std::string_view, std::string_view v) {
          try {
            json j = json::parse(v);
            auto st = std::make_shared<DatasetState>(j.at("id").get<uint32_t>());
            absl::MutexLock sl(&st->mu);
            DatasetInfo& d = st->info;
            d.name = j.at("name").get<std::string>();
            d.description = j.value("description", "");
            d.feedback = j.value("feedback", "");
            d.dedup = j.value("dedup", "");
            st->next_event_seq = j.value("next_event_seq", uint64_t{0});
            d.create_time_unix_ms = j.value("create_time_unix_ms", int64_t{0});
            d.data_version = j.value("data_version", uint64_t{0});
            d.users = j.value("users", uint64_t{0});
            d.items = j.value("items", uint64_t{0});
            d.lists = j.value("lists", uint64_t{0});
            st->feature_dim = j.value("feature_dim", -1);
            impl->datasets[d.name] = st;
            return true;
          } catch (const json::exception& e) {
            decode = absl::DataLossError(
                absl::StrCat("store catalog: corrupt dataset record: ", e.what()));
            return false;
          }
        }));
    RETURN_IF_ERROR(decode);
    for (auto [name, counter] :
         {std::pair<const char*, uint64_t*>{"dataset", &impl->next_dataset_id}}) {
      std::string v;
      rocksdb::Status gs =
          impl->db->Get(rocksdb::ReadOptions(), keys::Counter(name), &v);
      if (gs.ok() && v.size() == 8) {
        util::Reader(v).GetFixed64(counter);
      } else if (!gs.IsNotFound()) {
        return FromRocks(gs.ok() ? rocksdb::Status::Corruption("counter") : gs,
                         "reading counters");
      }
    }
  }
  {
    absl::MutexLock l(&impl->model_mu);
    std::string v;
    rocksdb::Status gs = impl->db->Get(rocksdb::ReadOptions(), keys::Counter("model"), &v);
    if (gs.ok() && v.size() == 8) {
      util::Reader(v).GetFixed64(&impl->next_model_id);
    } else if (!gs.IsNotFound()) {
      return FromRocks(gs.ok() ? rocksdb::Status::Corruption("counter") : gs,
                       "reading counters");
    }
  }
  return std::unique_ptr<InteractionStore>(
      new InteractionStore(std::move(impl), options));
}

absl::StatusOr<DatasetInfo> InteractionStore::CreateDataset(
    const std::string& name, const std::string& description,
    const std::string& feedback, const std::string& dedup) {
  RETURN_IF_ERROR(ValidateDatasetName(name));
  RETURN_IF_ERROR(ValidateFeedback(feedback));
  RETURN_IF_ERROR(ValidateDedup(dedup));
  if (description.size() > 4096) {
    return absl::InvalidArgumentError(absl::StrCat(
        "description: ", description.size(), " bytes; at most 4096 allowed"));
  }
  absl::MutexLock l(&impl_->catalog_mu);
  if (impl_->datasets.count(name)) {
    return absl::AlreadyExistsError(absl::StrCat("dataset '", name, "' already exists"));
  }
  if (impl_->next_dataset_id >= 0xFFFFFFFEull) {
    return absl::ResourceExhaustedError("no dataset ids left");
  }
  const uint32_t id = static_cast<uint32_t>(impl_->next_dataset_id);
  DatasetInfo info;
  info.name = name;
  info.description = description;
  info.feedback = feedback;
  info.dedup = dedup;
  info.create_time_unix_ms = NowMs();
  rocksdb::WriteBatch batch;
  std::string counter;
  util::PutFixed64(&counter, id + 1);
  batch.Put(keys::Counter("dataset"), counter);
  batch.Put(keys::DatasetMeta(name), InfoToJson(id, info, 0, 0).dump());
  RETURN_IF_ERROR(FromRocks(impl_->db->Write(impl_->write_options, &batch),
                            "creating dataset"));
  impl_->next_dataset_id = id + 1;
  auto st = std::make_shared<DatasetState>(id);
  {
    absl::MutexLock sl(&st->mu);
    st->info = info;
    st->maps_loaded = true;  // a new dataset has empty maps
    st->feature_dim = 0;
  }
  impl_->datasets[name] = std::move(st);
  return info;
}

std::vector<DatasetInfo> InteractionStore::ListDatasets() const {
  std::vector<std::shared_ptr<DatasetState>> states;
  {
    absl::MutexLock l(&impl_->catalog_mu);
    for (auto& [_, st] : impl_->datasets) states.push_back(st);
  }
  std::vector<DatasetInfo> out;
  for (auto& st : states) {
    absl::MutexLock sl(&st->mu);
    if (!st->deleted) out.push_back(st->info);
  }
  return out;
}

absl::StatusOr<DatasetInfo> InteractionStore::GetDataset(const std::string& name) const {
  auto st = impl_->Find(name);
  if (st) {
    absl::MutexLock sl(&st->mu);
    if (!st->deleted) return st->info;
  }
  return absl::NotFoundError(absl::StrCat("dataset '", name, "' not found"));
}

absl::StatusOr<uint64_t> InteractionStore::DeleteDataset(const std::string& name) {
  absl::MutexLock l(&impl_->catalog_mu);
  auto it = impl_->datasets.find(name);
  if (it == impl_->datasets.end()) {
    return absl::NotFoundError(absl::StrCat("dataset '", name, "' not found"));
  }
  std::shared_ptr<DatasetState> st = it->second;
  absl::MutexLock sl(&st->mu);
  uint64_t events = 0;
  RETURN_IF_ERROR(ScanPrefix(impl_->db.get(), nullptr,
                             keys::DatasetFamily(st->id, 'E'),
                             [&](std::string_view, std::string_view) {
                               ++events;
                               return true;
                             }));
  rocksdb::WriteBatch batch;
  batch.DeleteRange(keys::DatasetPrefix(st->id), keys::DatasetPrefix(st->id + 1));
  batch.Delete(keys::DatasetMeta(name));
  RETURN_IF_ERROR(FromRocks(impl_->db->Write(impl_->write_options, &batch),
                            "deleting dataset"));
  st->deleted = true;
  st->users.clear();
  st->items.clear();
  st->lists.clear();
  st->view.reset();
  impl_->datasets.erase(it);
  return events;
}

namespace {

// Every event valid (INVALID_ARGUMENT "events[i]...."), and the events that
// carry features all with the same number (the view and every trainer need
// one length): *batch_dim (0: none) and the first event that has it.
absl::Status ValidateBatch(std::span<const data::Interaction> events,
                           const data::InteractionLimits& limits, int* batch_dim,
                           size_t* first_with_features) {
  for (size_t i = 0; i < events.size(); ++i) {
    absl::Status s = data::ValidateInteraction(events[i], limits);
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("events[", i, "].", s.message()));
    }
    const int dim = static_cast<int>(events[i].features.size());
    if (dim == 0) continue;
    if (*batch_dim == 0) {
      *batch_dim = dim;
      *first_with_features = i;
    } else if (dim != *batch_dim) {
      return absl::InvalidArgumentError(absl::StrCat(
          "events[", i, "].features: ", dim, " values, but events[", *first_with_features,
          "] has ", *batch_dim, "; all events of a dataset that carry features must carry "
          "the same number"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<IngestResult> InteractionStore::Ingest(
    const std::string& name, std::span<const data::Interaction> events,
    bool create_if_missing) {
  int batch_dim = 0;
  size_t first_with_features = 0;
  RETURN_IF_ERROR(ValidateBatch(events, options_.limits, &batch_dim, &first_with_features));
  std::shared_ptr<DatasetState> st = impl_->Find(name);
  if (!st) {
    if (!create_if_missing) {
      RETURN_IF_ERROR(ValidateDatasetName(name));
      return absl::NotFoundError(absl::StrCat(
          "dataset '", name, "' not found (set create_if_missing to create it)"));
    }
    absl::StatusOr<DatasetInfo> created = CreateDataset(name, "", "");
    if (!created.ok() && !absl::IsAlreadyExists(created.status())) {
      return created.status();
    }
    st = impl_->Find(name);
    if (!st) return absl::NotFoundError(absl::StrCat("dataset '", name, "' not found"));
  }

  absl::MutexLock sl(&st->mu);
  if (st->deleted) {
    return absl::NotFoundError(absl::StrCat("dataset '", name, "' was deleted"));
  }
  RETURN_IF_ERROR(impl_->LoadMaps(*st));
  if (events.empty()) return IngestResult{0, 0, st->info.data_version};
  // A dataset created as implicit feedback holds clicks (label > 0, or a
  // click rate in (0, 1]) and impressions (label 0): a negative label is
  // not implicit feedback and is refused, never stored as something else.
  if (st->info.feedback == "implicit") {
    for (size_t i = 0; i < events.size(); ++i) {
      if (events[i].label < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "events[", i, "].label=", events[i].label, ": dataset '", name,
            "' is implicit feedback, whose labels are >= 0 (clicks > 0, impressions 0)"));
      }
    }
  }
  if (batch_dim > 0) {
    RETURN_IF_ERROR(impl_->ResolveFeatureDim(*st, options_.limits.max_features));
    if (st->feature_dim > 0 && st->feature_dim != batch_dim) {
      return absl::InvalidArgumentError(absl::StrCat(
          "events[", first_with_features, "].features: ", batch_dim, " values, but dataset '",
          name, "' holds feature vectors of ", st->feature_dim,
          "; all events of a dataset that carry features must carry the same number"));
    }
  }
  const int next_feature_dim = batch_dim > 0 ? batch_dim : st->feature_dim;

  // New ids are added to the in-memory maps tentatively and rolled back if
  // the write fails, so memory never holds an id the database lacks.
  std::vector<std::pair<absl::flat_hash_map<std::string, uint32_t>*, std::string>> added;
  rocksdb::WriteBatch batch;
  auto intern = [&](absl::flat_hash_map<std::string, uint32_t>& map, char fwd,
                    char rev, const std::string& key) -> uint32_t {
    auto [it, inserted] = map.try_emplace(key, static_cast<uint32_t>(map.size()));
    if (inserted) {
      std::string v;
      util::PutFixed32(&v, it->second);
      batch.Put(keys::KeyToId(st->id, fwd, key), v);
      batch.Put(keys::IdToKey(st->id, rev, it->second), key);
      added.emplace_back(&map, key);
    }
    return it->second;
  };

  // Each event's key and value; the keys decide identity (keys.h).
  const std::string event_prefix = keys::DatasetFamily(st->id, 'E');
  const bool natural_key = st->info.dedup == "natural_key";
  uint64_t next_seq = st->next_event_seq;
  std::vector<EventRow> rows(events.size());
  for (size_t k = 0; k < events.size(); ++k) {
    const data::Interaction& e = events[k];
    rows[k].index = k;
    rows[k].user = intern(st->users, 'U', 'u', e.user);
    rows[k].item = intern(st->items, 'I', 'i', e.item);
    const uint32_t l = e.list_id ? intern(st->lists, 'L', 'l', *e.list_id) : data::kNoList;
    rows[k].key = event_prefix;
    const bool sequenced = e.event_id.empty() && !natural_key;
    keys::AppendEventKey(&rows[k].key, rows[k].user, rows[k].item, l, e, natural_key,
                         sequenced ? next_seq++ : 0);
    keys::EncodeEventValue(&rows[k].value, l, e);
  }
  absl::Status resolved = impl_->MarkDuplicates(*st, events, &rows, options_.limits.max_features);
  if (!resolved.ok()) {
    for (auto& [map, k] : added) map->erase(k);
    return resolved;
  }
  IngestResult result;
  for (const EventRow& r : rows) (r.duplicate ? result.events_duplicate : result.events_stored)++;
  result.data_version = st->info.data_version;
  // A batch that adds nothing writes nothing: the data_version (and the
  // models trained on it) stay current.
  if (result.events_stored == 0 && added.empty() && !natural_key) return result;

  // Events are written in key order: RocksDB's memtable inserts sorted keys
  // much faster (bench/ingest measured about a third less CPU per event). The
  // sort is stable, so among natural-key repeats the last one still wins.
  std::stable_sort(rows.begin(), rows.end(),
                   [](const EventRow& a, const EventRow& b) { return a.key < b.key; });
  for (const EventRow& r : rows) {
    if (r.duplicate && !natural_key) continue;
    batch.Put(r.key, r.value);
    const std::string& id = events[r.index].event_id;
    if (!id.empty()) {
      std::string where;
      util::PutBigEndian32(&where, r.user);
      util::PutBigEndian32(&where, r.item);
      batch.Put(keys::EventIdIndexKey(st->id, id), where);
    }
  }
  DatasetInfo next = st->info;
  next.data_version += 1;
  next.users = st->users.size();
  next.items = st->items.size();
  next.lists = st->lists.size();
  batch.Put(keys::DatasetMeta(name),
            InfoToJson(st->id, next, next_feature_dim, next_seq).dump());

  absl::Status written =
      FromRocks(impl_->db->Write(impl_->write_options, &batch), "ingest");
  if (!written.ok()) {
    for (auto& [map, k] : added) map->erase(k);
    return written;
  }
  st->info = next;
  st->feature_dim = next_feature_dim;
  st->next_event_seq = next_seq;
  st->view.reset();
  result.data_version = next.data_version;
  return result;
}

absl::StatusOr<std::shared_ptr<const data::DatasetView>> InteractionStore::LoadView(
    const std::string& name) {
  std::shared_ptr<DatasetState> st = impl_->Find(name);
  if (!st) return absl::NotFoundError(absl::StrCat("dataset '", name, "' not found"));
  const rocksdb::Snapshot* snap;
  uint64_t version;
  DatasetInfo info;
  {
    absl::MutexLock sl(&st->mu);
    if (st->deleted) return absl::NotFoundError(absl::StrCat("dataset '", name, "' not found"));
    if (st->view) return st->view;
    // The snapshot is taken under the dataset lock, so it holds exactly the
    // batches counted by info.data_version.
    snap = impl_->db->GetSnapshot();
    info = st->info;
  }
  version = info.data_version;
  struct Release {
    rocksdb::DB* db;
    const rocksdb::Snapshot* s;
    ~Release() { db->ReleaseSnapshot(s); }
  } release{impl_->db.get(), snap};

  auto load_keys = [&](char family, uint64_t expected,
                       std::vector<std::string>* out) -> absl::Status {
    out->clear();
    out->reserve(expected);
    const std::string prefix = keys::DatasetFamily(st->id, family);
    absl::Status bad = absl::OkStatus();
    RETURN_IF_ERROR(ScanPrefix(impl_->db.get(), snap, prefix,
                               [&](std::string_view k, std::string_view v) {
                                 util::Reader r(k.substr(prefix.size()));
                                 uint32_t id;
                                 if (!r.GetBigEndian32(&id) || id != out->size()) {
                                   bad = absl::DataLossError(absl::StrCat(
                                       "dataset '", name, "': id map has a gap"));
                                   return false;
                                 }
                                 out->emplace_back(v);
                                 return true;
                               }));
    RETURN_IF_ERROR(bad);
    if (out->size() != expected) {
      return absl::DataLossError(absl::StrCat("dataset '", name, "': id map holds ",
                                              out->size(), " keys, metadata says ",
                                              expected));
    }
    return absl::OkStatus();
  };
  std::vector<std::string> user_keys, item_keys, list_keys;
  RETURN_IF_ERROR(load_keys('u', info.users, &user_keys));
  RETURN_IF_ERROR(load_keys('i', info.items, &item_keys));
  RETURN_IF_ERROR(load_keys('l', info.lists, &list_keys));

  data::DatasetViewBuilder builder;
  const std::string prefix = keys::DatasetFamily(st->id, 'E');
  keys::DecodedEvent ev;
  absl::Status bad = absl::OkStatus();
  RETURN_IF_ERROR(ScanPrefix(
      impl_->db.get(), snap, prefix, [&](std::string_view k, std::string_view v) {
        util::Reader r(k.substr(prefix.size()));
        uint32_t u, i;
        if (!r.GetBigEndian32(&u) || !r.GetBigEndian32(&i) ||
            !keys::DecodeEventValue(v, &ev, options_.limits.max_features)) {
          bad = absl::DataLossError(absl::StrCat("dataset '", name, "': corrupt event"));
          return false;
        }
        builder.Add(u, i, ev.label,
                    (ev.flags & keys::kHasTimestamp) ? std::optional<int64_t>(ev.timestamp)
                                                     : std::nullopt,
                    (ev.flags & keys::kHasList) ? ev.list : data::kNoList,
                    (ev.flags & keys::kHasPosition) ? std::optional<int32_t>(ev.position)
                                                    : std::nullopt,
                    (ev.flags & keys::kHasPropensity)
                        ? std::optional<float>(ev.propensity)
                        : std::nullopt,
                    ev.features, ev.event_id);
        return true;
      }));
  RETURN_IF_ERROR(bad);
  ASSIGN_OR_RETURN(data::DatasetView view,
                   builder.Finish(std::move(user_keys), std::move(item_keys),
                                  std::move(list_keys), version));
  auto shared = std::make_shared<const data::DatasetView>(std::move(view));
  absl::MutexLock sl(&st->mu);
  if (!st->deleted && st->info.data_version == version) st->view = shared;
  return shared;
}

absl::StatusOr<uint64_t> InteractionStore::NextModelId() {
  absl::MutexLock l(&impl_->model_mu);
  const uint64_t id = impl_->next_model_id;
  std::string v;
  util::PutFixed64(&v, id + 1);
  RETURN_IF_ERROR(FromRocks(
      impl_->db->Put(impl_->write_options, keys::Counter("model"), v), "model id"));
  impl_->next_model_id = id + 1;
  return id;
}

absl::Status InteractionStore::PutModel(const ModelRecord& record,
                                        const std::string* snapshot) {
  rocksdb::WriteBatch batch;
  batch.Put(keys::ModelKey(record.id, 'R'), RecordToJson(record).dump());
  if (snapshot != nullptr) {
    batch.Put(keys::ModelKey(record.id, 'S'), *snapshot);
    batch.Put(keys::ModelKey(record.id, 'K'),
              EncodeKeys(record.user_keys, record.item_keys));
  }
  return FromRocks(impl_->db->Write(impl_->write_options, &batch), "writing model");
}

absl::StatusOr<ModelRecord> InteractionStore::GetModel(uint64_t id) const {
  std::string v;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), keys::ModelKey(id, 'R'), &v);
  if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat("model ", id, " not found"));
  RETURN_IF_ERROR(FromRocks(s, "reading model"));
  ASSIGN_OR_RETURN(ModelRecord r, RecordFromJson(v));
  std::string k;
  s = impl_->db->Get(rocksdb::ReadOptions(), keys::ModelKey(id, 'K'), &k);
  if (s.ok()) {
    if (!DecodeKeys(k, &r.user_keys, &r.item_keys)) {
      return absl::DataLossError(absl::StrCat("model ", id, ": corrupt key tables"));
    }
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "reading model keys");
  }
  return r;
}

absl::StatusOr<std::string> InteractionStore::GetModelSnapshot(uint64_t id) const {
  std::string v;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), keys::ModelKey(id, 'S'), &v);
  if (s.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("model ", id, " has no parameters"));
  }
  RETURN_IF_ERROR(FromRocks(s, "reading model"));
  return v;
}

std::vector<ModelRecord> InteractionStore::ListModels() const {
  std::vector<ModelRecord> out;
  ScanPrefix(impl_->db.get(), nullptr, std::string(1, keys::kModel),
             [&](std::string_view k, std::string_view v) {
               if (!k.empty() && k.back() == 'R') {
                 auto r = RecordFromJson(v);
                 if (r.ok()) out.push_back(std::move(*r));
               }
               return true;
             })
      .IgnoreError();
  return out;
}

absl::Status InteractionStore::DeleteModel(uint64_t id) {
  std::string v;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), keys::ModelKey(id, 'R'), &v);
  if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat("model ", id, " not found"));
  RETURN_IF_ERROR(FromRocks(s, "reading model"));
  rocksdb::WriteBatch batch;
  for (char w : {'R', 'S', 'K'}) batch.Delete(keys::ModelKey(id, w));
  return FromRocks(impl_->db->Write(impl_->write_options, &batch), "deleting model");
}

absl::StatusOr<uint64_t> InteractionStore::ReserveModelVersion(const std::string& name,
                                                               uint64_t version) {
  RETURN_IF_ERROR(ValidateModelName(name));
  absl::MutexLock l(&impl_->model_mu);
  ModelName entry;
  entry.name = name;
  std::string v;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), keys::ModelNameKey(name), &v);
  if (s.ok()) {
    ASSIGN_OR_RETURN(entry, ModelNameFromJson(v));
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "reading model name");
  }
  const uint64_t reserved = version >= 1 ? version : entry.next_version;
  entry.next_version = std::max(entry.next_version, reserved + 1);
  RETURN_IF_ERROR(FromRocks(impl_->db->Put(impl_->write_options, keys::ModelNameKey(name),
                                           ModelNameToJson(entry).dump()),
                            "model version"));
  return reserved;
}

absl::StatusOr<ModelName> InteractionStore::GetModelName(const std::string& name) const {
  std::string v;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), keys::ModelNameKey(name), &v);
  if (s.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("model name '", name, "' not found"));
  }
  RETURN_IF_ERROR(FromRocks(s, "reading model name"));
  return ModelNameFromJson(v);
}

std::vector<ModelName> InteractionStore::ListModelNames() const {
  std::vector<ModelName> out;
  ScanPrefix(impl_->db.get(), nullptr, std::string{keys::kCatalog, 'M'},
             [&](std::string_view, std::string_view v) {
               auto n = ModelNameFromJson(v);
               if (n.ok()) out.push_back(std::move(*n));
               return true;
             })
      .IgnoreError();
  return out;
}

absl::Status InteractionStore::PutModelLabels(const std::string& name,
                                              const std::map<std::string, uint64_t>& labels) {
  absl::MutexLock l(&impl_->model_mu);
  std::string v;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), keys::ModelNameKey(name), &v);
  if (s.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("model name '", name, "' not found"));
  }
  RETURN_IF_ERROR(FromRocks(s, "reading model name"));
  ASSIGN_OR_RETURN(ModelName entry, ModelNameFromJson(v));
  entry.labels = labels;
  return FromRocks(impl_->db->Put(impl_->write_options, keys::ModelNameKey(name),
                                  ModelNameToJson(entry).dump()),
                   "writing model labels");
}

uint64_t InteractionStore::DiskBytes() const {
  uint64_t sst = 0, wal = 0;
  impl_->db->GetIntProperty("rocksdb.total-sst-files-size", &sst);
  impl_->db->GetIntProperty("rocksdb.cur-size-all-mem-tables", &wal);
  return sst + wal;
}

InteractionStore::MemoryUsage InteractionStore::Memory() const {
  MemoryUsage m;
  impl_->db->GetIntProperty("rocksdb.cur-size-all-mem-tables", &m.memtables);
  impl_->db->GetIntProperty("rocksdb.block-cache-usage", &m.block_cache);
  impl_->db->GetIntProperty("rocksdb.estimate-table-readers-mem", &m.table_readers);
  return m;
}

absl::Status InteractionStore::Checkpoint(const std::string& dir) {
  rocksdb::Checkpoint* cp = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(impl_->db.get(), &cp),
                            "checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> owned(cp);
  return FromRocks(owned->CreateCheckpoint(dir), "checkpoint");
}

std::string EncodeModelRecord(const ModelRecord& record) {
  return RecordToJson(record).dump();
}

absl::StatusOr<ModelRecord> DecodeModelRecord(std::string_view json) {
  return RecordFromJson(json);
}

}  // namespace debias::store
