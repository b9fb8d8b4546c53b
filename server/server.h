// DebiasServer: assembles debiasd (store, services, health, reflection) and
// owns its lifetime. Used by main.cc and by in-process integration tests.
#ifndef DEBIAS_SERVER_SERVER_H_
#define DEBIAS_SERVER_SERVER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/options.h"

namespace debias::server {

class DebiasServer {
 public:
  // Opens the store and starts serving. FAILED_PRECONDITION when the listen
  // address is unusable; DATA_LOSS when the store is corrupt.
  static absl::StatusOr<std::unique_ptr<DebiasServer>> Start(const ServerOptions& options);
  ~DebiasServer();

  // The bound port (useful with port 0).
  int port() const;
  // The bound port of the metrics endpoint (0 when --metrics_listen is off).
  int metrics_port() const;
  // Re-reads the token file (SIGHUP); keeps the old tokens on error.
  absl::Status ReloadTokens();
  // Blocks until Shutdown() has completed.
  void Wait();
  // Marks health NOT_SERVING, stops accepting calls, lets in-flight calls
  // finish for up to `grace`, cancels the rest, then closes the store.
  // Safe to call from any thread, more than once.
  void Shutdown(absl::Duration grace);

 private:
  struct Impl;
  explicit DebiasServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace debias::server

#endif  // DEBIAS_SERVER_SERVER_H_
