// debiasd: the debias server. Flags fill ServerOptions; SIGTERM/SIGINT shut
// down cleanly (in-flight calls finish, the store is closed).
#include <signal.h>

#include <cstdio>
#include <thread>

#include "CLI/CLI.hpp"
#include "server/server.h"
#include "spdlog/spdlog.h"

#ifndef DEBIAS_VERSION
#define DEBIAS_VERSION "dev"
#endif

int main(int argc, char** argv) {
  debias::server::ServerOptions options;
  CLI::App app{"debiasd: debiasing service for implicit feedback (gRPC)"};
  app.set_version_flag("--version", std::string("debiasd ") + DEBIAS_VERSION);
  app.add_option("--listen", options.listen, "host:port to listen on (port 0: any free)")
      ->capture_default_str();
  app.add_option("--data_dir", options.data_dir, "RocksDB directory")->capture_default_str();
  app.add_flag("--sync", options.sync, "fsync every ingest batch and model write");
  app.add_flag("--reflection", options.reflection, "serve gRPC server reflection");
  app.add_option("--max_message_bytes", options.limits.max_message_bytes,
                 "largest request/response message")
      ->check(CLI::Range(1 << 16, 1 << 30))
      ->capture_default_str();
  app.add_option("--max_training_jobs", options.limits.max_training_jobs,
                 "concurrent training jobs")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--max_candidates", options.limits.max_candidates,
                 "items per Score request")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--max_k", options.limits.max_k, "largest TopK k")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--max_in_flight", options.limits.max_in_flight,
                 "calls handled at once (streams included, health excluded); past it "
                 "RESOURCE_EXHAUSTED")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--max_bootstrap", options.limits.max_bootstrap,
                 "largest Evaluate bootstrap resample count")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  app.add_option("--auth_tokens", options.auth_tokens,
                 "token file: lines 'ROLE TOKEN' (reader|writer|admin); re-read on SIGHUP; "
                 "without it every local call is accepted (development mode)");
  app.add_option("--tls_cert", options.tls_cert, "PEM certificate chain of the server");
  app.add_option("--tls_key", options.tls_key, "PEM private key of the server");
  app.add_option("--tls_client_ca", options.tls_client_ca,
                 "PEM CA; clients must present a certificate it signed (mutual TLS)");
  app.add_flag("--allow_insecure", options.allow_insecure,
               "allow plaintext on a non-loopback --listen address");
  std::string log_level = "info";
  app.add_option("--log_level", log_level, "trace|debug|info|warn|error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  std::string port_file;
  app.add_option("--port_file", port_file,
                 "write the bound port to this file once serving (for tests/scripts)");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));

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
