// InteractionStore: the persistent home of datasets and models, on RocksDB.
//
// This is the only code in debias that includes RocksDB. It keeps:
//  - datasets: named collections of interactions, with per-dataset dense
//    32-bit ids for user, item and list keys, stable across restarts;
//  - models: versioned records (spec, state, metrics, diagnostics) and their
//    parameter snapshots.
//
// Durability: Ingest() returns only after its batch is in RocksDB's
// write-ahead log (and fsynced when Options::sync). A batch (events, new id
// mappings and the dataset's counters) is one atomic WriteBatch: after a
// crash either all of it or none of it is present.
//
// Identity of events: an event's event_id, when set, is its idempotency key
// in the dataset. Re-sending an event with a stored id and the same content
// is a no-op (counted as a duplicate); the same id with other content
// (another user, item, label, ...) is refused and nothing of the batch is
// written. An event without an id is always stored as a new event (the store
// assigns it a sequence number), unless the dataset was created with
// dedup = "natural_key": then (user, item, timestamp, list, position) is its
// key and a re-sent event replaces the stored one.
//
// Thread safety: all methods are safe to call concurrently. Ingests into the
// same dataset are serialised; different datasets ingest in parallel.
#ifndef DEBIAS_CORE_STORE_INTERACTION_STORE_H_
#define DEBIAS_CORE_STORE_INTERACTION_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/data/dataset_view.h"
#include "core/data/interaction.h"
#include "nlohmann/json.hpp"

namespace debias::store {

struct StoreOptions {
  std::string path;            // database directory
  bool create_if_missing = true;
  bool sync = false;           // fsync every ingest batch and model write
  size_t block_cache_bytes = 64 << 20;
  // Return freed heap to the OS after each memtable flush (util/memory.h):
  // a flushed 64 MB memtable is otherwise kept resident by malloc.
  bool release_memory_after_flush = true;
  // Flush the memtables to table files when the store is closed, so the next
  // open has no write-ahead log to replay (a restart after 100 MB of writes
  // took 17 s without it). A crash skips this, and the log is replayed.
  bool flush_on_close = true;
  data::InteractionLimits limits;
};

struct DatasetInfo {
  std::string name;
  std::string description;
  std::string feedback;  // "", "explicit", "implicit", "clicklog"
  // How events without an event_id are identified: "" (each is a new
  // event) or "natural_key" (user, item, timestamp, list, position).
  std::string dedup;
  int64_t create_time_unix_ms = 0;
  uint64_t data_version = 0;
  uint64_t users = 0;  // distinct user keys ever ingested
  uint64_t items = 0;
  uint64_t lists = 0;
};

struct IngestResult {
  // Events of the batch stored as new events (or, under natural_key dedup,
  // replacing a stored one: those count as duplicates, not here).
  uint64_t events_stored = 0;
  // Events of the batch that added nothing: an event id already stored (or
  // earlier in the batch) with the same content, or a natural-key repeat.
  uint64_t events_duplicate = 0;
  uint64_t data_version = 0;
};

// Lifecycle state of a model record.
enum class ModelState { kTraining, kReady, kFailed, kCancelled };
std::string_view ModelStateName(ModelState s);

struct ModelRecord {
  uint64_t id = 0;
  // The model's name (ValidateModelName) and its version under that name
  // (>= 1); "" and 0 for a model trained without a name.
  std::string name;
  uint64_t version = 0;
  std::string dataset;
  uint64_t data_version = 0;
  ModelState state = ModelState::kTraining;
  nlohmann::json spec = nlohmann::json::object();  // loss, estimator, params, seed
  nlohmann::json metrics = nlohmann::json::object();
  nlohmann::json diagnostics = nlohmann::json::object();
  nlohmann::json progress = nlohmann::json::array();  // per-epoch curve
  std::string error;  // for kFailed / kCancelled: the status message
  // The status code of that error (absl::StatusCode as an int; 0 = none
  // recorded, e.g. a record written before codes were stored). Callers read
  // the code, never parse `error`.
  int error_code = 0;
  int64_t create_time_unix_ms = 0;
  int64_t finish_time_unix_ms = 0;
  // Key tables of the training data, so scoring can map client keys to the
  // model's ids without the dataset (which may change or be deleted).
  std::vector<std::string> user_keys;
  std::vector<std::string> item_keys;
};

// The catalog entry of a model name: the next version it hands out (never
// reused, even after a delete) and its labels (label -> version).
struct ModelName {
  std::string name;
  uint64_t next_version = 1;
  std::map<std::string, uint64_t> labels;
};

class InteractionStore {
 public:
  // Opens (or creates) the database. DATA_LOSS with RocksDB's message when
  // the files are corrupt or truncated; the caller must not serve then.
  static absl::StatusOr<std::unique_ptr<InteractionStore>> Open(
      const StoreOptions& options);
  ~InteractionStore();
  InteractionStore(const InteractionStore&) = delete;
  InteractionStore& operator=(const InteractionStore&) = delete;

  // --- Datasets -----------------------------------------------------------
  // INVALID_ARGUMENT for a bad name/feedback/dedup, ALREADY_EXISTS if
  // taken. `dedup` is "" or "natural_key" (see the header comment).
  absl::StatusOr<DatasetInfo> CreateDataset(const std::string& name,
                                            const std::string& description,
                                            const std::string& feedback,
                                            const std::string& dedup = "");
  std::vector<DatasetInfo> ListDatasets() const;
  absl::StatusOr<DatasetInfo> GetDataset(const std::string& name) const;
  // Removes every event, id map and the metadata of the dataset. Returns the
  // number of events it held. NOT_FOUND if absent.
  absl::StatusOr<uint64_t> DeleteDataset(const std::string& name);

  // Validates every event (INVALID_ARGUMENT "events[i]: ..." and nothing is
  // written), then writes the batch atomically. NOT_FOUND for a missing
  // dataset unless create_if_missing. An event id repeated in the batch with
  // other content is INVALID_ARGUMENT; an event id stored with other content
  // is ALREADY_EXISTS naming the field that differs; in both cases nothing
  // is written. A batch of duplicates only writes nothing and leaves the
  // data_version as it was.
  absl::StatusOr<IngestResult> Ingest(const std::string& name,
                                      std::span<const data::Interaction> events,
                                      bool create_if_missing = false);

  // A consistent snapshot view of the dataset (cached until the next
  // ingest). NOT_FOUND if absent.
  absl::StatusOr<std::shared_ptr<const data::DatasetView>> LoadView(
      const std::string& name);

  // --- Models -------------------------------------------------------------
  // Allocates a new, never reused model id.
  absl::StatusOr<uint64_t> NextModelId();
  // Writes the record and, when `snapshot` is non-null, the parameters, in
  // one atomic batch.
  absl::Status PutModel(const ModelRecord& record, const std::string* snapshot);
  absl::StatusOr<ModelRecord> GetModel(uint64_t id) const;
  absl::StatusOr<std::string> GetModelSnapshot(uint64_t id) const;
  std::vector<ModelRecord> ListModels() const;
  absl::Status DeleteModel(uint64_t id);

  // --- Model names ----------------------------------------------------------
  // Reserves a version of `name` (creating the name's entry): `version` when
  // it is >= 1, else the name's next version. The next version becomes
  // max(next, reserved + 1), so versions handed out later are higher.
  absl::StatusOr<uint64_t> ReserveModelVersion(const std::string& name, uint64_t version);
  // NOT_FOUND for a name that never had a version.
  absl::StatusOr<ModelName> GetModelName(const std::string& name) const;
  std::vector<ModelName> ListModelNames() const;
  // Replaces the labels of an existing name atomically (one write).
  absl::Status PutModelLabels(const std::string& name,
                              const std::map<std::string, uint64_t>& labels);

  // --- Operations ---------------------------------------------------------
  // Approximate bytes on disk (SST + WAL).
  uint64_t DiskBytes() const;
  // Memory RocksDB holds for the store: memtables (active and immutable,
  // up to 2 x 64 MB under ingest), the block cache (up to
  // StoreOptions::block_cache_bytes) and the index/filter blocks of open
  // table files.
  struct MemoryUsage {
    uint64_t memtables = 0;
    uint64_t block_cache = 0;
    uint64_t table_readers = 0;
  };
  MemoryUsage Memory() const;
  // Writes a consistent checkpoint of the whole database into `dir` (which
  // must not exist).
  absl::Status Checkpoint(const std::string& dir);

  const StoreOptions& options() const { return options_; }

 private:
  struct Impl;
  explicit InteractionStore(std::unique_ptr<Impl> impl, StoreOptions options);
  std::unique_ptr<Impl> impl_;
  StoreOptions options_;
};

// The store's own JSON encoding of a model record, key tables excluded
// (model snapshots carry it between servers). Decode: DATA_LOSS naming the
// field for anything malformed.
std::string EncodeModelRecord(const ModelRecord& record);
absl::StatusOr<ModelRecord> DecodeModelRecord(std::string_view json);

// Model names and labels: 1-63 characters of [a-z0-9._-], first a letter
// or digit. INVALID_ARGUMENT naming `field` otherwise.
absl::Status ValidateModelName(const std::string& name, std::string_view field = "name");

// Dataset names: 1-128 characters of [A-Za-z0-9._-], first a letter or digit.
absl::Status ValidateDatasetName(const std::string& name);

}  // namespace debias::store

#endif  // DEBIAS_CORE_STORE_INTERACTION_STORE_H_
