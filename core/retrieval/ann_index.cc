#include "core/retrieval/ann_index.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>

#include "absl/strings/str_cat.h"
#include "faiss/IndexHNSW.h"
#include "faiss/impl/HNSW.h"
#include "faiss/index_io.h"

namespace debias::retrieval {
namespace {

// Items added per faiss call; the cancel flag is polled between chunks.
constexpr uint32_t kChunk = 1 << 15;

absl::Status CheckOptions(const AnnOptions& o) {
  if (o.m < 4 || o.m > 128) return absl::InvalidArgumentError(absl::StrCat("m=", o.m, ": must be in [4, 128]"));
  if (o.ef_construction < 8 || o.ef_construction > 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat("ef_construction=", o.ef_construction, ": must be in [8, 4096]"));
  }
  if (o.ef_search < 1 || o.ef_search > 65536) {
    return absl::InvalidArgumentError(absl::StrCat("ef_search=", o.ef_search, ": must be in [1, 65536]"));
  }
  if (o.build_threads < 1 || o.build_threads > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("build_threads=", o.build_threads, ": must be in [1, 256]"));
  }
  return absl::OkStatus();
}

}  // namespace

size_t AnnIndex::EstimateBytes(uint32_t num_items, int dim, int m) {
  // Vectors [V_i, b_i], level-0 links (2 m), upper levels (m links on 1/m of the nodes
  // per level, about m / (m - 1) m in all), offsets and levels.
  const double links = 2.0 * m + static_cast<double>(m) / std::max(1, m - 1);
  return static_cast<size_t>(num_items * ((dim + 1) * 4.0 + links * 4.0 + 12.0));
}

AnnIndex::~AnnIndex() = default;

void AnnIndex::SetEfSearch(int ef) {
  options_.ef_search = ef;
  index_->hnsw.efSearch = ef;
}

absl::StatusOr<std::unique_ptr<AnnIndex>> AnnIndex::Build(const ItemBlocks& items,
                                                          const AnnOptions& options) {
  if (auto s = CheckOptions(options); !s.ok()) return s;
  const uint32_t n = items.num_items();
  const int d = items.dim();
  if (n == 0) return absl::InvalidArgumentError("items: the catalogue is empty");
  const size_t estimate = EstimateBytes(n, d, options.m);
  if (options.max_bytes != 0 && estimate > options.max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("an index over ", n, " items of dim ", d,
                                                     " needs about ", estimate,
                                                     " bytes; the limit is ", options.max_bytes));
  }
  auto out = std::unique_ptr<AnnIndex>(new AnnIndex());
  out->options_ = options;
  out->dim_ = d;
  const int dx = d + 1;
  try {
    out->index_ = std::make_unique<faiss::IndexHNSWFlat>(dx, options.m, faiss::METRIC_INNER_PRODUCT);
    out->index_->hnsw.efConstruction = options.ef_construction;
    // faiss 1.7.3 ignores SearchParametersHNSW::efSearch: the candidate
    // list is the index's (raised to k by faiss itself when k is larger).
    out->index_->hnsw.efSearch = options.ef_search;
    omp_set_num_threads(options.build_threads);  // this thread's OpenMP regions only
    std::vector<float> x;
    for (uint32_t first = 0; first < n; first += kChunk) {
      if (options.cancelled && options.cancelled()) {
        return absl::CancelledError(absl::StrCat("index build cancelled after ", first, " of ", n, " items"));
      }
      const uint32_t count = std::min(kChunk, n - first);
      x.assign(size_t{count} * dx, 0.0f);
      for (uint32_t t = 0; t < count; ++t) {
        float* xi = x.data() + size_t{t} * dx;
        const float b = items.Row(first + t, xi);
        xi[d] = b;
      }
      out->index_->add(count, x.data());
    }
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("faiss: ", e.what()));
  }
  out->CountBytes();
  return out;
}

void AnnIndex::CountBytes() {
  const faiss::HNSW& h = index_->hnsw;
  bytes_ = size_t(index_->ntotal) * index_->d * sizeof(float) +
           h.neighbors.size() * sizeof(h.neighbors[0]) + h.offsets.size() * sizeof(h.offsets[0]) +
           h.levels.size() * sizeof(h.levels[0]) + h.assign_probas.size() * sizeof(double) +
           h.cum_nneighbor_per_level.size() * sizeof(int);
}

absl::Status AnnIndex::Save(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  try {
    faiss::write_index(index_.get(), tmp.c_str());
  } catch (const std::exception& e) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat("writing '", tmp, "': ", e.what()));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat("renaming '", tmp, "' to '", path, "' failed"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<AnnIndex>> AnnIndex::Load(const std::string& path,
                                                         const ItemBlocks& items,
                                                         const AnnOptions& options) {
  if (auto s = CheckOptions(options); !s.ok()) return s;
  if (FILE* f = std::fopen(path.c_str(), "rb"); f == nullptr) {
    return absl::NotFoundError(absl::StrCat("no index file '", path, "'"));
  } else {
    std::fclose(f);
  }
  std::unique_ptr<faiss::Index> read;
  try {
    read.reset(faiss::read_index(path.c_str()));
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat("reading '", path, "': ", e.what()));
  }
  auto* hnsw = dynamic_cast<faiss::IndexHNSWFlat*>(read.get());
  if (hnsw == nullptr || hnsw->d != items.dim() + 1 || hnsw->ntotal != items.num_items() ||
      hnsw->metric_type != faiss::METRIC_INNER_PRODUCT) {
    return absl::DataLossError(absl::StrCat("'", path, "' is not an inner-product HNSW index over ",
                                            items.num_items(), " items of dim ", items.dim()));
  }
  read.release();
  auto out = std::unique_ptr<AnnIndex>(new AnnIndex());
  out->index_.reset(hnsw);
  out->options_ = options;
  out->options_.m = hnsw->hnsw.nb_neighbors(1);
  out->options_.ef_construction = hnsw->hnsw.efConstruction;
  out->dim_ = items.dim();
  out->index_->hnsw.efSearch = options.ef_search;
  out->CountBytes();
  return out;
}

std::vector<uint32_t> AnnIndex::Search(std::span<const float> query, uint32_t n) const {
  std::vector<float> q(dim_ + 1, 0.0f);
  std::copy(query.begin(), query.end(), q.begin());
  q[dim_] = 1.0f;
  const faiss::Index::idx_t kk = std::min<faiss::Index::idx_t>(n, index_->ntotal);
  std::vector<float> dist(kk);
  std::vector<faiss::Index::idx_t> labels(kk, -1);
  // One query: no OpenMP team (each thread of one would allocate a visited
  // table as large as the catalogue).
  omp_set_num_threads(1);
  index_->search(1, q.data(), kk, dist.data(), labels.data());
  std::vector<uint32_t> out;
  out.reserve(kk);
  for (faiss::Index::idx_t l : labels) {
    if (l >= 0) out.push_back(static_cast<uint32_t>(l));
  }
  return out;
}

}  // namespace debias::retrieval
