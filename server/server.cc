#include "server/server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/store/interaction_store.h"
#include "core/util/memory.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/grpcpp.h"
#include "server/admin_service.h"
#include "server/auth.h"
#include "server/dataset_service.h"
#include "server/metrics.h"
#include "server/model_manager.h"
#include "server/model_repository.h"
#include "server/model_services.h"
#include "spdlog/spdlog.h"

namespace debias::server {

bool IsLoopbackAddress(const std::string& host_port) {
  std::string host = host_port;
  if (!host.empty() && host.front() == '[') {  // [v6]:port
    host = host.substr(1, host.find(']') == std::string::npos ? 0 : host.find(']') - 1);
  } else if (auto colon = host.rfind(':'); colon != std::string::npos &&
                                           host.find(':') == colon) {
    host = host.substr(0, colon);  // v4 or name with a port
  }
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0 ||
         host.rfind("ipv4:127.", 0) == 0;
}

namespace {

absl::StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(flag, " '", path, "': cannot read"));
  std::stringstream s;
  s << in.rdbuf();
  if (s.str().find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " '", path, "': not a PEM file"));
  }
  return s.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const ServerOptions& o) {
  const bool tls = !o.tls_cert.empty() || !o.tls_key.empty();
  if (!tls) {
    if (!o.tls_client_ca.empty()) {
      return absl::InvalidArgumentError("tls_client_ca: needs tls_cert and tls_key");
    }
    if (!IsLoopbackAddress(o.listen) && !o.allow_insecure) {
      return absl::FailedPreconditionError(absl::StrCat(
          "refusing to listen on non-loopback address '", o.listen,
          "' without TLS: give --tls_cert and --tls_key, or --allow_insecure to accept "
          "plaintext (e.g. behind a TLS-terminating proxy or inside a private network)"));
    }
    return grpc::InsecureServerCredentials();
  }
  if (o.tls_cert.empty() || o.tls_key.empty()) {
    return absl::InvalidArgumentError("tls_cert and tls_key: give both");
  }
  auto cert = ReadPem("tls_cert", o.tls_cert);
  if (!cert.ok()) return cert.status();
  auto key = ReadPem("tls_key", o.tls_key);
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (!o.tls_client_ca.empty()) {
    auto ca = ReadPem("tls_client_ca", o.tls_client_ca);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

struct DebiasServer::Impl {
  // The stages of Start, in order.
  absl::Status SetUpAdmission();
  absl::Status OpenStoreAndServices();
  ModelManager::Options ManagerOptions() const;
  void ConnectMetricsSources();
  absl::Status StartGrpc(const std::shared_ptr<grpc::ServerCredentials>& creds);
  absl::Status StartMetricsHttp();
  void StartRepositoryOrServe();
  void LogStarted() const;

  ServerOptions options;
  std::unique_ptr<store::InteractionStore> store;
  std::unique_ptr<DatasetServiceImpl> datasets;
  std::unique_ptr<ModelManager> models;
  std::unique_ptr<ModelServiceImpl> model_service;
  std::unique_ptr<ScoringServiceImpl> scoring_service;
  std::unique_ptr<EvaluationServiceImpl> evaluation_service;
  std::unique_ptr<AdminServiceImpl> admin_service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<MetricsHttpServer> metrics_http;
  std::unique_ptr<ModelRepository> repository;
  int port = 0;
  absl::Mutex mu;
  bool shut_down ABSL_GUARDED_BY(mu) = false;
};

DebiasServer::DebiasServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

DebiasServer::~DebiasServer() { Shutdown(absl::Seconds(5)); }

absl::StatusOr<std::unique_ptr<DebiasServer>> DebiasServer::Start(
    const ServerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  auto creds = Credentials(options);
  if (!creds.ok()) return creds.status();
  if (absl::Status s = impl->SetUpAdmission(); !s.ok()) return s;
  if (absl::Status s = impl->OpenStoreAndServices(); !s.ok()) return s;
  impl->ConnectMetricsSources();
  if (absl::Status s = impl->StartGrpc(*creds); !s.ok()) return s;
  if (absl::Status s = impl->StartMetricsHttp(); !s.ok()) return s;
  impl->StartRepositoryOrServe();
  impl->LogStarted();
  return std::unique_ptr<DebiasServer>(new DebiasServer(std::move(impl)));
}

// The in-flight limit, the token file and the metrics registry, which
// every handler reads through the options.
absl::Status DebiasServer::Impl::SetUpAdmission() {
  if (options.limits.max_in_flight < 1) {
    return absl::InvalidArgumentError("max_in_flight: must be >= 1");
  }
  options.in_flight = std::make_shared<InFlight>(options.limits.max_in_flight);
  if (!options.auth_tokens.empty()) {
    auto auth = Authenticator::FromFile(options.auth_tokens);
    if (!auth.ok()) return auth.status();
    options.authenticator = std::move(*auth);
  }
  options.metrics = std::make_shared<Metrics>(DEBIAS_VERSION);
  return absl::OkStatus();
}

absl::Status DebiasServer::Impl::OpenStoreAndServices() {
  store::StoreOptions so;
  so.path = options.data_dir;
  so.sync = options.sync;
  auto st = store::InteractionStore::Open(so);
  if (!st.ok()) return st.status();
  store = std::move(*st);
  datasets = std::make_unique<DatasetServiceImpl>(store.get(), options);
  models = std::make_unique<ModelManager>(store.get(), ManagerOptions());
  model_service = std::make_unique<ModelServiceImpl>(models.get(), options);
  scoring_service = std::make_unique<ScoringServiceImpl>(models.get(), store.get(), options);
  evaluation_service =
      std::make_unique<EvaluationServiceImpl>(models.get(), store.get(), options);
  admin_service = std::make_unique<AdminServiceImpl>(store.get(), options);
  return absl::OkStatus();
}

ModelManager::Options DebiasServer::Impl::ManagerOptions() const {
  ModelManager::Options mo;
  mo.max_jobs = options.limits.max_training_jobs;
  mo.max_loaded_models = options.limits.max_loaded_models;
  mo.max_loaded_model_bytes = options.limits.max_loaded_model_bytes;
  mo.retrieval.ann_min_items = options.limits.ann_min_items;
  // Built indexes are kept beside the store, so a restart or a reload after
  // an eviction reads them back instead of rebuilding (OPERATIONS.md).
  mo.retrieval.index_dir = (std::filesystem::path(options.data_dir) / "ann-indexes").string();
  std::error_code ec;
  std::filesystem::create_directories(mo.retrieval.index_dir, ec);
  if (ec) {
    spdlog::warn("cannot create {} ({}): approximate indexes are rebuilt on every load",
                 mo.retrieval.index_dir, ec.message());
    mo.retrieval.index_dir.clear();
  }
  mo.retrieval.ann.m = options.limits.ann_m;
  mo.retrieval.ann.ef_construction = options.limits.ann_ef_construction;
  mo.retrieval.ann.ef_search = options.limits.ann_ef_search;
  mo.on_job_end = [m = options.metrics](std::string_view state, double secs) {
    m->RecordTrainingJob(state, secs);
  };
  return mo;
}

// What a /metrics scrape reads from the store and the model manager.
void DebiasServer::Impl::ConnectMetricsSources() {
  Metrics::Sources src;
  Impl* raw = this;
  src.in_flight = [raw] { return raw->options.in_flight->current(); };
  src.training_jobs_running = [raw] { return raw->models->running_jobs(); };
  src.store_disk_bytes = [raw] { return raw->store->DiskBytes(); };
  src.datasets = [raw] { return raw->store->ListDatasets().size(); };
  src.loaded_models = [raw] { return raw->models->loaded_models(); };
  src.evicted_models = [raw] { return raw->models->evicted_models(); };
  src.loaded_model_bytes = [raw] { return raw->models->loaded_model_bytes(); };
  src.memory = [raw] {
    const store::InteractionStore::MemoryUsage u = raw->store->Memory();
    Metrics::Sources::Memory m;
    m.resident = util::ResidentBytes();
    m.memtables = u.memtables;
    m.block_cache = u.block_cache;
    m.table_readers = u.table_readers;
    return m;
  };
  src.models = [raw] {
    std::vector<Metrics::Sources::ModelInfo> out;
    for (auto& r : raw->models->ListRecords()) {
      Metrics::Sources::ModelInfo m;
      m.id = r.id;
      m.state = std::string(store::ModelStateName(r.state));
      m.loss = r.spec.is_object() ? r.spec.value("loss", "") : "";
      m.diagnostics = std::move(r.diagnostics);
      out.push_back(std::move(m));
    }
    return out;
  };
  options.metrics->SetSources(std::move(src));
}

absl::Status DebiasServer::Impl::StartGrpc(
    const std::shared_ptr<grpc::ServerCredentials>& creds) {
  const Limits& limits = options.limits;
  grpc::EnableDefaultHealthCheckService(true);
  if (options.reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, creds, &port);
  builder.SetMaxReceiveMessageSize(limits.max_message_bytes);
  builder.SetMaxSendMessageSize(limits.max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, limits.max_concurrent_streams);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, limits.keepalive_time_ms);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, limits.keepalive_timeout_ms);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  if (const int age = limits.max_connection_age_seconds; age > 0) {
    // Clients reconnect (and re-resolve) after GOAWAY; the grace lets the
    // calls in flight finish first.
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, age * 1000);
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, std::min(age, 30) * 1000);
  }
  // Threads of the synchronous server that wait for calls. gRPC's default
  // (at most 2) makes every call beyond two concurrent ones start a thread
  // that exits afterwards; with 8 concurrent Score clients that churn cost
  // more server CPU than the call itself (docs/BENCHMARKS.md, serving).
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS,
                              limits.max_pollers);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> icpt;
  icpt.push_back(MakeRequestInterceptorFactory(options.metrics));
  builder.experimental().SetInterceptorCreators(std::move(icpt));
  builder.RegisterService(datasets.get());
  builder.RegisterService(model_service.get());
  builder.RegisterService(scoring_service.get());
  builder.RegisterService(evaluation_service.get());
  builder.RegisterService(admin_service.get());
  server = builder.BuildAndStart();
  if (!server || port == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot listen on '", options.listen,
                     "' (address in use, or not host:port?)"));
  }
  return absl::OkStatus();
}

absl::Status DebiasServer::Impl::StartMetricsHttp() {
  if (options.metrics_listen.empty()) return absl::OkStatus();
  auto http = MetricsHttpServer::Start(options.metrics_listen, options.metrics);
  if (!http.ok()) {
    server->Shutdown();
    return http.status();
  }
  metrics_http = std::move(*http);
  // The bound port, which differs from the flag's for port 0.
  const std::string host = options.metrics_listen.substr(0, options.metrics_listen.rfind(':'));
  spdlog::info("metrics on http://{}:{}/metrics", host, metrics_http->port());
  return absl::OkStatus();
}

// Health is SERVING at once without a model repository; with one,
// NOT_SERVING until its models are loaded and warmed up.
void DebiasServer::Impl::StartRepositoryOrServe() {
  if (options.model_repository.empty()) {
    server->GetHealthCheckService()->SetServingStatus(true);
    return;
  }
  server->GetHealthCheckService()->SetServingStatus(false);
  ModelRepository::Options ro;
  ro.dir = options.model_repository;
  ro.poll = absl::Seconds(options.limits.poll_seconds);
  grpc::Server* grpc_server = server.get();
  ro.on_ready = [grpc_server, was = std::make_shared<std::atomic<int>>(-1)](bool ready) {
    if (was->exchange(ready ? 1 : 0) == (ready ? 1 : 0)) return;
    spdlog::info("model repository: {}", ready ? "ready; health SERVING" : "not ready; health NOT_SERVING");
    grpc_server->GetHealthCheckService()->SetServingStatus(ready);
  };
  repository = std::make_unique<ModelRepository>(models.get(), std::move(ro));
  ModelRepository* repo = repository.get();
  options.metrics->AddRepositorySource([repo] {
    Metrics::Sources::Repository r;
    r.rejected = repo->rejected();
    r.imported = repo->imported();
    r.unloaded = repo->unloaded();
    r.serving = repo->serving();
    r.ready = repo->ready();
    return r;
  });
  repository->Start();
  spdlog::info("model repository {} polled every {} s", options.model_repository,
               options.limits.poll_seconds);
}

void DebiasServer::Impl::LogStarted() const {
  spdlog::info("debiasd serving on port {} (data_dir={}, sync={}, tls={}, auth={})",
               port, options.data_dir, options.sync,
               options.tls_cert.empty() ? "off"
                                        : (options.tls_client_ca.empty() ? "on" : "mutual"),
               options.authenticator
                   ? absl::StrCat(options.authenticator->size(), " tokens")
                   : std::string("off (development mode)"));
}

int DebiasServer::port() const { return impl_->port; }

int DebiasServer::metrics_port() const {
  return impl_->metrics_http ? impl_->metrics_http->port() : 0;
}

absl::Status DebiasServer::ReloadTokens() {
  if (!impl_->options.authenticator) {
    return absl::FailedPreconditionError("no --auth_tokens file: nothing to reload");
  }
  return impl_->options.authenticator->Reload();
}

void DebiasServer::Wait() { impl_->server->Wait(); }

void DebiasServer::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock l(&impl_->mu);
    if (impl_->shut_down) return;
    impl_->shut_down = true;
  }
  spdlog::info("debiasd shutting down");
  impl_->server->GetHealthCheckService()->SetServingStatus(false);
  impl_->server->Shutdown(std::chrono::system_clock::now() +
                          absl::ToChronoMilliseconds(grace));
  impl_->server->Wait();
  if (impl_->metrics_http) impl_->metrics_http->Stop();
  impl_->repository.reset();  // stops the poller before the models go
  impl_->models.reset();  // cancels and joins training jobs
  impl_->store.reset();   // flushes and closes RocksDB
  spdlog::info("debiasd stopped");
}

}  // namespace debias::server
