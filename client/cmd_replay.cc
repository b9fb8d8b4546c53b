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

// --- The HTML report, one section per helper ---------------------------

const char kHtmlHead[] =
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>debias replay report</title>"
    "<style>body{font-family:'DejaVu Sans',Arial,sans-serif;margin:24px;color:#222;max-width:"
    "1100px}h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid "
    "#ccc}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:"
    "4px 8px;text-align:right}th{background:#f4f4f4}td.l,th.l{text-align:left}.ci{color:#777;"
    "font-size:11px}.chart{margin:6px 12px 6px 0;background:#fafafa;border:1px solid #eee}"
    ".title{font-size:13px;font-weight:bold}.tick{font-size:10px;fill:#555}.label{font-size:"
    "12px;text-anchor:end}.grid{stroke:#e4e4e4}.warn{color:#a33}.note{color:#555;font-size:"
    "13px}</style></head><body>";

// The page head, the title and the line that says what was replayed.
std::string HtmlHeader(const json& rep) {
  std::string h = kHtmlHead;
  absl::StrAppend(&h, "<h1>debias replay: ", Html(rep["log"].get<std::string>()), "</h1>");
  absl::StrAppend(&h, "<p class='note'>dataset <b>", Html(rep["dataset"].get<std::string>()),
                  "</b>, ", rep["log_events"].get<int64_t>(), " events; propensities: ",
                  Html(rep.value("propensity_from", std::string("popularity"))),
                  "; intervals: ", rep["bootstrap"].get<int>(),
                  " bootstrap resamples of users (95%)",
                  rep.contains("test") ? "; MAR test: " + Html(rep["test"].get<std::string>())
                                       : std::string(),
                  ". Generated ", Html(rep["generated"].get<std::string>()), ".</p>");
  return h;
}

// Every metric any model reported under any estimator, sorted.
std::vector<std::string> MetricNames(const json& models) {
  std::vector<std::string> metrics;
  for (const auto& m : models) {
    for (auto& [est, e] : m["estimates"].items()) {
      for (auto& [k, v] : e["metrics"].items()) {
        if (std::find(metrics.begin(), metrics.end(), k) == metrics.end()) metrics.push_back(k);
      }
    }
  }
  std::sort(metrics.begin(), metrics.end());
  return metrics;
}

// How to read an estimator's numbers, for the estimators that need it.
std::string EstimatorNote(const std::string& e) {
  if (e == "snips") {
    return "<p class='note'>SNIPS normalises the inverse weights to average 1 over the clicks, so "
           "dcg and precision come out on the click scale: the true value times one constant "
           "shared by every model on this log. Compare models with it; compare absolute values "
           "with IPS. Recall and MAP are ratios in which the constant cancels.</p>";
  }
  if (e == "naive") {
    return "<p class='note'>Clicks taken at face value: biased towards what the logging system "
           "showed.</p>";
  }
  return "";
}

// The table header row: "model" and one column per metric.
std::string MetricHeaderRow(const std::vector<std::string>& metrics) {
  std::string h = "<tr><th class='l'>model</th>";
  for (const auto& k : metrics) absl::StrAppend(&h, "<th>", Html(k), "</th>");
  h += "</tr>";
  return h;
}

// One model's row of an estimator's table: each metric with its interval.
std::string EstimatorRow(const json& m, const std::string& e,
                         const std::vector<std::string>& metrics) {
  std::string h;
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
  return h;
}

// Table: models x metrics, one per estimator.
std::string EstimatorTables(const json& models, const json& estimators,
                            const std::vector<std::string>& metrics) {
  std::string h;
  for (const auto& est : estimators) {
    const std::string e = est.get<std::string>();
    absl::StrAppend(&h, "<h2>Estimator: ", Html(e), "</h2>");
    h += EstimatorNote(e);
    h += "<table>" + MetricHeaderRow(metrics);
    for (const auto& m : models) h += EstimatorRow(m, e, metrics);
    h += "</table>";
  }
  return h;
}

// Table: models x metrics on the MAR test sample.
std::string MarTable(const json& models, const std::vector<std::string>& metrics) {
  std::string h = "<h2>On the MAR test sample (unbiased reference)</h2><table>";
  h += MetricHeaderRow(metrics);
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
  return h;
}

// The rows of IntervalChart for metric `k` under estimator `plot_est`.
json IntervalRows(const json& models, const std::string& plot_est, const std::string& k) {
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
  return rows;
}

// Plots: each metric with its interval per model, for IPS when it was run
// (its scale is the metric's own, comparable with the MAR test; SNIPS is
// on the click scale), else the last estimator.
std::string IntervalPlots(const json& models, const json& estimators,
                          const std::vector<std::string>& metrics) {
  std::string plot_est = estimators.back().get<std::string>();
  for (const auto& e : estimators) {
    if (e.get<std::string>() == "ips") plot_est = "ips";
  }
  std::string h;
  absl::StrAppend(&h, "<h2>Estimates with 95% intervals (", Html(plot_est),
                  "; diamonds: MAR test)</h2><div>");
  for (const auto& k : metrics) h += IntervalChart(k, IntervalRows(models, plot_est, k));
  h += "</div>";
  return h;
}

// Histograms of the sampled propensities and their inverse weights.
std::string PropensitySection(const json& p) {
  std::vector<double> prop = p["values"].get<std::vector<double>>();
  std::vector<double> inv;
  for (double v : prop) inv.push_back(1.0 / v);
  std::string h;
  absl::StrAppend(&h, "<h2>Propensities of the logged clicks</h2><p class='note'>",
                  Html(p["source"].get<std::string>()), ", ", prop.size(),
                  " clicks sampled (log scale).</p><div>",
                  Histogram("propensity P(exposed)", prop),
                  Histogram("inverse weight 1/p", inv), "</div>");
  return h;
}

// One row of the weight diagnostics: model `name`, estimator `est`, its estimate `e`.
std::string WeightRow(const std::string& name, const std::string& est, const json& e) {
  const json& w = e["diagnostics"].value("weights", json::object());
  std::vector<std::string> warns;
  for (const auto& x : e["diagnostics"].value("warnings", json::array())) {
    if (x.is_string()) warns.push_back(Html(x.get<std::string>()));
  }
  return absl::StrCat("<tr><td class='l'>", Html(name), "</td><td class='l'>", Html(est),
                      "</td><td>", absl::StrFormat("%.0f", w.value("ess", 0.0)), "</td><td>",
                      Fmt(w.value("ess_fraction", 0.0)), "</td><td>",
                      absl::StrFormat("%.3g", w.value("max", 0.0)), "</td><td>",
                      absl::StrFormat("%.3g", w.value("p99", 0.0)), "</td><td>",
                      Fmt(w.value("top1pct_share", 0.0)), "</td><td>",
                      Fmt(w.value("clipped_fraction", 0.0)), "</td><td class='l warn'>",
                      absl::StrJoin(warns, "<br>"), "</td></tr>");
}

// Weight diagnostics and warnings of every weighted estimate.
std::string WeightDiagnostics(const json& models) {
  std::string h =
      "<h2>Weight diagnostics</h2><table><tr><th class='l'>model</th><th class='l'>estimator"
      "</th><th>ESS</th><th>ESS share</th><th>max w</th><th>p99 w</th><th>top 1% share</th>"
      "<th>clipped</th><th class='l'>warnings</th></tr>";
  for (const auto& m : models) {
    for (auto& [est, e] : m["estimates"].items()) {
      if (est == "naive") continue;
      h += WeightRow(m["name"].get<std::string>(), est, e);
    }
  }
  h += "</table>";
  return h;
}

// Training loss per epoch, one chart per model.
std::string TrainingCurves(const json& models) {
  std::string h = "<h2>Training curves (loss per epoch)</h2><div>";
  for (const auto& m : models) {
    h += CurveChart(absl::StrCat(m["name"].get<std::string>(), " #",
                                 m["model_id"].get<uint64_t>()),
                    m["curve"].get<std::vector<double>>());
  }
  h += "</div>";
  return h;
}

// The models with their ids, tuning choice and training time.
std::string ModelsTable(const json& models) {
  std::string h =
      "<h2>Models</h2><table><tr><th class='l'>model</th><th>id</th><th class='l'>chosen "
      "on validation</th><th>train s</th></tr>";
  for (const auto& m : models) {
    absl::StrAppend(&h, "<tr><td class='l'>", Html(m["name"].get<std::string>()), "</td><td>",
                    m["model_id"].get<uint64_t>(), "</td><td class='l'>",
                    Html(m.value("tuning", json::object()).dump()), "</td><td>",
                    absl::StrFormat("%.1f", m.value("train_seconds", 0.0)), "</td></tr>");
  }
  h += "</table>";
  return h;
}

std::string BuildHtml(const json& rep) {
  std::string h = HtmlHeader(rep);
  const auto& models = rep["models"];
  const auto& estimators = rep["estimators"];
  const std::vector<std::string> metrics = MetricNames(models);
  h += EstimatorTables(models, estimators, metrics);
  if (rep.contains("test")) h += MarTable(models, metrics);
  h += IntervalPlots(models, estimators, metrics);
  if (rep.contains("propensities")) h += PropensitySection(rep["propensities"]);
  h += WeightDiagnostics(models);
  h += TrainingCurves(models);
  h += ModelsTable(models);
  h += "</body></html>\n";
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

// --- The replay, one stage per helper ----------------------------------

// The arguments' lists and key=value pairs, checked.
struct ReplayPlan {
  std::vector<std::string> models, estimators;
  std::string tune_key;
  std::vector<std::string> tune_values;
  std::map<std::string, std::string> params;
};

absl::StatusOr<ReplayPlan> ParsePlan(const ReplayArgs& a) {
  ReplayPlan p;
  p.models = SplitList(a.models);
  p.estimators = SplitList(a.estimators);
  if (p.models.empty()) return absl::InvalidArgumentError("--models: give at least one loss");
  if (p.estimators.empty()) return absl::InvalidArgumentError("--estimators: give at least one");
  if (!a.tune.empty()) {
    auto eq = a.tune.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError("--tune: expected key=v1,v2,...");
    }
    p.tune_key = a.tune.substr(0, eq);
    p.tune_values = SplitList(a.tune.substr(eq + 1));
    if (p.tune_values.empty()) return absl::InvalidArgumentError("--tune: no values");
  }
  for (const auto& kv : a.params) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("--param '", kv, "': expected key=value"));
    }
    p.params[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return p;
}

// What the stages of one replay share.
struct Replay {
  Replay(const Context& c, const ReplayArgs& args, ReplayPlan p)
      : ctx(c), a(args), plan(std::move(p)) {}

  const Context& ctx;
  const ReplayArgs& a;
  ReplayPlan plan;
  bool progress = false;  // one progress line on a terminal
  std::unique_ptr<Client> client;
  data::LoadResult loaded;  // the log
  std::string dataset, test_dataset;
  IngestSummary ing;  // of the log
  json report_models = json::array();
  std::vector<v1::Model> trained;  // in the order of plan.models
};

// A line on stderr, unless the output is JSON.
void Note(const Replay& r, const std::string& s) {
  if (!r.ctx.global.json) {
    EndProgress();
    std::cerr << s << std::endl;
  }
}

// Stage 1b: the MAR test sample, into "<dataset>-test".
absl::Status IngestTestSample(Replay& r, const data::LoadOptions& lo) {
  const ReplayArgs& a = r.a;
  auto tf = data::ParseFormat(a.test_format.empty() ? a.format : a.test_format);
  if (!tf.ok()) return tf.status();
  auto tl = data::LoadFile(a.test, *tf, lo);
  if (!tl.ok()) return tl.status();
  r.test_dataset = r.dataset + "-test";
  IngestSummary ti = r.client->Ingest(r.test_dataset, tl->events);
  if (!ti.status.ok()) return ti.status;
  Note(r, absl::StrFormat("replay: ingested %d MAR test events into %s", ti.events_acknowledged,
                          r.test_dataset));
  return absl::OkStatus();
}

// Stage 1: ingest the log into a fresh dataset (and the test sample when given).
absl::Status IngestLogs(Replay& r) {
  const ReplayArgs& a = r.a;
  auto format = data::ParseFormat(a.format);
  if (!format.ok()) return format.status();
  data::LoadOptions lo;
  lo.threshold = a.threshold;
  auto loaded = data::LoadFile(a.log, *format, lo);
  if (!loaded.ok()) return loaded.status();
  r.loaded = *std::move(loaded);
  r.client = r.ctx.Connect();
  r.dataset = a.dataset.empty()
                  ? absl::StrCat("replay-", static_cast<int64_t>(std::time(nullptr)))
                  : a.dataset;
  if (r.client->GetDataset(r.dataset).ok()) {
    return absl::AlreadyExistsError(absl::StrCat(
        "dataset '", r.dataset, "' exists; replay ingests into a fresh dataset (use --dataset)"));
  }
  r.ing = r.client->Ingest(r.dataset, r.loaded.events);
  if (!r.ing.status.ok()) return r.ing.status;
  Note(r, absl::StrFormat("replay: ingested %d events into %s", r.ing.events_acknowledged,
                          r.dataset));
  if (a.test.empty()) return absl::OkStatus();
  return IngestTestSample(r, lo);
}

// Trains `loss` once, with the tuned hyperparameter at `value` ("" for none);
// an error unless the model ends ready.
absl::StatusOr<v1::Model> TrainOnce(const Replay& r, const std::string& loss,
                                    const std::string& value) {
  const ReplayPlan& p = r.plan;
  v1::TrainRequest req;
  req.set_dataset(r.dataset);
  req.set_loss(loss);
  req.set_seed(r.a.seed);
  for (const auto& [k, v] : p.params) (*req.mutable_params())[k] = v;
  if (!value.empty()) (*req.mutable_params())[p.tune_key] = value;
  std::string label = value.empty() ? loss : absl::StrCat(loss, " ", p.tune_key, "=", value);
  const bool progress = r.progress;
  auto m = r.client->Train(req, [&](const v1::TrainEvent& ev) {
    if (progress && ev.has_progress()) {
      ProgressLine(absl::StrFormat("replay: training %s: epoch %d/%d loss %.4f", label,
                                   ev.progress().epoch(), ev.progress().total_epochs(),
                                   ev.progress().loss()));
    }
  });
  if (!m.ok()) return m.status();
  if (m->state() != "ready") {
    return absl::InternalError(
        absl::StrCat("training ", label, " ended ", m->state(), ": ", m->error()));
  }
  return m;
}

// Stage 2, one model: train `loss` (once per tuned value, keeping the best on
// validation) and record it in report_models and trained.
absl::Status TrainModel(Replay& r, const std::string& loss) {
  const ReplayPlan& p = r.plan;
  std::vector<std::string> grid =
      p.tune_values.empty() ? std::vector<std::string>{""} : p.tune_values;
  std::optional<v1::Model> best;
  double best_val = -INFINITY;
  std::string best_value, val_name;
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& value : grid) {
    auto m = TrainOnce(r, loss, value);
    if (!m.ok()) return m.status();
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
  if (!p.tune_key.empty()) {
    tuning = json{{p.tune_key, best_value}, {"by", val_name}, {"value", best_val}};
  }
  Note(r, absl::StrFormat("replay: %s -> model %d (%s%.1f s)", loss, best->id(),
                          p.tune_key.empty() ? std::string()
                                             : absl::StrCat(p.tune_key, "=", best_value, " by ",
                                                            val_name, ", "),
                          secs));
  auto full = r.client->GetModel(best->id());
  if (!full.ok()) return full.status();
  std::vector<double> curve;
  for (const auto& pr : full->progress()) curve.push_back(pr.loss());
  r.report_models.push_back(json{{"name", loss},
                                 {"model_id", best->id()},
                                 {"tuning", tuning},
                                 {"train_seconds", secs},
                                 {"curve", curve},
                                 {"estimates", json::object()}});
  r.trained.push_back(*full);
  return absl::OkStatus();
}

// The request evaluating trained model `i` with `est` (asking for the MAR
// test metrics once per model).
absl::StatusOr<v1::EvaluateRequest> EvaluateRequestFor(const Replay& r, size_t i,
                                                       const std::string& est) {
  const ReplayArgs& a = r.a;
  v1::EvaluateRequest req;
  req.set_model_id(r.trained[i].id());
  req.set_dataset(r.dataset);
  req.set_estimator(est);
  req.set_propensity_from(a.propensity_from);
  req.set_clip(a.clip);
  req.set_bootstrap(a.bootstrap);
  req.set_seed(a.seed);
  req.set_max_users(a.max_users);
  for (const auto& k : SplitList(a.ks)) {
    uint32_t v = 0;
    if (!absl::SimpleAtoi(k, &v)) {
      return absl::InvalidArgumentError(absl::StrCat("--k '", k, "': not a number"));
    }
    req.add_k(v);
  }
  if (!r.test_dataset.empty() && !r.report_models[i].contains("mar_metrics")) {
    req.set_mar_dataset(r.test_dataset);
  }
  return req;
}

// One estimate as the report keeps it.
json EstimateJson(const v1::EvaluateResponse& res) {
  json e{{"metrics", json::object()},
         {"intervals", json::object()},
         {"normal_intervals", json::object()},
         {"diagnostics", StructJson(res.diagnostics())}};
  for (const auto& [k, v] : res.metrics()) e["metrics"][k] = v;
  for (const auto& [k, v] : res.intervals()) e["intervals"][k] = {v.low(), v.high()};
  for (const auto& [k, v] : res.normal_intervals()) {
    e["normal_intervals"][k] = {v.low(), v.high()};
  }
  return e;
}

// Stage 3: evaluate every model with every estimator.
absl::Status EvaluateAll(Replay& r) {
  for (size_t i = 0; i < r.trained.size(); ++i) {
    json& rm = r.report_models[i];
    for (const auto& est : r.plan.estimators) {
      if (r.progress) {
        ProgressLine(absl::StrCat("replay: evaluating ", r.plan.models[i], " (", est, ")"));
      }
      auto req = EvaluateRequestFor(r, i, est);
      if (!req.ok()) return req.status();
      auto res = r.client->Evaluate(*req);
      if (!res.ok()) return res.status();
      json e = EstimateJson(*res);
      if (res->mar_metrics_size() > 0) {
        rm["mar_metrics"] = json::object();
        for (const auto& [k, v] : res->mar_metrics()) rm["mar_metrics"][k] = v;
      }
      rm["estimates"][est] = e;
    }
  }
  return absl::OkStatus();
}

// Stage 4: the report's numbers.
json ReportJson(const Replay& r) {
  const ReplayArgs& a = r.a;
  json report{{"log", a.log},
              {"dataset", r.dataset},
              {"log_events", r.ing.events_acknowledged},
              {"estimators", r.plan.estimators},
              {"bootstrap", a.bootstrap},
              {"propensity_from", a.propensity_from.empty() ? "popularity" : a.propensity_from},
              {"models", r.report_models}};
  if (!r.test_dataset.empty()) report["test"] = a.test;
  std::time_t now = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
  report["generated"] = buf;
  return report;
}

// Stage 4b: propensities of a sample of the logged clicks, from the first
// model trained with a propensity estimator (none when no model has one).
void AddPropensities(const Replay& r, json& report) {
  const auto& events = r.loaded.events;
  for (const auto& m : r.trained) {
    v1::GetPropensitiesRequest req;
    req.set_model_id(m.id());
    std::mt19937_64 rng(r.a.seed);
    const size_t n = std::min<size_t>(events.size(), 10000);  // max_candidates
    for (size_t j = 0; j < n; ++j) {
      const auto& ev = events[rng() % events.size()];
      auto* p = req.add_pairs();
      p->set_user(ev.user);
      p->set_item(ev.item);
    }
    auto res = r.client->GetPropensities(req);
    if (!res.ok()) continue;  // a model without an estimator (e.g. naive)
    std::vector<double> values(res->pair_propensities().begin(),
                               res->pair_propensities().end());
    report["propensities"] = json{
        {"source", absl::StrCat("the propensity estimator of model ", m.id(), " (",
                                m.spec().fields().count("loss")
                                    ? m.spec().fields().at("loss").string_value()
                                    : std::string("?"),
                                ")")},
        {"values", values}};
    break;
  }
}

// Where the report's JSON goes: --report-json, else the report with .json
// for .html.
std::string ReportJsonPath(const ReplayArgs& a) {
  if (!a.json_out.empty()) return a.json_out;
  return a.report.size() > 5 && a.report.substr(a.report.size() - 5) == ".html"
             ? a.report.substr(0, a.report.size() - 5) + ".json"
             : a.report + ".json";
}

// Stage 5: write the HTML report and its JSON (without the sampled propensities).
absl::Status WriteReport(const json& report, const std::string& html_path,
                         const std::string& json_path) {
  {
    std::ofstream out(html_path);
    out << BuildHtml(report);
    if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", html_path));
  }
  json slim = report;
  if (slim.contains("propensities")) slim["propensities"].erase("values");
  std::ofstream out(json_path);
  out << slim.dump(2) << "\n";
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", json_path));
  return absl::OkStatus();
}

// The header line of a table on stdout.
std::string TextHeader(const std::vector<std::string>& keys) {
  std::string s = absl::StrFormat("%-12s", "model");
  for (const auto& k : keys) absl::StrAppendFormat(&s, " %24s", k);
  return s + "\n";
}

// One estimator's table on stdout: each metric with its interval.
std::string EstimateText(const json& report_models, const std::string& est,
                         const std::vector<std::string>& keys) {
  std::string s =
      absl::StrFormat("\n%s estimates (95%% bootstrap intervals)\n", est) + TextHeader(keys);
  for (const auto& m : report_models) {
    absl::StrAppendFormat(&s, "%-12s", m["name"].get<std::string>());
    const json& e = m["estimates"][est];
    for (const auto& k : keys) {
      if (!e["metrics"].contains(k)) {
        absl::StrAppendFormat(&s, " %24s", "-");
        continue;
      }
      std::string cell = absl::StrFormat("%.4f", e["metrics"][k].get<double>());
      if (e["intervals"].contains(k)) {
        cell += absl::StrFormat(" [%.3f,%.3f]", e["intervals"][k][0].get<double>(),
                                e["intervals"][k][1].get<double>());
      }
      absl::StrAppendFormat(&s, " %24s", cell);
    }
    s += "\n";
  }
  return s;
}

// The MAR test sample's table on stdout.
std::string MarText(const json& report_models, const std::vector<std::string>& keys) {
  std::string s = "\nMAR test sample (unbiased reference)\n" + TextHeader(keys);
  for (const auto& m : report_models) {
    absl::StrAppendFormat(&s, "%-12s", m["name"].get<std::string>());
    for (const auto& k : keys) {
      if (m.contains("mar_metrics") && m["mar_metrics"].contains(k)) {
        absl::StrAppendFormat(&s, " %24.4f", m["mar_metrics"][k].get<double>());
      } else {
        absl::StrAppendFormat(&s, " %24s", "-");
      }
    }
    s += "\n";
  }
  return s;
}

// Stage 6: the tables on stdout.
std::string HumanTables(const Replay& r) {
  std::vector<std::string> keys;
  for (const auto& k : SplitList(r.a.ks)) {
    for (const char* m : {"dcg@", "precision@", "recall@"}) keys.push_back(m + k);
  }
  std::string human;
  for (const auto& est : r.plan.estimators) human += EstimateText(r.report_models, est, keys);
  if (!r.test_dataset.empty()) human += MarText(r.report_models, keys);
  return human;
}

int RunReplay(const Context& ctx, const ReplayArgs& a) {
  const auto t_start = std::chrono::steady_clock::now();
  auto plan = ParsePlan(a);
  if (!plan.ok()) return Fail(plan.status());
  Replay r(ctx, a, *std::move(plan));
  r.progress = ShowProgress() && !ctx.global.json;
  if (auto s = IngestLogs(r); !s.ok()) return Fail(s);
  for (const auto& loss : r.plan.models) {
    if (auto s = TrainModel(r, loss); !s.ok()) return Fail(s);
  }
  if (auto s = EvaluateAll(r); !s.ok()) return Fail(s);
  EndProgress();
  json report = ReportJson(r);
  AddPropensities(r, report);
  const std::string json_path = ReportJsonPath(a);
  if (auto s = WriteReport(report, a.report, json_path); !s.ok()) return Fail(s);
  std::string human = HumanTables(r);
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
