// debiasctl subcommands for datasets: synth, ingest, datasets, stats,
// export, delete, health.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli.h"
#include "core/data/csv.h"
#include "core/data/loaders.h"
#include "core/synth/click_log_world.h"
#include "core/synth/mnar_world.h"
#include "wire/convert.h"

namespace debias::cli {
namespace {

using nlohmann::json;

json DatasetJson(const v1::Dataset& d) {
  return json{{"name", d.name()},
              {"description", d.description()},
              {"feedback", d.feedback()},
              {"dedup", d.dedup()},
              {"create_time_unix_ms", d.create_time_unix_ms()},
              {"data_version", d.data_version()},
              {"users", d.users()},
              {"items", d.items()}};
}

void RegisterSynth(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("synth", "generate a synthetic world with ground truth");
  struct Args {
    std::string world = "mnar";
    std::string out;
    synth::MnarWorldOptions mnar;
    synth::ClickLogWorldOptions clicks;
    std::string click_model = "pbm";
  };
  auto args = std::make_shared<Args>();
  sub->add_option("--world", args->world,
                  "mnar (exposure bias: train.csv, test.csv, truth.csv) or clicklog "
                  "(position bias: clicks.csv, test.csv, truth.json)")
      ->check(CLI::IsMember({"mnar", "clicklog"}))
      ->capture_default_str();
  sub->add_option("--queries", args->clicks.num_queries, "clicklog: queries")
      ->capture_default_str();
  sub->add_option("--impressions", args->clicks.impressions_per_query,
                  "clicklog: logged lists per query")
      ->capture_default_str();
  sub->add_option("--features", args->clicks.feature_dim, "clicklog: feature dimension")
      ->capture_default_str();
  sub->add_option("--eta", args->clicks.eta, "clicklog: position-bias severity")
      ->capture_default_str();
  sub->add_option("--eps", args->clicks.eps, "clicklog: click noise on irrelevant documents")
      ->capture_default_str();
  sub->add_option("--click-model", args->click_model, "clicklog: pbm|ubm|cascade")
      ->capture_default_str();
  sub->add_option("--randomized-fraction", args->clicks.randomized_fraction,
                  "clicklog: share of lists shown in random order")
      ->capture_default_str();
  sub->add_option("--out", args->out, "output directory")->required();
  sub->add_option("--users", args->mnar.num_users, "users")->capture_default_str();
  sub->add_option("--items", args->mnar.num_items, "items")->capture_default_str();
  sub->add_option("--dim", args->mnar.dim, "latent dimension")->capture_default_str();
  sub->add_option("--power", args->mnar.exposure_power,
                  "exposure power p: theta = popularity^p")
      ->capture_default_str();
  sub->add_option("--expected-clicks", args->mnar.expected_clicks,
                  "target number of clicks (0: from --exposure-scale)")
      ->capture_default_str();
  sub->add_option("--test-items", args->mnar.mar_test_items_per_user,
                  "MAR test items per user")
      ->capture_default_str();
  sub->add_option("--exposures", args->mnar.exposures,
                  "mnar: exposure opportunities per pair; the label is the click rate over them")
      ->capture_default_str();
  sub->add_flag("--logged-propensity", args->mnar.log_propensity,
               "mnar: write each click's true exposure probability as its logged propensity");
  sub->add_option("--seed", args->mnar.seed, "random seed")->capture_default_str();
  AddGlobalOptions(sub, &ctx.global);
  sub->callback([&ctx, args] {
    ctx.run = [&ctx, args]() -> int {
      auto t0 = std::chrono::steady_clock::now();
      if (args->world == "clicklog") {
        auto kind = clickmodels::ParseClickModelKind(args->click_model);
        if (!kind.ok()) return Fail(kind.status());
        args->clicks.click_model = *kind;
        args->clicks.seed = args->mnar.seed;
        auto world = synth::ClickLogWorld::Generate(args->clicks);
        if (!world.ok()) return Fail(world.status());
        std::error_code ec;
        std::filesystem::create_directories(args->out, ec);
        if (auto s = world->WriteWorld(args->out); !s.ok()) return Fail(s);
        json j = world->TruthJson();
        j["out"] = args->out;
        j["world"] = args->world;
        return Emit(ctx, j,
                    absl::StrCat("wrote ", args->out,
                                 ": clicks.csv (ranked lists with positions and features), "
                                 "test.csv (graded labels), truth.json"));
      }
      auto world = synth::MnarWorld::Generate(args->mnar);
      if (!world.ok()) return Fail(world.status());
      std::error_code ec;
      std::filesystem::create_directories(args->out, ec);
      if (auto s = world->WriteWorld(args->out); !s.ok()) return Fail(s);
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      json j = world->ToJson();
      j["out"] = args->out;
      j["world"] = args->world;
      j["seconds"] = secs;
      const auto& s = world->summary();
      return Emit(ctx, j,
                  absl::StrFormat("wrote %s: %d clicks (train.csv), %d MAR test events "
                                  "(test.csv), truth.csv, world.json in %.1fs",
                                  args->out, s.clicks, s.test_events, secs));
    };
  });
}

// Creates the dataset of `debiasctl ingest --feedback/--dedup` when it is
// missing; an existing one must already have what was asked for.
template <typename Args>
absl::Status EnsureDataset(Client& client, const Args& a, bool no_create) {
  if (!a.feedback && !a.dedup) return absl::OkStatus();
  auto existing = client.GetDataset(a.dataset);
  if (existing.ok()) {
    if (a.feedback && existing->feedback() != *a.feedback) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--feedback ", *a.feedback, ": dataset '", a.dataset, "' exists with feedback '",
          existing->feedback(), "'"));
    }
    if (a.dedup && existing->dedup() != *a.dedup) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--dedup ", *a.dedup, ": dataset '", a.dataset, "' exists with dedup '",
          existing->dedup(), "'"));
    }
    return absl::OkStatus();
  }
  if (!absl::IsNotFound(existing.status()) || no_create) return existing.status();
  return client.CreateDataset(a.dataset, "", a.feedback.value_or(""), a.dedup.value_or(""))
      .status();
}

// Rows without an event_id are stored as new events every time: say so
// before a file goes into a dataset that already holds events.
void WarnIfStoredAgain(Client& client, const std::string& dataset,
                       const std::vector<data::Interaction>& events) {
  auto existing = client.GetDataset(dataset);
  if (!existing.ok() || existing->data_version() == 0 || existing->dedup() == "natural_key") return;
  const bool any_without_id = std::any_of(events.begin(), events.end(),
                                          [](const auto& e) { return e.event_id.empty(); });
  if (!any_without_id) return;
  std::cerr << "warning: dataset '" << dataset << "' already holds events (data_version "
            << existing->data_version()
            << "); rows without an event_id are stored as new events, so rows ingested "
               "before are now stored twice. Give rows an event_id column to make "
               "re-ingesting safe.\n";
}

void RegisterIngest(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("ingest", "load a file into a dataset");
  struct Args {
    std::string dataset, format = "csv", file;
    std::optional<std::string> feedback, dedup;
    std::optional<float> threshold;
    bool skip_bad_rows = false, no_create = false;
    size_t batch_size = 8192;
  };
  auto args = std::make_shared<Args>();
  sub->add_option("--dataset", args->dataset, "target dataset")->required();
  sub->add_option("--format", args->format, "csv|coat|yahoo|nbpo-json|libsvm")
      ->capture_default_str();
  sub->add_option("file", args->file, "input file")->required();
  sub->add_option("--threshold", args->threshold, "binarise labels: label >= T -> 1, else 0");
  sub->add_flag("--skip-bad-rows", args->skip_bad_rows,
                "skip malformed rows (reporting the count) instead of failing");
  sub->add_flag("--no-create", args->no_create, "fail if the dataset does not exist");
  sub->add_option("--feedback", args->feedback,
                  "create the dataset with this feedback kind (explicit|implicit|clicklog); "
                  "an existing dataset must have it");
  sub->add_option("--dedup", args->dedup,
                  "create the dataset with this identity for events without event_id: "
                  "natural_key merges repeats of (user, item, timestamp, list, position); "
                  "by default every event is stored");
  sub->add_option("--batch-size", args->batch_size, "events per message")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  AddGlobalOptions(sub, &ctx.global);
  sub->callback([&ctx, args] {
    ctx.run = [&ctx, args]() -> int {
      auto format = data::ParseFormat(args->format);
      if (!format.ok()) return Fail(format.status());
      data::LoadOptions lo;
      lo.skip_bad_rows = args->skip_bad_rows;
      lo.threshold = args->threshold;
      auto loaded = data::LoadFile(args->file, *format, lo);
      if (!loaded.ok()) return Fail(loaded.status());
      for (const auto& m : loaded->skipped_examples) std::cerr << "skipped: " << m << "\n";

      auto client = ctx.Connect();
      if (absl::Status s = EnsureDataset(*client, *args, args->no_create); !s.ok()) {
        return Fail(s);
      }
      WarnIfStoredAgain(*client, args->dataset, loaded->events);
      IngestOptions io;
      io.batch_size = args->batch_size;
      io.create_if_missing = !args->no_create;
      const auto t0 = std::chrono::steady_clock::now();
      if (ShowProgress() && !ctx.global.json) {
        io.on_progress = [t0](uint64_t done, uint64_t total) {
          const double secs =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          ProgressLine(absl::StrFormat("ingest: %d/%d events (%.0f events/s)", done, total,
                                       secs > 0 ? done / secs : 0.0));
        };
      }
      IngestSummary r = client->Ingest(args->dataset, loaded->events, io);
      EndProgress();
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      json j{{"dataset", args->dataset},
             {"events_acknowledged", r.events_acknowledged},
             {"events_stored", r.events_stored},
             {"events_duplicate", r.events_duplicate},
             {"rows_read", loaded->rows_read},
             {"skipped_rows", loaded->skipped_rows},
             {"data_version", r.data_version},
             {"seconds", secs},
             {"events_per_second", secs > 0 ? r.events_acknowledged / secs : 0.0}};
      if (!r.status.ok()) {
        // Scripts rely on events_acknowledged even when the stream broke.
        j["error"] = std::string(r.status.message());
        std::cout << j.dump() << std::endl;
        return Fail(r.status);
      }
      return Emit(ctx, j,
                  absl::StrFormat("%s: %d events acknowledged: %d stored, %d duplicates "
                                  "(%d rows read, %d skipped) in %.2fs",
                                  args->dataset, r.events_acknowledged, r.events_stored,
                                  r.events_duplicate, loaded->rows_read,
                                  loaded->skipped_rows, secs));
    };
  });
}

void RegisterDatasets(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("datasets", "list datasets");
  AddGlobalOptions(sub, &ctx.global);
  sub->callback([&ctx] {
    ctx.run = [&ctx]() -> int {
      auto list = ctx.Connect()->ListDatasets();
      if (!list.ok()) return Fail(list.status());
      json arr = json::array();
      std::string human = absl::StrFormat("%-32s %12s %10s %10s %s\n", "NAME", "VERSION",
                                          "USERS", "ITEMS", "FEEDBACK");
      for (const auto& d : *list) {
        arr.push_back(DatasetJson(d));
        // An undeclared kind is decided from the data when a model trains
        // (`debiasctl stats` shows the decision).
        absl::StrAppendFormat(&human, "%-32s %12d %10d %10d %s\n", d.name(),
                              d.data_version(), d.users(), d.items(),
                              d.feedback().empty() ? "(from data)" : d.feedback());
      }
      return Emit(ctx, json{{"datasets", arr}}, human);
    };
  });
}

void RegisterStats(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("stats", "dataset statistics");
  auto name = std::make_shared<std::string>();
  sub->add_option("--dataset", *name, "dataset")->required();
  AddGlobalOptions(sub, &ctx.global);
  sub->callback([&ctx, name] {
    ctx.run = [&ctx, name]() -> int {
      auto s = ctx.Connect()->GetStats(*name);
      if (!s.ok()) return Fail(s.status());
      json j{{"dataset", s->name()},      {"events", s->events()},
             {"users", s->users()},       {"items", s->items()},
             {"positives", s->positives()}, {"zero_labels", s->zero_labels()},
             {"min_label", s->min_label()}, {"max_label", s->max_label()},
             {"lists", s->lists()},       {"max_position", s->max_position()},
             {"with_propensity", s->with_propensity()},
             {"feature_dim", s->feature_dim()}, {"density", s->density()},
             {"feedback", s->feedback()}, {"data_version", s->data_version()}};
      return Emit(
          ctx, j,
          absl::StrFormat("%s: %d events, %d users, %d items, %d positives, %d zero "
                          "labels, labels in [%g, %g], %d lists, density %.5f, "
                          "feedback %s, version %d",
                          s->name(), s->events(), s->users(), s->items(), s->positives(),
                          s->zero_labels(), s->min_label(), s->max_label(), s->lists(),
                          s->density(), s->feedback(), s->data_version()));
    };
  });
}

void RegisterExport(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("export", "write a dataset's events as CSV");
  struct Args {
    std::string dataset, out;
  };
  auto args = std::make_shared<Args>();
  sub->add_option("--dataset", args->dataset, "dataset")->required();
  sub->add_option("--out", args->out, "output CSV file (default: stdout)");
  AddGlobalOptions(sub, &ctx.global);
  sub->callback([&ctx, args] {
    ctx.run = [&ctx, args]() -> int {
      std::vector<data::Interaction> events;
      auto s = ctx.Connect()->Export(args->dataset, [&](const v1::ExportResponse& r) {
        for (const auto& e : r.events()) ToCore(e, &events.emplace_back());
        return true;
      });
      if (!s.ok()) return Fail(s);
      if (args->out.empty()) {
        if (auto w = data::WriteCsv(events, std::cout); !w.ok()) return Fail(w);
        return 0;
      }
      std::ofstream f(args->out, std::ios::trunc);
      if (!f) return Fail(absl::NotFoundError(absl::StrCat("cannot write ", args->out)));
      if (auto w = data::WriteCsv(events, f); !w.ok()) return Fail(w);
      return Emit(ctx, json{{"dataset", args->dataset}, {"events", events.size()},
                            {"out", args->out}},
                  absl::StrCat("wrote ", events.size(), " events to ", args->out));
    };
  });
}

void RegisterDelete(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("delete", "delete a dataset");
  auto name = std::make_shared<std::string>();
  sub->add_option("--dataset", *name, "dataset")->required();
  AddGlobalOptions(sub, &ctx.global);
  sub->callback([&ctx, name] {
    ctx.run = [&ctx, name]() -> int {
      auto n = ctx.Connect()->DeleteDataset(*name);
      if (!n.ok()) return Fail(n.status());
      return Emit(ctx, json{{"dataset", *name}, {"events_deleted", *n}},
                  absl::StrCat("deleted ", *name, " (", *n, " events)"));
    };
  });
}

void RegisterHealth(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("health", "check that the server is SERVING");
  auto wait = std::make_shared<double>(0);
  sub->add_option("--wait", *wait, "keep trying for up to this many seconds");
  AddGlobalOptions(sub, &ctx.global);
  sub->callback([&ctx, wait] {
    ctx.run = [&ctx, wait]() -> int {
      auto client = ctx.Connect();
      const auto deadline = std::chrono::steady_clock::now() +
                            std::chrono::milliseconds(static_cast<int64_t>(*wait * 1000));
      absl::Status s;
      while (true) {
        s = client->Health();
        if (s.ok() || std::chrono::steady_clock::now() >= deadline) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (!s.ok()) return Fail(s);
      return Emit(ctx, json{{"status", "SERVING"}, {"server", ctx.global.server}}, "SERVING");
    };
  });
}

}  // namespace

void RegisterDataCommands(CLI::App& app, Context& ctx) {
  RegisterSynth(app, ctx);
  RegisterIngest(app, ctx);
  RegisterDatasets(app, ctx);
  RegisterStats(app, ctx);
  RegisterExport(app, ctx);
  RegisterDelete(app, ctx);
  RegisterHealth(app, ctx);
}

}  // namespace debias::cli
