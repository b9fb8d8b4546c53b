#include "server/server.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/store/interaction_store.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/grpcpp.h"
#include "server/dataset_service.h"
#include "server/model_manager.h"
#include "server/model_services.h"
#include "spdlog/spdlog.h"

namespace debias::server {

struct DebiasServer::Impl {
  ServerOptions options;
  std::unique_ptr<store::InteractionStore> store;
  std::unique_ptr<DatasetServiceImpl> datasets;
  std::unique_ptr<ModelManager> models;
  std::unique_ptr<ModelServiceImpl> model_service;
  std::unique_ptr<ScoringServiceImpl> scoring_service;
  std::unique_ptr<EvaluationServiceImpl> evaluation_service;
  std::unique_ptr<grpc::Server> server;
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
  store::StoreOptions so;
  so.path = options.data_dir;
  so.sync = options.sync;
  auto st = store::InteractionStore::Open(so);
  if (!st.ok()) return st.status();
  impl->store = std::move(*st);
  impl->datasets = std::make_unique<DatasetServiceImpl>(impl->store.get(), impl->options);
  impl->models = std::make_unique<ModelManager>(
      impl->store.get(), ModelManager::Options{impl->options.limits.max_training_jobs});
  impl->model_service = std::make_unique<ModelServiceImpl>(impl->models.get(), impl->options);
  impl->scoring_service = std::make_unique<ScoringServiceImpl>(
      impl->models.get(), impl->store.get(), impl->options);
  impl->evaluation_service = std::make_unique<EvaluationServiceImpl>(
      impl->models.get(), impl->store.get(), impl->options);

  grpc::EnableDefaultHealthCheckService(true);
  if (options.reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &impl->port);
  builder.SetMaxReceiveMessageSize(options.limits.max_message_bytes);
  builder.SetMaxSendMessageSize(options.limits.max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             options.limits.max_concurrent_streams);
  builder.RegisterService(impl->datasets.get());
  builder.RegisterService(impl->model_service.get());
  builder.RegisterService(impl->scoring_service.get());
  builder.RegisterService(impl->evaluation_service.get());
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot listen on '", options.listen,
                     "' (address in use, or not host:port?)"));
  }
  impl->server->GetHealthCheckService()->SetServingStatus(true);
  spdlog::info("debiasd serving on port {} (data_dir={}, sync={})", impl->port,
               options.data_dir, options.sync);
  return std::unique_ptr<DebiasServer>(new DebiasServer(std::move(impl)));
}

int DebiasServer::port() const { return impl_->port; }

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
  impl_->models.reset();  // cancels and joins training jobs
  impl_->store.reset();   // flushes and closes RocksDB
  spdlog::info("debiasd stopped");
}

}  // namespace debias::server
