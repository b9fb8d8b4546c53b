#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include "core/models/mf_model.h"
#include "core/retrieval/ann_index.h"
#include "core/retrieval/exact.h"
#include "core/retrieval/retriever.h"
#include "core/retrieval/synthetic_factors.h"
#include "core/retrieval/thread_pool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::retrieval {
namespace {

using ::debias::testing::StatusIs;

RowMatrix Gaussian(int64_t rows, int dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g;
  RowMatrix m(rows, dim);
  for (int64_t r = 0; r < rows; ++r) {
    for (int j = 0; j < dim; ++j) m(r, j) = g(rng);
  }
  return m;
}

// Brute force in double precision: every item, sorted by score then id.
std::vector<std::pair<double, uint32_t>> Reference(const RowMatrix& items,
                                                   const std::vector<float>& bias,
                                                   const float* q, double offset,
                                                   const std::set<uint32_t>& exclude = {}) {
  std::vector<std::pair<double, uint32_t>> all;
  for (uint32_t i = 0; i < items.rows(); ++i) {
    if (exclude.count(i)) { continue; }
    double s = offset + (bias.empty() ? 0.0 : bias[i]);
    for (int j = 0; j < items.cols(); ++j) s += double{items(i, j)} * q[j];
    all.push_back({-s, i});
  }
  std::sort(all.begin(), all.end());
  for (auto& p : all) p.first = -p.first;
  return all;
}

// `got` is the reference's top k up to float rounding: same length, scores
// within tol of the reference's at each rank, and each item either the
// reference's or one whose exact score ties it within tol.
void ExpectMatchesReference(const std::vector<ScoredItem>& got,
                            const std::vector<std::pair<double, uint32_t>>& ref, size_t k,
                            double tol = 1e-4) {
  ASSERT_EQ(got.size(), std::min(k, ref.size()));
  std::unordered_map<uint32_t, double> by_item;
  for (const auto& [s, i] : ref) by_item[i] = s;
  for (size_t r = 0; r < got.size(); ++r) {
    EXPECT_NEAR(got[r].score, ref[r].first, tol) << "rank " << r;
    ASSERT_TRUE(by_item.count(got[r].item)) << "item " << got[r].item << " should be excluded";
    EXPECT_NEAR(by_item[got[r].item], ref[r].first, tol) << "rank " << r;
    if (r > 0) {
      EXPECT_FALSE(RanksBefore(got[r], got[r - 1])) << "rank " << r;
    }
  }
  std::set<uint32_t> distinct;
  for (const auto& s : got) distinct.insert(s.item);
  EXPECT_EQ(distinct.size(), got.size());
}

TEST(ExactTopK, EqualsBruteForceAcrossShapes) {
  ThreadPool pool(2);
  for (int dim : {1, 7, 32}) {
    for (int64_t n : {1, 63, 64, 65, 1000, 4097}) {
      const RowMatrix items = Gaussian(n, dim, 10 + n + dim);
      std::vector<float> bias(n);
      for (int64_t i = 0; i < n; ++i) bias[i] = 0.01f * static_cast<float>(i % 17);
      auto blocks = ItemBlocks::Create(items, bias);
      ASSERT_TRUE(blocks.ok()) << blocks.status();
      const RowMatrix q = Gaussian(3, dim, 99);
      for (int parallel_min : {0, 1 << 30}) {
        ExactOptions o;
        o.pool = &pool;
        o.parallel_min_items = parallel_min;
        for (uint32_t k : {1u, 10u, 100u, 5000u}) {
          for (int u = 0; u < q.rows(); ++u) {
            SCOPED_TRACE(::testing::Message() << "dim=" << dim << " n=" << n << " k=" << k
                                              << " parallel_min=" << parallel_min);
            auto got = ExactTopK(**blocks, {q.row(u).data(), size_t(dim)}, 0.5f, k, {}, o);
            ExpectMatchesReference(got, Reference(items, bias, q.row(u).data(), 0.5), k);
          }
        }
      }
    }
  }
}

TEST(ExactTopK, KLargerThanCatalogueReturnsEveryItemOrdered) {
  const RowMatrix items = Gaussian(150, 8, 3);
  auto blocks = ItemBlocks::Create(items, {});
  ASSERT_TRUE(blocks.ok());
  const RowMatrix q = Gaussian(1, 8, 4);
  auto got = ExactTopK(**blocks, {q.data(), 8}, 0.0f, 1000);
  ASSERT_EQ(got.size(), 150u);
  ExpectMatchesReference(got, Reference(items, {}, q.data(), 0.0), 1000);
}

TEST(ExactTopK, TiesRankByAscendingId) {
  RowMatrix items = RowMatrix::Ones(200, 4);  // every score equal
  auto blocks = ItemBlocks::Create(items, {});
  ASSERT_TRUE(blocks.ok());
  const float q[4] = {1, 2, 3, 4};
  ThreadPool pool(2);
  ExactOptions o;
  o.pool = &pool;
  o.parallel_min_items = 0;
  auto got = ExactTopK(**blocks, q, 0.0f, 5, {}, o);
  ASSERT_EQ(got.size(), 5u);
  for (uint32_t r = 0; r < 5; ++r) {
    EXPECT_EQ(got[r].item, r);
    EXPECT_FLOAT_EQ(got[r].score, 10.0f);
  }
}

TEST(ExactTopK, ExcludeOverFetchesSoKItemsComeBack) {
  const RowMatrix items = Gaussian(500, 16, 5);
  auto blocks = ItemBlocks::Create(items, {});
  ASSERT_TRUE(blocks.ok());
  const RowMatrix q = Gaussian(1, 16, 6);
  // Exclude the 30 best items (the worst case for over-fetching) and a few more.
  auto full = Reference(items, {}, q.data(), 0.0);
  std::set<uint32_t> ex;
  for (int r = 0; r < 30; ++r) ex.insert(full[r].second);
  ex.insert({0, 7, 499});
  const std::vector<uint32_t> exclude(ex.begin(), ex.end());
  auto got = ExactTopK(**blocks, {q.data(), 16}, 0.0f, 20, exclude);
  ExpectMatchesReference(got, Reference(items, {}, q.data(), 0.0, ex), 20);
  // All but 3 excluded: only those 3 come back.
  std::vector<uint32_t> all_but(497);
  std::iota(all_but.begin(), all_but.end(), 3);
  auto few = ExactTopK(**blocks, {q.data(), 16}, 0.0f, 20, all_but);
  ASSERT_EQ(few.size(), 3u);
  for (const auto& s : few) EXPECT_LT(s.item, 3u);
}

TEST(ItemBlocks, RejectsBadShapesAndValues) {
  EXPECT_THAT(ItemBlocks::Create(RowMatrix(10, 0), {}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "dim must be >= 1"));
  std::vector<float> bias(9, 0.0f);
  EXPECT_THAT(ItemBlocks::Create(Gaussian(10, 2, 1), bias).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "9 values for 10 items"));
  RowMatrix bad = Gaussian(10, 2, 1);
  bad(3, 1) = std::nanf("");
  EXPECT_THAT(ItemBlocks::Create(bad, {}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "finite"));
}

TEST(BatchExactTopK, EqualsOneQueryAtATime) {
  const RowMatrix items = Gaussian(1000, 24, 7);
  std::vector<float> bias(1000);
  for (int i = 0; i < 1000; ++i) bias[i] = 0.001f * i;
  auto blocks = ItemBlocks::Create(items, bias);
  ASSERT_TRUE(blocks.ok());
  ThreadPool pool(2);
  ExactOptions o;
  o.pool = &pool;
  for (int nq : {1, 7, 70}) {  // remainders of the groups of 4 and of the chunks
    const RowMatrix q = Gaussian(nq, 24, 8 + nq);
    std::vector<float> offsets(nq);
    std::vector<std::vector<uint32_t>> excludes(nq);
    for (int r = 0; r < nq; ++r) {
      offsets[r] = 0.1f * r;
      for (uint32_t i = r; i < 1000; i += 37 + r) excludes[r].push_back(i);
    }
    auto batch = BatchExactTopK(**blocks, q, offsets, 50, excludes, o);
    ASSERT_EQ(batch.size(), size_t(nq));
    for (int r = 0; r < nq; ++r) {
      auto one = ExactTopK(**blocks, {q.row(r).data(), 24}, offsets[r], 50, excludes[r], o);
      ASSERT_EQ(batch[r].size(), one.size()) << "query " << r;
      for (size_t i = 0; i < one.size(); ++i) {
        EXPECT_EQ(batch[r][i].item, one[i].item) << "query " << r << " rank " << i;
        EXPECT_EQ(batch[r][i].score, one[i].score) << "query " << r << " rank " << i;
      }
    }
  }
}

TEST(BaselineTopK, EqualsBruteForce) {
  const RowMatrix items = Gaussian(777, 12, 9);
  std::vector<float> bias(777, 0.25f);
  const RowMatrix q = Gaussian(1, 12, 10);
  auto got = BaselineTopK(items, bias, {q.data(), 12}, -1.0f, 40);
  ExpectMatchesReference(got, Reference(items, bias, q.data(), -1.0), 40);
}

TEST(ThreadPool, RunsEveryShardOnceUnderConcurrentCallers) {
  ThreadPool pool(2);
  std::vector<std::thread> callers;
  std::atomic<int> bad{0};
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int rep = 0; rep < 200; ++rep) {
        std::vector<std::atomic<int>> hits(17);
        pool.ParallelFor(17, [&](int i) { hits[i].fetch_add(1); });
        for (auto& h : hits) bad += h.load() != 1;
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(bad.load(), 0);
}

// An MF model over clustered factors, as in the benchmarks.
std::unique_ptr<models::MfModel> ClusteredModel(int users, int items, int dim, bool biases) {
  models::MfParams p;
  p.user_factors = ClusteredFactors(users, dim, 50, 0.5f, 1, 42);
  p.item_factors = ClusteredFactors(items, dim, 50, 0.5f, 2, 42);
  if (biases) {
    p.user_bias = Eigen::VectorXf::Constant(users, 0.3f);
    p.item_bias = Eigen::VectorXf::LinSpaced(items, -0.2f, 0.2f);
    p.global_bias = -1.0f;
  }
  auto m = models::MfModel::Create(std::move(p));
  EXPECT_TRUE(m.ok());
  return std::move(*m);
}

TEST(AnnIndex, RecallOnAFixedSeed) {
  auto model = ClusteredModel(100, 5000, 16, true);
  auto blocks =
      ItemBlocks::Create(model->params().item_factors,
                         {model->params().item_bias.data(), size_t(model->num_items())});
  ASSERT_TRUE(blocks.ok());
  AnnOptions ao;
  ao.m = 16;
  ao.ef_construction = 64;
  ao.ef_search = 64;
  auto index = AnnIndex::Build(**blocks, ao);
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_GT((*index)->bytes(), size_t{5000} * 18 * 4);
  double hits = 0;
  for (int u = 0; u < 50; ++u) {
    const float* q = model->params().user_factors.row(u).data();
    auto exact = ExactTopK(**blocks, {q, 16}, 0.0f, 10);
    auto approx = (*index)->Search({q, 16}, 10);
    std::set<uint32_t> a(approx.begin(), approx.end());
    for (const auto& s : exact) hits += a.count(s.item);
  }
  EXPECT_GE(hits / 500.0, 0.95);
}

TEST(AnnIndex, RefusesAnIndexOverItsByteLimit) {
  auto blocks = ItemBlocks::Create(Gaussian(1000, 8, 1), {});
  ASSERT_TRUE(blocks.ok());
  AnnOptions ao;
  ao.max_bytes = 1000;
  EXPECT_THAT(AnnIndex::Build(**blocks, ao).status(),
              StatusIs(absl::StatusCode::kResourceExhausted, "the limit is 1000"));
  ao.max_bytes = 0;
  ao.m = 2;
  EXPECT_THAT(AnnIndex::Build(**blocks, ao).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "m=2"));
}

RetrieverOptions SmallIndexOptions() {
  RetrieverOptions o;
  o.ann_min_items = 1000;
  o.ann.m = 16;
  o.ann.ef_construction = 64;
  o.ann.ef_search = 64;
  o.recall_users = 50;
  o.recall_k = 10;
  o.build_async = false;
  return o;
}

TEST(Retriever, ExactModeMatchesTheModelsOwnScores) {
  auto model = ClusteredModel(20, 3000, 8, true);
  auto r = Retriever::Create(*model, SmallIndexOptions());
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<float> all(model->num_items());
  for (uint32_t u = 0; u < 20; ++u) {
    auto got = (*r)->TopK(u, 25, {}, Mode::kExact);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->used, Mode::kExact);
    model->ScoreAll(u, all);
    std::vector<std::pair<double, uint32_t>> ref;
    for (uint32_t i = 0; i < all.size(); ++i) ref.push_back({all[i], i});
    std::sort(ref.begin(), ref.end(), [](auto& a, auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    ExpectMatchesReference(got->items, ref, 25);
  }
}

TEST(Retriever, ApproximatePathRecallAndExclusions) {
  auto model = ClusteredModel(200, 4000, 16, true);
  auto r = Retriever::Create(*model, SmallIndexOptions());
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE((*r)->index_ready());
  const nlohmann::json d = (*r)->Diagnostics();
  EXPECT_EQ(d["index"], "ready");
  EXPECT_EQ(d["recall_k"], 10);
  EXPECT_EQ(d["recall_users"], 50);
  EXPECT_GE(d["recall_at_k"].get<double>(), 0.95);
  EXPECT_GT((*r)->bytes(), d["exact_bytes"].get<size_t>());
  // auto uses the index; the answers hold k items with the model's scores.
  auto got = (*r)->TopK(3, 10, {}, Mode::kAuto);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->used, Mode::kApproximate);
  ASSERT_EQ(got->items.size(), 10u);
  for (const auto& s : got->items) {
    float want = 0;
    const uint32_t item = s.item;
    model->ScoreItems(3, {&item, 1}, {&want, 1});
    EXPECT_NEAR(s.score, want, 1e-4);
  }
  // Excluding the approximate answer's items gives k others.
  std::vector<uint32_t> ex;
  for (const auto& s : got->items) ex.push_back(s.item);
  std::sort(ex.begin(), ex.end());
  auto again = (*r)->TopK(3, 10, ex, Mode::kApproximate);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->items.size(), 10u);
  for (const auto& s : again->items) EXPECT_FALSE(std::binary_search(ex.begin(), ex.end(), s.item));
  // Batches on the approximate path answer as single calls do.
  const uint32_t users[] = {3, 4};
  auto batch = (*r)->BatchTopK(users, 10, {}, Mode::kAuto);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ((*batch)[0].used, Mode::kApproximate);
  EXPECT_EQ((*batch)[0].items.size(), 10u);
  EXPECT_EQ((*batch)[0].items[0].item, got->items[0].item);
}

TEST(Retriever, NoIndexBelowTheThresholdAndApproximateIsRefused) {
  auto model = ClusteredModel(10, 500, 8, false);
  auto r = Retriever::Create(*model, SmallIndexOptions());
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE((*r)->index_ready());
  EXPECT_EQ((*r)->Diagnostics()["index"], "none");
  EXPECT_THAT((*r)->TopK(0, 5, {}, Mode::kApproximate).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, "under ann_min_items=1000"));
  auto got = (*r)->TopK(0, 5, {}, Mode::kAuto);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->used, Mode::kExact);
  EXPECT_EQ(got->items.size(), 5u);
}

TEST(Retriever, AFailedBuildIsReportedAndServesExactly) {
  auto model = ClusteredModel(10, 2000, 8, false);
  RetrieverOptions o = SmallIndexOptions();
  o.ann.max_bytes = 4096;  // far too small: the build is refused
  absl::Status reported = absl::OkStatus();
  o.on_index_done = [&](const absl::Status& s, const nlohmann::json&) { reported = s; };
  auto r = Retriever::Create(*model, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(reported.code(), absl::StatusCode::kResourceExhausted);
  const nlohmann::json d = (*r)->Diagnostics();
  EXPECT_EQ(d["index"], "failed");
  EXPECT_THAT(d["reason"].get<std::string>(), ::testing::HasSubstr("the limit is 4096"));
  auto got = (*r)->TopK(1, 7, {}, Mode::kAuto);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->used, Mode::kExact);
  EXPECT_EQ(got->items.size(), 7u);
  EXPECT_THAT((*r)->TopK(1, 7, {}, Mode::kApproximate).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, "failed"));
}

TEST(Retriever, BackgroundBuildCanBeAbandoned) {
  auto model = ClusteredModel(10, 200000, 8, false);
  RetrieverOptions o = SmallIndexOptions();
  o.build_async = true;
  auto r = Retriever::Create(*model, o);
  ASSERT_TRUE(r.ok());
  // Served exactly while it builds; destroying it stops the build.
  auto got = (*r)->TopK(0, 3, {}, Mode::kAuto);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->items.size(), 3u);
  r->reset();
}

TEST(Retriever, KeepsItsIndexInAFileAndReadsItBack) {
  const std::string dir = ::testing::TempDir() + "/retrieval_index_file_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto model = ClusteredModel(50, 3000, 8, true);
  RetrieverOptions o = SmallIndexOptions();
  o.index_dir = dir;
  o.index_name = "model-7";
  auto first = Retriever::Create(*model, o);
  ASSERT_TRUE(first.ok());
  const nlohmann::json d1 = (*first)->Diagnostics();
  ASSERT_EQ(d1["index"], "ready");
  EXPECT_EQ(d1["loaded_from_file"], false);
  const std::string path = d1["index_file"];
  EXPECT_THAT(path, ::testing::StartsWith(dir + "/model-7-n3000-d8-m16-efc64-"));
  ASSERT_TRUE(std::filesystem::exists(path));
  auto second = Retriever::Create(*model, o);
  ASSERT_TRUE(second.ok());
  const nlohmann::json d2 = (*second)->Diagnostics();
  EXPECT_EQ(d2["index"], "ready");
  EXPECT_EQ(d2["loaded_from_file"], true);
  EXPECT_EQ(d2["recall_at_k"], d1["recall_at_k"]);
  for (uint32_t u = 0; u < 10; ++u) {
    auto a = (*first)->TopK(u, 10, {}, Mode::kApproximate);
    auto b = (*second)->TopK(u, 10, {}, Mode::kApproximate);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->items.size(), b->items.size());
    for (size_t r = 0; r < a->items.size(); ++r) EXPECT_EQ(a->items[r].item, b->items[r].item);
  }
  // Other factors: another file. A damaged file is rebuilt over.
  { std::ofstream(path, std::ios::trunc) << "not an index"; }
  auto third = Retriever::Create(*model, o);
  ASSERT_TRUE(third.ok());
  const nlohmann::json d3 = (*third)->Diagnostics();
  EXPECT_EQ(d3["index"], "ready");
  EXPECT_EQ(d3["loaded_from_file"], false);
  EXPECT_TRUE(d3.contains("load_error"));
  EXPECT_GT(std::filesystem::file_size(path), 1000u);
  auto other = ClusteredModel(50, 3001, 8, true);
  auto fourth = Retriever::Create(*other, o);
  ASSERT_TRUE(fourth.ok());
  EXPECT_NE((*fourth)->Diagnostics()["index_file"], path);
  std::filesystem::remove_all(dir);
}

TEST(ParseMode, NamesAndErrors) {
  EXPECT_EQ(*ParseMode(""), Mode::kAuto);
  EXPECT_EQ(*ParseMode("exact"), Mode::kExact);
  EXPECT_EQ(*ParseMode("approximate"), Mode::kApproximate);
  EXPECT_THAT(ParseMode("fast").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "retrieval='fast': must be auto, exact or approximate"));
}

}  // namespace
}  // namespace debias::retrieval
