#include "client/client.h"

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/util/crc32c.h"
#include "wire/convert.h"
#include "wire/status.h"

namespace debias {

namespace {

// The wire status as the client reports it. gRPC's own message for a
// message over the size limit says only that: add how to fix it.
absl::Status FromWire(const grpc::Status& s) {
  absl::Status out = FromGrpcStatus(s);
  if (absl::IsResourceExhausted(out) &&
      (absl::StrContains(out.message(), "larger than max") ||
       absl::StrContains(out.message(), "exceeds limit"))) {
    return absl::ResourceExhaustedError(absl::StrCat(
        out.message(),
        " (split the request: debiasctl --batch-size for ingest, fewer users or items per "
        "call; or start debiasd with a larger --max_message_bytes)"));
  }
  return out;
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream s;
  s << in.rdbuf();
  *out = s.str();
  return true;
}
bool ValidRefName(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  };
  if (!ok(s[0]) || s[0] == '.' || s[0] == '_' || s[0] == '-') return false;
  return std::all_of(s.begin(), s.end(), ok);
}
}  // namespace

std::string ServiceConfigJson(const ClientOptions& options) {
  std::vector<std::string> parts;
  if (!options.lb_policy.empty()) {
    parts.push_back(absl::StrCat("\"loadBalancingConfig\": [{\"", options.lb_policy, "\": {}}]"));
    // Client-side health checking (grpc.health.v1 Watch): a replica that is
    // up but NOT_SERVING (warming up its models) gets no calls.
    parts.push_back("\"healthCheckConfig\": {\"serviceName\": \"\"}");
  }
  if (options.retry_unavailable) {
    // Calls that change nothing on the server: safe to send again.
    static constexpr std::pair<const char*, const char*> kIdempotent[] = {
        {"debias.v1.ScoringService", ""},  // every scoring call
        {"debias.v1.EvaluationService", "Evaluate"},
        {"debias.v1.ModelService", "GetModel"},
        {"debias.v1.ModelService", "ListModels"},
        {"debias.v1.ModelService", "ListMethods"},
        {"debias.v1.ModelService", "GetModelLabels"},
        {"debias.v1.DatasetService", "ListDatasets"},
        {"debias.v1.DatasetService", "GetDataset"},
        {"debias.v1.DatasetService", "GetStats"},
        {"grpc.health.v1.Health", "Check"},
    };
    std::string names;
    for (const auto& [service, method] : kIdempotent) {
      absl::StrAppend(&names, names.empty() ? "" : ", ", "{\"service\": \"", service, "\"",
                      *method ? absl::StrCat(", \"method\": \"", method, "\"") : "", "}");
    }
    parts.push_back(absl::StrCat(
        "\"methodConfig\": [{\"name\": [", names,
        "], \"retryPolicy\": {\"maxAttempts\": 5, \"initialBackoff\": \"0.05s\", "
        "\"maxBackoff\": \"1s\", \"backoffMultiplier\": 2, "
        "\"retryableStatusCodes\": [\"UNAVAILABLE\"]}}]"));
  }
  if (parts.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < parts.size(); ++i) absl::StrAppend(&out, i ? ", " : "", parts[i]);
  return out + "}";
}

absl::StatusOr<v1::ModelRef> ParseModelRef(const std::string& s) {
  v1::ModelRef ref;
  uint64_t id = 0;
  if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (!absl::SimpleAtoi(s, &id) || id == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("model '", s, "': an id must be a number >= 1"));
    }
    ref.set_id(id);
    return ref;
  }
  const size_t at = s.find('@'), colon = s.find(':');
  std::string name = s.substr(0, std::min(at, colon));
  if (at != std::string::npos && colon != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", s, "': give NAME, NAME:VERSION or NAME@LABEL, not both"));
  }
  if (!ValidRefName(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", s, "': expected an id, NAME, NAME:VERSION or NAME@LABEL with NAME matching "
        "[a-z0-9][a-z0-9._-]{0,62}"));
  }
  ref.set_name(name);
  if (colon != std::string::npos) {
    uint64_t v = 0;
    if (!absl::SimpleAtoi(s.substr(colon + 1), &v) || v == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("model '", s, "': VERSION must be a number >= 1"));
    }
    ref.set_version(v);
  } else if (at != std::string::npos) {
    const std::string label = s.substr(at + 1);
    if (!ValidRefName(label)) {
      return absl::InvalidArgumentError(
          absl::StrCat("model '", s, "': LABEL must match [a-z0-9][a-z0-9._-]{0,62}"));
    }
    ref.set_label(label);
  }
  return ref;
}

std::string ModelRefString(const v1::ModelRef& ref) {
  if (ref.name().empty()) return absl::StrCat(ref.id());
  if (ref.version() != 0) return absl::StrCat(ref.name(), ":", ref.version());
  if (!ref.label().empty()) return absl::StrCat(ref.name(), "@", ref.label());
  return ref.name();
}

std::unique_ptr<Client> Client::Connect(const std::string& target,
                                        const ClientOptions& options) {
  grpc::ChannelArguments args;
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (!options.tls_ca.empty() || !options.tls_cert.empty()) {
    grpc::SslCredentialsOptions ssl;
    std::string bad;
    if (!options.tls_ca.empty() && !ReadFile(options.tls_ca, &ssl.pem_root_certs)) {
      bad = options.tls_ca;
    }
    if (!options.tls_cert.empty() && !ReadFile(options.tls_cert, &ssl.pem_cert_chain)) {
      bad = options.tls_cert;
    }
    if (!options.tls_key.empty() && !ReadFile(options.tls_key, &ssl.pem_private_key)) {
      bad = options.tls_key;
    }
    if (!bad.empty()) {
      // An unusable channel whose calls fail with UNAVAILABLE and the reason.
      auto channel = grpc::CreateChannel("unix:/nonexistent/debias-tls-file-" + bad,
                                         grpc::InsecureChannelCredentials());
      return std::make_unique<Client>(std::move(channel), options);
    }
    if (!options.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options.tls_server_name);
    }
    creds = grpc::SslCredentials(ssl);
  }
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  if (options.own_connection) args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  if (!options.lb_policy.empty()) args.SetLoadBalancingPolicyName(options.lb_policy);
  if (std::string config = ServiceConfigJson(options); !config.empty()) {
    args.SetServiceConfigJSON(config);
  }
  auto channel = grpc::CreateCustomChannel(target, creds, args);
  return std::make_unique<Client>(std::move(channel), options);
}

Client::Client(std::shared_ptr<grpc::Channel> channel, const ClientOptions& options)
    : channel_(std::move(channel)),
      options_(options),
      datasets_(v1::DatasetService::NewStub(channel_)),
      models_(v1::ModelService::NewStub(channel_)),
      scoring_(v1::ScoringService::NewStub(channel_)),
      evaluation_(v1::EvaluationService::NewStub(channel_)),
      admin_(v1::AdminService::NewStub(channel_)),
      health_(grpc::health::v1::Health::NewStub(channel_)) {}

void Client::Authenticate(grpc::ClientContext* ctx) const {
  if (!options_.token.empty()) ctx->AddMetadata("authorization", "Bearer " + options_.token);
}

void Client::SetDeadline(grpc::ClientContext* ctx) const {
  Authenticate(ctx);
  ctx->set_deadline(std::chrono::system_clock::now() + options_.timeout);
}

absl::Status Client::Health() {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  absl::Status s = FromWire(health_->Check(&ctx, req, &resp));
  if (!s.ok()) return s;
  if (resp.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return absl::UnavailableError(absl::StrCat(
        "server health is ",
        grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status())));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Dataset> Client::CreateDataset(const std::string& name,
                                                  const std::string& description,
                                                  const std::string& feedback,
                                                  const std::string& dedup) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::CreateDatasetRequest req;
  req.set_name(name);
  req.set_description(description);
  req.set_feedback(feedback);
  req.set_dedup(dedup);
  v1::Dataset resp;
  absl::Status s = FromWire(datasets_->CreateDataset(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<std::vector<v1::Dataset>> Client::ListDatasets() {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::ListDatasetsResponse resp;
  absl::Status s =
      FromWire(datasets_->ListDatasets(&ctx, v1::ListDatasetsRequest(), &resp));
  if (!s.ok()) return s;
  return std::vector<v1::Dataset>(resp.datasets().begin(), resp.datasets().end());
}

absl::StatusOr<v1::Dataset> Client::GetDataset(const std::string& name) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::GetDatasetRequest req;
  req.set_name(name);
  v1::Dataset resp;
  absl::Status s = FromWire(datasets_->GetDataset(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<uint64_t> Client::DeleteDataset(const std::string& name) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::DeleteDatasetRequest req;
  req.set_name(name);
  v1::DeleteDatasetResponse resp;
  absl::Status s = FromWire(datasets_->DeleteDataset(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp.events_deleted();
}

absl::StatusOr<v1::DatasetStats> Client::GetStats(const std::string& name) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::GetStatsRequest req;
  req.set_name(name);
  v1::DatasetStats resp;
  absl::Status s = FromWire(datasets_->GetStats(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp;
}

IngestSummary Client::Ingest(const std::string& dataset,
                             std::span<const data::Interaction> events,
                             const IngestOptions& options) {
  IngestSummary summary;
  grpc::ClientContext ctx;
  Authenticate(&ctx);
  auto stream = datasets_->Ingest(&ctx);
  const size_t batch = std::max<size_t>(1, options.batch_size);
  const uint64_t total = events.size();

  // Acknowledgements are read on a second thread so that sending never waits
  // for the server's round trip.
  absl::Mutex mu;
  uint64_t acked = 0, version = 0, stored = 0, duplicate = 0;
  std::thread reader([&] {
    v1::IngestResponse resp;
    while (stream->Read(&resp)) {
      {
        absl::MutexLock l(&mu);
        acked = resp.events_acknowledged();
        stored = resp.events_stored();
        duplicate = resp.events_duplicate();
        version = resp.data_version();
      }
      if (options.on_progress) options.on_progress(resp.events_acknowledged(), total);
    }
  });

  bool write_ok = true;
  v1::IngestRequest req;
  for (size_t off = 0; off < events.size() || off == 0; off += batch) {
    req.Clear();
    if (off == 0) {
      req.set_dataset(dataset);
      req.set_create_if_missing(options.create_if_missing);
    }
    const size_t end = std::min(events.size(), off + batch);
    for (size_t k = off; k < end; ++k) ToProto(events[k], req.add_events());
    if (!stream->Write(req)) {
      write_ok = false;
      break;
    }
    if (events.empty()) break;
  }
  if (write_ok) stream->WritesDone();
  reader.join();
  grpc::Status st = stream->Finish();
  summary.events_acknowledged = acked;
  summary.events_stored = stored;
  summary.events_duplicate = duplicate;
  summary.data_version = version;
  summary.status = FromWire(st);
  if (summary.status.ok() && acked != total) {
    summary.status = absl::DataLossError(absl::StrCat(
        "server acknowledged ", acked, " of ", total, " events"));
  }
  return summary;
}

absl::Status Client::Export(const std::string& dataset,
                            const std::function<bool(const v1::ExportResponse&)>& sink,
                            uint32_t batch_size) {
  grpc::ClientContext ctx;
  Authenticate(&ctx);
  v1::ExportRequest req;
  req.set_name(dataset);
  req.set_batch_size(batch_size);
  auto reader = datasets_->Export(&ctx, req);
  v1::ExportResponse resp;
  bool stopped = false;
  while (reader->Read(&resp)) {
    if (!sink(resp)) {
      stopped = true;
      ctx.TryCancel();
      break;
    }
  }
  grpc::Status st = reader->Finish();
  if (stopped && st.error_code() == grpc::StatusCode::CANCELLED) return absl::OkStatus();
  return FromWire(st);
}

template <typename Req, typename Resp, typename Call>
absl::StatusOr<Resp> Client::Unary(const Req& req, Call call) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  Resp resp;
  absl::Status s = FromWire(call(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<v1::Model> Client::Train(
    const v1::TrainRequest& request,
    const std::function<void(const v1::TrainEvent&)>& on_event,
    std::optional<std::chrono::milliseconds> timeout) {
  // No deadline unless asked: training takes as long as it takes. With one,
  // the call ends at the deadline and the server cancels the (non-detached)
  // job with it.
  grpc::ClientContext ctx;
  if (timeout) ctx.set_deadline(std::chrono::system_clock::now() + *timeout);
  Authenticate(&ctx);
  auto reader = models_->Train(&ctx, request);
  v1::TrainEvent ev;
  std::optional<v1::Model> finished;
  uint64_t model_id = 0;
  while (reader->Read(&ev)) {
    if (ev.has_started()) model_id = ev.started().model_id();
    if (ev.has_finished()) finished = ev.finished();
    if (on_event) on_event(ev);
  }
  absl::Status s = FromWire(reader->Finish());
  if (!s.ok()) return s;
  if (finished) return *finished;
  if (model_id != 0) return GetModel(model_id);
  return absl::InternalError("training stream ended without a model");
}

absl::StatusOr<std::vector<v1::Model>> Client::ListModels(const std::string& dataset) {
  v1::ListModelsRequest req;
  req.set_dataset(dataset);
  auto r = Unary<v1::ListModelsRequest, v1::ListModelsResponse>(
      req, [&](auto* c, const auto& q, auto* p) { return models_->ListModels(c, q, p); });
  if (!r.ok()) return r.status();
  return std::vector<v1::Model>(r->models().begin(), r->models().end());
}

absl::StatusOr<v1::Model> Client::GetModel(uint64_t id) {
  v1::GetModelRequest req;
  req.set_id(id);
  return Unary<v1::GetModelRequest, v1::Model>(
      req, [&](auto* c, const auto& q, auto* p) { return models_->GetModel(c, q, p); });
}

absl::StatusOr<v1::Model> Client::GetModel(const v1::ModelRef& ref) {
  v1::GetModelRequest req;
  *req.mutable_model() = ref;
  return Unary<v1::GetModelRequest, v1::Model>(
      req, [&](auto* c, const auto& q, auto* p) { return models_->GetModel(c, q, p); });
}

absl::StatusOr<v1::ModelLabels> Client::SetModelLabel(const std::string& name,
                                                      const std::string& label, uint64_t version) {
  v1::SetModelLabelRequest req;
  req.set_name(name);
  req.set_label(label);
  req.set_version(version);
  return Unary<v1::SetModelLabelRequest, v1::ModelLabels>(
      req, [&](auto* c, const auto& q, auto* p) { return models_->SetModelLabel(c, q, p); });
}

absl::StatusOr<v1::ModelLabels> Client::GetModelLabels(const std::string& name) {
  v1::GetModelLabelsRequest req;
  req.set_name(name);
  return Unary<v1::GetModelLabelsRequest, v1::ModelLabels>(
      req, [&](auto* c, const auto& q, auto* p) { return models_->GetModelLabels(c, q, p); });
}

absl::Status Client::DeleteModel(uint64_t id) {
  v1::DeleteModelRequest req;
  req.set_id(id);
  return Unary<v1::DeleteModelRequest, v1::DeleteModelResponse>(
             req, [&](auto* c, const auto& q, auto* p) { return models_->DeleteModel(c, q, p); })
      .status();
}

absl::StatusOr<v1::Model> Client::CancelTraining(uint64_t id) {
  v1::CancelTrainingRequest req;
  req.set_id(id);
  return Unary<v1::CancelTrainingRequest, v1::Model>(
      req, [&](auto* c, const auto& q, auto* p) { return models_->CancelTraining(c, q, p); });
}

absl::StatusOr<v1::ListMethodsResponse> Client::ListMethods() {
  return Unary<v1::ListMethodsRequest, v1::ListMethodsResponse>(
      v1::ListMethodsRequest(),
      [&](auto* c, const auto& q, auto* p) { return models_->ListMethods(c, q, p); });
}

absl::StatusOr<uint64_t> Client::StartTraining(v1::TrainRequest request) {
  request.set_detach(true);
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  auto reader = models_->Train(&ctx, request);
  v1::TrainEvent ev;
  uint64_t model_id = 0;
  if (reader->Read(&ev) && ev.has_started()) model_id = ev.started().model_id();
  if (model_id != 0) {
    ctx.TryCancel();  // detached: the job goes on
    reader->Finish();
    return model_id;
  }
  absl::Status s = FromWire(reader->Finish());
  if (!s.ok()) return s;
  return absl::InternalError("training stream ended before the job started");
}

absl::StatusOr<v1::ModelSnapshotFile> Client::ExportModel(uint64_t id) {
  v1::ExportModelRequest req;
  req.set_id(id);
  return ExportModel(req);
}

absl::StatusOr<v1::ModelSnapshotFile> Client::ExportModel(const v1::ModelRef& ref) {
  v1::ExportModelRequest req;
  *req.mutable_model() = ref;
  return ExportModel(req);
}

absl::StatusOr<v1::ModelSnapshotFile> Client::ExportModel(const v1::ExportModelRequest& req) {
  grpc::ClientContext ctx;  // no deadline: large models take a while
  Authenticate(&ctx);
  const std::string ref = req.has_model() ? ModelRefString(req.model()) : absl::StrCat(req.id());
  auto reader = models_->ExportModel(&ctx, req);
  v1::ModelSnapshotFile file;
  v1::ModelChunk chunk;
  bool header = false;
  std::string error;
  while (reader->Read(&chunk)) {
    if (chunk.has_header()) {
      if (header) error = "export stream: a second header";
      *file.mutable_header() = std::move(*chunk.mutable_header());
      header = true;
    } else {
      if (!header) error = "export stream: parameters before the header";
      file.mutable_parameters()->append(chunk.parameters());
    }
    if (!error.empty()) {
      ctx.TryCancel();
      break;
    }
  }
  absl::Status s = FromWire(reader->Finish());
  if (!error.empty()) return absl::DataLossError(error);
  if (!s.ok()) return s;
  if (!header) return absl::DataLossError("export stream: no header");
  const auto& h = file.header();
  if (file.parameters().size() != h.parameters_bytes() ||
      util::Crc32c(file.parameters()) != h.parameters_crc32c()) {
    return absl::DataLossError(absl::StrCat("model ", ref, ": received ", file.parameters().size(),
                                            " parameter bytes that do not match the header's "
                                            "size/CRC-32C"));
  }
  return file;
}

absl::StatusOr<v1::Model> Client::ImportModel(const v1::ModelSnapshotFile& snapshot) {
  grpc::ClientContext ctx;
  Authenticate(&ctx);
  v1::Model model;
  auto writer = models_->ImportModel(&ctx, &model);
  v1::ModelChunk chunk;
  *chunk.mutable_header() = snapshot.header();
  bool ok = writer->Write(chunk);
  constexpr size_t kChunk = 1 << 20;
  const std::string& params = snapshot.parameters();
  for (size_t off = 0; ok && off < params.size(); off += kChunk) {
    v1::ModelChunk c;
    c.set_parameters(params.substr(off, kChunk));
    ok = writer->Write(c);
  }
  writer->WritesDone();
  absl::Status s = FromWire(writer->Finish());
  if (!s.ok()) return s;
  return model;
}

absl::StatusOr<v1::BackupResponse> Client::Backup(const std::string& name) {
  v1::BackupRequest req;
  req.set_name(name);
  grpc::ClientContext ctx;  // no deadline: a checkpoint flushes the memtables first
  Authenticate(&ctx);
  v1::BackupResponse resp;
  absl::Status s = FromWire(admin_->Backup(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<v1::ScoreResponse> Client::Score(const v1::ScoreRequest& request) {
  return Unary<v1::ScoreRequest, v1::ScoreResponse>(
      request, [&](auto* c, const auto& q, auto* p) { return scoring_->Score(c, q, p); });
}

absl::StatusOr<v1::TopKResponse> Client::TopK(const v1::TopKRequest& request) {
  return Unary<v1::TopKRequest, v1::TopKResponse>(
      request, [&](auto* c, const auto& q, auto* p) { return scoring_->TopK(c, q, p); });
}

absl::StatusOr<v1::BatchScoreResponse> Client::BatchScore(const v1::BatchScoreRequest& request) {
  return Unary<v1::BatchScoreRequest, v1::BatchScoreResponse>(
      request, [&](auto* c, const auto& q, auto* p) { return scoring_->BatchScore(c, q, p); });
}

absl::StatusOr<std::vector<v1::UserTopK>> Client::BatchTopK(const v1::BatchTopKRequest& request,
                                                            std::string* retrieval) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  auto reader = scoring_->BatchTopK(&ctx, request);
  std::vector<v1::UserTopK> out;
  out.reserve(request.users_size());
  v1::BatchTopKResponse msg;
  while (reader->Read(&msg)) {
    for (auto& r : *msg.mutable_results()) out.push_back(std::move(r));
    if (retrieval != nullptr) *retrieval = msg.retrieval();
  }
  absl::Status s = FromWire(reader->Finish());
  if (!s.ok()) return s;
  if (out.size() != static_cast<size_t>(request.users_size())) {
    return absl::DataLossError(absl::StrCat("BatchTopK stream: ", out.size(), " results for ",
                                            request.users_size(), " users"));
  }
  return out;
}

absl::StatusOr<v1::GetPropensitiesResponse> Client::GetPropensities(
    const v1::GetPropensitiesRequest& request) {
  return Unary<v1::GetPropensitiesRequest, v1::GetPropensitiesResponse>(
      request,
      [&](auto* c, const auto& q, auto* p) { return scoring_->GetPropensities(c, q, p); });
}

absl::StatusOr<v1::SampleNegativesResponse> Client::SampleNegatives(
    const v1::SampleNegativesRequest& request) {
  return Unary<v1::SampleNegativesRequest, v1::SampleNegativesResponse>(
      request,
      [&](auto* c, const auto& q, auto* p) { return scoring_->SampleNegatives(c, q, p); });
}

absl::StatusOr<v1::EvaluateResponse> Client::Evaluate(const v1::EvaluateRequest& request) {
  return Unary<v1::EvaluateRequest, v1::EvaluateResponse>(
      request, [&](auto* c, const auto& q, auto* p) { return evaluation_->Evaluate(c, q, p); });
}

}  // namespace debias
