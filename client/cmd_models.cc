// debiasctl subcommands for models: methods, train, models, cancel,
// delete-model, score, topk, batch-topk, propensity, evaluate, sample-negatives.
#include <cmath>
#include <fstream>
#include <functional>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "client/cli.h"
#include "core/data/csv.h"
#include "google/protobuf/util/json_util.h"

namespace debias::cli {
namespace {

using nlohmann::json;


template <typename Container>
json JsonArrayOf(const Container& c) {
  json arr = json::array();
  for (const auto& v : c) arr.push_back(v);
  return arr;
}

// --model as given on the command line: an id, NAME, NAME:VERSION or
// NAME@LABEL.
constexpr const char* kModelHelp = "model: id, NAME, NAME:VERSION or NAME@LABEL";

json ModelJson(const v1::Model& m, bool full) {
  json j{{"model_id", m.id()},
         {"name", m.name()},
         {"version", m.version()},
         {"labels", JsonArrayOf(m.labels())},
         {"dataset", m.dataset()},
         {"data_version", m.data_version()},
         {"state", m.state()},
         {"spec", StructJson(m.spec())},
         {"metrics", StructJson(m.metrics())},
         {"error", m.error()},
         {"users", m.users()},
         {"items", m.items()},
         {"create_time_unix_ms", m.create_time_unix_ms()},
         {"finish_time_unix_ms", m.finish_time_unix_ms()},
         {"diagnostics", StructJson(m.diagnostics())}};
  if (full) {
    json curve = json::array();
    for (const auto& p : m.progress()) {
      json metrics = json::object();
      for (const auto& [k, v] : p.metrics()) metrics[k] = v;
      curve.push_back({{"epoch", p.epoch()},
                       {"loss", p.loss()},
                       {"elapsed_seconds", p.elapsed_seconds()},
                       {"metrics", metrics}});
    }
    j["progress"] = curve;
  }
  return j;
}

template <typename Container>
json JsonArray(const Container& c) {
  return JsonArrayOf(c);
}


// One loss's hyperparameters, per feedback kind, as `debiasctl methods NAME`
// prints them.
std::string ParamTable(const v1::Method& m) {
  std::string out = absl::StrCat(m.name(), ": ", m.description(), "\n");
  for (const auto& set : m.params()) {
    const std::string heading =
        m.kind() == "propensity"
            ? "parameters (train --param prop.KEY=V, evaluate --propensity-param KEY=V)"
        : m.kind() == "sampler" ? "parameters (sample-negatives --KEY V)"
                                : absl::StrCat(set.feedback(), " feedback");
    absl::StrAppendFormat(&out, "\n%s:\n  %-18s %-7s %-10s %-22s %s\n", heading, "PARAM",
                          "TYPE", "DEFAULT", "RANGE", "WHAT");
    for (const auto& p : set.params()) {
      std::string doc = p.doc();
      if (p.aliases_size() > 0) {
        absl::StrAppend(&doc, " (also: ", absl::StrJoin(p.aliases(), ", "), ")");
      }
      absl::StrAppendFormat(&out, "  %-18s %-7s %-10s %-22s %s\n", p.name(), p.type(),
                            p.default_value(), p.range(), doc);
    }
  }
  return out;
}

json ParamsJson(const v1::Method& m) {
  json sets = json::object();
  for (const auto& set : m.params()) {
    json params = json::array();
    for (const auto& p : set.params()) {
      json aliases = json::array();
      for (const auto& a : p.aliases()) aliases.push_back(a);
      params.push_back({{"name", p.name()}, {"type", p.type()},
                        {"default", p.default_value()}, {"range", p.range()},
                        {"doc", p.doc()}, {"aliases", aliases}});
    }
    sets[set.feedback().empty() ? "any" : set.feedback()] = params;
  }
  return sets;
}

void RegisterMethods(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand(
      "methods", "list losses, propensity estimators and samplers; with a name, that loss's "
                 "hyperparameters (defaults, ranges) per feedback kind");
  auto name = std::make_shared<std::string>();
  sub->add_option("name", *name, "a loss, e.g. relmf: print its --param keys");
  AddGlobalOptions(sub, &ctx.global);
  sub->callback([&ctx, name] {
    ctx.run = [&ctx, name]() -> int {
      auto r = ctx.Connect()->ListMethods();
      if (!r.ok()) return Fail(r.status());
      json arr = json::array();
      std::string human;
      for (const auto& m : r->methods()) {
        if (!name->empty() && m.name() != *name) continue;
        json fb = json::array();
        for (const auto& f : m.feedback()) fb.push_back(f);
        json j = {{"kind", m.kind()}, {"name", m.name()},
                  {"description", m.description()}, {"feedback", fb}};
        if (m.params_size() > 0) j["params"] = ParamsJson(m);
        arr.push_back(j);
        if (name->empty()) {
          absl::StrAppendFormat(&human, "%-11s %-14s %s\n", m.kind(), m.name(), m.description());
        } else {
          absl::StrAppend(&human, m.params_size() > 0 ? ParamTable(m)
                                                      : absl::StrCat(m.kind(), " ", m.name(),
                                                                     ": ", m.description(), "\n"));
        }
      }
      if (!name->empty() && arr.empty()) {
        return Fail(absl::NotFoundError(absl::StrCat(
            "'", *name, "' is not a method; `debiasctl methods` lists them")));
      }
      if (name->empty()) {
        absl::StrAppend(&human, "\n`debiasctl methods NAME` prints a loss's --param keys with "
                                "defaults and ranges.\n");
      }
      return Emit(ctx, json{{"methods", arr}}, human);
    };
  });
}

void RegisterTrain(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("train", "train a model and wait for it");
  struct Args {
    std::string name, dataset, loss, feedback, propensity, mar_dataset;
    std::optional<double> clip, threshold, holdout;
    uint64_t seed = 0;
    std::vector<std::string> params;
    bool detach = false;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--dataset", a->dataset, "training dataset")->required();
  sub->add_option("--name", a->name,
                  "model name ([a-z0-9][a-z0-9._-]{0,62}): the model becomes its next version");
  sub->add_option("--loss", a->loss, "loss/method name (see `debiasctl methods`)")->required();
  sub->add_option("--feedback", a->feedback, "explicit|implicit|clicklog (default: from data)")
      ->check(CLI::IsMember({"explicit", "implicit", "clicklog"}));
  sub->add_option("--propensity", a->propensity, "propensity estimator");
  sub->add_option("--clip", a->clip, "propensity clipping M in (0, 1]");
  sub->add_option("--threshold", a->threshold, "ratings >= T are positives");
  sub->add_option("--seed", a->seed, "random seed")->capture_default_str();
  sub->add_option("--param", a->params, "hyperparameter key=value (repeatable)");
  sub->add_option("--mar-dataset", a->mar_dataset, "dataset with a MAR sample (naive-bayes)");
  sub->add_option("--holdout", a->holdout,
                  "hold out this share of the events, in (0, 0.5]: `evaluate --estimator` on "
                  "this dataset then uses only them");
  sub->add_flag("--detach", a->detach,
                "print the model id once the job has started and return; the job goes on "
                "(without it, interrupting debiasctl cancels the job)");
  AddGlobalOptions(sub, &ctx.global);
  sub->callback([&ctx, a, sub] {
    ctx.run = [&ctx, a, sub]() -> int {
      v1::TrainRequest req;
      req.set_dataset(a->dataset);
      req.set_name(a->name);
      req.set_loss(a->loss);
      req.set_feedback(a->feedback);
      req.set_propensity(a->propensity);
      req.set_mar_dataset(a->mar_dataset);
      if (a->clip) req.set_clip(*a->clip);
      if (a->threshold) req.set_threshold(*a->threshold);
      if (a->holdout) req.set_holdout(*a->holdout);
      req.set_seed(a->seed);
      for (const auto& p : a->params) {
        const size_t eq = p.find('=');
        if (eq == std::string::npos || eq == 0) {
          return Fail(absl::InvalidArgumentError(
              absl::StrCat("--param '", p, "': expected key=value")));
        }
        (*req.mutable_params())[p.substr(0, eq)] = p.substr(eq + 1);
      }
      if (a->detach) {
        auto id = ctx.Connect()->StartTraining(req);
        if (!id.ok()) return Fail(id.status());
        return Emit(ctx, json{{"model_id", *id}, {"state", "training"}},
                    absl::StrCat("model ", *id, ": training ", a->loss,
                                 " (detached; watch with `debiasctl models --model ", *id, "`)"));
      }
      const bool progress = ShowProgress() && !ctx.global.json;
      // --timeout bounds training only when given: the default per-call
      // deadline is for quick calls, and a job takes as long as it takes.
      std::optional<std::chrono::milliseconds> timeout;
      if (sub->count("--timeout") > 0) {
        timeout = std::chrono::milliseconds(
            static_cast<int64_t>(ctx.global.timeout_seconds * 1000));
      }
      uint64_t started_id = 0;
      auto m = ctx.Connect()->Train(req, [&](const v1::TrainEvent& ev) {
        if (ev.has_started()) started_id = ev.started().model_id();
        if (!progress) return;
        if (ev.has_started()) {
          ProgressLine(absl::StrCat("model ", ev.started().model_id(), ": training ", a->loss));
        } else if (ev.has_progress()) {
          const auto& p = ev.progress();
          std::string line = absl::StrFormat("epoch %d/%d loss %.5f %.1fs", p.epoch(),
                                             p.total_epochs(), p.loss(), p.elapsed_seconds());
          for (const auto& [k, v] : p.metrics()) absl::StrAppendFormat(&line, " %s=%.4f", k, v);
          ProgressLine(line);
        }
      }, timeout);
      EndProgress();
      if (!m.ok() && timeout && absl::IsDeadlineExceeded(m.status())) {
        return Fail(absl::DeadlineExceededError(absl::StrCat(
            "training did not finish within --timeout ", ctx.global.timeout_seconds,
            " s; model ", started_id, " was cancelled with the call")));
      }
      if (!m.ok()) return Fail(m.status());
      if (m->state() != "ready") {
        if (ctx.global.json) std::cout << ModelJson(*m, false).dump() << std::endl;
        return Fail(absl::Status(
            m->state() == "cancelled" ? absl::StatusCode::kCancelled : absl::StatusCode::kAborted,
            absl::StrCat("model ", m->id(), " ended ", m->state(), ": ", m->error())));
      }
      json j = ModelJson(*m, false);
      std::string human = absl::StrCat("model ", m->id(), " ready (", a->loss, " on ",
                                       a->dataset, ")");
      for (auto& [k, v] : j["metrics"].items()) absl::StrAppend(&human, " ", k, "=", v.dump());
      // The trainer's warnings (e.g. saturated probabilities) belong on the
      // screen, not only in `models --model ID`.
      json diag = StructJson(m->diagnostics());
      if (j["spec"].contains("propensity_reason")) {
        absl::StrAppend(&human, "\npropensity: ", j["spec"]["propensity_reason"].get<std::string>());
      }
      if (diag.contains("selection") && diag["selection"].is_object()) {
        // --loss auto: the candidates with their held-out estimates.
        const json& sel = diag["selection"];
        j["selection"] = sel;
        absl::StrAppend(&human, "\nselection by ", sel.value("estimator", ""), " ",
                        sel.value("metric", ""), " on held-out events (propensity ",
                        sel.value("propensity", ""), "):");
        for (const auto& c : sel["candidates"]) {
          std::string params;
          for (const auto& [k, v] : c["params"].items()) {
            absl::StrAppend(&params, params.empty() ? "" : " ", k, "=", v.get<std::string>());
          }
          if (c.contains("estimate")) {
            absl::StrAppendFormat(&human, "\n  %-8s %-14s %.4f [%.4f, %.4f]",
                                  c["loss"].get<std::string>(), params.empty() ? "defaults" : params,
                                  c["estimate"].get<double>(), c["interval"][0].get<double>(),
                                  c["interval"][1].get<double>());
          } else {
            absl::StrAppendFormat(&human, "\n  %-8s %-14s failed: %s", c["loss"].get<std::string>(),
                                  params.empty() ? "defaults" : params,
                                  c.value("error", std::string()));
          }
        }
        absl::StrAppend(&human, "\nverdict: ", sel.value("verdict", ""));
        if (sel.contains("note")) absl::StrAppend(&human, "\nnote: ", sel["note"].get<std::string>());
      }
      if (diag.contains("warnings") && diag["warnings"].is_array() &&
          !diag["warnings"].empty()) {
        j["warnings"] = diag["warnings"];
        for (const auto& w : diag["warnings"]) {
          if (w.is_string()) absl::StrAppend(&human, "\nwarning: ", w.get<std::string>());
        }
      }
      return Emit(ctx, j, human);
    };
  });
}

void RegisterModels(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("models", "list models, or show one with --model");
  struct Args {
    std::string dataset;
    std::string model;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--dataset", a->dataset, "only models of this dataset");
  sub->add_option("--model", a->model,
                  "show one model in full (id, NAME, NAME:VERSION or NAME@LABEL)");
  AddGlobalOptions(sub, &ctx.global);
  sub->callback([&ctx, a] {
    ctx.run = [&ctx, a]() -> int {
      auto client = ctx.Connect();
      if (!a->model.empty()) {
        auto ref = ParseModelRef(a->model);
        if (!ref.ok()) return Fail(ref.status());
        auto m = client->GetModel(*ref);
        if (!m.ok()) return Fail(m.status());
        json j = ModelJson(*m, true);
        return Emit(ctx, j, j.dump(2));
      }
      auto list = client->ListModels(a->dataset);
      if (!list.ok()) return Fail(list.status());
      json arr = json::array();
      std::string human = absl::StrFormat("%-6s %-20s %-10s %-14s %-24s %s\n", "ID", "NAME",
                                          "STATE", "LOSS", "DATASET", "METRICS");
      for (const auto& m : *list) {
        json j = ModelJson(m, false);
        arr.push_back(j);
        std::string name = m.name().empty() ? "-" : absl::StrCat(m.name(), ":", m.version());
        for (const auto& l : m.labels()) absl::StrAppend(&name, "@", l);
        absl::StrAppendFormat(&human, "%-6d %-20s %-10s %-14s %-24s %s\n", m.id(), name, m.state(),
                              j["spec"].value("loss", ""), m.dataset(), j["metrics"].dump());
      }
      return Emit(ctx, json{{"models", arr}}, human);
    };
  });
}

void RegisterCancelDelete(CLI::App& app, Context& ctx) {
  auto id = std::make_shared<uint64_t>(0);
  auto* cancel = app.add_subcommand("cancel", "cancel a training job");
  cancel->add_option("--model", *id, "model id")->required();
  AddGlobalOptions(cancel, &ctx.global);
  cancel->callback([&ctx, id] {
    ctx.run = [&ctx, id]() -> int {
      auto m = ctx.Connect()->CancelTraining(*id);
      if (!m.ok()) return Fail(m.status());
      return Emit(ctx, ModelJson(*m, false), absl::StrCat("model ", *id, ": cancel requested"));
    };
  });
  auto* del = app.add_subcommand("delete-model", "delete a model");
  del->add_option("--model", *id, "model id")->required();
  AddGlobalOptions(del, &ctx.global);
  del->callback([&ctx, id] {
    ctx.run = [&ctx, id]() -> int {
      if (auto s = ctx.Connect()->DeleteModel(*id); !s.ok()) return Fail(s);
      return Emit(ctx, json{{"model_id", *id}, {"deleted", true}},
                  absl::StrCat("deleted model ", *id));
    };
  });
}

void RegisterScore(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("score", "score items for a user");
  struct Args {
    std::string model;
    std::string user, items;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--model", a->model, kModelHelp)->required();
  sub->add_option("--user", a->user, "user key")->required();
  sub->add_option("--items", a->items, "comma-separated item keys")->required();
  AddGlobalOptions(sub, &ctx.global);
  sub->callback([&ctx, a] {
    ctx.run = [&ctx, a]() -> int {
      v1::ScoreRequest req;
      auto ref = ParseModelRef(a->model);
      if (!ref.ok()) return Fail(ref.status());
      *req.mutable_model() = *ref;
      req.set_user(a->user);
      for (auto& i : SplitList(a->items)) req.add_items(i);
      auto r = ctx.Connect()->Score(req);
      if (!r.ok()) return Fail(r.status());
      json scores = JsonArray(r->scores());
      std::string human;
      for (int k = 0; k < r->scores_size(); ++k) {
        absl::StrAppendFormat(&human, "%s\t%g\n", req.items(k), r->scores(k));
      }
      return Emit(ctx,
                  json{{"model_id", r->served().id()},
                       {"served", ServedJson(r->served())},
                       {"user", a->user},
                       {"scores", scores}},
                  human);
    };
  });
}

void AddRetrievalOption(CLI::App* sub, std::string* retrieval) {
  sub->add_option("--retrieval", *retrieval,
                  "auto (default: the approximate index when the model has one), exact or "
                  "approximate")
      ->check(CLI::IsMember({"auto", "exact", "approximate"}));
}

void RegisterTopK(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("topk", "the best k items for a user");
  struct Args {
    std::string model;
    std::string user;
    uint32_t k = 10;
    bool exclude_seen = false;
    std::string retrieval;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--model", a->model, kModelHelp)->required();
  sub->add_option("--user", a->user, "user key")->required();
  sub->add_option("--k", a->k, "number of items")->capture_default_str();
  sub->add_flag("--exclude-seen", a->exclude_seen, "leave out the user's training items");
  AddRetrievalOption(sub, &a->retrieval);
  AddGlobalOptions(sub, &ctx.global);
  sub->callback([&ctx, a] {
    ctx.run = [&ctx, a]() -> int {
      v1::TopKRequest req;
      auto ref = ParseModelRef(a->model);
      if (!ref.ok()) return Fail(ref.status());
      *req.mutable_model() = *ref;
      req.set_user(a->user);
      req.set_k(a->k);
      req.set_exclude_seen(a->exclude_seen);
      req.set_retrieval(a->retrieval);
      auto r = ctx.Connect()->TopK(req);
      if (!r.ok()) return Fail(r.status());
      std::string human;
      for (int k = 0; k < r->items_size(); ++k) {
        absl::StrAppendFormat(&human, "%d\t%s\t%g\n", k + 1, r->items(k), r->scores(k));
      }
      return Emit(ctx,
                  json{{"model_id", r->served().id()},
                       {"served", ServedJson(r->served())},
                       {"user", a->user},
                       {"retrieval", r->retrieval()},
                       {"items", JsonArray(r->items())},
                       {"scores", JsonArray(r->scores())}},
                  human);
    };
  });
}

void RegisterBatchTopK(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand(
      "batch-topk", "the best k items for many users (BatchTopK), one line per user and rank");
  struct Args {
    uint64_t model = 0;
    std::vector<std::string> users;
    std::string users_file;
    uint32_t k = 10;
    bool exclude_seen = false;
    std::string retrieval;
    int batch = 1000;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--model", a->model, "model id")->required();
  sub->add_option("--users", a->users, "user keys (comma-separated or repeated)")->delimiter(',');
  sub->add_option("--users-file", a->users_file, "file of user keys, one per line");
  sub->add_option("--k", a->k, "items per user")->capture_default_str();
  sub->add_flag("--exclude-seen", a->exclude_seen, "leave out each user's training items");
  sub->add_option("--batch", a->batch, "users per call (at most the server's max_batch_users)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  AddRetrievalOption(sub, &a->retrieval);
  AddGlobalOptions(sub, &ctx.global);
  sub->callback([&ctx, a] {
    ctx.run = [&ctx, a]() -> int {
      std::vector<std::string> users = a->users;
      if (!a->users_file.empty()) {
        std::ifstream in(a->users_file);
        if (!in) return Fail(absl::NotFoundError(absl::StrCat("--users-file '", a->users_file, "': cannot read")));
        for (std::string line; std::getline(in, line);) {
          if (!line.empty()) users.push_back(line);
        }
      }
      if (users.empty()) return Fail(absl::InvalidArgumentError("give --users or --users-file"));
      auto client = ctx.Connect();
      std::string human, path;
      json rows = json::array();
      for (size_t begin = 0; begin < users.size(); begin += a->batch) {
        v1::BatchTopKRequest req;
        req.set_model_id(a->model);
        req.set_k(a->k);
        req.set_exclude_seen(a->exclude_seen);
        req.set_retrieval(a->retrieval);
        for (size_t u = begin; u < std::min(users.size(), begin + a->batch); ++u) {
          req.add_users(users[u]);
        }
        auto r = client->BatchTopK(req, &path);
        if (!r.ok()) return Fail(r.status());
        for (const v1::UserTopK& t : *r) {
          for (int k = 0; k < t.items_size(); ++k) {
            absl::StrAppendFormat(&human, "%s\t%d\t%s\t%g\n", t.user(), k + 1, t.items(k),
                                  t.scores(k));
          }
          rows.push_back(json{{"user", t.user()},
                              {"items", JsonArray(t.items())},
                              {"scores", JsonArray(t.scores())}});
        }
      }
      return Emit(ctx, json{{"model_id", a->model}, {"retrieval", path}, {"users", rows}}, human);
    };
  });
}

void RegisterPropensity(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("propensity", "a model's propensities and their diagnostics");
  struct Args {
    std::string model;
    std::vector<std::string> pairs;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--model", a->model, kModelHelp)->required();
  sub->add_option("--pair", a->pairs, "user:item whose P(observed) to print (repeatable)");
  AddGlobalOptions(sub, &ctx.global);
  sub->callback([&ctx, a] {
    ctx.run = [&ctx, a]() -> int {
      auto client = ctx.Connect();
      auto ref = ParseModelRef(a->model);
      if (!ref.ok()) return Fail(ref.status());
      auto m = client->GetModel(*ref);
      if (!m.ok()) return Fail(m.status());
      json diag = StructJson(m->diagnostics());
      v1::GetPropensitiesRequest req;
      req.set_model_id(m->id());  // the same model as the diagnostics
      for (const auto& p : a->pairs) {
        const size_t colon = p.rfind(':');
        if (colon == std::string::npos) {
          return Fail(absl::InvalidArgumentError(absl::StrCat("--pair '", p, "': expected user:item")));
        }
        auto* pair = req.add_pairs();
        pair->set_user(p.substr(0, colon));
        pair->set_item(p.substr(colon + 1));
      }
      json j{{"model_id", m->id()}, {"diagnostics", diag}};
      if (!a->pairs.empty() || diag.contains("position_propensities")) {
        auto r = client->GetPropensities(req);
        if (!r.ok()) return Fail(r.status());
        if (r->position_propensities_size() > 0) {
          j["position_propensities"] =
              JsonArray(r->position_propensities());
        }
        if (r->pair_propensities_size() > 0) {
          j["pair_propensities"] =
              JsonArray(r->pair_propensities());
        }
      }
      return Emit(ctx, j, j.dump(2));
    };
  });
}

// Calls `row` for every record of the CSV file at `path` (given as `flag`)
// with exactly `fields` fields; a record with another count is an error
// naming the line and `expected`. `row` gets the reader and returns an error
// to stop.
absl::Status ForEachCsvRow(const std::string& path, const std::string& flag, size_t fields,
                           const std::string& expected,
                           const std::function<absl::Status(data::CsvRecordReader&)>& row) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(flag, " ", path, ": cannot open"));
  data::CsvRecordReader reader(in);
  while (true) {
    auto more = reader.Next();
    if (!more.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", reader.line(), ": ", more.status().message()));
    }
    if (!*more) return absl::OkStatus();
    if (reader.num_fields() != fields) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", reader.line(), ": expected ",
                                                     fields, " fields ", expected, ", got ",
                                                     reader.num_fields()));
    }
    if (absl::Status st = row(reader); !st.ok()) return st;
  }
}

// Reads uploaded scores: CSV rows user,item,score (a first row whose score
// is not a number is a header).
absl::Status ReadScores(const std::string& path, v1::EvaluateRequest* req) {
  std::map<std::string, v1::UserScores*> by_user;
  absl::Status st = ForEachCsvRow(
      path, "--scores", 3, "user,item,score", [&](data::CsvRecordReader& reader) {
        float score = 0;
        if (!absl::SimpleAtof(reader.field(2), &score) || !std::isfinite(score)) {
          if (reader.line() == 1) return absl::OkStatus();  // header
          return absl::InvalidArgumentError(absl::StrCat(
              path, ":", reader.line(), ": score '", reader.field(2), "' is not a finite number"));
        }
        auto& us = by_user[reader.field(0)];
        if (us == nullptr) {
          us = req->add_scores();
          us->set_user(reader.field(0));
        }
        us->add_items(reader.field(1));
        us->add_scores(score);
        return absl::OkStatus();
      });
  if (!st.ok()) return st;
  if (req->scores_size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat("--scores ", path, ": no rows"));
  }
  return absl::OkStatus();
}

// Reads item categories for mips / snmips: CSV rows item,category (a first
// row "item,category" is a header).
absl::Status ReadItemCategories(const std::string& path, v1::EvaluateRequest* req) {
  absl::Status st = ForEachCsvRow(
      path, "--item-category", 2, "item,category", [&](data::CsvRecordReader& reader) {
        if (reader.line() != 1 || reader.field(0) != "item" || reader.field(1) != "category") {
          (*req->mutable_item_category())[reader.field(0)] = reader.field(1);
        }
        return absl::OkStatus();
      });
  if (!st.ok()) return st;
  if (req->item_category().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--item-category ", path, ": no rows"));
  }
  return absl::OkStatus();
}

// "which estimator to trust" (diagnostics.trust) and the SLOPE choices
// (diagnostics.slope) as text.
std::string TrustText(const json& diag) {
  std::string out;
  if (diag.contains("slope") && diag["slope"].is_object()) {
    for (const auto& [name, s] : diag["slope"].items()) {
      const json& c = s["chosen"];
      absl::StrAppend(&out, "slope: ", name, " ", s.value("knob", ""), "=",
                      c.is_number() ? absl::StrFormat("%g", c.get<double>()) : "inf",
                      " (of ", s["grid"].size(), " candidates)\n");
    }
  }
  if (!diag.contains("trust") || !diag["trust"].is_object()) return out;
  const json& t = diag["trust"];
  if (!t.contains("estimators") || t["estimators"].size() < 2) return out;
  absl::StrAppend(&out, "which estimator to trust (bias estimated against ",
                  t["reference"].is_string() ? t["reference"].get<std::string>() : "nothing",
                  "):\n");
  absl::StrAppendFormat(&out, "  %-24s %9s %9s %9s %9s\n", "estimator", "value", "se", "bias",
                        "rmse");
  auto num = [](const json& v) {
    return v.is_number() ? absl::StrFormat("%9.4f", v.get<double>()) : std::string("        -");
  };
  for (const auto& [name, row] : t["estimators"].items()) {
    const json& mse = row["mse_estimate"];
    absl::StrAppendFormat(&out, "  %-24s %s %s %s %s\n", name, num(row["value"]), num(row["se"]),
                          num(row["bias_estimate"]),
                          num(mse.is_number() ? json(std::sqrt(mse.get<double>())) : json()));
  }
  if (t["recommended"].is_string()) {
    absl::StrAppend(&out, "recommended: ", t["recommended"].get<std::string>(),
                    " (smallest estimated MSE)\n");
  }
  return out;
}

json MapJson(const google::protobuf::Map<std::string, double>& m) {
  json j = json::object();
  for (const auto& [k, v] : std::map<std::string, double>(m.begin(), m.end())) j[k] = v;
  return j;
}

json IntervalsJson(const google::protobuf::Map<std::string, v1::Interval>& m) {
  json j = json::object();
  for (const auto& [k, v] : m) j[k] = json::array({v.low(), v.high()});
  return j;
}

// The human-readable table of an Evaluate answer: one line per metric with
// its interval and, with a MAR sample, the MAR value and its own interval;
// then the warnings.
std::string EvaluateText(const v1::EvaluateResponse& r, const json& diag,
                         const std::string& estimator, const std::string& policy_estimator,
                         const std::string& dataset, const std::string& model) {
  std::string human;
  const bool estimated = diag.value("propensity_estimated", false);
  if (!estimator.empty()) {
    absl::StrAppend(&human, estimator, " estimate from '", dataset, "'",
                    diag.contains("log_events")
                        ? absl::StrCat(" (", diag["log_events"].value("events", ""), ")")
                        : "",
                    estimated ? absl::StrCat(", with estimated propensities (",
                                             diag.value("propensity_from", ""), ")")
                              : ", with logged propensities",
                    ":\n");
  }
  if (!policy_estimator.empty()) {
    absl::StrAppend(&human, "policy value of model ", model, " on '", dataset, "' (",
                    diag.value("decisions", 0), " decisions):\n");
  }
  std::map<std::string, double> sorted(r.metrics().begin(), r.metrics().end());
  for (const auto& [k, v] : sorted) {
    const int width = policy_estimator.find(',') != std::string::npos ? 28 : 16;
    absl::StrAppendFormat(&human, "%-*s %.4f", width, k, v);
    auto bi = r.intervals().find(k);
    auto ni = r.normal_intervals().find(k);
    if (bi != r.intervals().end()) {
      absl::StrAppendFormat(&human, "  [%.4f, %.4f] bootstrap", bi->second.low(),
                            bi->second.high());
    } else if (ni != r.normal_intervals().end()) {
      absl::StrAppendFormat(&human, "  [%.4f, %.4f] normal", ni->second.low(),
                            ni->second.high());
    }
    auto mi = r.mar_metrics().find(k);
    if (mi != r.mar_metrics().end()) {
      absl::StrAppendFormat(&human, "  MAR %.4f", mi->second);
      // The MAR reference has its own sampling error: print its interval.
      if (diag.contains("mar") && diag["mar"].contains("normal_intervals") &&
          diag["mar"]["normal_intervals"].contains(k)) {
        const json& iv = diag["mar"]["normal_intervals"][k];
        absl::StrAppendFormat(&human, " [%.4f, %.4f]", iv[0].get<double>(),
                              iv[1].get<double>());
      }
    }
    human += "\n";
  }
  if (!policy_estimator.empty()) human += TrustText(diag);
  if (diag.contains("warnings") && diag["warnings"].is_array()) {
    for (const auto& w : diag["warnings"]) {
      if (w.is_string()) human += "warning: " + w.get<std::string>() + "\n";
    }
  }
  return human;
}

struct EvaluateArgs {
  std::string model;
  std::string dataset, exclude, convention, ks;
  std::optional<double> threshold;
  bool rank_all = false;
  std::string estimator, propensity_from, scores, mar_dataset;
  std::vector<std::string> propensity_params;
  double clip = 0, confidence = 0;
  uint32_t bootstrap = 0, max_users = 0;
  uint64_t seed = 0, imputation_model = 0;
  std::string policy_estimator, target;
  double temperature = 0;
  std::optional<double> tau, lambda, subgaussian_lambda;
  std::string reward_model, item_category;
  std::optional<uint32_t> crossfit_folds;
  bool slope = false;
};

// The options of `debiasctl evaluate`, into `a`.
void AddEvaluateOptions(CLI::App* sub, EvaluateArgs* a) {
  sub->add_option("--model", a->model,
                  "model: id, NAME, NAME:VERSION or NAME@LABEL (or --scores)");
  sub->add_option("--dataset", a->dataset,
                  "labelled test dataset; with --estimator, the biased click log")
      ->required();
  sub->add_option("--k", a->ks, "comma-separated cut-offs (default 5,10)");
  sub->add_option("--threshold", a->threshold,
                  "labels >= T are relevant (test) / clicks (log); default label > 0");
  sub->add_flag("--rank-all-items", a->rank_all, "rank every item (hold-out protocol)");
  sub->add_option("--exclude-dataset", a->exclude, "drop each user's items in this dataset");
  sub->add_option("--convention", a->convention, "standard|kb")
      ->check(CLI::IsMember({"standard", "kb"}));
  sub->add_option("--estimator", a->estimator,
                  "naive|ips|snips|dr: estimate from the click log in --dataset")
      ->check(CLI::IsMember({"naive", "ips", "snips", "dr"}));
  sub->add_option("--propensity-from", a->propensity_from,
                  "propensity estimator fitted on the log (default popularity), 'logged', or "
                  "a model id whose training propensities to use");
  sub->add_option("--propensity-param", a->propensity_params,
                  "key=value for the fitted propensity estimator (repeatable)");
  sub->add_option("--clip", a->clip,
                  "raise propensities below M to M (0: none); with --policy-estimator: cap "
                  "the weights of ips, dr and balanced-ipw at M (the others do not clip)");
  sub->add_option("--bootstrap", a->bootstrap, "bootstrap resamples of users (0: none)");
  sub->add_option("--seed", a->seed, "seed of the bootstrap and the user subset");
  sub->add_option("--confidence", a->confidence, "interval level (default 0.95)");
  sub->add_option("--imputation-model", a->imputation_model,
                  "dr: model imputing relevance (default: the evaluated model)");
  sub->add_option("--scores", a->scores,
                  "evaluate uploaded scores: CSV user,item,score instead of --model");
  sub->add_option("--mar-dataset", a->mar_dataset,
                  "also evaluate on this labelled missing-at-random sample");
  sub->add_option("--max-users", a->max_users, "estimate on a seeded subset of users (0: all)");
  sub->add_option("--policy-estimator", a->policy_estimator,
                  "dm|ips|snips|dr|switch-dr|dr-os|sndr|subgaussian-ipw|subgaussian-dr|"
                  "balanced-ipw|mips|snmips|iips|sips|rips|cascade-dr, or several comma-separated (one table): the model's value as "
                  "a policy on the logged decisions in --dataset (propensities = logging "
                  "probabilities)");
  sub->add_option("--target", a->target, "policy: greedy (default), softmax (single actions) or ranking (slates: the model's top-L)");
  sub->add_option("--temperature", a->temperature, "policy: softmax temperature (default 1)");
  sub->add_option("--tau", a->tau,
                  "policy: switch-dr weight threshold (default: none; 0 = DM, as OBP)");
  sub->add_option("--lambda", a->lambda, "policy: dr-os shrinkage (default 1; 0 = DM, as OBP)");
  sub->add_option("--subgaussian-lambda", a->subgaussian_lambda,
                  "policy: subgaussian-ipw/-dr lambda in [0, 1] (default 0 = IPW/DR)");
  sub->add_option("--reward-model", a->reward_model,
                  "policy: reward model of dm and the dr family: self (the evaluated model), "
                  "imputation (--imputation-model) or crossfit (fitted on the log, K-fold)");
  sub->add_option("--crossfit-folds", a->crossfit_folds,
                  "policy: folds of --reward-model crossfit, in [2, 20] (default 5)");
  sub->add_option("--item-category", a->item_category,
                  "policy: mips/snmips action embedding, CSV item,category");
  sub->add_flag("--slope", a->slope,
                "policy: choose clip/tau/lambda/subgaussian-lambda by SLOPE (Su et al. 2020)");
}

// The EvaluateRequest the options describe; INVALID_ARGUMENT naming the
// option for a malformed one.
absl::StatusOr<v1::EvaluateRequest> EvaluateRequestOf(const EvaluateArgs& a) {
  v1::EvaluateRequest req;
  if (!a.model.empty()) {
    auto ref = ParseModelRef(a.model);
    if (!ref.ok()) return ref.status();
    *req.mutable_model() = *ref;
  }
  req.set_dataset(a.dataset);
  for (const auto& k : SplitList(a.ks)) {
    uint32_t v = 0;
    if (!absl::SimpleAtoi(k, &v)) {
      return absl::InvalidArgumentError(absl::StrCat("--k '", k, "': not a number"));
    }
    req.add_k(v);
  }
  if (a.threshold) req.set_threshold(*a.threshold);
  req.set_rank_all_items(a.rank_all);
  req.set_exclude_dataset(a.exclude);
  req.set_convention(a.convention);
  req.set_estimator(a.estimator);
  req.set_propensity_from(a.propensity_from);
  for (const auto& kv : a.propensity_params) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--propensity-param '", kv, "': expected key=value"));
    }
    (*req.mutable_propensity_params())[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  req.set_clip(a.clip);
  req.set_bootstrap(a.bootstrap);
  req.set_seed(a.seed);
  req.set_confidence(a.confidence);
  req.set_imputation_model_id(a.imputation_model);
  req.set_mar_dataset(a.mar_dataset);
  req.set_max_users(a.max_users);
  req.set_policy_estimator(a.policy_estimator);
  req.set_target(a.target);
  req.set_temperature(a.temperature);
  if (a.tau) req.set_tau(*a.tau);
  if (a.lambda) req.set_lambda(*a.lambda);
  if (a.subgaussian_lambda) req.set_subgaussian_lambda(*a.subgaussian_lambda);
  req.set_reward_model(a.reward_model);
  if (a.crossfit_folds) req.set_crossfit_folds(*a.crossfit_folds);
  req.set_slope(a.slope);
  if (!a.item_category.empty()) {
    if (absl::Status s = ReadItemCategories(a.item_category, &req); !s.ok()) return s;
  }
  if (!a.scores.empty()) {
    if (absl::Status s = ReadScores(a.scores, &req); !s.ok()) return s;
  }
  if (a.model.empty() && a.scores.empty()) {
    return absl::InvalidArgumentError("give --model ID or --scores FILE");
  }
  return req;
}

// What `debiasctl evaluate` prints: the JSON object and the text.
std::pair<json, std::string> EvaluateOutput(const EvaluateArgs& a, const v1::EvaluateResponse& r) {
  json diag = StructJson(r.diagnostics());
  const std::string human =
      EvaluateText(r, diag, a.estimator, a.policy_estimator, a.dataset, a.model);
  json out{{"metrics", MapJson(r.metrics())}, {"diagnostics", diag}};
  if (r.has_served()) {
    out["model_id"] = r.served().id();
    out["served"] = ServedJson(r.served());
  }
  if (!a.estimator.empty() || !a.policy_estimator.empty()) {
    if (!a.estimator.empty()) out["estimator"] = a.estimator;
    if (!a.policy_estimator.empty()) out["policy_estimator"] = a.policy_estimator;
    out["intervals"] = IntervalsJson(r.intervals());
    out["normal_intervals"] = IntervalsJson(r.normal_intervals());
  }
  if (r.mar_metrics_size() > 0) out["mar_metrics"] = MapJson(r.mar_metrics());
  return {out, human};
}

void RegisterEvaluate(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand(
      "evaluate",
      "a model's metrics on a labelled test dataset, or (with --estimator) its true ranking "
      "quality estimated from a biased click log, with intervals");
  auto a = std::make_shared<EvaluateArgs>();
  AddEvaluateOptions(sub, a.get());
  AddGlobalOptions(sub, &ctx.global);
  sub->callback([&ctx, a] {
    ctx.run = [&ctx, a]() -> int {
      auto req = EvaluateRequestOf(*a);
      if (!req.ok()) return Fail(req.status());
      auto r = ctx.Connect()->Evaluate(*req);
      if (!r.ok()) return Fail(r.status());
      auto [out, human] = EvaluateOutput(*a, *r);
      return Emit(ctx, out, human);
    };
  });
}

void RegisterSampleNegatives(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("sample-negatives", "draw negative items for a user");
  struct Args {
    std::string model;
    std::string dataset, user, sampler;
    uint32_t n = 10;
    uint64_t seed = 0;
    std::optional<double> power;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--model", a->model,
                  "model: id, NAME, NAME:VERSION or NAME@LABEL (needed for --sampler nbpo)");
  sub->add_option("--dataset", a->dataset, "dataset (instead of --model)");
  sub->add_option("--user", a->user, "user key")->required();
  sub->add_option("--n", a->n, "number of negatives")->capture_default_str();
  sub->add_option("--sampler", a->sampler, "uniform|popularity|nbpo (default uniform)");
  sub->add_option("--seed", a->seed, "random seed (0: fresh)");
  sub->add_option("--power", a->power, "popularity exponent");
  AddGlobalOptions(sub, &ctx.global);
  sub->callback([&ctx, a] {
    ctx.run = [&ctx, a]() -> int {
      v1::SampleNegativesRequest req;
      if (!a->model.empty()) {
        auto ref = ParseModelRef(a->model);
        if (!ref.ok()) return Fail(ref.status());
        *req.mutable_model() = *ref;
      }
      req.set_dataset(a->dataset);
      req.set_user(a->user);
      req.set_n(a->n);
      req.set_sampler(a->sampler);
      req.set_seed(a->seed);
      if (a->power) req.set_power(*a->power);
      auto r = ctx.Connect()->SampleNegatives(req);
      if (!r.ok()) return Fail(r.status());
      std::string human;
      for (const auto& i : r->items()) absl::StrAppend(&human, i, "\n");
      return Emit(ctx, json{{"user", a->user}, {"items", JsonArray(r->items())}},
                  human);
    };
  });
}

}  // namespace

void RegisterModelCommands(CLI::App& app, Context& ctx) {
  RegisterMethods(app, ctx);
  RegisterTrain(app, ctx);
  RegisterModels(app, ctx);
  RegisterCancelDelete(app, ctx);
  RegisterScore(app, ctx);
  RegisterTopK(app, ctx);
  RegisterBatchTopK(app, ctx);
  RegisterPropensity(app, ctx);
  RegisterEvaluate(app, ctx);
  RegisterSampleNegatives(app, ctx);
}

}  // namespace debias::cli
