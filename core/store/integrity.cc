#include "core/store/integrity.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <set>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "rocksdb/db.h"
#include "rocksdb/metadata.h"

namespace debias::store {

namespace fs = std::filesystem;

namespace {

// "000012.sst" -> 12; -1 for any other name.
int64_t TableNumber(const std::string& name) {
  constexpr std::string_view kSuffix = ".sst";
  if (name.size() <= kSuffix.size() ||
      name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return -1;
  }
  int64_t n = 0;
  for (size_t i = 0; i + kSuffix.size() < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || n > (INT64_MAX - 9) / 10) return -1;
    n = n * 10 + (name[i] - '0');
  }
  return n;
}

}  // namespace

absl::Status CheckTableFilesReferenced(const std::string& path,
                                       const rocksdb::Options& options) {
  std::error_code ec;
  if (!fs::exists(fs::path(path) / "CURRENT", ec)) return absl::OkStatus();  // no database
  std::set<int64_t> on_disk;
  for (const auto& e : fs::directory_iterator(path, ec)) {
    const int64_t n = TableNumber(e.path().filename().string());
    if (n >= 0) on_disk.insert(n);
  }
  if (on_disk.empty()) return absl::OkStatus();

  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(options, path, &raw);
  if (!s.ok()) {
    const std::string msg = absl::StrCat("opening the store at ", path, ": ", s.ToString());
    return s.IsCorruption() ? absl::DataLossError(msg) : absl::UnavailableError(msg);
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  std::vector<rocksdb::LiveFileMetaData> live;
  db->GetLiveFilesMetaData(&live);
  std::set<int64_t> listed;
  for (const auto& f : live) {
    const int64_t n = TableNumber(fs::path(f.name).filename().string());
    if (n >= 0) listed.insert(n);
  }
  // Unlisted table files next to a MANIFEST that lists some are what a
  // crash leaves behind and RocksDB deletes at open: inputs of a compaction
  // or flush whose edit was committed just before the crash (older than the
  // newest listed file), or outputs of one that was not (newer). A truncated
  // MANIFEST drops edits from its end and cannot produce the first kind; the
  // state that loses data is a MANIFEST that lists nothing while tables
  // exist (RocksDB then opens an empty database and deletes them all).
  if (!listed.empty()) return absl::OkStatus();
  std::vector<std::string> missing;
  for (int64_t n : on_disk) missing.push_back(absl::StrCat(n));
  const size_t shown = std::min<size_t>(missing.size(), 5);
  return absl::DataLossError(absl::StrCat(
      "opening the store at ", path, ": its MANIFEST lists ", listed.size(),
      " table files but ", missing.size(), " other table files are in the directory (",
      absl::StrJoin(missing.begin(), missing.begin() + shown, ", "),
      missing.size() > shown ? ", ..." : "",
      "): the MANIFEST is damaged or truncated. Refusing to open, which would delete "
      "them; restore from a backup (docs/OPERATIONS.md)"));
}

}  // namespace debias::store
