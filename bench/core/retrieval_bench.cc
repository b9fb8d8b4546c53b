// retrieval_bench: TopK at catalogue scale, every number from one run so the
// ratios compare like with like (docs/BENCHMARKS.md, "Retrieval").
//
// For each catalogue (items x dim) of clustered synthetic factors
// (core/retrieval/synthetic_factors.h), k = --k:
//   baseline   the scan TopK used before core/retrieval (BaselineTopK: a
//              row-major matrix-vector product into a score vector, then
//              partial_sort of every id), one thread;
//   exact_1t   ExactTopK over ItemBlocks on one thread;
//   exact      ExactTopK split over the pool (all hardware threads);
//   floor_1t / floor  a plain streaming read (sum) of the same bytes on one
//              thread / all threads: the memory-bandwidth floor;
//   approx     AnnIndex (faiss HNSW) per ef_search: latency and recall@k
//              against the exact answer, build seconds and bytes;
//   batch      BatchExactTopK over --batch_users users: users/s, against
//              the per-user rate of `exact`.
// Prints one JSON object per catalogue (one line each) on stdout.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "core/retrieval/ann_index.h"
#include "core/retrieval/exact.h"
#include "core/retrieval/synthetic_factors.h"
#include "core/retrieval/thread_pool.h"
#include "core/util/memory.h"
#include "nlohmann/json.hpp"

namespace debias::retrieval {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Flags {
  std::vector<int64_t> items = {100000, 1000000};
  std::vector<int> dims = {32, 64};
  uint32_t k = 100;
  int queries = 100;
  int batch_users = 10000;
  std::vector<int> ef = {64, 128, 256};
  int m = 32;
  int ef_construction = 80;
  bool approx = true;
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

json Latency(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  auto q = [&](double p) { return ms[std::min(ms.size() - 1, static_cast<size_t>(p * ms.size()))]; };
  return {{"p50_ms", q(0.5)}, {"p99_ms", q(0.99)}, {"mean_ms",
          std::accumulate(ms.begin(), ms.end(), 0.0) / ms.size()}};
}

// Times fn(query index) over the queries (after one warm-up call).
template <typename Fn>
json Time(int queries, Fn fn) {
  fn(0);
  std::vector<double> ms;
  for (int q = 0; q < queries; ++q) {
    const auto t0 = Clock::now();
    fn(q);
    ms.push_back(Ms(Clock::now() - t0));
  }
  return Latency(ms);
}

// Sum of `n` floats: the memory-bandwidth floor of reading them once.
float StreamSum(const float* p, size_t n) {
  float acc[16] = {};
  for (size_t i = 0; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) acc[j] += p[i + j];
  }
  return std::accumulate(acc, acc + 16, 0.0f);
}

double Recall(const std::vector<ScoredItem>& exact, const std::vector<ScoredItem>& approx) {
  std::set<uint32_t> a;
  for (const auto& s : exact) a.insert(s.item);
  int hit = 0;
  for (const auto& s : approx) hit += a.count(s.item);
  return exact.empty() ? 1.0 : static_cast<double>(hit) / exact.size();
}

json RunOne(const Flags& f, int64_t n, int dim) {
  json out = {{"items", n}, {"dim", dim}, {"k", f.k},
              {"threads", ThreadPool::Default().num_threads() + 1}};
  const auto g0 = Clock::now();
  const RowMatrix items = ClusteredFactors(n, dim, 1000, 0.5f, 11, 7);
  const RowMatrix users = ClusteredFactors(std::max(f.batch_users, f.queries), dim, 1000, 0.5f, 12, 7);
  std::vector<float> bias(n);
  std::mt19937_64 rng(3);
  std::normal_distribution<float> g(0.0f, 0.1f);
  for (auto& b : bias) b = g(rng);
  out["generate_seconds"] = Ms(Clock::now() - g0) / 1000;
  auto blocks = ItemBlocks::Create(items, bias);
  if (!blocks.ok()) std::abort();
  const ItemBlocks& b = **blocks;
  auto q = [&](int i) { return std::span<const float>(users.row(i).data(), dim); };
  const size_t bytes = size_t(n) * dim * sizeof(float);
  out["bytes_scanned"] = bytes;
  out["exact_bytes"] = b.bytes();

  volatile float sink = 0;
  out["baseline"] = Time(f.queries, [&](int i) { sink = BaselineTopK(items, bias, q(i), 0, f.k)[0].score; });
  ExactOptions one;
  one.parallel_min_items = UINT32_MAX;
  out["exact_1t"] = Time(f.queries, [&](int i) { sink = ExactTopK(b, q(i), 0, f.k, {}, one)[0].score; });
  ExactOptions par;
  par.parallel_min_items = 0;
  out["exact"] = Time(f.queries, [&](int i) { sink = ExactTopK(b, q(i), 0, f.k, {}, par)[0].score; });
  // The blocked array holds the same bytes (plus < 64 items of padding).
  const float* data = b.block(0);
  const size_t floats = size_t(b.num_blocks()) * dim * ItemBlocks::kBlock;
  out["floor_1t"] = Time(f.queries, [&](int) { sink = StreamSum(data, floats); });
  ThreadPool& pool = ThreadPool::Default();
  const int shards = pool.num_threads() + 1;
  out["floor"] = Time(f.queries, [&](int) {
    std::vector<float> part(shards);
    pool.ParallelFor(shards, [&](int s) {
      const size_t lo = floats * s / shards, hi = floats * (s + 1) / shards;
      part[s] = StreamSum(data + lo, hi - lo);
    });
    sink = part[0];
  });
  const double floor_ms = out["floor"]["p50_ms"];
  out["exact_vs_floor"] = out["exact"]["p50_ms"].get<double>() / floor_ms;
  out["exact_1t_vs_floor_1t"] =
      out["exact_1t"]["p50_ms"].get<double>() / out["floor_1t"]["p50_ms"].get<double>();
  out["speedup_vs_baseline"] =
      out["baseline"]["p50_ms"].get<double>() / out["exact"]["p50_ms"].get<double>();
  out["exact_item_dims_per_ns"] = double(n) * dim / (out["exact"]["p50_ms"].get<double>() * 1e6);
  out["floor_item_dims_per_ns"] = double(n) * dim / (floor_ms * 1e6);

  // Batch top-k against per-user calls.
  const int bu = f.batch_users;
  const auto t0 = Clock::now();
  auto lists = BatchExactTopK(b, users.topRows(bu), {}, f.k, {}, par);
  const double batch_s = Ms(Clock::now() - t0) / 1000;
  sink = lists[0][0].score;
  const double per_user_rate = 1000.0 / out["exact"]["mean_ms"].get<double>();
  out["batch"] = {{"users", bu}, {"seconds", batch_s}, {"users_per_s", bu / batch_s},
                  {"per_user_calls_users_per_s", per_user_rate},
                  {"ratio", bu / batch_s / per_user_rate}};

  if (f.approx) {
    AnnOptions ao;
    ao.m = f.m;
    ao.ef_construction = f.ef_construction;
    ao.build_threads = shards;
    const uint64_t rss0 = util::ResidentBytes();
    const auto b0 = Clock::now();
    auto index = AnnIndex::Build(b, ao);
    const double build_s = Ms(Clock::now() - b0) / 1000;
    if (!index.ok()) {
      out["approx_error"] = std::string(index.status().message());
      return out;
    }
    out["approx_build"] = {{"m", f.m}, {"ef_construction", f.ef_construction},
                           {"seconds", build_s}, {"index_bytes", (*index)->bytes()},
                           {"rss_growth_bytes", util::ResidentBytes() - rss0}};
    std::vector<std::vector<ScoredItem>> truth(f.queries);
    for (int i = 0; i < f.queries; ++i) truth[i] = ExactTopK(b, q(i), 0, f.k, {}, par);
    json per_ef = json::array();
    for (int ef : f.ef) {
      (*index)->SetEfSearch(ef);
      double recall = 0;
      json lat = Time(f.queries, [&](int i) {
        auto ids = (*index)->Search(q(i), f.k);
        std::vector<ScoredItem> got;
        for (uint32_t id : ids) got.push_back({id, b.Score(q(i), id)});
        got = SelectTopK(std::move(got), f.k, 0, {});
        recall += Recall(truth[i], got);
      });
      lat["ef_search"] = ef;
      lat["recall_at_k"] = recall / (f.queries + 1);  // + the warm-up call (query 0)
      per_ef.push_back(lat);
    }
    out["approx"] = per_ef;
  }
  return out;
}

template <typename T>
std::vector<T> ParseList(const char* s) {
  std::vector<T> out;
  for (absl::string_view p : absl::StrSplit(s, ',')) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(p, &v)) {
      std::fprintf(stderr, "not a number: %s\n", std::string(p).c_str());
      std::exit(2);
    }
    out.push_back(static_cast<T>(v));
  }
  return out;
}

}  // namespace
}  // namespace debias::retrieval

int main(int argc, char** argv) {
  using namespace debias::retrieval;
  Flags f;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--items") f.items = ParseList<int64_t>(v);
    else if (a == "--dims") f.dims = ParseList<int>(v);
    else if (a == "--k") f.k = std::atoi(v);
    else if (a == "--queries") f.queries = std::atoi(v);
    else if (a == "--batch_users") f.batch_users = std::atoi(v);
    else if (a == "--ef") f.ef = ParseList<int>(v);
    else if (a == "--m") f.m = std::atoi(v);
    else if (a == "--ef_construction") f.ef_construction = std::atoi(v);
    else if (a == "--approx") f.approx = std::atoi(v) != 0;
    else {
      std::fprintf(stderr,
                   "usage: retrieval_bench [--items N,N] [--dims D,D] [--k K] [--queries Q] "
                   "[--batch_users U] [--ef E,E] [--m M] [--ef_construction C] [--approx 0|1]\n");
      return 2;
    }
  }
  for (int64_t n : f.items) {
    for (int d : f.dims) {
      std::printf("%s\n", RunOne(f, n, d).dump().c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}
