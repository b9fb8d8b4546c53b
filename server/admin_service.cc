#include "server/admin_service.h"

#include <chrono>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "wire/status.h"
#include "spdlog/spdlog.h"

namespace debias::server {

namespace fs = std::filesystem;

grpc::Status AdminServiceImpl::Backup(grpc::ServerContext* ctx, const v1::BackupRequest* req,
                                      v1::BackupResponse* resp) {
  return Serve(options_, ctx, Role::kAdmin, [&]() -> absl::Status {
    if (options_.backup_dir.empty()) {
      return absl::FailedPreconditionError(
          "backups are off: start debiasd with --backup_dir DIR");
    }
    std::string name = req->name();
    if (name.empty()) {
      name = absl::StrCat(
          "backup-",
          absl::FormatTime("%Y%m%dT%H%M%SZ", absl::Now(), absl::UTCTimeZone()));
    } else if (auto s = store::ValidateDatasetName(name); !s.ok()) {
      // Backup names follow the dataset-name rule: no separators, no "..".
      return absl::InvalidArgumentError(
          absl::StrCat("name='", name.substr(0, 160),
                       "': 1-128 characters of [A-Za-z0-9._-], first a letter "
                       "or digit"));
    }
    std::error_code ec;
    fs::create_directories(options_.backup_dir, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("backup_dir '", options_.backup_dir,
                       "': cannot create: ", ec.message()));
    }
    const fs::path path = fs::path(options_.backup_dir) / name;
    if (fs::exists(path, ec)) {
      return absl::AlreadyExistsError(absl::StrCat(
          "backup '", name, "' already exists in ", options_.backup_dir));
    }
    const auto t0 = std::chrono::steady_clock::now();
    if (auto s = store_->Checkpoint(path.string()); !s.ok()) {
      spdlog::error("backup {} failed: {} (request_id={})", name, s.ToString(),
                    RequestId(ctx));
      return s;
    }
    uint64_t bytes = 0;
    for (const auto& e : fs::recursive_directory_iterator(path, ec)) {
      if (e.is_regular_file(ec)) bytes += e.file_size(ec);
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    resp->set_path(path.string());
    resp->set_bytes(bytes);
    resp->set_seconds(secs);
    spdlog::info("backup {} written: {} bytes in {:.2f}s (request_id={})",
                 path.string(), bytes, secs, RequestId(ctx));
    return absl::OkStatus();
  });
}

}  // namespace debias::server
