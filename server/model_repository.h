// ModelRepository: feeds a server's models from a snapshot repository, the
// file-system source of a scoring replica (TF Serving's file system source,
// Triton's model control POLL).
//
// Layout of the directory:
//   NAME/VERSION/model.pb   a ModelSnapshotFile (what `debiasctl model export`
//                           writes), NAME as ModelRef names, VERSION >= 1
//   NAME/labels             optional; "LABEL VERSION" lines
// Writers put a file under a temporary name and rename it (`debiasctl model
// publish` does), so a reader sees a whole file or none. Other files are
// ignored.
//
// Each scan: imports versions it has not imported yet as NAME/VERSION
// (checked: format, sizes, CRC-32C, decodable parameters), warms each one up
// (ModelManager::WarmUp: loaded and one score answered) before it becomes
// servable, then applies the labels file (a label that points at a version
// not servable yet stays where it was until a later scan), and deletes the
// versions it imported whose file has gone. A corrupt, truncated or
// half-written file is never served: it is logged with the file and the
// reason, counted (rejected()), and retried only when its size or time
// changes; the versions already served keep serving. A repository directory
// that cannot be read leaves everything as it is.
//
// Readiness: ready() turns true once every NAME present at the first scan
// has a servable version, and stays true while any repository version is
// servable (false again only if the replica has nothing left to serve).
// Thread safety: Scan() runs on the poller thread (or the caller's, in
// tests); the accessors may be called from any thread.
#ifndef DEBIAS_SERVER_MODEL_REPOSITORY_H_
#define DEBIAS_SERVER_MODEL_REPOSITORY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/model_manager.h"

namespace debias::server {

class ModelRepository {
 public:
  struct Options {
    std::string dir;
    absl::Duration poll = absl::Seconds(5);
    // Called after each scan with ready() (the server's health status).
    std::function<void(bool ready)> on_ready;
  };
  ModelRepository(ModelManager* models, Options options);
  // Stops the poller thread.
  ~ModelRepository();

  // One pass over the repository (see the file comment).
  void Scan();
  // Scans now, then every Options::poll on a thread of its own.
  void Start();

  bool ready() const { return ready_.load(); }
  // Files refused since the start (corrupt, truncated, undecodable, a
  // version taken by another model), versions imported and unloaded.
  uint64_t rejected() const { return rejected_.load(); }
  uint64_t imported() const { return imported_.load(); }
  uint64_t unloaded() const { return unloaded_.load(); }
  // Versions from the repository servable now.
  size_t serving() const;

 private:
  struct FileStamp {
    uintmax_t size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const FileStamp&) const = default;
  };
  using Key = std::pair<std::string, uint64_t>;  // name, version
  // Imports, verifies and warms one file; the model id it serves as.
  absl::StatusOr<uint64_t> Load(const std::string& path, const Key& key);
  void ApplyLabels(const std::string& name, const std::string& path);

  ModelManager* models_;
  Options options_;
  std::atomic<bool> ready_{false};
  std::atomic<uint64_t> rejected_{0}, imported_{0}, unloaded_{0};
  bool first_scan_done_ = false;           // poller thread only
  std::set<std::string> names_at_start_;   // poller thread only
  std::map<Key, FileStamp> bad_;           // poller thread only: refused files
  mutable absl::Mutex mu_;
  std::map<Key, uint64_t> loaded_ ABSL_GUARDED_BY(mu_);  // -> model id
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace debias::server

#endif  // DEBIAS_SERVER_MODEL_REPOSITORY_H_
