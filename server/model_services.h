// ModelService, ScoringService and EvaluationService: gRPC adapters over
// ModelManager and core/eval. Each handler validates the request, converts
// it, calls core and maps the status (server/status_util.h).
#ifndef DEBIAS_SERVER_MODEL_SERVICES_H_
#define DEBIAS_SERVER_MODEL_SERVICES_H_

#include "debias/v1/evaluation_service.grpc.pb.h"
#include "debias/v1/model_service.grpc.pb.h"
#include "debias/v1/scoring_service.grpc.pb.h"
#include "core/samplers/sampler_cache.h"
#include "server/model_manager.h"
#include "server/options.h"

namespace debias::server {

// Converts a stored record to the wire message; `models`, when given, adds
// the labels that point at the record's version.
void RecordToProto(const store::ModelRecord& r, v1::Model* out, ModelManager* models = nullptr);

// The checks of a model snapshot (ImportModel, the model repository): the
// header's format (FAILED_PRECONDITION for one this server does not read),
// size limit and record (INVALID_ARGUMENT naming the field); returns the
// record with its key tables.
absl::StatusOr<store::ModelRecord> CheckSnapshotHeader(const v1::ModelSnapshotHeader& header,
                                                       int64_t max_import_bytes);
// The parameters' size and CRC-32C against the header's (INVALID_ARGUMENT).
absl::Status CheckSnapshotParameters(const v1::ModelSnapshotHeader& header, uint64_t bytes,
                                     uint32_t crc32c);

class ModelServiceImpl final : public v1::ModelService::Service {
 public:
  ModelServiceImpl(ModelManager* models, const ServerOptions& options)
      : models_(models), options_(options) {}
  grpc::Status Train(grpc::ServerContext*, const v1::TrainRequest*,
                     grpc::ServerWriter<v1::TrainEvent>*) override;
  grpc::Status ListModels(grpc::ServerContext*, const v1::ListModelsRequest*,
                          v1::ListModelsResponse*) override;
  grpc::Status GetModel(grpc::ServerContext*, const v1::GetModelRequest*, v1::Model*) override;
  grpc::Status DeleteModel(grpc::ServerContext*, const v1::DeleteModelRequest*,
                           v1::DeleteModelResponse*) override;
  grpc::Status CancelTraining(grpc::ServerContext*, const v1::CancelTrainingRequest*,
                              v1::Model*) override;
  grpc::Status ListMethods(grpc::ServerContext*, const v1::ListMethodsRequest*,
                           v1::ListMethodsResponse*) override;
  grpc::Status ExportModel(grpc::ServerContext*, const v1::ExportModelRequest*,
                           grpc::ServerWriter<v1::ModelChunk>*) override;
  grpc::Status ImportModel(grpc::ServerContext*, grpc::ServerReader<v1::ModelChunk>*,
                           v1::Model*) override;
  grpc::Status SetModelLabel(grpc::ServerContext*, const v1::SetModelLabelRequest*,
                             v1::ModelLabels*) override;
  grpc::Status GetModelLabels(grpc::ServerContext*, const v1::GetModelLabelsRequest*,
                              v1::ModelLabels*) override;

 private:
  ModelManager* models_;
  const ServerOptions& options_;
};

class ScoringServiceImpl final : public v1::ScoringService::Service {
 public:
  ScoringServiceImpl(ModelManager* models, store::InteractionStore* store,
                     const ServerOptions& options)
      : models_(models), store_(store), options_(options) {}
  grpc::Status Score(grpc::ServerContext*, const v1::ScoreRequest*, v1::ScoreResponse*) override;
  grpc::Status TopK(grpc::ServerContext*, const v1::TopKRequest*, v1::TopKResponse*) override;
  grpc::Status BatchScore(grpc::ServerContext*, const v1::BatchScoreRequest*,
                          v1::BatchScoreResponse*) override;
  grpc::Status BatchTopK(grpc::ServerContext*, const v1::BatchTopKRequest*,
                         grpc::ServerWriter<v1::BatchTopKResponse>*) override;
  grpc::Status GetPropensities(grpc::ServerContext*, const v1::GetPropensitiesRequest*,
                               v1::GetPropensitiesResponse*) override;
  grpc::Status SampleNegatives(grpc::ServerContext*, const v1::SampleNegativesRequest*,
                               v1::SampleNegativesResponse*) override;

 private:
  ModelManager* models_;
  store::InteractionStore* store_;
  const ServerOptions& options_;
  // Samplers keyed by (dataset, data version, sampler, power, model); setting
  // one up is O(items) or more, a draw is O(1). Small and bounded.
  samplers::SamplerCache samplers_;
};

class EvaluationServiceImpl final : public v1::EvaluationService::Service {
 public:
  EvaluationServiceImpl(ModelManager* models, store::InteractionStore* store,
                        const ServerOptions& options)
      : models_(models), store_(store), options_(options) {}
  grpc::Status Evaluate(grpc::ServerContext*, const v1::EvaluateRequest*,
                        v1::EvaluateResponse*) override;

 private:
  ModelManager* models_;
  store::InteractionStore* store_;
  const ServerOptions& options_;
};

}  // namespace debias::server

#endif  // DEBIAS_SERVER_MODEL_SERVICES_H_
