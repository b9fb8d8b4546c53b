#include "server/metrics.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "grpcpp/grpcpp.h"
#include "httplib.h"
#include "spdlog/spdlog.h"

namespace debias::server {

namespace {

constexpr std::string_view kRequestIdKey = "x-request-id";

// gRPC status codes are numbered as absl's; the name is absl's.
std::string CodeName(int code) {
  std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? "UNKNOWN" : name;
}

// Label values: escape backslash, quote and newline (the exposition format).
std::string Escape(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string Num(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return absl::StrFormat("%.17g", v);
}

void Header(std::string* out, std::string_view name, std::string_view type,
            std::string_view help) {
  absl::StrAppend(out, "# HELP ", std::string(name), " ", std::string(help), "\n# TYPE ",
                  std::string(name), " ", std::string(type), "\n");
}

// A client-supplied request id is echoed only if it is short and printable,
// so it cannot forge log lines or carry a payload.
bool AcceptableRequestId(std::string_view v) {
  if (v.empty() || v.size() > 64) return false;
  for (char c : v) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

std::string NewRequestId() {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t prefix = std::random_device{}();
  return absl::StrFormat("%08x%08x", static_cast<uint32_t>(prefix),
                         static_cast<uint32_t>(counter.fetch_add(1) + 1));
}

// Depth-first search for the first object holding `key` (the propensity
// summary sits under "propensity" for MF losses, elsewhere for others).
const nlohmann::json* FindWithKey(const nlohmann::json& j, std::string_view key, int depth) {
  if (!j.is_object() || depth > 4) return nullptr;
  if (j.contains(std::string(key))) return &j;
  for (const auto& [k, v] : j.items()) {
    if (const auto* f = FindWithKey(v, key, depth + 1)) return f;
  }
  return nullptr;
}

double NumberAt(const nlohmann::json* j, std::string_view key) {
  if (j == nullptr) return std::nan("");
  auto it = j->find(std::string(key));
  return it != j->end() && it->is_number() ? it->get<double>() : std::nan("");
}


// The gauges of Metrics::Render read from the server's components at scrape
// time, in exposition order.
void RenderServerGauges(const Metrics::Sources& src, std::string* out) {
  if (src.in_flight) {
    Header(out, "debias_rpc_in_flight", "gauge",
           "Calls being handled now (streams for their whole life; health excluded).");
    absl::StrAppend(out, "debias_rpc_in_flight ", src.in_flight(), "\n");
  }
  if (src.training_jobs_running) {
    Header(out, "debias_training_jobs_running", "gauge", "Training jobs running now.");
    absl::StrAppend(out, "debias_training_jobs_running ", src.training_jobs_running(), "\n");
  }
  if (src.datasets) {
    Header(out, "debias_datasets", "gauge", "Datasets in the store.");
    absl::StrAppend(out, "debias_datasets ", src.datasets(), "\n");
  }
  if (src.store_disk_bytes) {
    Header(out, "debias_store_disk_bytes", "gauge",
           "Approximate size of the store on disk (SST files and memtables).");
    absl::StrAppend(out, "debias_store_disk_bytes ", src.store_disk_bytes(), "\n");
  }
  if (src.loaded_models) {
    Header(out, "debias_loaded_models", "gauge",
           "Ready models loaded in the serving cache (loaded on first use; dropped on delete "
           "and, least recently used first, past max_loaded_models).");
    absl::StrAppend(out, "debias_loaded_models ", src.loaded_models(), "\n");
  }
  if (src.evicted_models) {
    Header(out, "debias_model_cache_evictions_total", "counter",
           "Models dropped from the serving cache to stay within max_loaded_models and max_loaded_model_bytes.");
    absl::StrAppend(out, "debias_model_cache_evictions_total ", src.evicted_models(), "\n");
  }
}

void RenderRepository(const Metrics::Sources::Repository& r, std::string* out) {
  const struct {
    const char* name;
    const char* type;
    const char* help;
    uint64_t value;
  } series[] = {
      {"debias_repository_rejected_total", "counter",
       "Snapshot files of the model repository refused (corrupt, truncated, undecodable).",
       r.rejected},
      {"debias_repository_imported_total", "counter",
       "Model versions loaded from the repository and warmed up.", r.imported},
      {"debias_repository_unloaded_total", "counter",
       "Model versions unloaded because their file left the repository.", r.unloaded},
      {"debias_repository_serving_versions", "gauge",
       "Model versions from the repository servable now.", r.serving},
      {"debias_repository_ready", "gauge",
       "1 once every model present in the repository at start is servable.",
       r.ready ? 1u : 0u},
  };
  for (const auto& m : series) {
    Header(out, m.name, m.type, m.help);
    absl::StrAppend(out, m.name, " ", m.value, "\n");
  }
}

void RenderMemoryGauges(const Metrics::Sources& src, std::string* out) {
  if (src.loaded_model_bytes) {
    Header(out, "debias_loaded_model_bytes", "gauge",
           "Bytes held by the loaded models: parameters, key tables, blocked item factors and "
           "approximate indexes (at most max_loaded_model_bytes, except a single larger model).");
    absl::StrAppend(out, "debias_loaded_model_bytes ", src.loaded_model_bytes(), "\n");
  }
  if (src.memory) {
    const Metrics::Sources::Memory m = src.memory();
    Header(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    absl::StrAppend(out, "process_resident_memory_bytes ", m.resident, "\n");
    Header(out, "debias_store_memtable_bytes", "gauge",
           "RocksDB memtables, active and being flushed.");
    absl::StrAppend(out, "debias_store_memtable_bytes ", m.memtables, "\n");
    Header(out, "debias_store_block_cache_bytes", "gauge",
           "RocksDB block cache in use (bounded by the store's block cache size).");
    absl::StrAppend(out, "debias_store_block_cache_bytes ", m.block_cache, "\n");
    Header(out, "debias_store_table_readers_bytes", "gauge",
           "Index and filter blocks of RocksDB's open table files.");
    absl::StrAppend(out, "debias_store_table_readers_bytes ", m.table_readers, "\n");
  }
}

// Models by state, and the debiasing health signals of the ready ones.
void RenderModels(const std::vector<Metrics::Sources::ModelInfo>& models, std::string* out) {
  std::map<std::string, int> by_state = {
      {"training", 0}, {"ready", 0}, {"failed", 0}, {"cancelled", 0}};
  for (const auto& m : models) ++by_state[m.state];
  Header(out, "debias_models", "gauge", "Models in the store, by state.");
  for (const auto& [state, n] : by_state) {
    absl::StrAppend(out, "debias_models{state=\"", Escape(state), "\"} ", n, "\n");
  }
  struct Signal {
    const char* name;
    const char* help;
    double DebiasHealth::*field;
  };
  const Signal signals[] = {
      {"debias_model_top1pct_weight_share",
       "Share of the total inverse-propensity weight carried by the largest 1% of "
       "weights in the model's training data (ready models with propensities).",
       &DebiasHealth::top1pct_weight_share},
      {"debias_model_clipped_share",
       "Share of training pairs whose propensity was raised by clipping.",
       &DebiasHealth::clipped_share},
      {"debias_model_ess_fraction",
       "Effective sample size of the inverse-propensity weights over the pairs.",
       &DebiasHealth::ess_fraction},
  };
  std::vector<std::pair<const Metrics::Sources::ModelInfo*, DebiasHealth>> health;
  for (const auto& m : models) {
    if (m.state == "ready") health.emplace_back(&m, ExtractDebiasHealth(m.diagnostics));
  }
  for (const auto& s : signals) {
    Header(out, s.name, "gauge", s.help);
    for (const auto& [m, h] : health) {
      const double v = h.*(s.field);
      if (std::isnan(v)) continue;
      absl::StrAppend(out, s.name, "{model=\"", m->id, "\",loss=\"", Escape(m->loss),
                      "\"} ", Num(v), "\n");
    }
  }
}

}  // namespace

void Histogram::Observe(double seconds) {
  size_t b = 0;
  while (b < kBounds.size() && seconds > kBounds[b]) ++b;
  if (b < kBounds.size()) ++buckets_[b];
  ++count_;
  sum_ += seconds;
}

void Histogram::Render(std::string_view name, std::string_view labels,
                       std::string* out) const {
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t b = 0; b < kBounds.size(); ++b) {
    cumulative += buckets_[b];
    absl::StrAppend(out, std::string(name), "_bucket{", std::string(labels), sep, "le=\"",
                    kBounds[b], "\"} ", cumulative, "\n");
  }
  absl::StrAppend(out, std::string(name), "_bucket{", std::string(labels), sep,
                  "le=\"+Inf\"} ", count_, "\n");
  const std::string braces = labels.empty() ? "" : absl::StrCat("{", std::string(labels), "}");
  absl::StrAppend(out, std::string(name), "_sum", braces, " ", Num(sum_), "\n");
  absl::StrAppend(out, std::string(name), "_count", braces, " ", count_, "\n");
}

void Metrics::SetSources(Sources sources) {
  absl::MutexLock l(&mu_);
  sources_ = std::move(sources);
}

void Metrics::AddRepositorySource(std::function<Sources::Repository()> source) {
  absl::MutexLock l(&mu_);
  sources_.repository = std::move(source);
}

void Metrics::RecordRpc(std::string_view method, int grpc_code, double seconds) {
  absl::MutexLock l(&mu_);
  auto it = methods_.find(method);
  if (it == methods_.end()) it = methods_.emplace(std::string(method), MethodStats{}).first;
  ++it->second.by_code[grpc_code];
  it->second.latency.Observe(seconds);
}

void Metrics::RecordIngest(uint64_t events, uint64_t bytes) {
  absl::MutexLock l(&mu_);
  ingest_events_ += events;
  ingest_bytes_ += bytes;
}

void Metrics::RecordTrainingJob(std::string_view state, double seconds) {
  absl::MutexLock l(&mu_);
  auto it = jobs_.find(state);
  if (it == jobs_.end()) it = jobs_.emplace(std::string(state), std::pair<uint64_t, Histogram>{}).first;
  ++it->second.first;
  it->second.second.Observe(seconds);
}

void Metrics::RenderCounters(std::string* out) const {
  Header(out, "debias_rpc_requests_total", "counter",
         "gRPC calls handled, by full method name and status code.");
  for (const auto& [method, stats] : methods_) {
    for (const auto& [code, n] : stats.by_code) {
      absl::StrAppend(out, "debias_rpc_requests_total{method=\"", Escape(method),
                      "\",code=\"", CodeName(code), "\"} ", n, "\n");
    }
  }
  Header(out, "debias_rpc_latency_seconds", "histogram",
         "gRPC call latency from the call's start to its status, by method.");
  for (const auto& [method, stats] : methods_) {
    stats.latency.Render("debias_rpc_latency_seconds",
                         absl::StrCat("method=\"", Escape(method), "\""), out);
  }
  Header(out, "debias_ingest_events_total", "counter",
         "Events acknowledged by Ingest (after in-batch deduplication).");
  absl::StrAppend(out, "debias_ingest_events_total ", ingest_events_, "\n");
  Header(out, "debias_ingest_bytes_total", "counter",
         "Wire bytes of the acknowledged Ingest messages.");
  absl::StrAppend(out, "debias_ingest_bytes_total ", ingest_bytes_, "\n");
  Header(out, "debias_training_jobs_total", "counter",
         "Training jobs that ended, by final state.");
  for (const auto& [state, job] : jobs_) {
    absl::StrAppend(out, "debias_training_jobs_total{state=\"", Escape(state), "\"} ",
                    job.first, "\n");
  }
  Header(out, "debias_training_duration_seconds", "histogram",
         "Wall time of training jobs, by final state.");
  for (const auto& [state, job] : jobs_) {
    job.second.Render("debias_training_duration_seconds",
                      absl::StrCat("state=\"", Escape(state), "\""), out);
  }
}

std::string Metrics::Render() const {
  // Copy the sources out so the (possibly slow) scrape-time reads run
  // without holding the lock the request path takes.
  Sources src;
  std::string out;
  {
    absl::MutexLock l(&mu_);
    src = sources_;
    RenderCounters(&out);
  }
  Header(&out, "debias_build_info", "gauge", "Always 1; the server's version as a label.");
  absl::StrAppend(&out, "debias_build_info{version=\"", Escape(version_), "\"} 1\n");
  RenderServerGauges(src, &out);
  if (src.repository) RenderRepository(src.repository(), &out);
  RenderMemoryGauges(src, &out);
  if (src.models) RenderModels(src.models(), &out);
  return out;
}

DebiasHealth ExtractDebiasHealth(const nlohmann::json& diagnostics) {
  const nlohmann::json* summary = nullptr;
  if (auto it = diagnostics.find("propensity");
      it != diagnostics.end() && it->is_object() && it->contains("ess_fraction")) {
    summary = &*it;
  } else {
    summary = FindWithKey(diagnostics, "ess_fraction", 0);
  }
  return DebiasHealth{NumberAt(summary, "top1pct_weight_share"),
                      NumberAt(summary, "clipped_fraction"),
                      NumberAt(summary, "ess_fraction")};
}

std::string RequestId(const grpc::ServerContext* ctx) {
  if (ctx == nullptr) return "";
  const auto& md = ctx->client_metadata();
  auto it = md.find(grpc::string_ref(kRequestIdKey.data(), kRequestIdKey.size()));
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

namespace {

namespace gx = grpc::experimental;

class RequestInterceptor : public gx::Interceptor {
 public:
  RequestInterceptor(gx::ServerRpcInfo* info, Metrics* metrics)
      : info_(info), metrics_(metrics), start_(std::chrono::steady_clock::now()) {}

  void Intercept(gx::InterceptorBatchMethods* methods) override {
    using HP = gx::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(HP::POST_RECV_INITIAL_METADATA)) {
      // Make the id visible to the handler (RequestId(ctx)) by placing it in
      // the client metadata it reads; the strings live as long as the call.
      auto* md = methods->GetRecvInitialMetadata();
      auto it = md->find(grpc::string_ref(kRequestIdKey.data(), kRequestIdKey.size()));
      if (it != md->end() && AcceptableRequestId(std::string_view(it->second.data(),
                                                                  it->second.size()))) {
        id_.assign(it->second.data(), it->second.size());
      } else {
        if (it != md->end()) md->erase(it);
        id_ = NewRequestId();
        md->emplace(grpc::string_ref(kRequestIdKey.data(), kRequestIdKey.size()),
                    grpc::string_ref(id_));
      }
    }
    if (methods->QueryInterceptionHookPoint(HP::PRE_SEND_INITIAL_METADATA) && !id_.empty()) {
      methods->GetSendInitialMetadata()->emplace(std::string(kRequestIdKey), id_);
    }
    if (methods->QueryInterceptionHookPoint(HP::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      const char* method = info_->method() ? info_->method() : "unknown";
      metrics_->RecordRpc(method, status.error_code(), secs);
      if (spdlog::should_log(spdlog::level::debug)) {
        std::string peer;
        if (auto* ctx = info_->server_context()) peer = ctx->peer();
        spdlog::debug("rpc method={} code={} ms={:.3f} peer={} request_id={}", method,
                      CodeName(status.error_code()), secs * 1e3, peer, id_);
      }
    }
    methods->Proceed();
  }

 private:
  gx::ServerRpcInfo* info_;
  Metrics* metrics_;
  std::chrono::steady_clock::time_point start_;
  std::string id_;
};

class RequestInterceptorFactory : public gx::ServerInterceptorFactoryInterface {
 public:
  explicit RequestInterceptorFactory(std::shared_ptr<Metrics> metrics)
      : metrics_(std::move(metrics)) {}
  gx::Interceptor* CreateServerInterceptor(gx::ServerRpcInfo* info) override {
    return new RequestInterceptor(info, metrics_.get());
  }

 private:
  std::shared_ptr<Metrics> metrics_;
};

}  // namespace

std::unique_ptr<gx::ServerInterceptorFactoryInterface> MakeRequestInterceptorFactory(
    std::shared_ptr<Metrics> metrics) {
  return std::make_unique<RequestInterceptorFactory>(std::move(metrics));
}

struct MetricsHttpServer::Impl {
  httplib::Server http;
  std::thread thread;
  std::shared_ptr<Metrics> metrics;
};

MetricsHttpServer::MetricsHttpServer(std::unique_ptr<Impl> impl, int port)
    : impl_(std::move(impl)), port_(port) {}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

void MetricsHttpServer::Stop() {
  if (impl_ && impl_->thread.joinable()) {
    impl_->http.stop();
    impl_->thread.join();
  }
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen, std::shared_ptr<Metrics> metrics) {
  std::string host = listen;
  int port = -1;
  if (auto colon = listen.rfind(':'); colon != std::string::npos) {
    host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    try {
      size_t used = 0;
      port = std::stoi(listen.substr(colon + 1), &used);
      if (used != listen.size() - colon - 1) port = -1;
    } catch (...) {
      port = -1;
    }
  }
  if (host.empty() || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics_listen='", listen, "': expected host:port with port in [0, 65535]"));
  }
  auto impl = std::make_unique<Impl>();
  impl->metrics = std::move(metrics);
  Metrics* m = impl->metrics.get();
  impl->http.Get("/metrics", [m](const httplib::Request&, httplib::Response& res) {
    res.set_content(m->Render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  impl->http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  int bound = port;
  if (port == 0) {
    bound = impl->http.bind_to_any_port(host.c_str());
  } else if (!impl->http.bind_to_port(host.c_str(), port)) {
    bound = -1;
  }
  if (bound <= 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("metrics_listen='", listen, "': cannot bind (address in use?)"));
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->http.listen_after_bind(); });
  return std::unique_ptr<MetricsHttpServer>(new MetricsHttpServer(std::move(impl), bound));
}

}  // namespace debias::server
