// Integrity checks the store runs before RocksDB opens a database for
// writing. Internal to core/store.
#ifndef DEBIAS_CORE_STORE_INTEGRITY_H_
#define DEBIAS_CORE_STORE_INTEGRITY_H_

#include <string>

#include "absl/status/status.h"
#include "rocksdb/options.h"

namespace debias::store {

// RocksDB opened on a damaged or truncated MANIFEST can come up as an older
// (or empty) version of the database and then delete the table files that
// version does not list: the data would be lost and an empty store served.
// This opens the database read-only (which deletes nothing) and compares the
// table files on disk with the files the MANIFEST lists. DATA_LOSS, naming
// the files, when the MANIFEST lists none while table files exist. Unlisted
// files next to a MANIFEST that lists some are not reported: a crash between
// a compaction's commit and the deletion of its inputs leaves older ones, an
// interrupted flush or compaction newer ones, and RocksDB deletes both (the
// crash test hit the first case: a store refused after a clean crash). OK
// for a directory without a database. Errors of the read-only open are
// returned as they are (DATA_LOSS for corruption).
absl::Status CheckTableFilesReferenced(const std::string& path, const rocksdb::Options& options);

}  // namespace debias::store

#endif  // DEBIAS_CORE_STORE_INTEGRITY_H_
