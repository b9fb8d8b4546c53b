#include "core/clickmodels/click_model.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/clickmodels/cascade.h"
#include "core/clickmodels/pbm.h"
#include "core/clickmodels/ubm.h"

namespace debias::clickmodels {
namespace {

absl::Status ValidateEta(double eta) {
  if (!(eta >= 0.0 && eta <= 10.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("eta=", eta, ": eta must be in [0, 10]"));
  }
  return absl::OkStatus();
}

absl::Status ValidateRanks(int num_ranks) {
  if (num_ranks < 0 || num_ranks > kMaxRanks) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_ranks=", num_ranks, ": num_ranks must be in [0, ",
                     kMaxRanks, "]"));
  }
  return absl::OkStatus();
}

absl::Status ValidateAttract(std::span<const double> attract) {
  for (size_t r = 0; r < attract.size(); ++r) {
    if (!(attract[r] >= 0.0 && attract[r] <= 1.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("attract[", r, "]=", attract[r],
                       ": attractiveness must be a probability in [0, 1]"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ClickModelKind> ParseClickModelKind(std::string_view name) {
  if (name == "pbm" || name == "position_biased_model") {
    return ClickModelKind::kPbm;
  }
  if (name == "ubm" || name == "user_browsing_model") {
    return ClickModelKind::kUbm;
  }
  if (name == "cascade" || name == "cascade_model") {
    return ClickModelKind::kCascade;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("click_model=\"", std::string(name),
                   "\": must be one of pbm, ubm, cascade"));
}

std::string ClickModelKindName(ClickModelKind kind) {
  switch (kind) {
    case ClickModelKind::kPbm:
      return "pbm";
    case ClickModelKind::kUbm:
      return "ubm";
    case ClickModelKind::kCascade:
      return "cascade";
  }
  return "unknown";
}

absl::Status ValidateClickModelOptions(const ClickModelOptions& o) {
  if (o.kind != ClickModelKind::kPbm && o.kind != ClickModelKind::kUbm &&
      o.kind != ClickModelKind::kCascade) {
    return absl::InvalidArgumentError("kind: must be one of pbm, ubm, cascade");
  }
  if (absl::Status s = ValidateEta(o.eta); !s.ok()) return s;
  if (!(o.eps >= 0.0 && o.eps <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("eps=", o.eps, ": eps must be in [0, 1]"));
  }
  if (!(o.pos >= o.eps && o.pos <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pos=", o.pos, ": pos must be in [eps, 1] = [", o.eps, ", 1]"));
  }
  if (o.ymax < 1 || o.ymax > 30) {
    return absl::InvalidArgumentError(
        absl::StrCat("ymax=", o.ymax, ": ymax must be in [1, 30]"));
  }
  if (!(o.continuation >= 0.0 && o.continuation <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "continuation=", o.continuation, ": continuation must be in [0, 1]"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<double>> ClickProbabilities(double eps, double pos,
                                                       int ymax) {
  ClickModelOptions o;
  o.eps = eps;
  o.pos = pos;
  o.ymax = ymax;
  if (absl::Status s = ValidateClickModelOptions(o); !s.ok()) return s;
  std::vector<double> p(ymax + 1);
  const double denom = std::ldexp(1.0, ymax) - 1.0;
  for (int y = 0; y <= ymax; ++y) {
    p[y] = eps + (pos - eps) * (std::ldexp(1.0, y) - 1.0) / denom;
  }
  return p;
}

absl::StatusOr<std::vector<double>> PbmExamination(double eta, int num_ranks) {
  if (absl::Status s = ValidateEta(eta); !s.ok()) return s;
  if (absl::Status s = ValidateRanks(num_ranks); !s.ok()) return s;
  std::vector<double> e(num_ranks);
  for (int r = 0; r < num_ranks; ++r) {
    e[r] = std::pow(kPbmBaseExamination[std::min(r, 9)], eta);
  }
  return e;
}

absl::StatusOr<std::vector<double>> PbmOracleInversePropensities(
    double eta, int num_ranks) {
  absl::StatusOr<std::vector<double>> e = PbmExamination(eta, num_ranks);
  if (!e.ok()) return e.status();
  std::vector<double> w(num_ranks);
  for (int r = 0; r < num_ranks; ++r) w[r] = (*e)[0] / (*e)[r];
  return w;
}

absl::StatusOr<std::unique_ptr<ClickModel>> ClickModel::Create(
    const ClickModelOptions& options) {
  if (absl::Status s = ValidateClickModelOptions(options); !s.ok()) return s;
  absl::StatusOr<std::vector<double>> p =
      ClickProbabilities(options.eps, options.pos, options.ymax);
  if (!p.ok()) return p.status();
  switch (options.kind) {
    case ClickModelKind::kPbm:
      return std::make_unique<PositionBasedModel>(options, std::move(*p));
    case ClickModelKind::kUbm:
      return std::make_unique<UserBrowsingModel>(options, std::move(*p));
    case ClickModelKind::kCascade:
      return std::make_unique<CascadeModel>(options, std::move(*p));
  }
  return absl::InternalError("unhandled click model kind");
}

double ClickModel::Attractiveness(float label) const {
  if (!std::isfinite(label) || label <= 0.0f) return click_prob_[0];
  // Truncation toward zero, as int() in the reference simulator.
  const int y = label >= static_cast<float>(options_.ymax)
                    ? options_.ymax
                    : static_cast<int>(label);
  return click_prob_[y];
}

absl::Status ClickModel::Simulate(std::span<const float> labels, Rng& rng,
                                  std::vector<uint8_t>* clicks) const {
  for (size_t r = 0; r < labels.size(); ++r) {
    if (!std::isfinite(labels[r])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "labels[", r, "]=", labels[r], ": label must be finite"));
    }
  }
  // Lists are short; a stack buffer keeps the common case allocation-free.
  constexpr size_t kStack = 128;
  double stack_buf[kStack];
  std::vector<double> heap_buf;
  double* a = stack_buf;
  if (labels.size() > kStack) {
    heap_buf.resize(labels.size());
    a = heap_buf.data();
  }
  for (size_t r = 0; r < labels.size(); ++r) a[r] = Attractiveness(labels[r]);
  clicks->resize(labels.size());
  DoSimulate(a, labels.size(), rng, clicks->data());
  return absl::OkStatus();
}

absl::Status ClickModel::SimulateFromAttractiveness(
    std::span<const double> attract, Rng& rng,
    std::vector<uint8_t>* clicks) const {
  if (absl::Status s = ValidateAttract(attract); !s.ok()) return s;
  clicks->resize(attract.size());
  DoSimulate(attract.data(), attract.size(), rng, clicks->data());
  return absl::OkStatus();
}

absl::StatusOr<double> ClickModel::LogLikelihood(
    std::span<const double> attract, std::span<const uint8_t> clicks) const {
  if (attract.size() != clicks.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("clicks: ", clicks.size(), " values for a list of ",
                     attract.size(), " documents; sizes must match"));
  }
  if (absl::Status s = ValidateAttract(attract); !s.ok()) return s;
  for (size_t r = 0; r < clicks.size(); ++r) {
    if (clicks[r] > 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "clicks[", r, "]=", clicks[r], ": click must be 0 or 1"));
    }
  }
  return DoLogLikelihood(attract.data(), clicks.data(), clicks.size());
}

absl::Status ClickModel::Marginals(std::span<const double> attract,
                                   std::vector<double>* exam,
                                   std::vector<double>* click) const {
  if (absl::Status s = ValidateAttract(attract); !s.ok()) return s;
  std::vector<double> e(attract.size()), c(attract.size());
  DoMarginals(attract.data(), attract.size(), e.data(), c.data());
  if (exam != nullptr) *exam = std::move(e);
  if (click != nullptr) *click = std::move(c);
  return absl::OkStatus();
}

std::vector<double> ClickModel::OracleInversePropensities(int num_ranks) const {
  std::vector<double> e = ExaminationCurve(num_ranks);
  std::vector<double> w(e.size());
  for (size_t r = 0; r < e.size(); ++r) {
    w[r] = e[r] > 0.0 ? e[0] / e[r] : std::numeric_limits<double>::infinity();
  }
  return w;
}

}  // namespace debias::clickmodels
