#include "server/model_services.h"

#include <cmath>

#include <algorithm>
#include <limits>
#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"
#include "core/eval/ranking_eval.h"
#include "core/models/model_registry.h"
#include "core/propensity/registry.h"
#include "core/retrieval/retriever.h"
#include "core/samplers/registry.h"
#include "core/train/registry.h"
#include "core/util/crc32c.h"
#include "google/protobuf/util/json_util.h"
#include "server/log_evaluation.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "wire/status.h"
#include "spdlog/spdlog.h"

namespace debias::server {
namespace {

using nlohmann::json;

void JsonToStruct(const json& j, google::protobuf::Struct* out) {
  if (!j.is_object()) return;
  // Invalid UTF-8 in a stored string (e.g. an error message that quotes
  // client bytes) is replaced rather than thrown out of the handler.
  (void)google::protobuf::util::JsonStringToMessage(
      j.dump(-1, ' ', false, json::error_handler_t::replace), out);
}

// Snapshot format written and read by ExportModel / ImportModel.
constexpr uint32_t kModelSnapshotFormat = 1;

absl::Status CheckModelId(uint64_t id) {
  if (id == 0) return absl::InvalidArgumentError("model_id=0: must be >= 1");
  return absl::OkStatus();
}

ModelRef FromProto(const v1::ModelRef& r) {
  return ModelRef{r.id(), r.name(), r.version(), r.label()};
}

// The model id a request asks for: its `model` reference when set, else its
// legacy id field (`field`, which must then be >= 1).
absl::StatusOr<uint64_t> RequestedModel(ModelManager* models, bool has_ref,
                                        const v1::ModelRef& ref, uint64_t legacy_id) {
  if (has_ref) return models->Resolve(FromProto(ref));
  if (legacy_id == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model_id=0: must be >= 1 (or give model: an id, name, version or label)"));
  }
  return legacy_id;
}
template <typename Req>
absl::StatusOr<uint64_t> RequestedModel(ModelManager* models, const Req& req) {
  return RequestedModel(models, req.has_model(), req.model(), req.model_id());
}

void SetServed(const store::ModelRecord& r, v1::ServedModel* out) {
  out->set_id(r.id);
  out->set_name(r.name);
  out->set_version(r.version);
}

void ProgressToProto(const json& p, v1::TrainProgress* out) {
  // A non-finite number is stored as JSON null: read it as NaN, never throw.
  auto num = [&](const char* key) {
    auto it = p.find(key);
    return it != p.end() && it->is_number() ? it->get<double>() : std::nan("");
  };
  out->set_epoch(p.value("epoch", 0));
  out->set_total_epochs(p.value("total_epochs", 0));
  out->set_loss(num("loss"));
  out->set_elapsed_seconds(std::isfinite(num("elapsed_seconds")) ? num("elapsed_seconds") : 0.0);
  if (p.contains("metrics") && p["metrics"].is_object()) {
    for (auto& [k, v] : p["metrics"].items()) {
      if (v.is_number()) (*out->mutable_metrics())[k] = v.get<double>();
    }
  }
}

// Model ids of `keys`, or NOT_FOUND naming the first unknown key.
absl::Status MapItems(const LoadedModel& m, const google::protobuf::RepeatedPtrField<std::string>& keys,
                      std::vector<uint32_t>* ids) {
  ids->resize(keys.size());
  // The index is far larger than the caches for big catalogues: start each
  // key's probe a few keys ahead so the misses overlap.
  constexpr int kAhead = 8;
  for (int k = 0; k < std::min(kAhead, keys.size()); ++k) m.item_index.prefetch(keys[k]);
  for (int k = 0; k < keys.size(); ++k) {
    if (k + kAhead < keys.size()) m.item_index.prefetch(keys[k + kAhead]);
    auto it = m.item_index.find(keys[k]);
    if (it == m.item_index.end()) {
      return absl::NotFoundError(absl::StrCat("items[", k, "]='", keys[k].substr(0, 200),
                                              "' is not known to model ", m.record.id));
    }
    (*ids)[k] = it->second;
  }
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> MapUser(const LoadedModel& m, const std::string& user) {
  if (user.empty()) return absl::InvalidArgumentError("user: required");
  auto it = m.user_index.find(user);
  if (it == m.user_index.end()) {
    return absl::NotFoundError(absl::StrCat("user '", user.substr(0, 200),
                                            "' is not known to model ", m.record.id));
  }
  return it->second;
}

// Scores feature candidates with a ranker.
absl::Status ScoreCandidates(const LoadedModel& m,
                             const google::protobuf::RepeatedPtrField<v1::Candidate>& cands,
                             std::vector<float>* scores) {
  const int dim = m.model->feature_dim();
  if (dim <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "candidates: model ", m.record.id, " scores user/item keys, not feature vectors"));
  }
  std::vector<float> features;
  features.reserve(static_cast<size_t>(cands.size()) * dim);
  for (int c = 0; c < cands.size(); ++c) {
    if (cands[c].features_size() != dim) {
      return absl::InvalidArgumentError(absl::StrCat("candidates[", c, "].features: ",
                                                     cands[c].features_size(),
                                                     " values; the model needs ", dim));
    }
    for (float f : cands[c].features()) {
      if (!std::isfinite(f)) {
        return absl::InvalidArgumentError(
            absl::StrCat("candidates[", c, "].features: must be finite"));
      }
      features.push_back(f);
    }
  }
  scores->resize(cands.size());
  return m.model->ScoreFeatures(features, *scores);
}

absl::Status CheckK(uint32_t k, const Limits& limits) {
  if (k < 1 || k > static_cast<uint32_t>(limits.max_k)) {
    return absl::InvalidArgumentError(absl::StrCat("k=", k, ": must be in [1, ", limits.max_k, "]"));
  }
  return absl::OkStatus();
}

// A retrieval error with the model it concerns ("model 7: retrieval=...").
absl::Status NameModel(const LoadedModel& m, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat("model ", m.record.id, ": ", s.message()));
}

// Indices of the k largest scores, best first (ties by index).
std::vector<uint32_t> TopIndices(const std::vector<float>& scores, size_t k) {
  std::vector<uint32_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  auto better = [&](uint32_t a, uint32_t b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  };
  k = std::min(k, idx.size());
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), better);
  idx.resize(k);
  return idx;
}

}  // namespace

void RecordToProto(const store::ModelRecord& r, v1::Model* out, ModelManager* models) {
  out->set_id(r.id);
  out->set_name(r.name);
  out->set_version(r.version);
  if (models != nullptr) {
    for (auto& l : models->LabelsOf(r.name, r.version)) out->add_labels(std::move(l));
  }
  out->set_dataset(r.dataset);
  out->set_data_version(r.data_version);
  out->set_state(std::string(store::ModelStateName(r.state)));
  JsonToStruct(r.spec, out->mutable_spec());
  JsonToStruct(r.metrics, out->mutable_metrics());
  JsonToStruct(r.diagnostics, out->mutable_diagnostics());
  // The stored code names the kind of error; old records without one keep
  // their text as it was written.
  out->set_error(r.error_code != 0
                     ? absl::StrCat(absl::StatusCodeToString(
                                        static_cast<absl::StatusCode>(r.error_code)),
                                    ": ", r.error)
                     : r.error);
  if (r.error_code != 0) {
    out->set_error_code(
        absl::StatusCodeToString(static_cast<absl::StatusCode>(r.error_code)));
  }
  out->set_create_time_unix_ms(r.create_time_unix_ms);
  out->set_finish_time_unix_ms(r.finish_time_unix_ms);
  for (const json& p : r.progress) ProgressToProto(p, out->add_progress());
  out->set_users(r.user_keys.size());
  out->set_items(r.item_keys.size());
}

absl::StatusOr<store::ModelRecord> CheckSnapshotHeader(const v1::ModelSnapshotHeader& h,
                                                       int64_t max_import_bytes) {
  if (h.format_version() != kModelSnapshotFormat) {
    return absl::FailedPreconditionError(absl::StrCat(
        "format_version=", h.format_version(), ": this server reads snapshot format ",
        kModelSnapshotFormat));
  }
  if (h.parameters_bytes() == 0 || h.parameters_bytes() > static_cast<uint64_t>(max_import_bytes)) {
    return absl::InvalidArgumentError(absl::StrCat("parameters_bytes=", h.parameters_bytes(),
                                                   ": must be in [1, ", max_import_bytes,
                                                   "] (max_import_bytes)"));
  }
  auto record = store::DecodeModelRecord(h.record_json());
  if (!record.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("record_json: ", record.status().message()));
  }
  if (record->state != store::ModelState::kReady) {
    return absl::InvalidArgumentError(absl::StrCat(
        "record_json: state '", std::string(store::ModelStateName(record->state)),
        "'; only ready models can be imported"));
  }
  record->user_keys.assign(h.user_keys().begin(), h.user_keys().end());
  record->item_keys.assign(h.item_keys().begin(), h.item_keys().end());
  return record;
}

absl::Status CheckSnapshotParameters(const v1::ModelSnapshotHeader& h, uint64_t bytes,
                                     uint32_t crc32c) {
  if (bytes != h.parameters_bytes()) {
    return absl::InvalidArgumentError(absl::StrCat("parameters: ", bytes,
                                                   " bytes received, the header says ",
                                                   h.parameters_bytes(), " (truncated snapshot?)"));
  }
  if (crc32c != h.parameters_crc32c()) {
    return absl::InvalidArgumentError(absl::StrCat("parameters: CRC-32C ", crc32c,
                                                   " does not match the header's ",
                                                   h.parameters_crc32c(), " (corrupt snapshot)"));
  }
  return absl::OkStatus();
}

// --- ModelService -------------------------------------------------------------

grpc::Status ModelServiceImpl::Train(grpc::ServerContext* ctx, const v1::TrainRequest* req,
                                     grpc::ServerWriter<v1::TrainEvent>* writer) {
  return Serve(options_, ctx, Role::kWriter, [&]() -> absl::Status {
    if (auto s = store::ValidateDatasetName(req->dataset()); !s.ok()) return s;
    if (req->loss().empty())
      return absl::InvalidArgumentError("loss: required (see ListMethods)");
    for (auto [field, value] : {std::pair{"loss", &req->loss()},
                                std::pair{"propensity", &req->propensity()},
                                std::pair{"feedback", &req->feedback()}}) {
      if (auto s = CheckName(field, *value); !s.ok()) return s;
    }
    if (!req->name().empty()) {
      if (auto s = store::ValidateModelName(req->name(), "name"); !s.ok())
        return s;
    }
    if (!req->mar_dataset().empty()) {
      if (auto s = store::ValidateDatasetName(req->mar_dataset()); !s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("mar_dataset: ", s.message()));
      }
    }
    if (req->has_clip() && !(req->clip() > 0.0 && req->clip() <= 1.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("clip=", req->clip(), ": must be in (0, 1]"));
    }
    if (req->has_threshold() && !std::isfinite(req->threshold())) {
      return absl::InvalidArgumentError("threshold: must be finite");
    }
    if (req->params_size() > options_.limits.max_params) {
      return absl::InvalidArgumentError(
          absl::StrCat("params: ", req->params_size(), " entries; at most ",
                       options_.limits.max_params, " allowed"));
    }
    TrainJobRequest job;
    job.name = req->name();
    job.dataset = req->dataset();
    job.mar_dataset = req->mar_dataset();
    if (req->has_holdout()) job.holdout = req->holdout();
    job.feedback = req->feedback();
    job.request_id = RequestId(ctx);
    const std::string job_request_id = job.request_id;
    job.spec.loss = req->loss();
    job.spec.propensity = req->propensity();
    if (req->has_clip()) job.spec.clip = req->clip();
    if (req->has_threshold()) job.spec.threshold = req->threshold();
    job.spec.seed = req->seed();
    for (const auto& [k, v] : req->params()) {
      if (k.empty() || k.size() > 128 || v.size() > 4096) {
        return absl::InvalidArgumentError(absl::StrCat(
            "params['", k.substr(0, 128),
            "']: keys must be 1-128 bytes and values at most 4096"));
      }
      job.spec.params[k] = v;
    }
    auto id = models_->StartTraining(std::move(job));
    if (!id.ok()) return id.status();
    // The caller went away (cancel, deadline, broken connection): the job
    // stops with it unless the request detached it.
    auto caller_gone = [&](std::string_view why) {
      if (!req->detach()) {
        absl::Status s = models_->Cancel(*id);
        spdlog::info("model {}: {}; {} (request_id={})", *id, why,
                     s.ok() ? "job cancelled" : "job already ended",
                     job_request_id);
        return absl::CancelledError(absl::StrCat(
            std::string(why), "; training job ", *id, " cancelled"));
      }
      return absl::CancelledError(absl::StrCat(
          std::string(why), "; detached training job ", *id, " goes on"));
    };
    v1::TrainEvent started;
    started.mutable_started()->set_model_id(*id);
    if (!writer->Write(started)) return caller_gone("client went away");

    size_t sent = 0;
    while (true) {
      if (ctx->IsCancelled())
        return caller_gone("call cancelled or deadline exceeded");
      auto update = models_->WaitForUpdate(*id, sent, absl::Milliseconds(100));
      if (!update.ok()) return update.status();
      const auto& progress = update->record.progress;
      for (; sent < progress.size(); ++sent) {
        v1::TrainEvent ev;
        ProgressToProto(progress[sent], ev.mutable_progress());
        if (!writer->Write(ev)) return caller_gone("client went away");
      }
      if (update->finished) {
        auto final_record = models_->GetRecord(*id);
        const store::ModelRecord& rec =
            final_record.ok() ? *final_record : update->record;
        // Hyperparameters are parsed by the trainer when the job starts: a job
        // that failed on them before its first epoch is the caller's bad
        // request, answered as such (the failed record stays for inspection).
        if (rec.state == store::ModelState::kFailed && rec.progress.empty() &&
            rec.error_code ==
                static_cast<int>(absl::StatusCode::kInvalidArgument)) {
          return absl::InvalidArgumentError(
              absl::StrCat(rec.error, " (model ", *id, " recorded as failed)"));
        }
        v1::TrainEvent ev;
        RecordToProto(rec, ev.mutable_finished(), models_);
        writer->Write(ev);
        return absl::OkStatus();
      }
    }
  });
}

grpc::Status ModelServiceImpl::ListModels(grpc::ServerContext* ctx, const v1::ListModelsRequest* req,
                                          v1::ListModelsResponse* resp) {
  return Serve(options_, ctx, Role::kReader, [&]() -> absl::Status {
    for (const auto& r : models_->ListRecords()) {
      if (!req->dataset().empty() && r.dataset != req->dataset()) continue;
      RecordToProto(r, resp->add_models(), models_);
    }
    return absl::OkStatus();
  });
}

grpc::Status ModelServiceImpl::GetModel(grpc::ServerContext* ctx, const v1::GetModelRequest* req,
                                        v1::Model* resp) {
  return Serve(options_, ctx, Role::kReader, [&]() -> absl::Status {
    auto model_id =
        RequestedModel(models_, req->has_model(), req->model(), req->id());
    if (!model_id.ok()) return model_id.status();
    auto r = models_->GetRecord(*model_id);
    if (!r.ok()) return r.status();
    RecordToProto(*r, resp, models_);
    return absl::OkStatus();
  });
}

grpc::Status ModelServiceImpl::DeleteModel(grpc::ServerContext* ctx,
                                           const v1::DeleteModelRequest* req,
                                           v1::DeleteModelResponse*) {
  return Serve(options_, ctx, Role::kAdmin, [&]() -> absl::Status {
    if (auto s = CheckModelId(req->id()); !s.ok()) return s;
    return models_->Delete(req->id());
  });
}

grpc::Status ModelServiceImpl::CancelTraining(grpc::ServerContext* ctx,
                                              const v1::CancelTrainingRequest* req,
                                              v1::Model* resp) {
  return Serve(options_, ctx, Role::kWriter, [&]() -> absl::Status {
    if (auto s = CheckModelId(req->id()); !s.ok()) return s;
    if (auto s = models_->Cancel(req->id()); !s.ok()) return s;
    auto r = models_->GetRecord(req->id());
    if (!r.ok()) return r.status();
    RecordToProto(*r, resp, models_);
    return absl::OkStatus();
  });
}

namespace {

// A parameter schema (the reader's record) as ListMethods sends it.
void AddParams(const std::vector<util::ParamSpec>& params, const std::string& feedback,
               v1::MethodParams* set) {
  set->set_feedback(feedback);
  for (const util::ParamSpec& p : params) {
    v1::MethodParam* mp = set->add_params();
    mp->set_name(p.name);
    mp->set_type(p.type);
    mp->set_default_value(p.default_value);
    mp->set_range(p.range);
    mp->set_doc(p.doc);
    for (const auto& a : p.aliases) mp->add_aliases(a);
  }
}

}  // namespace

grpc::Status ModelServiceImpl::ListMethods(grpc::ServerContext* ctx, const v1::ListMethodsRequest*,
                                           v1::ListMethodsResponse* resp) {
  return Serve(options_, ctx, Role::kReader, [&]() -> absl::Status {
    for (const auto& t : train::Trainers()) {
      auto* m = resp->add_methods();
      m->set_kind("loss");
      m->set_name(std::string(t.name));
      m->set_description(std::string(t.description));
      for (auto k : t.feedback) {
        m->add_feedback(std::string(train::FeedbackKindName(k)));
        AddParams(train::MethodParams(t, k), std::string(train::FeedbackKindName(k)),
                  m->add_params());
      }
    }
    for (const auto& e : propensity::Estimators()) {
      auto* m = resp->add_methods();
      m->set_kind("propensity");
      m->set_name(std::string(e.name));
      m->set_description(std::string(e.description));
      std::vector<util::ParamSpec> params = propensity::EstimatorParams(e.name);
      if (!params.empty()) AddParams(params, "", m->add_params());
    }
    for (const auto& s : samplers::Samplers()) {
      auto* m = resp->add_methods();
      m->set_kind("sampler");
      m->set_name(std::string(s.name));
      m->set_description(std::string(s.description));
      std::vector<util::ParamSpec> params = samplers::SamplerParams(s.name);
      if (!params.empty()) AddParams(params, "", m->add_params());
    }
    return absl::OkStatus();
  });
}

grpc::Status ModelServiceImpl::ExportModel(grpc::ServerContext* ctx,
                                           const v1::ExportModelRequest* req,
                                           grpc::ServerWriter<v1::ModelChunk>* writer) {
  return Serve(options_, ctx, Role::kWriter, [&]() -> absl::Status {
    auto model_id =
        RequestedModel(models_, req->has_model(), req->model(), req->id());
    if (!model_id.ok()) return model_id.status();
    auto exported = models_->Export(*model_id);
    if (!exported.ok()) return exported.status();
    v1::ModelChunk head;
    v1::ModelSnapshotHeader* h = head.mutable_header();
    h->set_format_version(kModelSnapshotFormat);
    h->set_server_version(DEBIAS_VERSION);
    RecordToProto(exported->record, h->mutable_model());
    h->set_record_json(store::EncodeModelRecord(exported->record));
    for (const auto& k : exported->record.user_keys) h->add_user_keys(k);
    for (const auto& k : exported->record.item_keys) h->add_item_keys(k);
    const std::string& params = exported->parameters;
    h->set_parameters_bytes(params.size());
    h->set_parameters_crc32c(util::Crc32c(params));
    if (head.ByteSizeLong() >
        static_cast<size_t>(options_.limits.max_message_bytes)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "model ", *model_id, ": the snapshot header (key tables) is ",
          head.ByteSizeLong(), " bytes, over max_message_bytes=",
          options_.limits.max_message_bytes));
    }
    if (!writer->Write(head)) return absl::CancelledError("client went away");
    constexpr size_t kChunk = 1 << 20;
    for (size_t off = 0; off < params.size(); off += kChunk) {
      if (ctx->IsCancelled()) return absl::CancelledError("export cancelled");
      v1::ModelChunk c;
      c.set_parameters(params.substr(off, kChunk));
      if (!writer->Write(c)) return absl::CancelledError("client went away");
    }
    return absl::OkStatus();
  });
}

grpc::Status ModelServiceImpl::ImportModel(grpc::ServerContext* ctx,
                                           grpc::ServerReader<v1::ModelChunk>* reader,
                                           v1::Model* resp) {
  return Serve(options_, ctx, Role::kWriter, [&]() -> absl::Status {
    v1::ModelChunk chunk;
    if (!reader->Read(&chunk))
      return absl::InvalidArgumentError(
          "ImportModel: empty stream; the first chunk must be the header");
    if (!chunk.has_header())
      return absl::InvalidArgumentError("chunk 0: must be the header");
    const v1::ModelSnapshotHeader h = chunk.header();
    auto record = CheckSnapshotHeader(h, options_.limits.max_import_bytes);
    if (!record.ok()) return record.status();
    std::string params;
    uint32_t crc = 0;
    int n = 1;
    while (reader->Read(&chunk)) {
      if (ctx->IsCancelled()) return absl::CancelledError("import cancelled");
      if (!chunk.has_parameters())
        return absl::InvalidArgumentError(
            absl::StrCat("chunk ", n, ": a second header"));
      if (params.size() + chunk.parameters().size() > h.parameters_bytes()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "chunk ", n, ": more parameter bytes than the header's ",
            h.parameters_bytes()));
      }
      crc = util::Crc32c(chunk.parameters(), crc);
      params += chunk.parameters();
      ++n;
    }
    if (auto s = CheckSnapshotParameters(h, params.size(), crc); !s.ok())
      return s;
    ImportOptions import;
    import.name = h.import_name();
    import.version = h.import_version();
    if (import.name.empty() && import.version != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "import_version=", import.version, ": needs import_name"));
    }
    auto id =
        models_->Import(std::move(*record), params, h.server_version(), import);
    if (!id.ok()) return id.status();
    auto r = models_->GetRecord(*id);
    if (!r.ok()) return r.status();
    RecordToProto(*r, resp, models_);
    return absl::OkStatus();
  });
}

namespace {
void LabelsToProto(const NameLabels& l, v1::ModelLabels* out) {
  out->set_name(l.name);
  for (const auto& [label, version] : l.labels) (*out->mutable_labels())[label] = version;
  for (uint64_t v : l.versions) out->add_versions(v);
}
}  // namespace

grpc::Status ModelServiceImpl::SetModelLabel(grpc::ServerContext* ctx,
                                             const v1::SetModelLabelRequest* req,
                                             v1::ModelLabels* resp) {
  return Serve(options_, ctx, Role::kWriter, [&]() -> absl::Status {
    auto labels = models_->SetLabel(req->name(), req->label(), req->version());
    if (!labels.ok()) return labels.status();
    spdlog::info("model '{}': label '{}' -> version {} (request_id={})",
                 req->name(), req->label(), req->version(), RequestId(ctx));
    LabelsToProto(*labels, resp);
    return absl::OkStatus();
  });
}

grpc::Status ModelServiceImpl::GetModelLabels(grpc::ServerContext* ctx,
                                              const v1::GetModelLabelsRequest* req,
                                              v1::ModelLabels* resp) {
  return Serve(options_, ctx, Role::kReader, [&]() -> absl::Status {
    auto labels = models_->Labels(req->name());
    if (!labels.ok()) return labels.status();
    LabelsToProto(*labels, resp);
    return absl::OkStatus();
  });
}

// --- ScoringService -------------------------------------------------------------

grpc::Status ScoringServiceImpl::Score(grpc::ServerContext* ctx, const v1::ScoreRequest* req,
                                       v1::ScoreResponse* resp) {
  return Serve(options_, ctx, Role::kReader, [&]() -> absl::Status {
    auto model_id = RequestedModel(models_, *req);
    if (!model_id.ok()) return model_id.status();
    const int n = req->items_size() + req->candidates_size();
    const int max = options_.limits.max_candidates;
    if (n == 0)
      return absl::InvalidArgumentError(
          "items or candidates: give at least one");
    if (req->items_size() > 0 && req->candidates_size() > 0) {
      return absl::InvalidArgumentError(
          "items and candidates: give one or the other");
    }
    if (n > max) {
      return absl::InvalidArgumentError(
          absl::StrCat(req->items_size() ? "items: " : "candidates: ", n,
                       " given; max_candidates is ", max));
    }
    auto m = models_->Get(*model_id);
    if (!m.ok()) return m.status();
    SetServed((*m)->record, resp->mutable_served());
    std::vector<float> scores;
    if (req->candidates_size() > 0) {
      if (auto s = ScoreCandidates(**m, req->candidates(), &scores); !s.ok())
        return s;
    } else {
      auto u = MapUser(**m, req->user());
      if (!u.ok()) return u.status();
      std::vector<uint32_t> ids;
      if (auto s = MapItems(**m, req->items(), &ids); !s.ok()) return s;
      scores.resize(ids.size());
      (*m)->model->ScoreItems(*u, ids, scores);
    }
    resp->mutable_scores()->Assign(scores.begin(), scores.end());
    return absl::OkStatus();
  });
}

grpc::Status ScoringServiceImpl::TopK(grpc::ServerContext* ctx, const v1::TopKRequest* req,
                                      v1::TopKResponse* resp) {
  return Serve(options_, ctx, Role::kReader, [&]() -> absl::Status {
    auto model_id = RequestedModel(models_, *req);
    if (!model_id.ok()) return model_id.status();
    if (auto s = CheckK(req->k(), options_.limits); !s.ok()) return s;
    if (req->candidates_size() > options_.limits.max_candidates) {
      return absl::InvalidArgumentError(absl::StrCat(
          "candidates: ", req->candidates_size(), " given; max_candidates is ",
          options_.limits.max_candidates));
    }
    auto mode = retrieval::ParseMode(req->retrieval());
    if (!mode.ok()) return mode.status();
    if (req->candidates_size() > 0 && *mode == retrieval::Mode::kApproximate) {
      return absl::InvalidArgumentError(
          "retrieval=approximate: applies to a model's own items, not to "
          "candidates");
    }
    auto m = models_->Get(*model_id);
    if (!m.ok()) return m.status();
    const LoadedModel& lm = **m;
    SetServed(lm.record, resp->mutable_served());
    if (req->candidates_size() > 0) {
      std::vector<float> scores;
      if (auto s = ScoreCandidates(lm, req->candidates(), &scores); !s.ok())
        return s;
      for (uint32_t i : TopIndices(scores, req->k())) {
        resp->add_items(req->candidates(i).item());
        resp->add_scores(scores[i]);
      }
      return absl::OkStatus();
    }
    if (lm.retriever == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("model ", lm.record.id,
                       " is a ranker: give candidates with features"));
    }
    auto u = MapUser(lm, req->user());
    if (!u.ok()) return u.status();
    std::span<const uint32_t> seen;
    if (req->exclude_seen()) {
      auto all_seen = lm.Seen(store_);
      if (!all_seen.ok()) return all_seen.status();
      seen = (**all_seen)[*u];
    }
    auto top = lm.retriever->TopK(*u, req->k(), seen, *mode);
    if (!top.ok()) return NameModel(lm, top.status());
    for (const retrieval::ScoredItem& s : top->items) {
      resp->add_items(lm.record.item_keys[s.item]);
      resp->add_scores(s.score);
    }
    resp->set_retrieval(std::string(retrieval::ModeName(top->used)));
    return absl::OkStatus();
  });
}

grpc::Status ScoringServiceImpl::BatchTopK(grpc::ServerContext* ctx,
                                           const v1::BatchTopKRequest* req,
                                           grpc::ServerWriter<v1::BatchTopKResponse>* writer) {
  return Serve(options_, ctx, Role::kReader, [&]() -> absl::Status {
    auto model_id = RequestedModel(models_, *req);
    if (!model_id.ok()) return model_id.status();
    if (req->users_size() < 1 ||
        req->users_size() > options_.limits.max_batch_users) {
      return absl::InvalidArgumentError(
          absl::StrCat("users: ", req->users_size(), " given; must be in [1, ",
                       options_.limits.max_batch_users, "]"));
    }
    if (auto s = CheckK(req->k(), options_.limits); !s.ok()) return s;
    auto mode = retrieval::ParseMode(req->retrieval());
    if (!mode.ok()) return mode.status();
    auto m = models_->Get(*model_id);
    if (!m.ok()) return m.status();
    const LoadedModel& lm = **m;
    if (lm.retriever == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model ", lm.record.id,
          " is a ranker over features: BatchTopK needs an id-based model"));
    }
    std::vector<uint32_t> users(req->users_size());
    for (int r = 0; r < req->users_size(); ++r) {
      auto u = MapUser(lm, req->users(r));
      if (!u.ok()) {
        return absl::Status(
            u.status().code(),
            absl::StrCat("users[", r, "]: ", u.status().message()));
      }
      users[r] = *u;
    }
    const std::vector<std::vector<uint32_t>>* all_seen = nullptr;
    if (req->exclude_seen()) {
      auto s = lm.Seen(store_);
      if (!s.ok()) return s.status();
      all_seen = *s;
    }
    // Users in slices: each slice is one pass over the items and is streamed
    // before the next is scored, so memory stays bounded and a cancelled call
    // stops early. Messages hold about kItemsPerMessage items.
    constexpr int kUsersPerSlice = 256;
    constexpr int kItemsPerMessage = 1 << 14;
    const int per_message =
        std::max(1, kItemsPerMessage / static_cast<int>(req->k()));
    std::vector<std::vector<uint32_t>> excludes;
    for (int begin = 0; begin < req->users_size(); begin += kUsersPerSlice) {
      if (ctx->IsCancelled())
        return absl::CancelledError("BatchTopK cancelled");
      const int end = std::min(req->users_size(), begin + kUsersPerSlice);
      const std::span<const uint32_t> slice(users.data() + begin, end - begin);
      excludes.clear();
      if (all_seen != nullptr) {
        for (uint32_t u : slice) excludes.push_back((*all_seen)[u]);
      }
      auto tops = lm.retriever->BatchTopK(slice, req->k(), excludes, *mode);
      if (!tops.ok()) return NameModel(lm, tops.status());
      v1::BatchTopKResponse msg;
      for (int r = begin; r < end; ++r) {
        const retrieval::Retriever::Result& top = (*tops)[r - begin];
        v1::UserTopK* out = msg.add_results();
        out->set_user(req->users(r));
        for (const retrieval::ScoredItem& s : top.items) {
          out->add_items(lm.record.item_keys[s.item]);
          out->add_scores(s.score);
        }
        msg.set_retrieval(std::string(retrieval::ModeName(top.used)));
        SetServed(lm.record, msg.mutable_served());
        if (msg.results_size() == per_message || r + 1 == end) {
          if (!writer->Write(msg))
            return absl::CancelledError("client went away");
          msg.Clear();
        }
      }
    }
    return absl::OkStatus();
  });
}

grpc::Status ScoringServiceImpl::BatchScore(grpc::ServerContext* ctx,
                                            const v1::BatchScoreRequest* req,
                                            v1::BatchScoreResponse* resp) {
  return Serve(options_, ctx, Role::kReader, [&]() -> absl::Status {
    auto model_id = RequestedModel(models_, *req);
    if (!model_id.ok()) return model_id.status();
    if (req->requests_size() < 1 ||
        req->requests_size() > options_.limits.max_batch_users) {
      return absl::InvalidArgumentError(absl::StrCat(
          "requests: ", req->requests_size(), " users; must be in [1, ",
          options_.limits.max_batch_users, "]"));
    }
    auto m = models_->Get(*model_id);
    if (!m.ok()) return m.status();
    SetServed((*m)->record, resp->mutable_served());
    std::vector<uint32_t> ids;
    std::vector<float> scores;
    for (int r = 0; r < req->requests_size(); ++r) {
      const auto& ui = req->requests(r);
      if (ui.items_size() < 1 ||
          ui.items_size() > options_.limits.max_candidates) {
        return absl::InvalidArgumentError(absl::StrCat(
            "requests[", r, "].items: ", ui.items_size(), "; must be in [1, ",
            options_.limits.max_candidates, "]"));
      }
      auto u = MapUser(**m, ui.user());
      if (!u.ok()) {
        return absl::Status(
            u.status().code(),
            absl::StrCat("requests[", r, "]: ", u.status().message()));
      }
      if (auto s = MapItems(**m, ui.items(), &ids); !s.ok()) {
        return absl::Status(s.code(),
                            absl::StrCat("requests[", r, "].", s.message()));
      }
      scores.resize(ids.size());
      (*m)->model->ScoreItems(*u, ids, scores);
      resp->add_responses()->mutable_scores()->Assign(scores.begin(),
                                                      scores.end());
    }
    return absl::OkStatus();
  });
}

grpc::Status ScoringServiceImpl::GetPropensities(grpc::ServerContext* ctx,
                                                 const v1::GetPropensitiesRequest* req,
                                                 v1::GetPropensitiesResponse* resp) {
  return Serve(options_, ctx, Role::kReader, [&]() -> absl::Status {
    auto model_id = RequestedModel(models_, *req);
    if (!model_id.ok()) return model_id.status();
    if (req->pairs_size() > options_.limits.max_candidates) {
      return absl::InvalidArgumentError(absl::StrCat(
          "pairs: ", req->pairs_size(), " given; max_candidates is ",
          options_.limits.max_candidates));
    }
    auto m = models_->Get(*model_id);
    if (!m.ok()) return m.status();
    SetServed((*m)->record, resp->mutable_served());
    const json& diag = (*m)->record.diagnostics;
    if (diag.contains("position_propensities") &&
        diag["position_propensities"].is_array()) {
      for (const auto& p : diag["position_propensities"]) {
        if (p.is_number()) resp->add_position_propensities(p.get<double>());
      }
    }
    if (req->pairs_size() == 0) {
      if (resp->position_propensities_size() == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("pairs: model ", *model_id,
                         " has no position curve; give (user, item) pairs"));
      }
      return absl::OkStatus();
    }
    auto fitted = (*m)->Propensity(store_);
    if (!fitted.ok()) return fitted.status();
    // The estimator is indexed by the training view's ids.
    const auto& users = (*fitted)->users;
    const auto& items = (*fitted)->items;
    for (int k = 0; k < req->pairs_size(); ++k) {
      auto u = users.find(req->pairs(k).user());
      auto i = items.find(req->pairs(k).item());
      if (u == users.end() || i == items.end()) {
        return absl::NotFoundError(
            absl::StrCat("pairs[", k, "]: ", u == users.end() ? "user" : "item",
                         " is not in the training dataset"));
      }
      resp->add_pair_propensities(
          (*fitted)->estimator->Pair(u->second, i->second));
    }
    return absl::OkStatus();
  });
}

grpc::Status ScoringServiceImpl::SampleNegatives(grpc::ServerContext* ctx,
                                                 const v1::SampleNegativesRequest* req,
                                                 v1::SampleNegativesResponse* resp) {
  return Serve(options_, ctx, Role::kWriter, [&]() -> absl::Status {
    if ((req->model_id() == 0 && !req->has_model()) == req->dataset().empty()) {
      return absl::InvalidArgumentError(
          "model_id (or model) or dataset: give exactly one");
    }
    uint64_t model_id = 0;
    if (req->dataset().empty()) {
      auto id = RequestedModel(models_, *req);
      if (!id.ok()) return id.status();
      model_id = *id;
    }
    if (req->n() < 1 ||
        req->n() > static_cast<uint32_t>(options_.limits.max_samples)) {
      return absl::InvalidArgumentError(
          absl::StrCat("n=", req->n(), ": must be in [1, ",
                       options_.limits.max_samples, "]"));
    }
    if (req->user().empty())
      return absl::InvalidArgumentError("user: required");
    if (auto s = CheckName("sampler", req->sampler()); !s.ok()) return s;
    // power's range is the sampler's own (its ParamReader, ListMethods).
    samplers::SampleRequest sr;
    sr.dataset = req->dataset();
    sr.sampler = req->sampler().empty() ? "uniform" : req->sampler();
    if (req->has_power()) sr.power = req->power();
    if (model_id != 0) {
      auto m = models_->Get(model_id);
      if (!m.ok()) return m.status();
      const LoadedModel& model = **m;
      SetServed(model.record, resp->mutable_served());
      sr.dataset = model.record.dataset;
      sr.model_id = model_id;
      sr.nbpo = models::NbpoFactorsOf(*model.model);
      sr.model_user_keys = &model.record.user_keys;
      sr.model_item_keys = &model.record.item_keys;
      sr.keep_alive = *m;
    } else if (auto s = store::ValidateDatasetName(sr.dataset); !s.ok()) {
      return s;
    }
    auto view = store_->LoadView(sr.dataset);
    if (!view.ok()) return view.status();
    sr.view = *view;
    auto drawn = samplers_.Sample(sr, req->user(), req->n(), req->seed());
    if (!drawn.ok()) return drawn.status();
    for (std::string& item : *drawn) resp->add_items(std::move(item));
    return absl::OkStatus();
  });
}

// --- EvaluationService -----------------------------------------------------------

grpc::Status EvaluationServiceImpl::Evaluate(grpc::ServerContext* ctx,
                                             const v1::EvaluateRequest* request,
                                             v1::EvaluateResponse* resp) {
  return Serve(options_, ctx, Role::kReader, [&]() -> absl::Status {
    // A model reference is resolved once; the evaluation then sees its id.
    const v1::EvaluateRequest* req = request;
    v1::EvaluateRequest resolved;
    if (request->has_model()) {
      auto id = models_->Resolve(FromProto(request->model()));
      if (!id.ok()) return id.status();
      resolved = *request;
      resolved.clear_model();
      resolved.set_model_id(*id);
      req = &resolved;
    }
    auto set_served = [&] {
      if (req->model_id() == 0) return;
      if (auto r = models_->GetRecord(req->model_id()); r.ok())
        SetServed(*r, resp->mutable_served());
    };
    if (auto s = store::ValidateDatasetName(req->dataset()); !s.ok()) return s;
    // Long evaluations stop when the call's deadline passes or it is cancelled.
    auto cancelled = [ctx] { return ctx->IsCancelled(); };
    if (auto s = CheckName("estimator", req->estimator()); !s.ok()) return s;
    if (auto s = CheckName("policy_estimator", req->policy_estimator(), 512);
        !s.ok()) {
      return s;
    }
    if (!req->policy_estimator().empty()) {
      absl::Status s = EvaluatePolicyFromLog(models_, store_, options_.limits,
                                             *req, resp, cancelled);
      if (s.ok()) set_served();
      return s;
    }
    if (!req->reward_model().empty() || req->has_crossfit_folds() ||
        !req->item_category().empty() || req->slope()) {
      return absl::InvalidArgumentError(
          "reward_model, crossfit_folds, item_category and slope need "
          "policy_estimator");
    }
    if (!req->estimator().empty()) {
      absl::Status s = EvaluateFromLog(models_, store_, options_.limits, *req,
                                       resp, cancelled);
      if (s.ok()) set_served();
      return s;
    }
    if (auto s = CheckModelId(req->model_id()); !s.ok()) return s;
    if (req->scores_size() > 0 || req->bootstrap() > 0 ||
        !req->propensity_from().empty() || req->imputation_model_id() != 0 ||
        !req->mar_dataset().empty() || req->clip() != 0 ||
        !req->target().empty() || req->temperature() != 0 || req->has_tau() ||
        req->has_lambda() || req->has_subgaussian_lambda()) {
      return absl::InvalidArgumentError(
          "scores, bootstrap, propensity_from, clip, imputation_model_id, "
          "mar_dataset, target, "
          "temperature, tau, lambda and subgaussian_lambda need estimator or "
          "policy_estimator; "
          "without them dataset "
          "is a labelled test set");
    }
    eval::RankingEvalOptions opts;
    if (req->k_size() > 0) {
      if (req->k_size() > 20)
        return absl::InvalidArgumentError("k: at most 20 cut-offs");
      opts.metrics.ks.clear();
      for (uint32_t k : req->k()) {
        if (k < 1 || k > 1000)
          return absl::InvalidArgumentError(
              absl::StrCat("k=", k, ": must be in [1, 1000]"));
        opts.metrics.ks.push_back(static_cast<int>(k));
      }
    }
    if (req->has_threshold()) {
      if (!std::isfinite(req->threshold()))
        return absl::InvalidArgumentError("threshold: must be finite");
      opts.threshold = req->threshold();
    }
    if (req->convention() == "kb") {
      opts.metrics.empty_users = eval::EmptyUsers::kNdcgOne;
      opts.metrics.f1 = eval::F1Mode::kFromAverages;
    } else if (!req->convention().empty() && req->convention() != "standard") {
      return absl::InvalidArgumentError(
          absl::StrCat("convention='", req->convention().substr(0, 64),
                       "': must be standard or kb"));
    }
    opts.protocol = req->rank_all_items() ? eval::Protocol::kAllItems
                                          : eval::Protocol::kTestItems;
    opts.num_threads = 2;
    opts.cancelled = cancelled;
    auto m = models_->Get(req->model_id());
    if (!m.ok()) return m.status();
    SetServed((*m)->record, resp->mutable_served());
    if ((*m)->model->num_items() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model ", req->model_id(),
          " is a ranker over features; evaluate it on ranked lists"));
    }
    auto test = store_->LoadView(req->dataset());
    if (!test.ok()) return test.status();
    std::shared_ptr<const data::DatasetView> exclude;
    if (!req->exclude_dataset().empty()) {
      if (!req->rank_all_items())
        return absl::InvalidArgumentError(
            "exclude_dataset: needs rank_all_items");
      auto ex = store_->LoadView(req->exclude_dataset());
      if (!ex.ok()) return ex.status();
      exclude = *ex;
      opts.exclude = exclude.get();
    }
    auto metrics = eval::EvaluateRanking(*(*m)->model, (*m)->record.user_keys,
                                         (*m)->record.item_keys, **test, opts);
    if (!metrics.ok()) return metrics.status();
    for (const auto& [k, v] : *metrics) (*resp->mutable_metrics())[k] = v;
    JsonToStruct(
        json{{"model_id", req->model_id()},
             {"dataset", req->dataset()},
             {"protocol", req->rank_all_items() ? "all-items" : "test-items"},
             {"convention",
              req->convention().empty() ? "standard" : req->convention()},
             {"test_events", (*test)->num_events()}},
        resp->mutable_diagnostics());
    return absl::OkStatus();
  });
}

}  // namespace debias::server
