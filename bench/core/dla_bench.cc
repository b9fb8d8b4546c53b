// Speed of one DLA pass over a click log of 100,000 lists x 10 documents x
// 136 features (the MSLR-WEB feature count), with the MLP ranker (64-32)
// and the linear ranker, against a baseline measured in the same run: a
// plain forward pass of the same network over the same 1,000,000 documents.
//
// One pass = ceil(lists / batch_size) DLA steps of batch_size lists (forward,
// both losses, backward, both optimiser steps), including the trainer's setup
// (grouping the lists, standardisation). Single-threaded.
//
// Usage: dla_bench [--lists N] [--dim D] [--repeats R]
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/data/dataset_view.h"
#include "core/models/dla_trainer.h"
#include "core/models/ranker_net.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a) {
  return std::chrono::duration<double>(Clock::now() - a).count();
}

// CPU seconds of this process: robust when the machine is shared.
double CpuNow() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

debias::data::DatasetView MakeLog(int lists, int K, int dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> N(0.0f, 1.0f);
  std::uniform_real_distribution<double> U(0.0, 1.0);
  debias::data::DatasetViewBuilder b;
  b.Reserve(static_cast<size_t>(lists) * K);
  std::vector<float> x(dim);
  std::vector<std::string> users, items, list_keys;
  for (int q = 0; q < lists; ++q) {
    users.push_back(absl::StrCat("q", q));
    list_keys.push_back(absl::StrCat("l", q));
    for (int i = 0; i < K; ++i) {
      for (float& v : x) v = N(rng);
      const double a = 1.0 / (1.0 + std::exp(-x[0]));
      const float click = U(rng) < a * std::pow(0.9, i) ? 1.0f : 0.0f;
      const uint32_t item = static_cast<uint32_t>(items.size());
      items.push_back(absl::StrCat("d", item));
      b.Add(q, item, click, std::nullopt, q, i + 1, std::nullopt, x);
    }
  }
  auto v = b.Finish(std::move(users), std::move(items), std::move(list_keys), 1);
  if (!v.ok()) {
    std::fprintf(stderr, "%s\n", std::string(v.status().message()).c_str());
    std::exit(1);
  }
  return *std::move(v);
}

}  // namespace

int main(int argc, char** argv) {
  int lists = 100000, dim = 136, repeats = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--lists")) lists = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--dim")) dim = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--repeats")) repeats = std::atoi(argv[i + 1]);
  }
  const int K = 10, batch = 256;
  auto t = Clock::now();
  const debias::data::DatasetView view = MakeLog(lists, K, dim, 1);
  std::printf("data: %d lists x %d docs x %d features (%.1f s to generate)\n",
              lists, K, dim, Seconds(t));

  for (const bool mlp : {true, false}) {
    const std::vector<int> hidden = mlp ? std::vector<int>{64, 32} : std::vector<int>{};
    auto net = debias::models::RankerNet::Create(dim, hidden);
    net->InitRandom(3);
    debias::models::RankerWorkspace ws;
    std::vector<float> out(batch * K);
    double best_fwd = 1e30, best_pass = 1e30, cpu_fwd = 1e30, cpu_pass = 1e30;
    for (int r = 0; r < repeats; ++r) {
      // Baseline: forward pass over every document, in batches of 256 lists.
      t = Clock::now();
      double c0 = CpuNow();
      const size_t rows = view.num_events();
      double sink = 0.0;
      for (size_t b = 0; b < rows; b += batch * K) {
        const int n = static_cast<int>(std::min<size_t>(batch * K, rows - b));
        net->Forward(view.features.data() + b * dim, n, &ws, out.data());
        sink += out[0];
      }
      best_fwd = std::min(best_fwd, Seconds(t));
      cpu_fwd = std::min(cpu_fwd, CpuNow() - c0);
      if (sink == 12345.678) std::printf(" ");

      debias::train::TrainSpec spec;
      spec.loss = "dla";
      spec.feedback = debias::train::FeedbackKind::kClickLog;
      spec.seed = 1;
      const int steps = (lists + batch - 1) / batch;
      spec.params = {{"ranker", mlp ? "mlp" : "linear"},
                     {"max_steps", std::to_string(steps)},
                     {"eval_every", std::to_string(steps)},
                     {"valid_fraction", "0"},
                     {"batch_size", std::to_string(batch)}};
      if (mlp) spec.params["hidden"] = "64,32";
      t = Clock::now();
      c0 = CpuNow();
      auto res = debias::models::TrainClickRanker(debias::models::ClickMethod::kDla,
                                                  view, spec, {});
      const double s = Seconds(t);
      if (!res.ok()) {
        std::fprintf(stderr, "%s\n", std::string(res.status().message()).c_str());
        return 1;
      }
      best_pass = std::min(best_pass, s);
      cpu_pass = std::min(cpu_pass, CpuNow() - c0);
    }
    std::printf(
        "%-7s ranker: forward-only pass %.3f s wall / %.3f s cpu | DLA pass "
        "%.3f s wall / %.3f s cpu | ratio (cpu) %.2fx\n",
        mlp ? "mlp" : "linear", best_fwd, cpu_fwd, best_pass, cpu_pass,
        cpu_pass / cpu_fwd);
  }
  return 0;
}
