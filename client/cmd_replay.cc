// debiasctl replay: offline comparison of several models on one biased log.
//
//   debiasctl replay LOG [--format F] --models naive,relmf,... [--test MAR]
//       --report out.html [--estimators naive,ips,snips] [--bootstrap N]
//       [--tune key=v1,v2,...] [--param key=value] [--json]
//
// Ingests LOG into a fresh dataset, trains every model through the server
// (one after another, so the server's training-job limit is respected, with
// one progress line per model on a terminal), optionally choosing one
// hyperparameter per model on the validation split the trainer carves from
// the log (never on --test), evaluates every model with the log estimators
// (and on the MAR test sample when given), and writes a self-contained HTML
// report (inline SVG and CSS, no network) plus the same numbers as JSON next
// to it (out.json).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <iostream>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "client/cli.h"
#include "core/data/loaders.h"
#include "google/protobuf/util/json_util.h"

namespace debias::cli {
namespace {

using nlohmann::json;

struct ReplayArgs {
  std::string log, format = "csv", test, test_format, dataset, report, json_out;
  std::string models = "naive,relmf";
  std::string estimators = "naive,ips,snips";
  std::string ks = "5,10";
  std::string propensity_from;
  std::string tune;  // key=v1,v2,...
  std::vector<std::string> params;
  std::optional<float> threshold;
  uint32_t bootstrap = 200;
  uint64_t seed = 1;
  double clip = 0;
  uint32_t max_users = 0;
};


std::string Html(const std::string& s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
}


const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                         "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};

// A dot-and-whisker chart: one row per model, the estimate with its interval
// and, when known, the MAR-sample value as a hollow diamond.
std::string IntervalChart(const std::string& title, const json& rows) {
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& r : rows) {
    lo = std::min({lo, r["low"].get<double>(), r["value"].get<double>()});
    hi = std::max({hi, r["high"].get<double>(), r["value"].get<double>()});
    if (r.contains("mar")) {
      lo = std::min(lo, r["mar"].get<double>());
      hi = std::max(hi, r["mar"].get<double>());
    }
  }
  if (!std::isfinite(lo)) return "";
  if (hi - lo < 1e-12) hi = lo + 1;
  const double pad = 0.08 * (hi - lo);
  lo -= pad;
  hi += pad;
  const int w = 460, left = 110, right = 40, row_h = 26, top = 28;
  const int h = top + row_h * static_cast<int>(rows.size()) + 30;
  auto x = [&](double v) { return left + (v - lo) / (hi - lo) * (w - left - right); };
  std::string svg = absl::StrFormat(
      "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' class='chart'>"
      "<text x='%d' y='16' class='title'>%s</text>",
      w, h, left, Html(title));
  for (int t = 0; t <= 4; ++t) {
    double v = lo + (hi - lo) * t / 4;
    absl::StrAppendFormat(&svg,
                          "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' class='grid'/>"
                          "<text x='%.1f' y='%d' class='tick'>%.3g</text>",
                          x(v), top - 4, x(v), h - 26, x(v), h - 10, v);
  }
  int i = 0;
  for (const auto& r : rows) {
    const int y = top + row_h * i + row_h / 2;
    const char* color = kColors[i % 10];
    absl::StrAppendFormat(
        &svg,
        "<text x='%d' y='%d' class='label'>%s</text>"
        "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='%s' stroke-width='2'/>"
        "<circle cx='%.1f' cy='%d' r='4' fill='%s'/>",
        left - 6, y + 4, Html(r["model"].get<std::string>()), x(r["low"].get<double>()), y,
        x(r["high"].get<double>()), y, color, x(r["value"].get<double>()), y, color);
    if (r.contains("mar")) {
      double mx = x(r["mar"].get<double>());
      absl::StrAppendFormat(&svg,
                            "<path d='M %.1f %d l 5 5 l -5 5 l -5 -5 z' fill='none' "
                            "stroke='black'/>",
                            mx, y - 5);
    }
    ++i;
  }
  return svg + "</svg>";
}

// A histogram of `values` over log10-spaced bins.
std::string Histogram(const std::string& title, const std::vector<double>& values) {
  if (values.empty()) return "";
  double lo = *std::min_element(values.begin(), values.end());
  double hi = *std::max_element(values.begin(), values.end());
  lo = std::log10(std::max(lo, 1e-9));
  hi = std::log10(std::max(hi, 1e-9));
  if (hi - lo < 1e-9) hi = lo + 1;
  const int bins = 30;
  std::vector<int> count(bins, 0);
  for (double v : values) {
    int b = static_cast<int>((std::log10(std::max(v, 1e-9)) - lo) / (hi - lo) * bins);
    ++count[std::clamp(b, 0, bins - 1)];
  }
  const int peak = *std::max_element(count.begin(), count.end());
  const int w = 460, h = 200, left = 40, bottom = 30, top = 24, right = 30;
  std::string svg = absl::StrFormat(
      "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' class='chart'>"
      "<text x='%d' y='16' class='title'>%s</text>",
      w, h, left, Html(title));
  const double bw = static_cast<double>(w - left - right) / bins;
  for (int b = 0; b < bins; ++b) {
    double bh = peak ? (h - top - bottom) * count[b] / static_cast<double>(peak) : 0;
    absl::StrAppendFormat(&svg,
                          "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='#4c78a8'>"
                          "<title>%d</title></rect>",
                          left + b * bw, h - bottom - bh, bw - 1, bh, count[b]);
  }
  for (int t = 0; t <= 3; ++t) {
    double lv = lo + (hi - lo) * t / 3;
    absl::StrAppendFormat(&svg, "<text x='%.1f' y='%d' class='tick'>%.3g</text>",
                          left + static_cast<double>(w - left - right) * t / 3, h - 10,
                          std::pow(10, lv));
  }
  absl::StrAppendFormat(&svg, "<text x='4' y='%d' class='tick'>%d</text>", top + 8, peak);
  return svg + "</svg>";
}

// Training loss per epoch, one small chart per model.
std::string CurveChart(const std::string& title, const std::vector<double>& loss) {
  if (loss.size() < 2) return "";
  double lo = *std::min_element(loss.begin(), loss.end());
  double hi = *std::max_element(loss.begin(), loss.end());
  if (hi - lo < 1e-12) hi = lo + 1;
  const int w = 300, h = 160, left = 44, bottom = 24, top = 22;
  std::string svg = absl::StrFormat(
      "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' class='chart'>"
      "<text x='%d' y='14' class='title'>%s</text><polyline fill='none' stroke='#d62728' "
      "stroke-width='1.5' points='",
      w, h, left, Html(title));
  for (size_t i = 0; i < loss.size(); ++i) {
    double px = left + (w - left - 8.0) * i / (loss.size() - 1);
    double py = top + (h - top - bottom) * (1 - (loss[i] - lo) / (hi - lo));
    absl::StrAppendFormat(&svg, "%.1f,%.1f ", px, py);
  }
  absl::StrAppendFormat(&svg,
                        "'/><text x='2' y='%d' class='tick'>%.3g</text>"
                        "<text x='2' y='%d' class='tick'>%.3g</text>"
                        "<text x='%d' y='%d' class='tick'>epoch 1..%d</text></svg>",
                        top + 6, hi, h - bottom, lo, left, h - 6, static_cast<int>(loss.size()));
  return svg;
}

std::string Fmt(double v) { return absl::StrFormat("%.4f", v); }

std::string BuildHtml(const json& rep) {
  std::string h =
      "<!DOCTYPE html><html><head><meta charset='utf-8'><title>debias replay report</title>"
      "<style>body{font-family:'DejaVu Sans',Arial,sans-serif;margin:24px;color:#222;max-width:"
      "1100px}h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid "
      "#ccc}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:"
      "4px 8px;text-align:right}th{background:#f4f4f4}td.l,th.l{text-align:left}.ci{color:#777;"
      "font-size:11px}.chart{margin:6px 12px 6px 0;background:#fafafa;border:1px solid #eee}"
      ".title{font-size:13px;font-weight:bold}.tick{font-size:10px;fill:#555}.label{font-size:"
      "12px;text-anchor:end}.grid{stroke:#e4e4e4}.warn{color:#a33}.note{color:#555;font-size:"
      "13px}</style></head><body>";
  absl::StrAppend(&h, "<h1>debias replay: ", Html(rep["log"].get<std::string>()), "</h1>");
  absl::StrAppend(&h, "<p class='note'>dataset <b>", Html(rep["dataset"].get<std::string>()),
                  "</b>, ", rep["log_events"].get<int64_t>(), " events; propensities: ",
                  Html(rep.value("propensity_from", std::string("popularity"))),
                  "; intervals: ", rep["bootstrap"].get<int>(),
                  " bootstrap resamples of users (95%)",
                  rep.contains("test") ? "; MAR test: " + Html(rep["test"].get<std::string>())
                                       : std::string(),
                  ". Generated ", Html(rep["generated"].get<std::string>()), ".</p>");
  const auto& models = rep["models"];
  const auto estimators = rep["estimators"];
  // Table: models x metrics per estimator.
  std::vector<std::string> metrics;
  for (const auto& m : models) {
    for (auto& [est, e] : m["estimates"].items()) {
      for (auto& [k, v] : e["metrics"].items()) {
        if (std::find(metrics.begin(), metrics.end(), k) == metrics.end()) metrics.push_back(k);
      }
    }
  }
  std::sort(metrics.begin(), metrics.end());
  for (const auto& est : estimators) {
    const std::string e = est.get<std::string>();
    absl::StrAppend(&h, "<h2>Estimator: ", Html(e), "</h2>");
    if (e == "snips") {
      h += "<p class='note'>SNIPS normalises the inverse weights to average 1 over the clicks, so "
           "dcg and precision come out on the click scale: the true value times one constant "
           "shared by every model on this log. Compare models with it; compare absolute values "
           "with IPS. Recall and MAP are ratios in which the constant cancels.</p>";
    } else if (e == "naive") {
      h += "<p class='note'>Clicks taken at face value: biased towards what the logging system "
           "showed.</p>";
    }
    h += "<table><tr><th class='l'>model</th>";
    for (const auto& k : metrics) absl::StrAppend(&h, "<th>", Html(k), "</th>");
    h += "</tr>";
    for (const auto& m : models) {
      absl::StrAppend(&h, "<tr><td class='l'>", Html(m["name"].get<std::string>()), " #",
                      m["model_id"].get<uint64_t>(), "</td>");
      const json& es = m["estimates"].value(e, json::object());
      for (const auto& k : metrics) {
        if (!es.contains("metrics") || !es["metrics"].contains(k)) {
          h += "<td></td>";
          continue;
        }
        absl::StrAppend(&h, "<td>", Fmt(es["metrics"][k].get<double>()));
        if (es.contains("intervals") && es["intervals"].contains(k)) {
          absl::StrAppend(&h, "<br><span class='ci'>[", Fmt(es["intervals"][k][0].get<double>()),
                          ", ", Fmt(es["intervals"][k][1].get<double>()), "]</span>");
        }
        h += "</td>";
      }
      h += "</tr>";
    }
    h += "</table>";
  }
  if (rep.contains("test")) {
    h += "<h2>On the MAR test sample (unbiased reference)</h2><table><tr><th class='l'>model</th>";
    for (const auto& k : metrics) absl::StrAppend(&h, "<th>", Html(k), "</th>");
    h += "</tr>";
    for (const auto& m : models) {
      absl::StrAppend(&h, "<tr><td class='l'>", Html(m["name"].get<std::string>()), "</td>");
      for (const auto& k : metrics) {
        if (m.contains("mar_metrics") && m["mar_metrics"].contains(k)) {
          absl::StrAppend(&h, "<td>", Fmt(m["mar_metrics"][k].get<double>()), "</td>");
        } else {
          h += "<td></td>";
        }
      }
      h += "</tr>";
    }
    h += "</table>";
  }
  // Plots: each metric with its interval per model, for IPS when it was run
  // (its scale is the metric's own, comparable with the MAR test; SNIPS is
  // on the click scale), else the last estimator.
  std::string plot_est = estimators.back().get<std::string>();
  for (const auto& e : estimators) {
    if (e.get<std::string>() == "ips") plot_est = "ips";
  }
  absl::StrAppend(&h, "<h2>Estimates with 95% intervals (", Html(plot_est),
                  "; diamonds: MAR test)</h2><div>");
  for (const auto& k : metrics) {
    json rows = json::array();
    for (const auto& m : models) {
      const json& es = m["estimates"].value(plot_est, json::object());
      if (!es.contains("metrics") || !es["metrics"].contains(k)) continue;
      json r{{"model", m["name"]}, {"value", es["metrics"][k]}};
      const json* iv = nullptr;
      if (es.contains("intervals") && es["intervals"].contains(k)) {
        iv = &es["intervals"][k];
      } else if (es.contains("normal_intervals") && es["normal_intervals"].contains(k)) {
        iv = &es["normal_intervals"][k];
      }
      r["low"] = iv ? (*iv)[0] : r["value"];
      r["high"] = iv ? (*iv)[1] : r["value"];
      if (m.contains("mar_metrics") && m["mar_metrics"].contains(k)) r["mar"] = m["mar_metrics"][k];
      rows.push_back(r);
    }
    h += IntervalChart(k, rows);
  }
  h += "</div>";
  // Propensities.
  if (rep.contains("propensities")) {
    const auto& p = rep["propensities"];
    std::vector<double> prop = p["values"].get<std::vector<double>>();
    std::vector<double> inv;
    for (double v : prop) inv.push_back(1.0 / v);
    absl::StrAppend(&h, "<h2>Propensities of the logged clicks</h2><p class='note'>",
                    Html(p["source"].get<std::string>()), ", ", prop.size(),
                    " clicks sampled (log scale).</p><div>",
                    Histogram("propensity P(exposed)", prop),
                    Histogram("inverse weight 1/p", inv), "</div>");
  }
  // Weight diagnostics and warnings.
  h += "<h2>Weight diagnostics</h2><table><tr><th class='l'>model</th><th class='l'>estimator"
       "</th><th>ESS</th><th>ESS share</th><th>max w</th><th>p99 w</th><th>top 1% share</th>"
       "<th>clipped</th><th class='l'>warnings</th></tr>";
  for (const auto& m : models) {
    for (auto& [est, e] : m["estimates"].items()) {
      if (est == "naive") continue;
      const json& w = e["diagnostics"].value("weights", json::object());
      std::vector<std::string> warns;
      for (const auto& x : e["diagnostics"].value("warnings", json::array())) {
        if (x.is_string()) warns.push_back(Html(x.get<std::string>()));
      }
      absl::StrAppend(&h, "<tr><td class='l'>", Html(m["name"].get<std::string>()),
                      "</td><td class='l'>", Html(est), "</td><td>",
                      absl::StrFormat("%.0f", w.value("ess", 0.0)), "</td><td>",
                      Fmt(w.value("ess_fraction", 0.0)), "</td><td>",
                      absl::StrFormat("%.3g", w.value("max", 0.0)), "</td><td>",
                      absl::StrFormat("%.3g", w.value("p99", 0.0)), "</td><td>",
                      Fmt(w.value("top1pct_share", 0.0)), "</td><td>",
                      Fmt(w.value("clipped_fraction", 0.0)), "</td><td class='l warn'>",
                      absl::StrJoin(warns, "<br>"), "</td></tr>");
    }
  }
  h += "</table>";
  // Training curves.
  h += "<h2>Training curves (loss per epoch)</h2><div>";
  for (const auto& m : models) {
    h += CurveChart(absl::StrCat(m["name"].get<std::string>(), " #",
                                 m["model_id"].get<uint64_t>()),
                    m["curve"].get<std::vector<double>>());
  }
  h += "</div>";
  // Tuning.
  h += "<h2>Models</h2><table><tr><th class='l'>model</th><th>id</th><th class='l'>chosen "
       "on validation</th><th>train s</th></tr>";
  for (const auto& m : models) {
    absl::StrAppend(&h, "<tr><td class='l'>", Html(m["name"].get<std::string>()), "</td><td>",
                    m["model_id"].get<uint64_t>(), "</td><td class='l'>",
                    Html(m.value("tuning", json::object()).dump()), "</td><td>",
                    absl::StrFormat("%.1f", m.value("train_seconds", 0.0)), "</td></tr>");
  }
  h += "</table></body></html>\n";
  return h;
}

// The first validation metric a training run reported (val_auc preferred).
std::optional<double> ValMetric(const v1::Model& m, std::string* name) {
  const auto& f = m.metrics().fields();
  for (const char* k : {"val_auc", "val_ndcg@5", "val_ndcg@10"}) {
    if (auto it = f.find(k); it != f.end() && it->second.has_number_value()) {
      *name = k;
      return it->second.number_value();
    }
  }
  for (const auto& [k, v] : f) {
    if (k.rfind("val_", 0) == 0 && v.has_number_value() && k.find("loss") == std::string::npos) {
      *name = k;
      return v.number_value();
    }
  }
  return std::nullopt;
}

int RunReplay(const Context& ctx, const ReplayArgs& a) {
  const auto t_start = std::chrono::steady_clock::now();
  auto models = SplitList(a.models);
  auto estimators = SplitList(a.estimators);
  if (models.empty()) return Fail(absl::InvalidArgumentError("--models: give at least one loss"));
  if (estimators.empty()) return Fail(absl::InvalidArgumentError("--estimators: give at least one"));
  std::string tune_key;
  std::vector<std::string> tune_values;
  if (!a.tune.empty()) {
    auto eq = a.tune.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Fail(absl::InvalidArgumentError("--tune: expected key=v1,v2,..."));
    }
    tune_key = a.tune.substr(0, eq);
    tune_values = SplitList(a.tune.substr(eq + 1));
    if (tune_values.empty()) return Fail(absl::InvalidArgumentError("--tune: no values"));
  }
  std::map<std::string, std::string> params;
  for (const auto& kv : a.params) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Fail(absl::InvalidArgumentError(absl::StrCat("--param '", kv, "': expected key=value")));
    }
    params[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  const bool progress = ShowProgress() && !ctx.global.json;
  auto note = [&](const std::string& s) {
    if (!ctx.global.json) {
      EndProgress();
      std::cerr << s << std::endl;
    }
  };

  // 1. Ingest into a fresh dataset.
  auto format = data::ParseFormat(a.format);
  if (!format.ok()) return Fail(format.status());
  data::LoadOptions lo;
  lo.threshold = a.threshold;
  auto loaded = data::LoadFile(a.log, *format, lo);
  if (!loaded.ok()) return Fail(loaded.status());
  auto client = ctx.Connect();
  const std::string dataset =
      a.dataset.empty() ? absl::StrCat("replay-", static_cast<int64_t>(std::time(nullptr)))
                        : a.dataset;
  if (client->GetDataset(dataset).ok()) {
    return Fail(absl::AlreadyExistsError(absl::StrCat(
        "dataset '", dataset, "' exists; replay ingests into a fresh dataset (use --dataset)")));
  }
  IngestSummary ing = client->Ingest(dataset, loaded->events);
  if (!ing.status.ok()) return Fail(ing.status);
  note(absl::StrFormat("replay: ingested %d events into %s", ing.events_acknowledged, dataset));
  std::string test_dataset;
  if (!a.test.empty()) {
    auto tf = data::ParseFormat(a.test_format.empty() ? a.format : a.test_format);
    if (!tf.ok()) return Fail(tf.status());
    auto tl = data::LoadFile(a.test, *tf, lo);
    if (!tl.ok()) return Fail(tl.status());
    test_dataset = dataset + "-test";
    IngestSummary ti = client->Ingest(test_dataset, tl->events);
    if (!ti.status.ok()) return Fail(ti.status);
    note(absl::StrFormat("replay: ingested %d MAR test events into %s", ti.events_acknowledged,
                         test_dataset));
  }

  // 2. Train each model (tuning one hyperparameter on validation if asked).
  json report_models = json::array();
  std::vector<v1::Model> trained;
  for (const auto& loss : models) {
    std::vector<std::string> grid = tune_values.empty() ? std::vector<std::string>{""} : tune_values;
    std::optional<v1::Model> best;
    double best_val = -INFINITY;
    std::string best_value, val_name;
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& value : grid) {
      v1::TrainRequest req;
      req.set_dataset(dataset);
      req.set_loss(loss);
      req.set_seed(a.seed);
      for (const auto& [k, v] : params) (*req.mutable_params())[k] = v;
      if (!value.empty()) (*req.mutable_params())[tune_key] = value;
      std::string label = value.empty() ? loss : absl::StrCat(loss, " ", tune_key, "=", value);
      auto m = client->Train(req, [&](const v1::TrainEvent& ev) {
        if (progress && ev.has_progress()) {
          ProgressLine(absl::StrFormat("replay: training %s: epoch %d/%d loss %.4f", label,
                                       ev.progress().epoch(), ev.progress().total_epochs(),
                                       ev.progress().loss()));
        }
      });
      if (!m.ok()) return Fail(m.status());
      if (m->state() != "ready") {
        return Fail(absl::InternalError(
            absl::StrCat("training ", label, " ended ", m->state(), ": ", m->error())));
      }
      std::string name;
      double val = ValMetric(*m, &name).value_or(0.0);
      if (!best || val > best_val) {
        best = *m;
        best_val = val;
        best_value = value;
        val_name = name;
      }
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    json tuning = json::object();
    if (!tune_key.empty()) {
      tuning = json{{tune_key, best_value}, {"by", val_name}, {"value", best_val}};
    }
    note(absl::StrFormat("replay: %s -> model %d (%s%.1f s)", loss, best->id(),
                         tune_key.empty() ? std::string()
                                          : absl::StrCat(tune_key, "=", best_value, " by ",
                                                         val_name, ", "),
                         secs));
    auto full = client->GetModel(best->id());
    if (!full.ok()) return Fail(full.status());
    std::vector<double> curve;
    for (const auto& p : full->progress()) curve.push_back(p.loss());
    report_models.push_back(json{{"name", loss},
                                 {"model_id", best->id()},
                                 {"tuning", tuning},
                                 {"train_seconds", secs},
                                 {"curve", curve},
                                 {"estimates", json::object()}});
    trained.push_back(*full);
  }

  // 3. Evaluate every model with every estimator.
  for (size_t i = 0; i < trained.size(); ++i) {
    json& rm = report_models[i];
    for (const auto& est : estimators) {
      if (progress) ProgressLine(absl::StrCat("replay: evaluating ", models[i], " (", est, ")"));
      v1::EvaluateRequest req;
      req.set_model_id(trained[i].id());
      req.set_dataset(dataset);
      req.set_estimator(est);
      req.set_propensity_from(a.propensity_from);
      req.set_clip(a.clip);
      req.set_bootstrap(a.bootstrap);
      req.set_seed(a.seed);
      req.set_max_users(a.max_users);
      for (const auto& k : SplitList(a.ks)) {
        uint32_t v = 0;
        if (!absl::SimpleAtoi(k, &v)) {
          return Fail(absl::InvalidArgumentError(absl::StrCat("--k '", k, "': not a number")));
        }
        req.add_k(v);
      }
      if (!test_dataset.empty() && !rm.contains("mar_metrics")) req.set_mar_dataset(test_dataset);
      auto r = client->Evaluate(req);
      if (!r.ok()) return Fail(r.status());
      json e{{"metrics", json::object()},
             {"intervals", json::object()},
             {"normal_intervals", json::object()},
             {"diagnostics", StructJson(r->diagnostics())}};
      for (const auto& [k, v] : r->metrics()) e["metrics"][k] = v;
      for (const auto& [k, v] : r->intervals()) e["intervals"][k] = {v.low(), v.high()};
      for (const auto& [k, v] : r->normal_intervals()) {
        e["normal_intervals"][k] = {v.low(), v.high()};
      }
      if (r->mar_metrics_size() > 0) {
        rm["mar_metrics"] = json::object();
        for (const auto& [k, v] : r->mar_metrics()) rm["mar_metrics"][k] = v;
      }
      rm["estimates"][est] = e;
    }
  }
  EndProgress();

  // 4. Propensities of a sample of the logged clicks, from the first model
  // trained with a propensity estimator.
  json report{{"log", a.log},
              {"dataset", dataset},
              {"log_events", ing.events_acknowledged},
              {"estimators", estimators},
              {"bootstrap", a.bootstrap},
              {"propensity_from", a.propensity_from.empty() ? "popularity" : a.propensity_from},
              {"models", report_models}};
  if (!test_dataset.empty()) report["test"] = a.test;
  {
    std::time_t now = std::time(nullptr);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
    report["generated"] = buf;
  }
  for (const auto& m : trained) {
    v1::GetPropensitiesRequest req;
    req.set_model_id(m.id());
    std::mt19937_64 rng(a.seed);
    const size_t n = std::min<size_t>(loaded->events.size(), 10000);  // max_candidates
    for (size_t j = 0; j < n; ++j) {
      const auto& ev = loaded->events[rng() % loaded->events.size()];
      auto* p = req.add_pairs();
      p->set_user(ev.user);
      p->set_item(ev.item);
    }
    auto r = client->GetPropensities(req);
    if (!r.ok()) continue;  // a model without an estimator (e.g. naive)
    std::vector<double> values(r->pair_propensities().begin(), r->pair_propensities().end());
    report["propensities"] = json{
        {"source", absl::StrCat("the propensity estimator of model ", m.id(), " (",
                                m.spec().fields().count("loss")
                                    ? m.spec().fields().at("loss").string_value()
                                    : std::string("?"),
                                ")")},
        {"values", values}};
    break;
  }

  // 5. Write the report and its JSON.
  const std::string json_path =
      a.json_out.empty()
          ? (a.report.size() > 5 && a.report.substr(a.report.size() - 5) == ".html"
                 ? a.report.substr(0, a.report.size() - 5) + ".json"
                 : a.report + ".json")
          : a.json_out;
  {
    std::ofstream out(a.report);
    out << BuildHtml(report);
    if (!out) return Fail(absl::UnavailableError(absl::StrCat("cannot write ", a.report)));
  }
  {
    json slim = report;
    if (slim.contains("propensities")) slim["propensities"].erase("values");
    std::ofstream out(json_path);
    out << slim.dump(2) << "\n";
    if (!out) return Fail(absl::UnavailableError(absl::StrCat("cannot write ", json_path)));
  }

  // 6. The table on stdout.
  std::string human;
  std::vector<std::string> keys;
  for (const auto& k : SplitList(a.ks)) {
    for (const char* m : {"dcg@", "precision@", "recall@"}) keys.push_back(m + k);
  }
  for (const auto& est : estimators) {
    absl::StrAppendFormat(&human, "\n%s estimates (95%% bootstrap intervals)\n%-12s", est, "model");
    for (const auto& k : keys) absl::StrAppendFormat(&human, " %24s", k);
    human += "\n";
    for (const auto& m : report_models) {
      absl::StrAppendFormat(&human, "%-12s", m["name"].get<std::string>());
      const json& e = m["estimates"][est];
      for (const auto& k : keys) {
        if (!e["metrics"].contains(k)) {
          absl::StrAppendFormat(&human, " %24s", "-");
          continue;
        }
        std::string cell = absl::StrFormat("%.4f", e["metrics"][k].get<double>());
        if (e["intervals"].contains(k)) {
          cell += absl::StrFormat(" [%.3f,%.3f]", e["intervals"][k][0].get<double>(),
                                  e["intervals"][k][1].get<double>());
        }
        absl::StrAppendFormat(&human, " %24s", cell);
      }
      human += "\n";
    }
  }
  if (!test_dataset.empty()) {
    absl::StrAppendFormat(&human, "\nMAR test sample (unbiased reference)\n%-12s", "model");
    for (const auto& k : keys) absl::StrAppendFormat(&human, " %24s", k);
    human += "\n";
    for (const auto& m : report_models) {
      absl::StrAppendFormat(&human, "%-12s", m["name"].get<std::string>());
      for (const auto& k : keys) {
        if (m.contains("mar_metrics") && m["mar_metrics"].contains(k)) {
          absl::StrAppendFormat(&human, " %24.4f", m["mar_metrics"][k].get<double>());
        } else {
          absl::StrAppendFormat(&human, " %24s", "-");
        }
      }
      human += "\n";
    }
  }
  const double total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  absl::StrAppendFormat(&human, "\nreport: %s (numbers: %s), %.1f s\n", a.report, json_path, total);
  json summary = report;
  if (summary.contains("propensities")) summary["propensities"].erase("values");
  summary["report"] = a.report;
  summary["report_json"] = json_path;
  return Emit(ctx, summary, human);
}

}  // namespace

void RegisterReplayCommand(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<ReplayArgs>();
  auto* sub = app.add_subcommand(
      "replay", "train several models on one biased log and compare them with unbiased "
                "estimates in an HTML report");
  sub->add_option("log", a->log, "the logged interactions (clicks)")->required();
  sub->add_option("--format", a->format, "csv|coat|yahoo|nbpo-json|libsvm")->capture_default_str();
  sub->add_option("--models", a->models, "comma-separated losses (debiasctl methods)")
      ->capture_default_str();
  sub->add_option("--test", a->test, "labelled MAR test sample (e.g. the synthetic truth)");
  sub->add_option("--test-format", a->test_format, "format of --test (default: --format)");
  sub->add_option("--threshold", a->threshold, "binarise labels: label >= T -> 1, else 0");
  sub->add_option("--dataset", a->dataset, "name of the fresh dataset (default replay-<time>)");
  sub->add_option("--report", a->report, "HTML report to write")->required();
  sub->add_option("--report-json", a->json_out, "JSON to write (default: report with .json)");
  sub->add_option("--estimators", a->estimators, "comma-separated: naive,ips,snips,dr")
      ->capture_default_str();
  sub->add_option("--k", a->ks, "comma-separated cut-offs")->capture_default_str();
  sub->add_option("--bootstrap", a->bootstrap, "bootstrap resamples")->capture_default_str();
  sub->add_option("--seed", a->seed, "seed of training and the bootstrap")->capture_default_str();
  sub->add_option("--clip", a->clip, "clip propensities of the estimators at M")
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--propensity-from", a->propensity_from,
                  "propensities of the estimators: estimator name, logged, or model id");
  sub->add_option("--tune", a->tune,
                  "key=v1,v2,...: train each model per value, keep the best on validation");
  sub->add_option("--param", a->params, "key=value for every model (repeatable)");
  sub->add_option("--max-users", a->max_users, "estimate on a seeded subset of users");
  AddGlobalOptions(sub, &ctx.global);
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunReplay(ctx, *a); }; });
}

}  // namespace debias::cli
