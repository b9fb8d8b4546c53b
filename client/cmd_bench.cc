// debiasctl bench: a closed- or open-loop load generator for debiasd.
//
//   debiasctl bench health|score|topk|sample-negatives|ingest
//       [--model REF] [--dataset D] [--concurrency N] [--duration S]
//       [--warmup S] [--rate R] [--connections C] [--candidates M] [--k K]
//       [--n N] [--sampler S] [--batch B] [--json]
//
// Each of N workers issues calls back to back (closed loop) or, with --rate,
// at fixed intervals that add up to R calls/s (open loop: latency is measured
// from the intended start, so a stalled server is not hidden by the workers
// waiting for it). Calls made during the warm-up are not counted. The report
// gives throughput (successful calls per second), latency quantiles over the
// successful calls, and errors by gRPC status name.
//
// score/topk/sample-negatives need a model (an id, NAME, NAME:VERSION or
// NAME@LABEL); the user and item keys of the requests are read from the
// model's dataset (the first --key-events events of an Export) or, when the
// server holds no such dataset (a scoring replica fed from a repository),
// from the model's own key tables. The report counts the calls by the model
// version that answered them (`served`), so a label move under load shows. `health` is the baseline: the same transport with no work.
// `ingest` streams synthetic clicks into --dataset (created if missing), one
// batch of --batch events per call.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <iostream>
#include <map>
#include <random>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli.h"

namespace debias::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct BenchArgs {
  std::string kind;
  std::string model;
  v1::ModelRef ref;  // parsed from `model`
  std::string dataset;
  int concurrency = 8;
  double duration = 10;
  double warmup = 1;
  double rate = 0;  // calls/s over all workers; 0 = closed loop
  int connections = 0;
  int candidates = 100;
  int k = 100;
  std::string retrieval;
  int n = 10;
  std::string sampler;
  int batch = 1000;
  int64_t key_events = 200000;
  uint64_t seed = 1;
};

// Keys of the model's dataset, for building realistic requests.
struct Keys {
  std::vector<std::string> users;
  std::vector<std::string> items;
};

absl::StatusOr<Keys> LoadKeys(Client& client, const std::string& dataset, int64_t max_events) {
  absl::flat_hash_set<std::string> users, items;
  Keys keys;
  int64_t seen = 0;
  absl::Status s = client.Export(dataset, [&](const v1::ExportResponse& r) {
    for (const auto& e : r.events()) {
      if (users.insert(e.user()).second) keys.users.push_back(e.user());
      if (items.insert(e.item()).second) keys.items.push_back(e.item());
      if (++seen >= max_events) return false;
    }
    return true;
  });
  if (!s.ok()) return s;
  if (keys.users.empty() || keys.items.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("dataset '", dataset, "' has no events to take request keys from"));
  }
  return keys;
}

struct WorkerResult {
  std::vector<double> latencies_us;  // successful calls after warm-up
  std::map<std::string, int64_t> errors;
  std::map<std::string, int64_t> served;  // "name:version" -> successful calls
  int64_t events = 0;  // ingest only
};

double Quantile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  size_t idx = static_cast<size_t>(std::ceil(q * v.size())) ;
  idx = std::min(v.size() - 1, idx == 0 ? 0 : idx - 1);
  std::nth_element(v.begin(), v.begin() + idx, v.end());
  return v[idx];
}

// Request keys from the model's own key tables (ExportModel's header), for a
// server without the training dataset.
absl::StatusOr<Keys> ModelKeys(Client& client, const v1::ModelRef& ref, int64_t max_keys) {
  auto file = client.ExportModel(ref);
  if (!file.ok()) return file.status();
  Keys keys;
  const auto& h = file->header();
  for (int i = 0; i < h.user_keys_size() && i < max_keys; ++i) keys.users.push_back(h.user_keys(i));
  for (int i = 0; i < h.item_keys_size() && i < max_keys; ++i) keys.items.push_back(h.item_keys(i));
  if (keys.users.empty() || keys.items.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model '", ModelRefString(ref), "' has no user/item key tables to take request keys from"));
  }
  return keys;
}

// "name:version" (or the id of an unnamed model) of the model that answered.
std::string ServedKey(const v1::ServedModel& s) {
  return s.name().empty() ? absl::StrCat(s.id()) : absl::StrCat(s.name(), ":", s.version());
}

// One call of the chosen kind; returns its status.
class CallMaker {
 public:
  CallMaker(const BenchArgs& a, const Keys* keys, int worker)
      : a_(a), keys_(keys), rng_(a.seed * 1000003 + worker), worker_(worker) {}

  // *served is set to the answering model of a scoring call.
  absl::Status Call(Client& c, int64_t* events, std::string* served) {
    if (a_.kind == "health") return c.Health();
    if (a_.kind == "score") {
      v1::ScoreRequest req;
      *req.mutable_model() = a_.ref;
      req.set_user(PickUser());
      for (int i = 0; i < a_.candidates; ++i) req.add_items(PickItem());
      auto r = c.Score(req);
      if (r.ok()) *served = ServedKey(r->served());
      return r.status();
    }
    if (a_.kind == "topk") {
      v1::TopKRequest req;
      *req.mutable_model() = a_.ref;
      req.set_user(PickUser());
      req.set_k(a_.k);
      req.set_retrieval(a_.retrieval);
      auto r = c.TopK(req);
      if (r.ok()) *served = ServedKey(r->served());
      return r.status();
    }
    if (a_.kind == "sample-negatives") {
      v1::SampleNegativesRequest req;
      *req.mutable_model() = a_.ref;
      req.set_user(PickUser());
      req.set_n(a_.n);
      if (!a_.sampler.empty()) req.set_sampler(a_.sampler);
      req.set_seed(rng_());
      return c.SampleNegatives(req).status();
    }
    // ingest: synthetic clicks from this worker's own users, so batches of
    // different workers never deduplicate against each other.
    batch_.resize(a_.batch);
    for (auto& e : batch_) {
      e.user = absl::StrCat("bench-w", worker_, "-u", rng_() % 100000);
      e.item = absl::StrCat("bench-i", rng_() % 20000);
      e.label = 1;
      e.timestamp = static_cast<int64_t>(counter_++);
    }
    IngestOptions o;
    o.batch_size = batch_.size();
    IngestSummary s = c.Ingest(a_.dataset, batch_, o);
    *events += static_cast<int64_t>(s.events_acknowledged);
    return s.status;
  }

 private:
  const std::string& PickUser() { return keys_->users[rng_() % keys_->users.size()]; }
  const std::string& PickItem() { return keys_->items[rng_() % keys_->items.size()]; }

  const BenchArgs& a_;
  const Keys* keys_;
  std::mt19937_64 rng_;
  int worker_;
  uint64_t counter_ = 0;
  std::vector<data::Interaction> batch_;
};

absl::Status Validate(const BenchArgs& a) {
  static const char* kKinds[] = {"health", "score", "topk", "sample-negatives", "ingest"};
  if (std::find(std::begin(kKinds), std::end(kKinds), a.kind) == std::end(kKinds)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kind='", a.kind, "': must be one of health, score, topk, sample-negatives, ingest"));
  }
  bool needs_model = a.kind == "score" || a.kind == "topk" || a.kind == "sample-negatives";
  if (needs_model && a.model.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--model is required for bench ", a.kind));
  }
  if (a.kind == "ingest" && a.dataset.empty()) {
    return absl::InvalidArgumentError("--dataset is required for bench ingest");
  }
  return absl::OkStatus();
}

// The measured window's summary (JSON) and its one-paragraph text;
// *errors_out counts the failed calls.
json BenchSummary(const BenchArgs& a, const std::vector<WorkerResult>& results, int connections,
                  double client_cpu, int64_t* errors_out, std::string* text) {
  std::vector<double> lat;
  std::map<std::string, int64_t> errors, served;
  int64_t events = 0;
  int64_t& error_count = *errors_out;
  for (auto& r : results) {
    for (const auto& [k, v] : r.served) served[k] += v;
    lat.insert(lat.end(), r.latencies_us.begin(), r.latencies_us.end());
    for (const auto& [k, v] : r.errors) {
      errors[k] += v;
      error_count += v;
    }
    events += r.events;
  }
  const double secs = a.duration;
  const int64_t ok = static_cast<int64_t>(lat.size());
  double mean = 0;
  for (double v : lat) mean += v;
  mean = ok ? mean / ok : 0;
  json j{{"kind", a.kind},
         {"concurrency", a.concurrency},
         {"connections", connections},
         {"duration_seconds", secs},
         {"target_rate", a.rate},
         {"calls", ok + error_count},
         {"ok", ok},
         {"errors", error_count},
         {"errors_by_code", errors},
         {"throughput", ok / secs},
         {"client_cpu_seconds", client_cpu},
         {"latency_ms",
          {{"mean", mean / 1000},
           {"p50", Quantile(lat, 0.5) / 1000},
           {"p90", Quantile(lat, 0.9) / 1000},
           {"p99", Quantile(lat, 0.99) / 1000},
           {"p999", Quantile(lat, 0.999) / 1000},
           {"max", lat.empty() ? 0.0 : *std::max_element(lat.begin(), lat.end()) / 1000}}}};
  if (a.kind == "ingest") j["events_per_second"] = events / secs;
  if (!served.empty()) j["served"] = served;
  if (a.kind == "score") j["candidates"] = a.candidates;
  if (a.kind == "topk") {
    j["k"] = a.k;
    j["retrieval"] = a.retrieval.empty() ? "auto" : a.retrieval;
  }
  if (a.kind == "sample-negatives") j["n"] = a.n;
  std::string& human = *text;
  human = absl::StrFormat(
      "%s: %d workers, %.0f s: %.0f calls/s ok, %d errors; latency ms p50 %.3f p99 %.3f "
      "p999 %.3f max %.3f\n",
      a.kind, a.concurrency, secs, ok / secs, error_count, j["latency_ms"]["p50"].get<double>(),
      j["latency_ms"]["p99"].get<double>(), j["latency_ms"]["p999"].get<double>(),
      j["latency_ms"]["max"].get<double>());
  for (const auto& [k, v] : errors) absl::StrAppendFormat(&human, "  %s: %d\n", k, v);
  return j;
}

// The user and item keys the calls draw from: the model's training dataset
// (or --dataset), or the model's own keys on a replica without datasets.
// Empty for health and ingest.
absl::StatusOr<Keys> BenchKeys(Client& control, const BenchArgs& a) {
  if (a.model.empty() || a.kind == "ingest" || a.kind == "health") return Keys();
  auto m = control.GetModel(a.ref);
  if (!m.ok()) return m.status();
  if (m->state() != "ready") {
    return absl::FailedPreconditionError(
        absl::StrCat("model ", a.model, " is ", m->state(), ", not ready"));
  }
  const std::string dataset = a.dataset.empty() ? m->dataset() : a.dataset;
  auto k = LoadKeys(control, dataset, a.key_events);
  if (!k.ok() && absl::IsNotFound(k.status()) && a.dataset.empty()) {
    k = ModelKeys(control, a.ref, a.key_events);  // a replica: no dataset
  }
  return k;
}

int RunBench(const Context& ctx, BenchArgs a) {
  if (absl::Status s = Validate(a); !s.ok()) return Fail(s);
  if (!a.model.empty()) {
    auto ref = ParseModelRef(a.model);
    if (!ref.ok()) return Fail(ref.status());
    a.ref = *ref;
  }
  ClientOptions base = ctx.Options();
  auto control = Client::Connect(ctx.global.server, base);
  if (absl::Status s = control->Health(); !s.ok()) return Fail(s);

  auto keys_or = BenchKeys(*control, a);
  if (!keys_or.ok()) return Fail(keys_or.status());
  Keys keys = std::move(*keys_or);

  const int connections = a.connections > 0 ? a.connections : std::min(a.concurrency, 4);
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < connections; ++i) {
    ClientOptions o = base;
    o.own_connection = true;
    clients.push_back(Client::Connect(ctx.global.server, o));
  }

  std::vector<WorkerResult> results(a.concurrency);
  const auto start = Clock::now();
  const auto measure_from = start + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(a.warmup));
  const auto stop_at = measure_from + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(a.duration));
  const bool open_loop = a.rate > 0;
  const auto interval = open_loop ? std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(a.concurrency / a.rate))
                                  : Clock::duration::zero();
  std::atomic<int64_t> done_calls{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < a.concurrency; ++w) {
    threads.emplace_back([&, w] {
      CallMaker maker(a, &keys, w);
      Client& client = *clients[w % connections];
      WorkerResult& out = results[w];
      // Spread the open-loop workers' schedules over one interval.
      auto next = start + interval * w / std::max(1, a.concurrency);
      while (true) {
        if (open_loop) {
          std::this_thread::sleep_until(next);
        }
        const auto t0 = open_loop ? next : Clock::now();
        if (t0 >= stop_at) break;
        int64_t events = 0;
        std::string served;
        absl::Status s = maker.Call(client, &events, &served);
        const auto t1 = Clock::now();
        if (open_loop) next += interval;
        if (t0 < measure_from) continue;
        done_calls.fetch_add(1, std::memory_order_relaxed);
        if (s.ok()) {
          out.latencies_us.push_back(
              std::chrono::duration<double, std::micro>(t1 - t0).count());
          out.events += events;
          if (!served.empty()) ++out.served[served];
        } else {
          ++out.errors[absl::StatusCodeToString(s.code())];
        }
      }
    });
  }
  // This process's CPU time over the measured window (user + system, all
  // threads): the load generator's own cost, to tell it from the server's.
  auto cpu_seconds = [] {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  };
  std::this_thread::sleep_until(measure_from);
  const double cpu_at_start = cpu_seconds();
  const bool progress = ShowProgress() && !ctx.global.json;
  while (progress && Clock::now() < stop_at) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    double elapsed = std::chrono::duration<double>(Clock::now() - measure_from).count();
    if (elapsed > 0) {
      ProgressLine(absl::StrFormat("bench %s: %.0f s, %.0f calls/s", a.kind, elapsed,
                                   done_calls.load() / elapsed));
    }
  }
  for (auto& t : threads) t.join();
  const double client_cpu = cpu_seconds() - cpu_at_start;
  EndProgress();

  int64_t error_count = 0;
  std::string human;
  const json j = BenchSummary(a, results, connections, client_cpu, &error_count, &human);
  Emit(ctx, j, human);
  return error_count == 0 ? 0 : 1;
}

}  // namespace

void RegisterBenchCommands(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<BenchArgs>();
  auto* sub = app.add_subcommand(
      "bench", "load generator: throughput and latency of one RPC over N workers");
  AddGlobalOptions(sub, &ctx.global);
  sub->add_option("kind", args->kind, "health|score|topk|sample-negatives|ingest")->required();
  sub->add_option("--model", args->model,
                  "model: id, NAME, NAME:VERSION or NAME@LABEL (score, topk, sample-negatives)");
  sub->add_option("--dataset", args->dataset,
                  "ingest: target dataset; others: dataset to take keys from (default: "
                  "the model's)");
  sub->add_option("--concurrency", args->concurrency, "workers issuing calls")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  sub->add_option("--duration", args->duration, "measured seconds")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  sub->add_option("--warmup", args->warmup, "seconds run before measuring")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  sub->add_option("--rate", args->rate, "target calls/s over all workers (0: as fast as possible)")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  sub->add_option("--connections", args->connections,
                  "separate HTTP/2 connections (default: min(concurrency, 4))")
      ->check(CLI::Range(0, 1024));
  sub->add_option("--candidates", args->candidates, "score: items per call")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  sub->add_option("--k", args->k, "topk: k")->check(CLI::Range(1, 100000))->capture_default_str();
  sub->add_option("--retrieval", args->retrieval, "topk: auto, exact or approximate")
      ->check(CLI::IsMember({"auto", "exact", "approximate"}));
  sub->add_option("--n", args->n, "sample-negatives: n")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  sub->add_option("--sampler", args->sampler, "sample-negatives: sampler name");
  sub->add_option("--batch", args->batch, "ingest: events per call")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  sub->add_option("--key-events", args->key_events, "events read to collect request keys")
      ->check(CLI::Range(int64_t{1}, int64_t{100000000}))
      ->capture_default_str();
  sub->add_option("--seed", args->seed, "random seed of the request stream")->capture_default_str();
  sub->callback([&ctx, args] { ctx.run = [&ctx, args] { return RunBench(ctx, *args); }; });
}

}  // namespace debias::cli
