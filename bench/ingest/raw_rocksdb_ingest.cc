// raw_rocksdb_ingest: the RocksDB floor for the ingest benchmark.
//
// Reads a CSV with the same loader as `debiasctl ingest` (core/data/loaders.h)
// and writes the same records straight into a fresh RocksDB: the event keys
// and values of core/store/keys.h under dataset id 1 (the id the store gives
// the first dataset), plus the forward and reverse id-map entries for every
// new user and item, in WriteBatches of --batch-size events (debiasctl's
// default, 8192), with the store's Options (InteractionStore::Open) and its
// WriteOptions (WAL on, sync off unless --sync).
//
// What it leaves out compared with the service is exactly the service's own
// cost: gRPC, protobuf encode/decode, per-event validation and the per-batch
// dataset metadata record (one small JSON value per batch).
//
// Timing covers the write loop only (interning, encoding, db->Write for every
// batch), like debiasctl's "seconds", which starts after the file is parsed
// and ends when the server has acknowledged the last batch. Opening and
// closing the database are outside the timed span on both sides.
//
// Output (stdout, one line): {"events":N,"seconds":S,"events_per_second":R}
// plus, for reference, "cpu_seconds" (process CPU over the timed span, all
// threads), "load_seconds"/"load_cpu_seconds" (CSV parsing: wall and CPU),
// "db_open_seconds" and "close_seconds".
//
// Usage: raw_rocksdb_ingest --csv FILE --db DIR [--batch-size N] [--sync]
//                           [--sort-batch]
// --sort-batch is an experiment, not the baseline: it sorts each batch's
// records by key (stable, so in-batch duplicates still keep the last one)
// before putting them, to measure how much RocksDB's memtable insert gains
// from key-ordered batches (see docs/BENCHMARKS.md, "Ingest").
// DIR must not exist (the benchmark wants a fresh database every run).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/data/dataset_view.h"
#include "core/data/loaders.h"
#include "core/store/keys.h"
#include "core/util/coding.h"
#include "nlohmann/json.hpp"
#include "rocksdb/convenience.h"
#include "rocksdb/db.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace keys = debias::store::keys;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// User + system CPU seconds of the whole process (all threads, including
// RocksDB's flush and compaction threads).
double CpuSeconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& t) { return t.tv_sec + t.tv_usec * 1e-6; };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

int Usage(const char* msg) {
  std::fprintf(stderr,
               "raw_rocksdb_ingest: %s\n"
               "usage: raw_rocksdb_ingest --csv FILE --db DIR [--batch-size N] [--sync] "
               "[--sort-batch]\n",
               msg);
  return 2;
}

// The Options of InteractionStore::Open (core/store/interaction_store.cc),
// copied so that both sides of the benchmark run the same engine settings.
rocksdb::Options StoreLikeOptions() {
  rocksdb::Options ro;
  ro.create_if_missing = true;
  ro.paranoid_checks = true;
  ro.IncreaseParallelism(2);
  ro.max_background_jobs = 2;
  ro.write_buffer_size = 64 << 20;
  for (auto c : rocksdb::GetSupportedCompressions()) {
    if (c == rocksdb::kLZ4Compression) ro.compression = rocksdb::kLZ4Compression;
  }
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(64 << 20);  // StoreOptions default
  ro.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return ro;
}

}  // namespace

int main(int argc, char** argv) {
  std::string csv, db_dir;
  size_t batch_size = 8192;
  bool sync = false;
  bool sort_batch = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (a == "--csv") {
      const char* v = next();
      if (!v) return Usage("--csv: missing value");
      csv = v;
    } else if (a == "--db") {
      const char* v = next();
      if (!v) return Usage("--db: missing value");
      db_dir = v;
    } else if (a == "--batch-size") {
      const char* v = next();
      if (!v) return Usage("--batch-size: missing value");
      const long n = std::strtol(v, nullptr, 10);
      if (n < 1 || n > 100000) return Usage("--batch-size: must be in [1, 100000]");
      batch_size = static_cast<size_t>(n);
    } else if (a == "--sync") {
      sync = true;
    } else if (a == "--sort-batch") {
      sort_batch = true;
    } else {
      return Usage(("unknown argument '" + std::string(a) + "'").c_str());
    }
  }
  if (csv.empty() || db_dir.empty()) return Usage("--csv and --db are required");
  if (std::filesystem::exists(db_dir)) {
    return Usage(("--db " + db_dir + ": must not exist (a fresh database)").c_str());
  }

  // Parse outside the timed span, as debiasctl does.
  const auto t_load = Clock::now();
  const double cpu_load0 = CpuSeconds();
  auto loaded = debias::data::LoadFile(csv, debias::data::Format::kCsv, {});
  if (!loaded.ok()) {
    std::fprintf(stderr, "raw_rocksdb_ingest: %s\n", loaded.status().ToString().c_str());
    return 1;
  }
  const double load_secs = Since(t_load);
  const double load_cpu = CpuSeconds() - cpu_load0;
  const auto& events = loaded->events;

  const auto t_open = Clock::now();
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(StoreLikeOptions(), db_dir, &raw);
  if (!s.ok()) {
    std::fprintf(stderr, "raw_rocksdb_ingest: open %s: %s\n", db_dir.c_str(),
                 s.ToString().c_str());
    return 1;
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  const double open_secs = Since(t_open);
  rocksdb::WriteOptions wo;
  wo.sync = sync;

  constexpr uint32_t kDataset = 1;
  absl::flat_hash_map<std::string, uint32_t> users, items, lists;
  rocksdb::WriteBatch batch;
  std::vector<std::pair<std::string, std::string>> pending;  // --sort-batch
  auto put = [&](std::string k, std::string_view v) {
    if (sort_batch) {
      pending.emplace_back(std::move(k), std::string(v));
    } else {
      batch.Put(k, rocksdb::Slice(v.data(), v.size()));
    }
  };
  auto intern = [&](absl::flat_hash_map<std::string, uint32_t>& map, char fwd, char rev,
                    const std::string& key) -> uint32_t {
    auto [it, inserted] = map.try_emplace(key, static_cast<uint32_t>(map.size()));
    if (inserted) {
      std::string v;
      debias::util::PutFixed32(&v, it->second);
      put(keys::KeyToId(kDataset, fwd, key), v);
      put(keys::IdToKey(kDataset, rev, it->second), key);
    }
    return it->second;
  };

  const std::string event_prefix = keys::DatasetFamily(kDataset, 'E');
  std::string key, value;
  const auto t0 = Clock::now();
  const double cpu0 = CpuSeconds();
  for (size_t off = 0; off < events.size(); off += batch_size) {
    const size_t end = std::min(events.size(), off + batch_size);
    batch.Clear();
    pending.clear();
    for (size_t k = off; k < end; ++k) {
      const debias::data::Interaction& e = events[k];
      const uint32_t u = intern(users, 'U', 'u', e.user);
      const uint32_t i = intern(items, 'I', 'i', e.item);
      const uint32_t l =
          e.list_id ? intern(lists, 'L', 'l', *e.list_id) : debias::data::kNoList;
      key = event_prefix;
      keys::AppendEventKey(&key, u, i, l, e, /*natural_key=*/false, k);
      value.clear();
      keys::EncodeEventValue(&value, l, e);
      put(key, value);
    }
    if (sort_batch) {
      std::stable_sort(pending.begin(), pending.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      for (const auto& [k, v] : pending) batch.Put(k, v);
    }
    s = db->Write(wo, &batch);
    if (!s.ok()) {
      std::fprintf(stderr, "raw_rocksdb_ingest: write: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  const double secs = Since(t0);
  const double cpu = CpuSeconds() - cpu0;

  // The server's destructor does the same (FlushWAL(sync) + Close); it is not
  // part of debiasctl's span either.
  const auto t_close = Clock::now();
  db->FlushWAL(/*sync=*/true).PermitUncheckedError();
  db->Close().PermitUncheckedError();
  db.reset();
  const double close_secs = Since(t_close);

  nlohmann::json j{{"events", events.size()},
                   {"seconds", secs},
                   {"events_per_second", secs > 0 ? events.size() / secs : 0.0},
                   {"users", users.size()},
                   {"items", items.size()},
                   {"batch_size", batch_size},
                   {"sync", sync},
                   {"sort_batch", sort_batch},
                   {"cpu_seconds", cpu},
                   {"load_seconds", load_secs},
                   {"load_cpu_seconds", load_cpu},
                   {"db_open_seconds", open_secs},
                   {"close_seconds", close_secs}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}
