// Fuzz target: request validation. Raw bytes are parsed as one of the
// request protos and handed to the same handler code the RPCs run.
//
// Fixture (built once, in a fresh temp dir): an InteractionStore with three
// small datasets -- "clicks" (a 40-user, 30-item MNAR click log), "mar" (its
// missing-at-random test sample) and "slates" (logged slates with list ids,
// positions and propensities) -- a ModelManager over it, and model 1, an
// MF model trained on "clicks" (relmf, dim 4, 2 epochs). The service impls
// are constructed as server/server.cc builds them (no authenticator, no
// in-flight cap: development mode) and their handlers are called directly
// with a default grpc::ServerContext.
//
// Input: byte 0 picks the request type (see kKinds below), the rest is the
// serialized request. Unparseable bytes are dropped.
// Streaming RPCs: Ingest runs the handler's per-message body (dataset name
// check, batch limit, ToCore, InteractionStore::Ingest) on the parsed
// IngestRequest; Train runs the handler's checks and then
// ModelManager::StartTraining (the handler's next step), and the job is then
// cancelled and deleted; Export is not covered (it only streams a view).
// To keep the fixture intact, requests that would delete or overwrite the
// fixture datasets or model 1 are redirected to scratch names (datasets
// created by a request are deleted again).
// Checks: no crash, no sanitizer report; every handler returns a status code
// a client can act on (never INTERNAL, UNKNOWN or DATA_LOSS).
//
// Seeds: DEBIAS_FUZZ_WRITE_SEEDS=DIR makes the first execution write one
// valid request per type (with the fixture's keys) into DIR.
// DEBIAS_FUZZ_VERBOSE=1 prints each handler's status (to check a corpus).
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/store/interaction_store.h"
#include "core/synth/mnar_world.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/grpcpp.h"
#include "wire/convert.h"
#include "server/dataset_service.h"
#include "server/model_manager.h"
#include "server/model_services.h"
#include "server/options.h"
#include "wire/status.h"
#include "spdlog/spdlog.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using namespace debias;

struct Fixture {
  std::filesystem::path dir;
  server::ServerOptions options;
  std::unique_ptr<store::InteractionStore> store;
  std::unique_ptr<server::DatasetServiceImpl> datasets;
  std::unique_ptr<server::ModelManager> models;
  std::unique_ptr<server::ModelServiceImpl> model_service;
  std::unique_ptr<server::ScoringServiceImpl> scoring;
  std::unique_ptr<server::EvaluationServiceImpl> evaluation;
  uint64_t model_id = 0;
  std::vector<std::string> users, items;
};

Fixture* g_fixture = nullptr;

bool IsFixtureDataset(const std::string& name) {
  return name == "clicks" || name == "mar" || name == "slates";
}

void Die(const std::string& what) {
  std::fprintf(stderr, "requests_fuzz fixture: %s\n", what.c_str());
  std::abort();
}

void Cleanup() {
  if (g_fixture == nullptr) return;
  g_fixture->models.reset();  // joins training threads
  g_fixture->store.reset();
  std::error_code ec;
  std::filesystem::remove_all(g_fixture->dir, ec);
}

void WaitFinished(server::ModelManager* models, uint64_t id) {
  for (int i = 0; i < 2000; ++i) {
    auto u = models->WaitForUpdate(id, 1u << 30, absl::Milliseconds(50));
    if (!u.ok() || u->finished) return;
  }
  Die("a training job did not finish within 100 s");
}

std::vector<data::Interaction> Slates(const std::vector<std::string>& users,
                                      const std::vector<std::string>& items) {
  std::mt19937_64 rng(7);
  std::vector<data::Interaction> out;
  for (int l = 0; l < 30; ++l) {
    for (int p = 1; p <= 4; ++p) {
      data::Interaction e;
      e.user = users[rng() % users.size()];
      e.item = items[rng() % items.size()];
      e.label = (rng() % 3 == 0) ? 1.0f : 0.0f;
      e.list_id = "s" + std::to_string(l);
      e.position = p;
      e.propensity = 0.2f + 0.2f * static_cast<float>(rng() % 5);
      out.push_back(e);
    }
  }
  return out;
}

Fixture* Build() {
  spdlog::set_level(spdlog::level::warn);  // one info line per job otherwise
  // Invalid UTF-8 in string fields is logged by the parser on every input.
  google::protobuf::SetLogHandler(nullptr);
  auto* f = new Fixture;
  char tmpl[] = "/tmp/debias_fuzz_requests_XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) Die("mkdtemp failed");
  f->dir = tmpl;
  f->options.data_dir = f->dir.string();
  store::StoreOptions so;
  so.path = f->options.data_dir;
  auto st = store::InteractionStore::Open(so);
  if (!st.ok()) Die(std::string(st.status().message()));
  f->store = std::move(*st);
  f->datasets = std::make_unique<server::DatasetServiceImpl>(f->store.get(), f->options);
  server::ModelManager::Options mo;
  mo.max_jobs = f->options.limits.max_training_jobs;
  f->models = std::make_unique<server::ModelManager>(f->store.get(), std::move(mo));
  f->model_service = std::make_unique<server::ModelServiceImpl>(f->models.get(), f->options);
  f->scoring = std::make_unique<server::ScoringServiceImpl>(f->models.get(), f->store.get(),
                                                            f->options);
  f->evaluation = std::make_unique<server::EvaluationServiceImpl>(
      f->models.get(), f->store.get(), f->options);

  synth::MnarWorldOptions wo;
  wo.num_users = 40;
  wo.num_items = 30;
  wo.dim = 4;
  wo.expected_clicks = 150;
  wo.mar_test_items_per_user = 5;
  wo.truth_sample_pairs = 0;
  wo.seed = 5;
  auto world = synth::MnarWorld::Generate(wo);
  if (!world.ok()) Die(std::string(world.status().message()));
  const auto clicks = world->ClickEvents();
  for (const auto& e : clicks) {
    if (f->users.empty() || f->users.back() != e.user) f->users.push_back(e.user);
  }
  for (int i = 0; i < wo.num_items; ++i) f->items.push_back("i" + std::to_string(i));
  for (const auto& [name, events] :
       {std::pair{"clicks", clicks}, std::pair{"mar", world->TestEvents()},
        std::pair{"slates", Slates(f->users, f->items)}}) {
    auto r = f->store->Ingest(name, events, /*create_if_missing=*/true);
    if (!r.ok()) Die(std::string(r.status().message()));
  }
  server::TrainJobRequest job;
  job.dataset = "clicks";
  job.spec.loss = "relmf";
  job.spec.seed = 1;
  job.spec.params = {{"epochs", "2"}, {"dim", "4"}};
  auto id = f->models->StartTraining(job);
  if (!id.ok()) Die(std::string(id.status().message()));
  WaitFinished(f->models.get(), *id);
  auto rec = f->models->GetRecord(*id);
  if (!rec.ok() || rec->state != store::ModelState::kReady) Die("fixture model not ready");
  f->model_id = *id;
  return f;
}

void CheckCode(const grpc::Status& s) {
  const auto c = s.error_code();
  static const bool verbose = std::getenv("DEBIAS_FUZZ_VERBOSE") != nullptr;
  if (verbose) {
    std::fprintf(stderr, "  -> code %d %s\n", static_cast<int>(c),
                 s.error_message().substr(0, 200).c_str());
  }
  if (c == grpc::StatusCode::INTERNAL || c == grpc::StatusCode::UNKNOWN ||
      c == grpc::StatusCode::DATA_LOSS) {
    std::fprintf(stderr, "handler returned code %d: %s\n", static_cast<int>(c),
                 s.error_message().c_str());
    std::abort();
  }
}

enum Kind : uint8_t {
  kCreateDataset, kListDatasets, kGetDataset, kDeleteDataset, kIngest, kGetStats,
  kTrain, kListModels, kGetModel, kDeleteModel, kCancelTraining, kListMethods,
  kScore, kTopK, kBatchScore, kGetPropensities, kSampleNegatives, kEvaluate,
  kNumKinds
};

template <typename Req>
bool Parse(std::string_view bytes, Req* req) {
  return req->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

// The Ingest handler's body for one message of a stream.
grpc::Status IngestOne(Fixture& f, const v1::IngestRequest& req) {
  if (req.dataset().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "dataset: required");
  }
  if (auto s = store::ValidateDatasetName(req.dataset()); !s.ok()) {
    return ToGrpcStatus(s);
  }
  const std::string dataset = IsFixtureDataset(req.dataset()) ? "scratch" : req.dataset();
  const int n = req.events_size();
  if (n > f.options.limits.max_events_per_batch) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "events: too many");
  }
  std::vector<data::Interaction> events(n);
  for (int k = 0; k < n; ++k) ToCore(req.events(k), &events[k]);
  auto r = f.store->Ingest(dataset, events, req.create_if_missing());
  if (r.ok()) {
    FUZZ_CHECK(r->events_stored + r->events_duplicate == static_cast<uint64_t>(n));
    // Read it back the way serving does, then drop it.
    auto view = f.store->LoadView(dataset);
    FUZZ_CHECK(view.ok());
    (void)data::ComputeStats(**view);
  }
  (void)f.store->DeleteDataset(dataset);
  return ToGrpcStatus(r.status());
}

// The Train handler's checks, then StartTraining; the job is cancelled and
// its record deleted so that jobs never pile up.
grpc::Status TrainOne(Fixture& f, const v1::TrainRequest& req) {
  if (auto s = store::ValidateDatasetName(req.dataset()); !s.ok()) return ToGrpcStatus(s);
  if (req.loss().empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "loss");
  if (!req.mar_dataset().empty()) {
    if (auto s = store::ValidateDatasetName(req.mar_dataset()); !s.ok()) {
      return ToGrpcStatus(absl::InvalidArgumentError(s.message()));
    }
  }
  if (req.has_clip() && !(req.clip() > 0.0 && req.clip() <= 1.0)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "clip");
  }
  if (req.has_threshold() && !std::isfinite(req.threshold())) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "threshold");
  }
  if (req.params_size() > f.options.limits.max_params) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "params");
  }
  server::TrainJobRequest job;
  job.dataset = req.dataset();
  job.mar_dataset = req.mar_dataset();
  job.feedback = req.feedback();
  job.spec.loss = req.loss();
  job.spec.propensity = req.propensity();
  if (req.has_clip()) job.spec.clip = req.clip();
  if (req.has_threshold()) job.spec.threshold = req.threshold();
  job.spec.seed = req.seed();
  for (const auto& [k, v] : req.params()) {
    if (k.empty() || k.size() > 128 || v.size() > 4096) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "params key");
    }
    job.spec.params[k] = v;
  }
  auto id = f.models->StartTraining(std::move(job));
  if (!id.ok()) return ToGrpcStatus(id.status());
  (void)f.models->Cancel(*id);
  WaitFinished(f.models.get(), *id);
  auto rec = f.models->GetRecord(*id);
  FUZZ_CHECK(rec.ok());
  FUZZ_CHECK(rec->state != store::ModelState::kTraining);
  FUZZ_CHECK(f.models->Delete(*id).ok());
  return grpc::Status::OK;
}

void Run(Fixture& f, Kind kind, std::string_view bytes) {
  grpc::ServerContext ctx;
  switch (kind) {
    case kCreateDataset: {
      v1::CreateDatasetRequest req;
      v1::Dataset resp;
      if (!Parse(bytes, &req)) return;
      if (IsFixtureDataset(req.name())) req.set_name("scratch");
      const auto s = f.datasets->CreateDataset(&ctx, &req, &resp);
      CheckCode(s);
      if (s.ok()) (void)f.store->DeleteDataset(req.name());
      return;
    }
    case kListDatasets: {
      v1::ListDatasetsRequest req;
      v1::ListDatasetsResponse resp;
      if (!Parse(bytes, &req)) return;
      CheckCode(f.datasets->ListDatasets(&ctx, &req, &resp));
      return;
    }
    case kGetDataset: {
      v1::GetDatasetRequest req;
      v1::Dataset resp;
      if (!Parse(bytes, &req)) return;
      CheckCode(f.datasets->GetDataset(&ctx, &req, &resp));
      return;
    }
    case kDeleteDataset: {
      v1::DeleteDatasetRequest req;
      v1::DeleteDatasetResponse resp;
      if (!Parse(bytes, &req)) return;
      if (IsFixtureDataset(req.name())) req.set_name("scratch");
      CheckCode(f.datasets->DeleteDataset(&ctx, &req, &resp));
      return;
    }
    case kIngest: {
      v1::IngestRequest req;
      if (!Parse(bytes, &req)) return;
      CheckCode(IngestOne(f, req));
      return;
    }
    case kGetStats: {
      v1::GetStatsRequest req;
      v1::DatasetStats resp;
      if (!Parse(bytes, &req)) return;
      CheckCode(f.datasets->GetStats(&ctx, &req, &resp));
      return;
    }
    case kTrain: {
      v1::TrainRequest req;
      if (!Parse(bytes, &req)) return;
      CheckCode(TrainOne(f, req));
      return;
    }
    case kListModels: {
      v1::ListModelsRequest req;
      v1::ListModelsResponse resp;
      if (!Parse(bytes, &req)) return;
      CheckCode(f.model_service->ListModels(&ctx, &req, &resp));
      return;
    }
    case kGetModel: {
      v1::GetModelRequest req;
      v1::Model resp;
      if (!Parse(bytes, &req)) return;
      CheckCode(f.model_service->GetModel(&ctx, &req, &resp));
      return;
    }
    case kDeleteModel: {
      v1::DeleteModelRequest req;
      v1::DeleteModelResponse resp;
      if (!Parse(bytes, &req)) return;
      if (req.id() == f.model_id) req.set_id(f.model_id + 1000000);
      CheckCode(f.model_service->DeleteModel(&ctx, &req, &resp));
      return;
    }
    case kCancelTraining: {
      v1::CancelTrainingRequest req;
      v1::Model resp;
      if (!Parse(bytes, &req)) return;
      CheckCode(f.model_service->CancelTraining(&ctx, &req, &resp));
      return;
    }
    case kListMethods: {
      v1::ListMethodsRequest req;
      v1::ListMethodsResponse resp;
      if (!Parse(bytes, &req)) return;
      CheckCode(f.model_service->ListMethods(&ctx, &req, &resp));
      return;
    }
    case kScore: {
      v1::ScoreRequest req;
      v1::ScoreResponse resp;
      if (!Parse(bytes, &req)) return;
      const auto s = f.scoring->Score(&ctx, &req, &resp);
      CheckCode(s);
      if (s.ok()) {
        FUZZ_CHECK(resp.scores_size() == req.items_size() + req.candidates_size());
      }
      return;
    }
    case kTopK: {
      v1::TopKRequest req;
      v1::TopKResponse resp;
      if (!Parse(bytes, &req)) return;
      const auto s = f.scoring->TopK(&ctx, &req, &resp);
      CheckCode(s);
      if (s.ok()) {
        FUZZ_CHECK(resp.items_size() == resp.scores_size());
        FUZZ_CHECK(resp.items_size() <= static_cast<int>(req.k()));
      }
      return;
    }
    case kBatchScore: {
      v1::BatchScoreRequest req;
      v1::BatchScoreResponse resp;
      if (!Parse(bytes, &req)) return;
      const auto s = f.scoring->BatchScore(&ctx, &req, &resp);
      CheckCode(s);
      if (s.ok()) FUZZ_CHECK(resp.responses_size() == req.requests_size());
      return;
    }
    case kGetPropensities: {
      v1::GetPropensitiesRequest req;
      v1::GetPropensitiesResponse resp;
      if (!Parse(bytes, &req)) return;
      const auto s = f.scoring->GetPropensities(&ctx, &req, &resp);
      CheckCode(s);
      if (s.ok()) {
        FUZZ_CHECK(resp.pair_propensities_size() == req.pairs_size());
        for (float p : resp.pair_propensities()) FUZZ_CHECK(p > 0.0f && p <= 1.0f);
      }
      return;
    }
    case kSampleNegatives: {
      v1::SampleNegativesRequest req;
      v1::SampleNegativesResponse resp;
      if (!Parse(bytes, &req)) return;
      // Seed 0 draws from std::random_device: keep executions reproducible.
      if (req.seed() == 0) req.set_seed(1);
      const auto s = f.scoring->SampleNegatives(&ctx, &req, &resp);
      CheckCode(s);
      if (s.ok()) FUZZ_CHECK(resp.items_size() <= static_cast<int>(req.n()));
      return;
    }
    case kEvaluate: {
      v1::EvaluateRequest req;
      v1::EvaluateResponse resp;
      if (!Parse(bytes, &req)) return;
      CheckCode(f.evaluation->Evaluate(&ctx, &req, &resp));
      return;
    }
    case kNumKinds:
      return;
  }
}

// One valid request per type, with the fixture's keys.
void WriteSeeds(const Fixture& f, const std::string& dir) {
  std::filesystem::create_directories(dir);
  auto write = [&](Kind kind, const std::string& name,
                   const google::protobuf::MessageLite& m) {
    std::ofstream out(dir + "/" + name, std::ios::binary);
    out.put(static_cast<char>(kind));
    out << m.SerializeAsString();
  };
  const std::string& u = f.users.front();
  {
    v1::CreateDatasetRequest r;
    r.set_name("new-set");
    r.set_feedback("implicit");
    write(kCreateDataset, "create_dataset", r);
  }
  write(kListDatasets, "list_datasets", v1::ListDatasetsRequest());
  {
    v1::GetDatasetRequest r;
    r.set_name("clicks");
    write(kGetDataset, "get_dataset", r);
  }
  {
    v1::DeleteDatasetRequest r;
    r.set_name("missing");
    write(kDeleteDataset, "delete_dataset", r);
  }
  {
    v1::IngestRequest r;
    r.set_dataset("fresh");
    r.set_create_if_missing(true);
    auto* e = r.add_events();
    e->set_user("a");
    e->set_item("b");
    e->set_label(1.0f);
    e->set_list_id("l");
    e->set_position(2);
    e->set_propensity(0.5f);
    e->add_features(0.25f);
    e->set_timestamp(7);
    write(kIngest, "ingest", r);
  }
  {
    v1::GetStatsRequest r;
    r.set_name("slates");
    write(kGetStats, "get_stats", r);
  }
  for (const char* loss : {"relmf", "bpr", "nbpo", "dla"}) {
    v1::TrainRequest r;
    r.set_dataset(std::string(loss) == "dla" ? "slates" : "clicks");
    r.set_loss(loss);
    r.set_seed(1);
    (*r.mutable_params())["epochs"] = "1";
    write(kTrain, std::string("train_") + loss, r);
  }
  {
    v1::ListModelsRequest r;
    r.set_dataset("clicks");
    write(kListModels, "list_models", r);
  }
  {
    v1::GetModelRequest r;
    r.set_id(f.model_id);
    write(kGetModel, "get_model", r);
  }
  {
    v1::DeleteModelRequest r;
    r.set_id(999);
    write(kDeleteModel, "delete_model", r);
  }
  {
    v1::CancelTrainingRequest r;
    r.set_id(f.model_id);
    write(kCancelTraining, "cancel_training", r);
  }
  write(kListMethods, "list_methods", v1::ListMethodsRequest());
  {
    v1::ScoreRequest r;
    r.set_model_id(f.model_id);
    r.set_user(u);
    r.add_items(f.items[0]);
    r.add_items(f.items[3]);
    write(kScore, "score", r);
  }
  {
    v1::TopKRequest r;
    r.set_model_id(f.model_id);
    r.set_user(u);
    r.set_k(5);
    r.set_exclude_seen(true);
    write(kTopK, "topk", r);
  }
  {
    v1::BatchScoreRequest r;
    r.set_model_id(f.model_id);
    auto* ui = r.add_requests();
    ui->set_user(u);
    ui->add_items(f.items[1]);
    write(kBatchScore, "batch_score", r);
  }
  {
    v1::GetPropensitiesRequest r;
    r.set_model_id(f.model_id);
    auto* p = r.add_pairs();
    p->set_user(u);
    p->set_item(f.items[2]);
    write(kGetPropensities, "get_propensities", r);
  }
  for (const char* sampler : {"uniform", "popularity"}) {
    v1::SampleNegativesRequest r;
    r.set_model_id(f.model_id);
    r.set_user(u);
    r.set_n(5);
    r.set_sampler(sampler);
    r.set_seed(3);
    if (std::string(sampler) == "popularity") r.set_power(0.5);
    write(kSampleNegatives, std::string("sample_") + sampler, r);
  }
  {
    v1::EvaluateRequest r;
    r.set_model_id(f.model_id);
    r.set_dataset("mar");
    r.add_k(3);
    write(kEvaluate, "evaluate_mar", r);
  }
  for (const char* est : {"ips", "snips", "dr"}) {
    v1::EvaluateRequest r;
    r.set_model_id(f.model_id);
    r.set_dataset("clicks");
    r.set_estimator(est);
    r.set_bootstrap(10);
    r.set_clip(0.05);
    r.set_mar_dataset("mar");
    write(kEvaluate, std::string("evaluate_") + est, r);
  }
  for (const char* est : {"ips", "dr", "switch-dr"}) {
    v1::EvaluateRequest r;
    r.set_model_id(f.model_id);
    r.set_dataset("slates");
    r.set_policy_estimator(est);
    r.set_tau(2.0);
    write(kEvaluate, std::string("evaluate_policy_") + est, r);
  }
  {
    v1::EvaluateRequest r;
    r.set_dataset("clicks");
    r.set_estimator("ips");
    auto* us = r.add_scores();
    us->set_user(u);
    us->add_items(f.items[0]);
    us->add_scores(0.5f);
    us->add_items(f.items[1]);
    us->add_scores(-0.25f);
    write(kEvaluate, "evaluate_uploaded", r);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (g_fixture == nullptr) {
    g_fixture = Build();
    std::atexit(Cleanup);
    if (const char* dir = std::getenv("DEBIAS_FUZZ_WRITE_SEEDS")) WriteSeeds(*g_fixture, dir);
  }
  if (size < 1 || size > (1 << 16)) return 0;
  const Kind kind = static_cast<Kind>(data[0] % kNumKinds);
  Run(*g_fixture, kind,
      std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  return 0;
}
