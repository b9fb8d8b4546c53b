// debiasd: the debias server. The config file and flags (server/flags.h)
// fill ServerOptions; SIGTERM/SIGINT shut
// down cleanly (in-flight calls finish, the store is closed).
#include <malloc.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "server/flags.h"
#include "server/server.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  // Debian's Abseil is built with absl::Mutex deadlock detection on, and
  // gRPC's core locks are absl::Mutex: every lock acquisition updated a
  // global lock graph (about 9% of the server's CPU under Score load,
  // docs/BENCHMARKS.md). The tests keep it on; the binaries turn it off.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // glibc gives threads that contend in malloc arenas of their own (up to 8
  // per core) and keeps freed memory in each. With debiasd's 40-45 threads,
  // RSS net of the memtables grew by about 90 MB over a 10-minute mixed
  // soak; with one arena per core it stayed flat and the peak RSS fell by
  // about 45% (docs/BENCHMARKS.md, soak). An operator's MALLOC_ARENA_MAX
  // wins; this runs before any thread exists.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) {
    mallopt(M_ARENA_MAX, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  }
  debias::server::ServerOptions options;
  debias::server::ProcessOptions process;
  if (int code = debias::server::ParseServerCommandLine(argc, argv, &options, &process);
      code >= 0) {
    return code;
  }
  spdlog::set_level(spdlog::level::from_str(process.log_level));
  const std::string& port_file = process.port_file;

  // Block the shutdown signals in every thread; one thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = debias::server::DebiasServer::Start(options);
  if (!server.ok()) {
    spdlog::error("debiasd cannot start: {}", server.status().ToString());
    return 1;
  }
  if (!port_file.empty()) {
    const std::string tmp = port_file + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      std::fprintf(f, "%d\n", (*server)->port());
      std::fclose(f);
      std::rename(tmp.c_str(), port_file.c_str());
    }
  }
  std::thread waiter([&] {
    int sig = 0;
    while (true) {
      sigwait(&signals, &sig);
      if (sig != SIGHUP) break;
      absl::Status s = (*server)->ReloadTokens();
      if (s.ok()) {
        spdlog::info("SIGHUP: token file reloaded");
      } else {
        spdlog::error("SIGHUP: token file not reloaded, keeping the old tokens: {}",
                      s.ToString());
      }
    }
    spdlog::info("received signal {}", sig);
    (*server)->Shutdown(absl::Seconds(10));
  });
  (*server)->Wait();
  waiter.join();
  server->reset();
  return 0;
}
