// Speed of one relmf epoch (dim 64) on a synthetic 100,000 users x 20,000
// items x 10,000,000 clicks world, against a baseline measured in the same
// run: one plain dot-product pass (U_u . V_i) over the same events plus as
// many random pairs (the forward work of the epoch, without gradients,
// sampling or optimiser). Reports wall and process CPU time (on a shared
// machine the wall time includes waiting for a core), the trainer's set-up
// vs epoch split, and peak RSS. Plain program (no Google Benchmark: one long
// measurement, run once). --threads is the trainer's `threads` parameter
// (default 1; the model is the same for any value); the trainer's default
// async_sampling draws the unlabeled pairs on one more thread.
//
// Usage: mf_bench [--users=N] [--items=N] [--events=N] [--dim=N] [--threads=N]
//                 [--async=0|1]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <random>
#include <string>

#include "core/data/dataset_view.h"
#include "core/models/mf_model.h"
#include "core/models/mf_trainer.h"
#include "core/models/minibatch.h"

namespace {

long PeakRssKb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

int64_t Flag(int argc, char** argv, const std::string& name, int64_t def) {
  for (int k = 1; k < argc; ++k) {
    std::string a = argv[k];
    if (a.rfind("--" + name + "=", 0) == 0) return std::stoll(a.substr(name.size() + 3));
  }
  return def;
}

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU seconds of the whole process (all threads): on a shared machine the
// wall time includes waiting for a core, the CPU time does not.
double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace debias;
  const uint32_t nu = Flag(argc, argv, "users", 100000);
  const uint32_t ni = Flag(argc, argv, "items", 20000);
  const int64_t n = Flag(argc, argv, "events", 10000000);
  const int dim = Flag(argc, argv, "dim", 64);
  const int threads = Flag(argc, argv, "threads", 1);
  const bool async = Flag(argc, argv, "async", 1) != 0;
  const int64_t per_user = n / nu;

  // Clicks: per_user items per user, popularity-skewed (item = floor(ni *
  // u^2), u uniform), user-major.
  auto t0 = std::chrono::steady_clock::now();
  data::DatasetViewBuilder b;
  b.Reserve(n);
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u01(0, 1);
  for (uint32_t u = 0; u < nu; ++u) {
    for (int64_t k = 0; k < per_user; ++k) {
      double x = u01(rng);
      uint32_t i = std::min<uint32_t>(ni - 1, static_cast<uint32_t>(ni * x * x));
      b.Add(u, i, 1.0f, std::nullopt, data::kNoList, std::nullopt, std::nullopt, {});
    }
  }
  std::vector<std::string> uk(nu), ik(ni);
  for (uint32_t u = 0; u < nu; ++u) uk[u] = "u" + std::to_string(u);
  for (uint32_t i = 0; i < ni; ++i) ik[i] = "i" + std::to_string(i);
  auto view = b.Finish(std::move(uk), std::move(ik), {}, 0);
  if (!view.ok()) {
    std::fprintf(stderr, "%s\n", std::string(view.status().message()).c_str());
    return 1;
  }
  std::printf("world: %u users x %u items, %zu clicks, built in %.2f s\n", nu, ni,
              view->num_events(), Seconds(t0));

  // Baseline: dot products over the events and as many random pairs.
  models::RowMatrix U = models::RowMatrix::Random(nu, dim) * 0.01f;
  models::RowMatrix V = models::RowMatrix::Random(ni, dim) * 0.01f;
  t0 = std::chrono::steady_clock::now();
  double c0 = CpuSeconds();
  double acc = 0;
  for (size_t e = 0; e < view->num_events(); ++e) {
    acc += U.row(view->user[e]).dot(V.row(view->item[e]));
    acc += U.row(models::UniformBelow(rng, nu)).dot(V.row(models::UniformBelow(rng, ni)));
  }
  const double base = Seconds(t0), base_cpu = CpuSeconds() - c0;
  std::printf("baseline: dot-product pass over %zu events + %zu random pairs: %.2f s wall, "
              "%.2f s CPU (%g)\n",
              view->num_events(), view->num_events(), base, base_cpu, acc);

  train::TrainSpec spec;
  spec.loss = "relmf";
  spec.feedback = train::FeedbackKind::kImplicit;
  spec.seed = 1;
  spec.params = {{"dim", std::to_string(dim)}, {"epochs", "1"}, {"val_fraction", "0"},
                 {"batch_size", "4096"}, {"neg_ratio", "1"},
                 {"threads", std::to_string(threads)},
                 {"async_sampling", async ? "true" : "false"}};
  t0 = std::chrono::steady_clock::now();
  c0 = CpuSeconds();
  auto r = models::TrainMf(models::MfLoss::kRelMf, *view, spec, {});
  const double train_s = Seconds(t0), train_cpu = CpuSeconds() - c0;
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", std::string(r.status().message()).c_str());
    return 1;
  }
  std::printf("relmf: one epoch (dim %d, batch 4096 clicks + 4096 unlabeled, Adam lazy, "
              "%d training thread%s%s), incl. propensity fit and "
              "diagnostics: %.2f s wall, %.2f s CPU; "
              "ratio to baseline %.2fx wall, %.2fx CPU\n",
              dim, threads, threads == 1 ? "" : "s",
              async ? " + the sampling helper" : ", inline sampling", train_s, train_cpu, train_s / base,
              train_cpu / base_cpu);
  std::printf("  of which set-up (propensities, diagnostics, indexes, init) %.2f s, "
              "epoch %.2f s wall\n",
              r->diagnostics.value("setup_seconds", 0.0),
              r->diagnostics.value("epoch_seconds", 0.0));
  std::printf("  set-up breakdown (s): %s\n", r->diagnostics["setup_breakdown"].dump().c_str());
  std::printf("peak RSS: %.0f MB\n", PeakRssKb() / 1024.0);
  return 0;
}
