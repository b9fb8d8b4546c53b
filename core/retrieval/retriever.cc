#include "core/retrieval/retriever.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/models/mf_model.h"
#include "core/models/nbpo_mf_model.h"
#include "core/util/crc32c.h"

namespace debias::retrieval {

absl::StatusOr<Mode> ParseMode(std::string_view name) {
  if (name.empty() || name == "auto") return Mode::kAuto;
  if (name == "exact") return Mode::kExact;
  if (name == "approximate") return Mode::kApproximate;
  return absl::InvalidArgumentError(absl::StrCat("retrieval='", std::string(name.substr(0, 64)),
                                                 "': must be auto, exact or approximate"));
}

std::string_view ModeName(Mode mode) {
  switch (mode) {
    case Mode::kAuto: return "auto";
    case Mode::kExact: return "exact";
    case Mode::kApproximate: return "approximate";
  }
  return "auto";
}

absl::StatusOr<std::unique_ptr<Retriever>> Retriever::Create(const model::Model& model,
                                                             RetrieverOptions options) {
  if (model.num_items() == 0) {
    return absl::FailedPreconditionError("the model has no items (a ranker over features)");
  }
  auto r = std::unique_ptr<Retriever>(new Retriever());
  r->model_ = &model;
  r->options_ = std::move(options);
  const RowMatrix* items = nullptr;
  std::span<const float> item_bias;
  if (const auto* mf = dynamic_cast<const models::MfModel*>(&model)) {
    const models::MfParams& p = mf->params();
    r->user_factors_ = &p.user_factors;
    r->user_bias_ = {p.user_bias.data(), static_cast<size_t>(p.user_bias.size())};
    r->global_bias_ = p.global_bias;
    items = &p.item_factors;
    item_bias = {p.item_bias.data(), static_cast<size_t>(p.item_bias.size())};
  } else if (const auto* nb = dynamic_cast<const models::NbpoMfModel*>(&model)) {
    r->user_factors_ = &nb->factors().user_factors;
    items = &nb->factors().item_factors;
  }
  std::string no_blocks = "not a factor model";
  if (items != nullptr) {
    auto blocks = ItemBlocks::Create(*items, item_bias);
    if (blocks.ok()) {
      r->blocks_ = std::move(*blocks);
    } else {  // served by Model::ScoreAll, as any other model
      no_blocks = std::string(blocks.status().message());
    }
  }
  {
    absl::MutexLock l(&r->mu_);
    if (r->blocks_ == nullptr) {
      r->index_diag_ = {{"index", "none"}, {"reason", no_blocks}};
    } else if (r->options_.ann_min_items == 0 ||
               r->blocks_->num_items() < r->options_.ann_min_items) {
      r->index_diag_ = {{"index", "none"},
                        {"reason", absl::StrCat(r->blocks_->num_items(),
                                                " items, under ann_min_items=",
                                                r->options_.ann_min_items)}};
    } else {
      r->building_ = true;
      r->index_diag_ = {{"index", "building"}};
    }
  }
  if (r->blocks_ != nullptr && r->index_diag_["index"] == "building") {
    if (r->options_.build_async) {
      r->builder_ = std::thread([p = r.get()] { p->BuildIndex(); });
    } else {
      r->BuildIndex();
    }
  }
  return r;
}

Retriever::~Retriever() {
  stop_ = true;
  if (builder_.joinable()) builder_.join();
}

float Retriever::Offset(uint32_t user) const {
  return global_bias_ + (user_bias_.empty() ? 0.0f : user_bias_[user]);
}

std::span<const float> Retriever::Query(uint32_t user) const {
  return {user_factors_->row(user).data(), static_cast<size_t>(user_factors_->cols())};
}

std::vector<ScoredItem> Retriever::Approximate(const AnnIndex& index, uint32_t user, uint32_t k,
                                               std::span<const uint32_t> exclude) const {
  const uint32_t fetch = static_cast<uint32_t>(
      std::min<uint64_t>(uint64_t{k} + exclude.size(), blocks_->num_items()));
  const std::span<const float> q = Query(user);
  std::vector<ScoredItem> cands;
  for (uint32_t i : index.Search(q, fetch)) {
    cands.push_back({i, blocks_->Score(q, i)});
  }
  return SelectTopK(std::move(cands), k, Offset(user), exclude);
}

std::vector<ScoredItem> Retriever::ScanModel(uint32_t user, uint32_t k,
                                             std::span<const uint32_t> exclude) const {
  std::vector<float> scores(model_->num_items());
  model_->ScoreAll(user, scores);
  std::vector<ScoredItem> all(scores.size());
  for (uint32_t i = 0; i < scores.size(); ++i) all[i] = {i, scores[i]};
  return SelectTopK(std::move(all), k, 0.0f, exclude);
}

absl::Status Retriever::CheckApproximate() const {
  absl::MutexLock l(&mu_);
  if (index_ != nullptr) return absl::OkStatus();
  const std::string state = index_diag_.value("index", "none");
  std::string why = index_diag_.value("reason", "");
  if (state == "building") why = "it is still being built";
  return absl::FailedPreconditionError(
      absl::StrCat("retrieval=approximate: no approximate index (", state,
                   why.empty() ? "" : ": ", why, ")"));
}

absl::StatusOr<Retriever::Result> Retriever::TopK(uint32_t user, uint32_t k,
                                                  std::span<const uint32_t> exclude,
                                                  Mode mode) const {
  if (mode == Mode::kApproximate) {
    if (auto s = CheckApproximate(); !s.ok()) return s;
  }
  Result out;
  if (blocks_ == nullptr) {
    out.items = ScanModel(user, k, exclude);
    return out;
  }
  if (mode != Mode::kExact) {
    std::shared_ptr<const AnnIndex> index;
    {
      absl::MutexLock l(&mu_);
      index = index_;
    }
    if (index != nullptr) {
      out.items = Approximate(*index, user, k, exclude);
      out.used = Mode::kApproximate;
      return out;
    }
  }
  out.items = ExactTopK(*blocks_, Query(user), Offset(user), k, exclude, options_.exact);
  return out;
}

absl::StatusOr<std::vector<Retriever::Result>> Retriever::BatchTopK(
    std::span<const uint32_t> users, uint32_t k, std::span<const std::vector<uint32_t>> excludes,
    Mode mode) const {
  if (mode == Mode::kApproximate) {
    if (auto s = CheckApproximate(); !s.ok()) return s;
  }
  std::vector<Result> out(users.size());
  auto exclude_of = [&](size_t r) {
    return excludes.empty() ? std::span<const uint32_t>() : std::span<const uint32_t>(excludes[r]);
  };
  bool approximate = false;
  if (blocks_ != nullptr && mode != Mode::kExact) {
    absl::MutexLock l(&mu_);
    approximate = index_ != nullptr;
  }
  if (blocks_ == nullptr || approximate) {
    for (size_t r = 0; r < users.size(); ++r) {
      auto one = TopK(users[r], k, exclude_of(r), approximate ? Mode::kApproximate : Mode::kExact);
      if (!one.ok()) return one.status();
      out[r] = std::move(*one);
    }
    return out;
  }
  RowMatrix queries(users.size(), blocks_->dim());
  std::vector<float> offsets(users.size());
  for (size_t r = 0; r < users.size(); ++r) {
    queries.row(r) = user_factors_->row(users[r]);
    offsets[r] = Offset(users[r]);
  }
  auto lists = BatchExactTopK(*blocks_, queries, offsets, k, excludes, options_.exact);
  for (size_t r = 0; r < users.size(); ++r) out[r].items = std::move(lists[r]);
  return out;
}

std::string Retriever::IndexPath(const AnnOptions& ao) const {
  const float* data = blocks_->block(0);
  const size_t floats = size_t{blocks_->num_blocks()} * blocks_->dim() * ItemBlocks::kBlock;
  uint32_t crc = util::Crc32c(std::string_view(reinterpret_cast<const char*>(data),
                                               floats * sizeof(float)));
  crc = util::Crc32c(std::string_view(reinterpret_cast<const char*>(blocks_->block_bias(0)),
                                      size_t{blocks_->num_blocks()} * ItemBlocks::kBlock * sizeof(float)),
                     crc);
  return absl::StrFormat("%s/%s-n%u-d%d-m%d-efc%d-%08x.faiss", options_.index_dir,
                         options_.index_name, blocks_->num_items(), blocks_->dim(), ao.m,
                         ao.ef_construction, crc);
}

absl::StatusOr<std::unique_ptr<AnnIndex>> Retriever::LoadOrBuild(const AnnOptions& ao,
                                                                 nlohmann::json* diag) {
  std::string path;
  if (!options_.index_dir.empty()) {
    path = IndexPath(ao);
    (*diag)["index_file"] = path;
    auto loaded = AnnIndex::Load(path, *blocks_, ao);
    if (loaded.ok()) {
      (*diag)["loaded_from_file"] = true;
      return loaded;
    }
    if (loaded.status().code() != absl::StatusCode::kNotFound) {
      (*diag)["load_error"] = std::string(loaded.status().message());
    }
  }
  auto built = AnnIndex::Build(*blocks_, ao);
  (*diag)["loaded_from_file"] = false;
  if (built.ok() && !path.empty()) {
    if (auto s = (*built)->Save(path); !s.ok()) (*diag)["save_error"] = std::string(s.message());
  }
  return built;
}

void Retriever::BuildIndex() {
  const auto start = std::chrono::steady_clock::now();
  AnnOptions ao = options_.ann;
  ao.cancelled = [this] { return stop_.load(); };
  nlohmann::json diag = {{"index_kind", "hnsw-flat"},
                         {"m", ao.m},
                         {"ef_construction", ao.ef_construction},
                         {"ef_search", ao.ef_search}};
  auto built = LoadOrBuild(ao, &diag);
  absl::Status status = built.status();
  std::shared_ptr<const AnnIndex> index;
  if (built.ok()) {
    index = std::move(*built);
    diag["build_seconds"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    diag["index_bytes"] = index->bytes();
    // Recall@k against the exact scan on a sample of users.
    const uint32_t kk = std::min(options_.recall_k, blocks_->num_items());
    std::mt19937_64 rng(options_.seed);
    std::uniform_int_distribution<uint32_t> pick(0, user_factors_->rows() - 1);
    double sum = 0.0;
    int users = 0;
    for (; users < options_.recall_users && user_factors_->rows() > 0 && !stop_; ++users) {
      const uint32_t u = pick(rng);
      auto exact = ExactTopK(*blocks_, Query(u), 0.0f, kk, {}, options_.exact);
      auto approx = Approximate(*index, u, kk, {});
      std::vector<uint32_t> a, b;
      for (const auto& s : exact) a.push_back(s.item);
      for (const auto& s : approx) b.push_back(s.item);
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      std::vector<uint32_t> both;
      std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
      sum += a.empty() ? 1.0 : static_cast<double>(both.size()) / a.size();
    }
    if (stop_) status = absl::CancelledError("index build cancelled while measuring recall");
    diag["recall_k"] = kk;
    diag["recall_users"] = users;
    diag["recall_at_k"] = users > 0 ? sum / users : 1.0;
  }
  diag["index"] = status.ok() ? "ready" : "failed";
  if (!status.ok()) diag["reason"] = std::string(status.message());
  {
    absl::MutexLock l(&mu_);
    if (status.ok()) index_ = index;
    index_diag_ = diag;
    building_ = false;
  }
  if (options_.on_index_done) options_.on_index_done(status, diag);
}

bool Retriever::index_ready() const {
  absl::MutexLock l(&mu_);
  return index_ != nullptr;
}

void Retriever::WaitForIndex() const {
  absl::MutexLock l(&mu_);
  mu_.Await(absl::Condition(
      +[](const bool* building) { return !*building; }, &building_));
}

nlohmann::json Retriever::Diagnostics() const {
  nlohmann::json d;
  {
    absl::MutexLock l(&mu_);
    d = index_diag_;
  }
  d["exact"] = blocks_ != nullptr ? "blocked" : "score_all";
  if (blocks_ != nullptr) {
    d["items"] = blocks_->num_items();
    d["dim"] = blocks_->dim();
    d["exact_bytes"] = blocks_->bytes();
    d["ann_min_items"] = options_.ann_min_items;
  }
  return d;
}

size_t Retriever::bytes() const {
  size_t b = blocks_ != nullptr ? blocks_->bytes() : 0;
  absl::MutexLock l(&mu_);
  if (index_ != nullptr) b += index_->bytes();
  return b;
}

}  // namespace debias::retrieval
