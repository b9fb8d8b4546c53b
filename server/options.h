// ServerOptions: everything debiasd can be told, with defaults. Flags (and
// the config file) are parsed only in main.cc, which fills this struct.
#ifndef DEBIAS_SERVER_OPTIONS_H_
#define DEBIAS_SERVER_OPTIONS_H_

#include <cstdint>
#include <memory>
#include <string>

namespace debias::server {

class Authenticator;
class InFlight;
class Metrics;

// Limits enforced by the handlers; past one the answer is INVALID_ARGUMENT
// or RESOURCE_EXHAUSTED naming the limit.
struct Limits {
  int max_message_bytes = 64 << 20;
  int max_events_per_batch = 100000;
  int max_export_batch = 100000;
  int max_concurrent_streams = 64;
  int max_candidates = 10000;      // items per Score / pairs per request
  int max_k = 1000;                // TopK k
  int max_batch_users = 1000;      // users per BatchScore
  int max_samples = 10000;         // SampleNegatives n
  int max_training_jobs = 2;       // concurrent Train jobs
  int max_loaded_models = 32;      // models kept loaded for serving (LRU)
  int max_params = 64;             // hyperparameters per Train request
  int max_bootstrap = 10000;       // Evaluate bootstrap resamples
  int max_in_flight = 256;         // calls handled at once (health excluded)
  int max_pollers = 16;            // gRPC threads kept waiting for calls
  // HTTP/2 keepalive: the server pings an idle connection every
  // keepalive_time_ms and closes it when no answer comes within
  // keepalive_timeout_ms (dead clients and half-open connections go away);
  // clients may ping as often as every 10 s.
  int keepalive_time_ms = 60000;
  int keepalive_timeout_ms = 20000;
  int64_t max_import_bytes = int64_t{4} << 30;  // parameters of one ImportModel
  // Seconds between scans of ServerOptions::model_repository.
  int poll_seconds = 5;
  // Close each client connection after this many seconds (plus a grace of
  // as long, at most 30 s, for calls in flight) so long-lived clients
  // re-resolve their target and spread over replicas that joined since;
  // 0 = never.
  int max_connection_age_seconds = 0;
  // Bytes the loaded models may hold in all (LRU past it); 0: no limit.
  int64_t max_loaded_model_bytes = int64_t{8} << 30;
  // Retrieval (docs/OPERATIONS.md, Retrieval): models of at least
  // ann_min_items items (0: none) get an HNSW index with these settings.
  int ann_min_items = 250000;
  int ann_m = 32;
  int ann_ef_construction = 80;
  int ann_ef_search = 256;
};

struct ServerOptions {
  // host:port to listen on; port 0 picks a free port (see DebiasServer::port).
  std::string listen = "127.0.0.1:50051";
  // RocksDB directory.
  std::string data_dir = "./var/debias";
  // fsync every ingest batch and model write (else: in the WAL, which
  // survives a process crash but not a machine crash).
  bool sync = false;
  // Serve gRPC server reflection.
  bool reflection = false;
  // Directory the Backup RPC writes checkpoints into; empty = Backup off.
  std::string backup_dir;
  // Snapshot repository polled for models (server/model_repository.h); empty
  // = none. With one, health is NOT_SERVING until its models are ready.
  std::string model_repository;
  Limits limits;

  // --- Security (docs/SECURITY.md) ---
  // Token file (`ROLE TOKEN` lines); empty = development mode, no tokens.
  std::string auth_tokens;
  // TLS: PEM certificate chain and key of the server; with tls_client_ca,
  // clients must present a certificate signed by that CA (mutual TLS).
  std::string tls_cert, tls_key, tls_client_ca;
  // Listening on a non-loopback address without TLS is refused unless set.
  bool allow_insecure = false;
  // Set by DebiasServer::Start from auth_tokens (null in development mode);
  // the handlers check every call against it. Reloaded on SIGHUP.
  std::shared_ptr<Authenticator> authenticator;
  // Set by DebiasServer::Start from limits.max_in_flight.
  std::shared_ptr<InFlight> in_flight;

  // --- Observability (docs/OPERATIONS.md) ---
  // host:port of the Prometheus /metrics HTTP endpoint; empty = off.
  std::string metrics_listen;
  // Created by DebiasServer::Start (always: the gRPC interceptor counts
  // calls even when no endpoint serves them).
  std::shared_ptr<Metrics> metrics;
};

// True for 127.0.0.0/8, ::1 and localhost (with a port: "127.0.0.1:50051").
bool IsLoopbackAddress(const std::string& host_port);

}  // namespace debias::server

#endif  // DEBIAS_SERVER_OPTIONS_H_
