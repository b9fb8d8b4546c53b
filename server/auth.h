// Bearer-token authentication and role-based authorisation for debiasd.
//
// Tokens come from a file (`debiasd --auth_tokens FILE`): one `ROLE TOKEN`
// per line, ROLE in {reader, writer, admin}, `#` starts a comment, blank lines
// are ignored. Roles nest: writer can do what reader can, admin what writer
// can. Clients send `authorization: Bearer TOKEN` metadata.
//   reader: score, top-k, propensities, evaluate, list/get/stats, methods
//   writer: also ingest, create dataset, export, train, cancel, sample
//   admin:  also delete datasets and models, backup
// A missing or unknown token is UNAUTHENTICATED, a known token with too small
// a role PERMISSION_DENIED. Tokens are compared in constant time (every
// configured token is compared in full, whatever matches) and never logged.
// Thread safety: Check() may run on any number of threads while Reload()
// swaps the table (SIGHUP).
#ifndef DEBIAS_SERVER_AUTH_H_
#define DEBIAS_SERVER_AUTH_H_

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "wire/status.h"

namespace debias::server {

enum class Role { kReader = 0, kWriter = 1, kAdmin = 2 };
std::string_view RoleName(Role r);

class Authenticator {
 public:
  // Reads the token file. INVALID_ARGUMENT naming the line for a bad line,
  // NOT_FOUND when the file cannot be read, FAILED_PRECONDITION when it
  // holds no token.
  static absl::StatusOr<std::unique_ptr<Authenticator>> FromFile(const std::string& path);
  // Parses file contents (tests).
  static absl::StatusOr<std::unique_ptr<Authenticator>> FromString(std::string_view text,
                                                                   std::string path = "");

  // Re-reads the file; on error keeps the current tokens and returns the error.
  absl::Status Reload();
  // OK when the call's metadata carries a token whose role is at least `need`.
  grpc::Status Check(const grpc::ServerContext& ctx, Role need) const;
  // Same, from the raw metadata value ("Bearer TOKEN"); for tests.
  grpc::Status CheckHeader(std::string_view authorization, Role need) const;
  size_t size() const;

 private:
  struct Entry {
    Role role;
    std::string token;
  };
  static absl::StatusOr<std::vector<Entry>> Parse(std::string_view text);
  explicit Authenticator(std::string path) : path_(std::move(path)) {}

  std::string path_;
  mutable absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
};

// The check every handler runs first: OK when `auth` is null (development
// mode: no --auth_tokens), else auth->Check(ctx, need).
grpc::Status Authorize(const Authenticator* auth, const grpc::ServerContext* ctx, Role need);

// Bounds the calls being handled at once (streams count for their whole
// life). The health service is not counted, so probes answer under load.
class InFlight {
 public:
  explicit InFlight(int max) : max_(max) {}
  // A slot for the duration of one call; ok() is false past the limit.
  class Slot {
   public:
    Slot(Slot&& o) noexcept : owner_(o.owner_) { o.owner_ = nullptr; }
    Slot& operator=(Slot&&) = delete;
    ~Slot() {
      if (owner_) owner_->count_.fetch_sub(1, std::memory_order_relaxed);
    }
    bool ok() const { return owner_ != nullptr; }
    static Slot None() { return Slot(nullptr); }

   private:
    friend class InFlight;
    explicit Slot(InFlight* owner) : owner_(owner) {}
    InFlight* owner_;
  };
  Slot Acquire() {
    if (count_.fetch_add(1, std::memory_order_relaxed) >= max_) {
      count_.fetch_sub(1, std::memory_order_relaxed);
      return Slot(nullptr);
    }
    return Slot(this);
  }
  int max() const { return max_; }
  int current() const { return count_.load(std::memory_order_relaxed); }

 private:
  const int max_;
  std::atomic<int> count_{0};
};

// What a handler holds while it runs: its in-flight slot, or the status to
// return (RESOURCE_EXHAUSTED naming max_in_flight, or the auth failure).
struct Admission {
  grpc::Status status;
  InFlight::Slot slot;
  bool ok() const { return status.ok(); }
};
Admission Admit(InFlight* in_flight, const Authenticator* auth, const grpc::ServerContext* ctx,
                Role need);

// The one opening of every handler: admits the call (an in-flight slot and a
// token with role `need`), runs `handler` (returning absl::Status), holds the
// slot until it returns, and maps its status through ToGrpcStatus, the one
// mapping (wire/status.h).
//   return Serve(options_, ctx, Role::kReader, [&]() -> absl::Status { ... });
template <typename Options, typename Handler>
grpc::Status Serve(const Options& options, const grpc::ServerContext* ctx, Role need,
                   Handler&& handler) {
  Admission admission = Admit(options.in_flight.get(), options.authenticator.get(), ctx, need);
  if (!admission.ok()) return admission.status;
  return ToGrpcStatus(handler());
}

}  // namespace debias::server

#endif  // DEBIAS_SERVER_AUTH_H_
