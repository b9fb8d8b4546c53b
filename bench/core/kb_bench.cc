// Speed of the kernel-balancing trainers: full AKBIPS / AKBDR (and KBIPS /
// KBDR) runs on Coat, and a few epochs on a synthetic 15,000 x 1,000 world
// with about 300,000 observed events (B = 2048, G = 4 as the reference uses
// for Yahoo! R3). Each configuration runs in a forked child so that its peak
// RSS is its own. Reports wall and CPU seconds per run and per epoch.
//
// Usage: kb_bench [--coat-only] [--synth-only] [--synth-epochs N]
//                 [--toy] [--compare N]
//   --toy      prints naive / IPS / KBIPS AUCs on small synthetic worlds
//              (used to pick the unit test's biased toy world)
//   --compare N  adaptive vs random centres on a 3,000 x 500 synthetic world,
//              N paired seeds
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "bench/kb_compare_world.h"
#include "core/data/dataset_view.h"
#include "core/eval/kb_eval.h"
#include "core/models/kb_trainer.h"
#include "core/synth/kb_world.h"

namespace {

using debias::models::KbMethod;

double CpuSeconds() {
  return static_cast<double>(std::clock()) / CLOCKS_PER_SEC;
}

bool LoadCoat(debias::data::DatasetView* view) {
  const std::string path = std::string(DEBIAS_SHARED_DATA_DIR) + "/coat/train.ascii";
  std::ifstream in(path);
  if (!in) return false;
  debias::data::DatasetViewBuilder b;
  std::string line;
  uint32_t u = 0, ni = 0;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    float x;
    uint32_t i = 0;
    while (ls >> x) {
      if (x != 0) {
        b.Add(u, i, x, std::nullopt, debias::data::kNoList, std::nullopt,
              std::nullopt, {});
      }
      ++i;
    }
    if (i == 0) continue;
    ni = i;
    ++u;
  }
  std::vector<std::string> uk(u), ik(ni);
  for (uint32_t k = 0; k < u; ++k) uk[k] = std::to_string(k);
  for (uint32_t k = 0; k < ni; ++k) ik[k] = std::to_string(k);
  auto v = b.Finish(uk, ik, {}, 1);
  if (!v.ok()) return false;
  *view = std::move(*v);
  return true;
}

struct Measured {
  double wall = 0, cpu = 0;
  int epochs = 0;
  long max_rss_kb = 0;
  bool ok = false;
};

// Runs fn in a child; returns its timings and peak RSS.
template <typename Fn>
Measured InChild(Fn fn) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    Measured m = fn();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    m.max_rss_kb = ru.ru_maxrss;
    if (write(fds[1], &m, sizeof(m)) != sizeof(m)) _exit(1);
    _exit(0);
  }
  close(fds[1]);
  Measured m;
  if (read(fds[0], &m, sizeof(m)) != sizeof(m)) m.ok = false;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return m;
}

Measured TrainOnce(const debias::data::DatasetView& view, KbMethod method,
                   std::map<std::string, std::string> params, double mcar) {
  debias::train::TrainSpec spec;
  spec.loss = std::string(debias::models::KbMethodName(method));
  spec.feedback = debias::train::FeedbackKind::kExplicit;
  spec.seed = 2020;
  spec.params = std::move(params);
  if (method != KbMethod::kNaive) spec.params["mcar_pos_rate"] = std::to_string(mcar);
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = CpuSeconds();
  auto r = debias::models::TrainKernelBalancing(method, view, spec, {});
  Measured m;
  m.cpu = CpuSeconds() - c0;
  m.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!r.ok()) {
    std::cerr << r.status() << "\n";
    return m;
  }
  m.epochs = r->metrics["epochs"].get<int>();
  m.ok = true;
  return m;
}

void Print(const std::string& world, const std::string& method, const Measured& m) {
  if (!m.ok) {
    std::printf("| %s | %s | failed | | | | |\n", world.c_str(), method.c_str());
    return;
  }
  std::printf("| %s | %s | %d | %.3f s | %.3f s | %.1f ms | %.1f MB |\n", world.c_str(),
              method.c_str(), m.epochs, m.wall, m.cpu, 1000.0 * m.cpu / std::max(1, m.epochs),
              m.max_rss_kb / 1024.0);
  std::fflush(stdout);
}

double Auc(const debias::synth::KbWorld& w, KbMethod method,
           std::map<std::string, std::string> params, uint64_t seed) {
  debias::train::TrainSpec spec;
  spec.loss = std::string(debias::models::KbMethodName(method));
  spec.feedback = debias::train::FeedbackKind::kExplicit;
  spec.seed = seed;
  spec.params = std::move(params);
  if (method != KbMethod::kNaive) {
    spec.params["mcar_pos_rate"] = std::to_string(w.mcar_pos_rate);
  }
  auto r = debias::models::TrainKernelBalancing(method, w.train, spec, {});
  if (!r.ok()) {
    std::cerr << r.status() << "\n";
    return -1;
  }
  auto e = debias::eval::EvaluateKb(*r->model, w.test_user, w.test_item, w.test_label);
  return e.ok() ? e->auc : -1;
}

}  // namespace

int main(int argc, char** argv) {
  bool coat = true, synth = true, toy = false;
  int synth_epochs = 2, compare = 0;
  for (int a = 1; a < argc; ++a) {
    std::string s = argv[a];
    if (s == "--coat-only") synth = false;
    else if (s == "--synth-only") coat = false;
    else if (s == "--synth-epochs" && a + 1 < argc) synth_epochs = std::atoi(argv[++a]);
    else if (s == "--toy") toy = true;
    else if (s == "--compare" && a + 1 < argc) compare = std::atoi(argv[++a]);
    else {
      std::cerr << "unknown flag " << s << "\n";
      return 2;
    }
  }
  if (toy) {
    for (double negpop : {0.0, 1.0, 2.0}) {
      for (double boost : {3.0, 8.0}) {
        debias::synth::KbWorldOptions o;
        o.users = 120;
        o.items = 100;
        o.events = 2400;
        o.neg_popularity = negpop;
        o.pos_boost = boost;
        o.seed = 11;
        auto w = debias::synth::MakeKbWorld(o);
        if (!w.ok()) return 1;
        double an = 0, ai = 0, ak = 0;
        for (uint64_t seed : {1, 2, 3}) {
          an += Auc(*w, KbMethod::kNaive, {}, seed) / 3;
          ai += Auc(*w, KbMethod::kIps, {}, seed) / 3;
          ak += Auc(*w, KbMethod::kKbIps, {}, seed) / 3;
        }
        std::printf("negpop %.1f boost %.0f events %zu pos %.2f: naive %.4f ips %.4f kbips %.4f\n",
                    negpop, boost, w->train.num_events(), w->mcar_pos_rate, an, ai, ak);
        std::fflush(stdout);
      }
    }
    return 0;
  }
  if (compare > 0) {
    const debias::synth::KbWorldOptions o = debias::bench::KbCompareWorld();
    auto w = debias::synth::MakeKbWorld(o);
    if (!w.ok()) return 1;
    std::map<std::string, std::string> p = {{"batch_size", "512"}, {"neg_ratio", "4"}};
    std::printf("synthetic %ux%u, %zu events: AUC over %d seeds\n", o.users, o.items,
                w->train.num_events(), compare);
    std::printf("| seed | IPS | KBIPS | AKBIPS | DR-JL | KBDR | AKBDR |\n|---|---|---|---|---|---|---|\n");
    for (int s = 0; s < compare; ++s) {
      std::printf("| %d | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f |\n", s,
                  Auc(*w, KbMethod::kIps, p, s), Auc(*w, KbMethod::kKbIps, p, s),
                  Auc(*w, KbMethod::kAkbIps, p, s), Auc(*w, KbMethod::kDrJl, p, s),
                  Auc(*w, KbMethod::kKbDr, p, s), Auc(*w, KbMethod::kAkbDr, p, s));
      std::fflush(stdout);
    }
    return 0;
  }
  std::printf("| world | method | epochs | wall/run | CPU/run | CPU/epoch | peak RSS |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  if (coat) {
    debias::data::DatasetView view;
    if (!LoadCoat(&view)) {
      std::printf("| coat | (data absent, skipped) | | | | | |\n");
    } else {
      // P(y=1) of Coat's MCAR test set (1,862 / 4,640); a constant here so the
      // bench does not read the test file.
      const double mcar = 1862.0 / 4640.0;
      for (auto [m, name] : {std::pair{KbMethod::kKbIps, "KBIPS-Gau"},
                             std::pair{KbMethod::kAkbIps, "AKBIPS-Gau"},
                             std::pair{KbMethod::kKbDr, "KBDR-Gau"},
                             std::pair{KbMethod::kAkbDr, "AKBDR-Gau"}}) {
        Print("coat", name, InChild([&] { return TrainOnce(view, m, {}, mcar); }));
      }
      // The exponential kernel does not factorise over the user and item
      // halves of the features, so its adaptive runs compute K_OD from the
      // features every batch.
      for (auto [m, name] : {std::pair{KbMethod::kAkbIps, "AKBIPS-Exp"},
                             std::pair{KbMethod::kAkbDr, "AKBDR-Exp"}}) {
        Print("coat", name, InChild([&] {
                return TrainOnce(view, m, {{"kernel", "exponential"}}, mcar);
              }));
      }
    }
  }
  if (synth) {
    for (auto [m, name] : {std::pair{KbMethod::kAkbIps, "AKBIPS-Gau"},
                           std::pair{KbMethod::kAkbDr, "AKBDR-Gau"}}) {
      Print("synthetic 15000x1000", name, InChild([&] {
              debias::synth::KbWorldOptions o;
              o.users = 15000;
              o.items = 1000;
              o.events = 300000;
              o.seed = 3;
              auto w = debias::synth::MakeKbWorld(o);
              if (!w.ok()) return Measured{};
              std::map<std::string, std::string> p = {
                  {"batch_size", "2048"}, {"neg_ratio", "4"},
                  {"max_epochs", std::to_string(synth_epochs)},
                  {"pretrain_epochs", "1"}};
              return TrainOnce(w->train, m, p, w->mcar_pos_rate);
            }));
    }
  }
  return 0;
}
