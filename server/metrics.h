// Metrics: debiasd's Prometheus series, and the gRPC interceptor that feeds
// the per-method ones and writes the per-request log line.
//
// Counters and histograms are updated on the request path (one mutex per
// update, no allocation after a method's first call); gauges that describe
// state (in-flight calls, models by state, store size, per-model debiasing
// health) are read from their owners at scrape time through Sources, so a
// scrape never disagrees with GetModel or GetStats.
//
// Series (all prefixed debias_):
//   rpc_requests_total{method,code}           counter
//   rpc_latency_seconds{method}               histogram
//   rpc_in_flight                             gauge (health checks excluded)
//   ingest_events_total, ingest_bytes_total   counters (acknowledged batches)
//   training_jobs_total{state}                counter (jobs that ended, by state)
//   training_duration_seconds{state}          histogram
//   training_jobs_running                     gauge
//   models{state}                             gauge
//   datasets                                  gauge
//   store_disk_bytes                          gauge
//   store_memtable_bytes, store_block_cache_bytes, store_table_readers_bytes
//                                             gauges (RocksDB's memory)
//   loaded_models                             gauge (models in the serving cache)
//   model_cache_evictions_total               counter (dropped past max_loaded_models)
//   loaded_model_bytes                        gauge (bytes the loaded models hold)
//   process_resident_memory_bytes             gauge (no prefix: the name
//                                             Prometheus client libraries use)
//   model_top1pct_weight_share{model,loss}    gauge (largest 1% of inverse propensities)
//   model_clipped_share{model,loss}           gauge
//   model_ess_fraction{model,loss}            gauge (effective sample size / pairs)
//   build_info{version}                       gauge (1)
//
// Thread safety: every method may be called from any thread.
#ifndef DEBIAS_SERVER_METRICS_H_
#define DEBIAS_SERVER_METRICS_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_interceptor.h"
#include "nlohmann/json.hpp"

namespace debias::server {

// Latency histogram with fixed upper bounds (seconds).
class Histogram {
 public:
  static constexpr std::array<double, 17> kBounds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
      0.5,    1,     2.5,    5,     10,   30,    60,   300};
  void Observe(double seconds);
  // Appends the _bucket/_sum/_count lines for `name{labels}`.
  void Render(std::string_view name, std::string_view labels, std::string* out) const;

 private:
  std::array<uint64_t, kBounds.size()> buckets_{};  // non-cumulative
  uint64_t count_ = 0;
  double sum_ = 0;
};

class Metrics {
 public:
  // What the scrape reads from the server's components; any may be unset.
  struct Sources {
    std::function<int()> in_flight;
    std::function<int()> training_jobs_running;
    std::function<uint64_t()> store_disk_bytes;
    std::function<size_t()> datasets;
    std::function<size_t()> loaded_models;
    std::function<uint64_t()> evicted_models;
    // The model repository (unset without one): snapshot files refused,
    // versions serving from it, and whether its start-up models are ready.
    struct Repository {
      uint64_t rejected = 0, imported = 0, unloaded = 0, serving = 0;
      bool ready = false;
    };
    std::function<Repository()> repository;
    std::function<size_t()> loaded_model_bytes;
    struct Memory {
      uint64_t resident = 0;  // process RSS
      uint64_t memtables = 0, block_cache = 0, table_readers = 0;
    };
    std::function<Memory()> memory;
    // Per model: id, state name, loss name and diagnostics JSON.
    struct ModelInfo {
      uint64_t id = 0;
      std::string state, loss;
      nlohmann::json diagnostics;
    };
    std::function<std::vector<ModelInfo>()> models;
  };

  explicit Metrics(std::string version = "dev") : version_(std::move(version)) {}
  void SetSources(Sources sources);
  // Sets Sources::repository alone (the repository starts after the rest).
  void AddRepositorySource(std::function<Sources::Repository()> source);

  void RecordRpc(std::string_view method, int grpc_code, double seconds);
  void RecordIngest(uint64_t events, uint64_t bytes);
  void RecordTrainingJob(std::string_view state, double seconds);

  // The Prometheus text exposition format (version 0.0.4).
  std::string Render() const;

 private:
  struct MethodStats {
    std::map<int, uint64_t> by_code;
    Histogram latency;
  };
  // The counters and histograms recorded by the request path.
  void RenderCounters(std::string* out) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string version_;
  mutable absl::Mutex mu_;
  Sources sources_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, MethodStats, std::less<>> methods_ ABSL_GUARDED_BY(mu_);
  uint64_t ingest_events_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t ingest_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, std::pair<uint64_t, Histogram>, std::less<>> jobs_
      ABSL_GUARDED_BY(mu_);
};

// The debiasing health signals of a model's diagnostics JSON (the training
// propensities' inverse-weight summary, wherever the trainer put it); absent
// signals are NaN.
struct DebiasHealth {
  double top1pct_weight_share;
  double clipped_share;
  double ess_fraction;
};
DebiasHealth ExtractDebiasHealth(const nlohmann::json& diagnostics);

// The request id of a call: the client's `x-request-id` metadata when it
// sent one (at most 64 printable bytes), else the id the interceptor
// generated for it. Empty outside an intercepted call.
std::string RequestId(const grpc::ServerContext* ctx);

// Counts every call into `metrics` (method, status code, latency), adds an
// `x-request-id` to the response's initial metadata, and logs one line per
// call at debug level (method, code, latency, peer, request id; never
// metadata values or payloads).
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeRequestInterceptorFactory(std::shared_ptr<Metrics> metrics);

// A /metrics (and /healthz) HTTP endpoint on its own thread.
class MetricsHttpServer {
 public:
  // Binds host:port (port 0: any free port). FAILED_PRECONDITION when the
  // address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& listen, std::shared_ptr<Metrics> metrics);
  ~MetricsHttpServer();
  int port() const { return port_; }
  void Stop();

 private:
  struct Impl;
  explicit MetricsHttpServer(std::unique_ptr<Impl> impl, int port);
  std::unique_ptr<Impl> impl_;
  int port_;
};

}  // namespace debias::server

#endif  // DEBIAS_SERVER_METRICS_H_
