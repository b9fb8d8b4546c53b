#include "server/dataset_service.h"


#include "absl/strings/str_cat.h"
#include "wire/convert.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "wire/status.h"

namespace debias::server {
namespace {

void InfoToProto(const store::DatasetInfo& d, v1::Dataset* out) {
  out->set_name(d.name);
  out->set_description(d.description);
  out->set_feedback(d.feedback);
  out->set_create_time_unix_ms(d.create_time_unix_ms);
  out->set_data_version(d.data_version);
  out->set_users(d.users);
  out->set_items(d.items);
  out->set_dedup(d.dedup);
}

}  // namespace

std::string EffectiveFeedback(const std::string& recorded, const data::DatasetStats& s) {
  if (!recorded.empty()) return recorded;
  if (s.max_position > 0) return "clicklog";
  return s.IsExplicit() ? "explicit" : "implicit";
}

grpc::Status DatasetServiceImpl::CreateDataset(grpc::ServerContext* ctx,
                                               const v1::CreateDatasetRequest* req,
                                               v1::Dataset* resp) {
  return Serve(options_, ctx, Role::kWriter, [&]() -> absl::Status {
    auto info = store_->CreateDataset(req->name(), req->description(),
                                      req->feedback(), req->dedup());
    if (!info.ok()) return info.status();
    InfoToProto(*info, resp);
    return absl::OkStatus();
  });
}

grpc::Status DatasetServiceImpl::ListDatasets(grpc::ServerContext* ctx,
                                              const v1::ListDatasetsRequest*,
                                              v1::ListDatasetsResponse* resp) {
  return Serve(options_, ctx, Role::kReader, [&]() -> absl::Status {
    for (const auto& d : store_->ListDatasets())
      InfoToProto(d, resp->add_datasets());
    return absl::OkStatus();
  });
}

grpc::Status DatasetServiceImpl::GetDataset(grpc::ServerContext* ctx,
                                            const v1::GetDatasetRequest* req,
                                            v1::Dataset* resp) {
  return Serve(options_, ctx, Role::kReader, [&]() -> absl::Status {
    if (auto s = store::ValidateDatasetName(req->name()); !s.ok()) return s;
    auto info = store_->GetDataset(req->name());
    if (!info.ok()) return info.status();
    InfoToProto(*info, resp);
    return absl::OkStatus();
  });
}

grpc::Status DatasetServiceImpl::DeleteDataset(grpc::ServerContext* ctx,
                                               const v1::DeleteDatasetRequest* req,
                                               v1::DeleteDatasetResponse* resp) {
  return Serve(options_, ctx, Role::kAdmin, [&]() -> absl::Status {
    if (auto s = store::ValidateDatasetName(req->name()); !s.ok()) return s;
    auto n = store_->DeleteDataset(req->name());
    if (!n.ok()) return n.status();
    resp->set_events_deleted(*n);
    return absl::OkStatus();
  });
}

grpc::Status DatasetServiceImpl::Ingest(grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<v1::IngestResponse, v1::IngestRequest>* stream) {
  return Serve(options_, ctx, Role::kWriter, [&]() -> absl::Status {
    v1::IngestRequest req;
    std::string dataset;
    bool create = false;
    uint64_t stored = 0, duplicate = 0;
    std::vector<data::Interaction> events;
    bool first = true;
    while (stream->Read(&req)) {
      if (ctx->IsCancelled()) {
        return absl::CancelledError("ingest cancelled by the client");
      }
      if (first) {
        if (req.dataset().empty()) {
          return absl::InvalidArgumentError(
              "dataset: required in the first message of an Ingest stream");
        }
        if (auto s = store::ValidateDatasetName(req.dataset()); !s.ok()) {
          return s;
        }
        dataset = req.dataset();
        create = req.create_if_missing();
        first = false;
      } else if (!req.dataset().empty() && req.dataset() != dataset) {
        return absl::InvalidArgumentError(absl::StrCat(
            "dataset='", req.dataset().substr(0, 160),
            "': a stream ingests into one dataset ('", dataset, "')"));
      }
      const int n = req.events_size();
      if (n > options_.limits.max_events_per_batch) {
        return absl::InvalidArgumentError(
            absl::StrCat("events: ", n, " in one message; at most ",
                         options_.limits.max_events_per_batch, " allowed"));
      }
      events.resize(n);
      for (int k = 0; k < n; ++k) ToCore(req.events(k), &events[k]);
      auto r = store_->Ingest(dataset, events, create);
      if (!r.ok()) return r.status();
      stored += r->events_stored;
      duplicate += r->events_duplicate;
      if (options_.metrics)
        options_.metrics->RecordIngest(r->events_stored, req.ByteSizeLong());
      v1::IngestResponse resp;
      resp.set_events_acknowledged(stored + duplicate);
      resp.set_batch_events(static_cast<uint64_t>(n));
      resp.set_events_stored(stored);
      resp.set_events_duplicate(duplicate);
      resp.set_data_version(r->data_version);
      if (!stream->Write(resp)) {
        return absl::CancelledError("client went away");
      }
    }
    return absl::OkStatus();
  });
}

grpc::Status DatasetServiceImpl::GetStats(grpc::ServerContext* ctx,
                                          const v1::GetStatsRequest* req,
                                          v1::DatasetStats* resp) {
  return Serve(options_, ctx, Role::kReader, [&]() -> absl::Status {
    if (auto s = store::ValidateDatasetName(req->name()); !s.ok()) return s;
    auto info = store_->GetDataset(req->name());
    if (!info.ok()) return info.status();
    auto view = store_->LoadView(req->name());
    if (!view.ok()) return view.status();
    const data::DatasetStats s = data::ComputeStats(**view);
    resp->set_name(req->name());
    resp->set_events(s.events);
    resp->set_users(s.users);
    resp->set_items(s.items);
    resp->set_positives(s.positives);
    resp->set_zero_labels(s.zero_labels);
    resp->set_min_label(s.min_label);
    resp->set_max_label(s.max_label);
    resp->set_lists(s.lists);
    resp->set_max_position(s.max_position);
    resp->set_with_propensity(s.with_propensity);
    resp->set_feature_dim(s.feature_dim);
    resp->set_density(s.density);
    resp->set_feedback(EffectiveFeedback(info->feedback, s));
    resp->set_data_version((*view)->data_version);
    return absl::OkStatus();
  });
}

grpc::Status DatasetServiceImpl::Export(grpc::ServerContext* ctx,
                                        const v1::ExportRequest* req,
                                        grpc::ServerWriter<v1::ExportResponse>* writer) {
  return Serve(options_, ctx, Role::kWriter, [&]() -> absl::Status {
    if (auto s = store::ValidateDatasetName(req->name()); !s.ok()) return s;
    const uint32_t max_batch =
        static_cast<uint32_t>(options_.limits.max_export_batch);
    if (req->batch_size() > max_batch) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch_size=", req->batch_size(), ": must be in [0, ",
                       max_batch, "] (0 means 4096)"));
    }
    const uint32_t batch = req->batch_size() == 0 ? 4096 : req->batch_size();
    auto view = store_->LoadView(req->name());
    if (!view.ok()) return view.status();
    const data::DatasetView& v = **view;
    v1::ExportResponse resp;
    for (size_t e = 0; e < v.num_events(); ++e) {
      ViewEventToProto(v, e, resp.add_events());
      if (resp.events_size() == static_cast<int>(batch) ||
          e + 1 == v.num_events()) {
        if (ctx->IsCancelled()) {
          return absl::CancelledError("export cancelled");
        }
        if (!writer->Write(resp)) {
          return absl::CancelledError("client went away");
        }
        resp.Clear();
      }
    }
    return absl::OkStatus();
  });
}

}  // namespace debias::server
