// debias::Client: the C++ client library for debiasd.
//
// Every call returns absl::Status(Or) with the server's gRPC status code and
// message. A Client is thread-safe; calls may run concurrently.
#ifndef DEBIAS_CLIENT_CLIENT_H_
#define DEBIAS_CLIENT_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/interaction.h"
#include "debias/v1/admin_service.grpc.pb.h"
#include "debias/v1/dataset_service.grpc.pb.h"
#include "debias/v1/evaluation_service.grpc.pb.h"
#include "debias/v1/model_service.grpc.pb.h"
#include "debias/v1/scoring_service.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace debias {

struct ClientOptions {
  // Per-call deadline for unary calls (streams get none unless set).
  std::chrono::milliseconds timeout{30000};
  int max_message_bytes = 64 << 20;
  // Open a connection of this client's own instead of sharing one with
  // other channels to the same target (load generators use several).
  bool own_connection = false;
  // Bearer token sent with every call (debiasd --auth_tokens); empty = none.
  std::string token;
  // TLS: use it when tls_ca is set (PEM CA that signed the server's
  // certificate); tls_cert/tls_key add a client certificate (mutual TLS);
  // tls_server_name overrides the name checked against the certificate.
  std::string tls_ca, tls_cert, tls_key, tls_server_name;
  // gRPC load-balancing policy: "" = gRPC's default (pick_first: one
  // connection, one server), "round_robin" = every call to the next ready
  // address of the target (e.g. "ipv4:127.0.0.1:7001,127.0.0.1:7002" or
  // "dns:///scoring.debias.svc:50051"). With a policy set, the channel also
  // watches each address's health (grpc.health.v1) and skips those not
  // SERVING, so a replica still warming up gets no calls.
  std::string lb_policy;
  // Retry UNAVAILABLE (up to 5 attempts, 50 ms to 1 s backoff) on calls that
  // do not change state (Score, TopK, BatchScore, GetPropensities, Evaluate,
  // GetModel, ListModels, GetModelLabels, ...), so a replica that dies costs
  // no failed call when another one is up. gRPC's retry policy, set through
  // the channel's service config.
  bool retry_unavailable = true;
};

// The channel service config ClientOptions asks for (load-balancing policy
// and retry policy), as JSON; "" when it asks for neither.
std::string ServiceConfigJson(const ClientOptions& options);

// Parses a model reference as debiasctl writes it: "12" (an id), "rec" (a
// name: its stable label, else its latest ready version), "rec:3" (a
// version), "rec@canary" (a label). INVALID_ARGUMENT naming `s` otherwise
// (names and labels as in ModelRef: [a-z0-9][a-z0-9._-]{0,62}).
absl::StatusOr<v1::ModelRef> ParseModelRef(const std::string& s);
// "12", "rec", "rec:3" or "rec@canary" again.
std::string ModelRefString(const v1::ModelRef& ref);

struct IngestOptions {
  size_t batch_size = 8192;  // events per message
  bool create_if_missing = true;
  // Called after each acknowledged batch with (acknowledged, total).
  std::function<void(uint64_t, uint64_t)> on_progress;
};

struct IngestSummary {
  // Events the server confirmed as durable, even when `status` is an error.
  uint64_t events_acknowledged = 0;
  // Of those, stored as new events and duplicates that added nothing (an
  // event id already stored with the same content; IngestResponse).
  uint64_t events_stored = 0;
  uint64_t events_duplicate = 0;
  uint64_t data_version = 0;
  absl::Status status;
};

class Client {
 public:
  // Connects lazily to `target` ("host:port").
  // With TLS options, unreadable PEM files make every call fail with
  // UNAVAILABLE naming the file.
  static std::unique_ptr<Client> Connect(const std::string& target,
                                         const ClientOptions& options = {});
  explicit Client(std::shared_ptr<grpc::Channel> channel, const ClientOptions& options = {});

  // grpc.health.v1 Check of the whole server: OK when SERVING.
  absl::Status Health();

  absl::StatusOr<v1::Dataset> CreateDataset(const std::string& name,
                                            const std::string& description = "",
                                            const std::string& feedback = "",
                                            const std::string& dedup = "");
  absl::StatusOr<std::vector<v1::Dataset>> ListDatasets();
  absl::StatusOr<v1::Dataset> GetDataset(const std::string& name);
  absl::StatusOr<uint64_t> DeleteDataset(const std::string& name);
  absl::StatusOr<v1::DatasetStats> GetStats(const std::string& name);

  // Streams `events` in batches, pipelining sends with acknowledgements.
  IngestSummary Ingest(const std::string& dataset, std::span<const data::Interaction> events,
                       const IngestOptions& options = {});

  // Calls `sink` with each exported batch; stops early if it returns false.
  absl::Status Export(const std::string& dataset,
                      const std::function<bool(const v1::ExportResponse&)>& sink,
                      uint32_t batch_size = 0);

  // --- Models (request messages as in proto/debias/v1) -----------------
  // Starts training and blocks until the job ends; `on_event` sees every
  // event (started, progress). Returns the final model, whose state may be
  // "failed" or "cancelled" (with its error). With `timeout`, the call ends
  // with DEADLINE_EXCEEDED at that point and the server cancels the job
  // (unless request.detach).
  absl::StatusOr<v1::Model> Train(const v1::TrainRequest& request,
                                  const std::function<void(const v1::TrainEvent&)>& on_event = {},
                                  std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  absl::StatusOr<std::vector<v1::Model>> ListModels(const std::string& dataset = "");
  absl::StatusOr<v1::Model> GetModel(uint64_t id);
  absl::StatusOr<v1::Model> GetModel(const v1::ModelRef& ref);
  // Moves (version >= 1) or removes (version 0) a label of a model name.
  absl::StatusOr<v1::ModelLabels> SetModelLabel(const std::string& name, const std::string& label,
                                                uint64_t version);
  absl::StatusOr<v1::ModelLabels> GetModelLabels(const std::string& name);
  absl::Status DeleteModel(uint64_t id);
  absl::StatusOr<v1::Model> CancelTraining(uint64_t id);
  absl::StatusOr<v1::ListMethodsResponse> ListMethods();
  // Starts a detached training job (TrainRequest.detach is set) and returns
  // its model id as soon as the server has started it.
  absl::StatusOr<uint64_t> StartTraining(v1::TrainRequest request);
  // A ready model as a snapshot file (header and parameters in one message;
  // the parameters' size and CRC-32C are checked on arrival).
  absl::StatusOr<v1::ModelSnapshotFile> ExportModel(uint64_t id);
  absl::StatusOr<v1::ModelSnapshotFile> ExportModel(const v1::ModelRef& ref);
  absl::StatusOr<v1::ModelSnapshotFile> ExportModel(const v1::ExportModelRequest& request);
  // Streams a snapshot to the server (header, then 1 MiB parameter chunks);
  // returns the new model.
  absl::StatusOr<v1::Model> ImportModel(const v1::ModelSnapshotFile& snapshot);

  // --- Admin -----------------------------------------------------------
  absl::StatusOr<v1::BackupResponse> Backup(const std::string& name);

  // --- Scoring and evaluation -----------------------------------------------
  absl::StatusOr<v1::ScoreResponse> Score(const v1::ScoreRequest& request);
  absl::StatusOr<v1::TopKResponse> TopK(const v1::TopKRequest& request);
  absl::StatusOr<v1::BatchScoreResponse> BatchScore(const v1::BatchScoreRequest& request);
  // Reads the whole BatchTopK stream: one UserTopK per requested user, in
  // request order. `retrieval`, when given, receives the path that answered.
  absl::StatusOr<std::vector<v1::UserTopK>> BatchTopK(const v1::BatchTopKRequest& request,
                                                      std::string* retrieval = nullptr);
  absl::StatusOr<v1::GetPropensitiesResponse> GetPropensities(
      const v1::GetPropensitiesRequest& request);
  absl::StatusOr<v1::SampleNegativesResponse> SampleNegatives(
      const v1::SampleNegativesRequest& request);
  absl::StatusOr<v1::EvaluateResponse> Evaluate(const v1::EvaluateRequest& request);

  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

 private:
  // Adds the deadline and the token.
  void SetDeadline(grpc::ClientContext* ctx) const;
  // Adds the bearer token, if any.
  void Authenticate(grpc::ClientContext* ctx) const;
  std::shared_ptr<grpc::Channel> channel_;
  ClientOptions options_;
  template <typename Req, typename Resp, typename Call>
  absl::StatusOr<Resp> Unary(const Req& req, Call call);
  std::unique_ptr<v1::DatasetService::Stub> datasets_;
  std::unique_ptr<v1::ModelService::Stub> models_;
  std::unique_ptr<v1::ScoringService::Stub> scoring_;
  std::unique_ptr<v1::EvaluationService::Stub> evaluation_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

}  // namespace debias

#endif  // DEBIAS_CLIENT_CLIENT_H_
