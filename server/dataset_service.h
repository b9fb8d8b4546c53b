// DatasetService: the gRPC adapter over core/store. Each handler validates
// the request, converts it, calls the store and maps the status.
#ifndef DEBIAS_SERVER_DATASET_SERVICE_H_
#define DEBIAS_SERVER_DATASET_SERVICE_H_

#include "core/store/interaction_store.h"
#include "debias/v1/dataset_service.grpc.pb.h"
#include "server/options.h"

namespace debias::server {

class DatasetServiceImpl final : public v1::DatasetService::Service {
 public:
  DatasetServiceImpl(store::InteractionStore* store, const ServerOptions& options)
      : store_(store), options_(options) {}

  grpc::Status CreateDataset(grpc::ServerContext*, const v1::CreateDatasetRequest*,
                             v1::Dataset*) override;
  grpc::Status ListDatasets(grpc::ServerContext*, const v1::ListDatasetsRequest*,
                            v1::ListDatasetsResponse*) override;
  grpc::Status GetDataset(grpc::ServerContext*, const v1::GetDatasetRequest*,
                          v1::Dataset*) override;
  grpc::Status DeleteDataset(grpc::ServerContext*, const v1::DeleteDatasetRequest*,
                             v1::DeleteDatasetResponse*) override;
  grpc::Status Ingest(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::IngestResponse, v1::IngestRequest>*) override;
  grpc::Status GetStats(grpc::ServerContext*, const v1::GetStatsRequest*,
                        v1::DatasetStats*) override;
  grpc::Status Export(grpc::ServerContext*, const v1::ExportRequest*,
                      grpc::ServerWriter<v1::ExportResponse>*) override;

 private:
  store::InteractionStore* store_;  // not owned
  const ServerOptions& options_;
};

// The feedback kind a dataset trains as by default: the recorded one, else
// clicklog when events carry positions, explicit when some label is 0,
// implicit otherwise.
std::string EffectiveFeedback(const std::string& recorded, const data::DatasetStats& s);

}  // namespace debias::server

#endif  // DEBIAS_SERVER_DATASET_SERVICE_H_
