#include "core/util/params.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace debias::util {
namespace {

thread_local std::vector<ParamSpec>* schema_sink = nullptr;

std::string RangeText(Range r) {
  return absl::StrCat(r.lo_open ? "(" : "[", ParamNumber(r.lo), ", ", ParamNumber(r.hi), "]");
}

}  // namespace

std::string ParamNumber(double v) {
  // The shortest of %.15g / %.17g that reads back as the same double.
  std::string s = absl::StrFormat("%.15g", v);
  double back = 0;
  if (!absl::SimpleAtod(s, &back) || back != v) s = absl::StrFormat("%.17g", v);
  return s;
}

ParamReader::ParamReader(const std::map<std::string, std::string>& given, std::string method,
                         std::string kind)
    : given_(given), method_(std::move(method)), kind_(std::move(kind)) {}

ParamReader::~ParamReader() {
  if (schema_sink != nullptr) {
    for (const ParamSpec& s : specs_) {
      auto same = [&](const ParamSpec& o) { return o.name == s.name; };
      if (std::none_of(schema_sink->begin(), schema_sink->end(), same)) {
        schema_sink->push_back(s);
      }
    }
  }
}

void ParamReader::Record(ParamSpec spec) {
  known_.insert(spec.name);
  for (const auto& a : spec.aliases) known_.insert(a);
  specs_.push_back(std::move(spec));
}

bool ParamReader::Given(const std::string& key, const std::vector<std::string>& aliases) const {
  if (given_.count(key)) return true;
  return std::any_of(aliases.begin(), aliases.end(),
                     [&](const std::string& a) { return given_.count(a) > 0; });
}

absl::StatusOr<std::optional<std::string>> ParamReader::Lookup(
    const std::string& key, const std::vector<std::string>& aliases) {
  std::optional<std::string> found;
  std::string found_key;
  for (const std::string* k : {&key}) {
    if (auto it = given_.find(*k); it != given_.end()) {
      found = it->second;
      found_key = *k;
    }
  }
  for (const std::string& a : aliases) {
    auto it = given_.find(a);
    if (it == given_.end()) continue;
    if (found) {
      return absl::InvalidArgumentError(absl::StrCat(
          found_key, " and ", a, ": two spellings of one parameter of ", kind_, " '",
          method_, "'; give ", key, " only"));
    }
    found = it->second;
    found_key = a;
  }
  return found;
}

namespace {

// `text` as a finite number in `range`; INVALID_ARGUMENT naming key and range.
absl::StatusOr<double> ParseNumber(const std::string& key, const std::string& text,
                                   const Range& range) {
  double v = 0;
  const bool ok = absl::SimpleAtod(text, &v) && std::isfinite(v) &&
                  (range.lo_open ? v > range.lo : v >= range.lo) && v <= range.hi;
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, "=", text, ": ", key, " must be a number in ", RangeText(range)));
  }
  return v;
}

}  // namespace

absl::StatusOr<double> ParamReader::Double(const std::string& key, double def, Range range,
                                           const std::string& doc,
                                           std::vector<std::string> aliases) {
  auto text = Lookup(key, aliases);
  Record({key, "double", ParamNumber(def), RangeText(range), doc, std::move(aliases)});
  if (!text.ok()) return text.status();
  double v = def;
  if (*text) {
    auto parsed = ParseNumber(key, **text, range);
    if (!parsed.ok()) return parsed.status();
    v = *parsed;
  }
  resolved_[key] = ParamNumber(v);
  return v;
}

absl::StatusOr<std::optional<double>> ParamReader::OptionalDouble(
    const std::string& key, Range range, const std::string& default_text,
    const std::string& doc) {
  auto text = Lookup(key, {});
  Record({key, "double", default_text, RangeText(range), doc, {}});
  if (!text.ok()) return text.status();
  if (!*text) return std::optional<double>();
  auto v = ParseNumber(key, **text, range);
  if (!v.ok()) return v.status();
  resolved_[key] = ParamNumber(*v);
  return *v;
}

absl::StatusOr<int64_t> ParamReader::Int(const std::string& key, int64_t def, int64_t lo,
                                         int64_t hi, const std::string& doc,
                                         std::vector<std::string> aliases) {
  auto text = Lookup(key, aliases);
  Record({key, "int", absl::StrCat(def), absl::StrCat("[", lo, ", ", hi, "]"), doc,
          std::move(aliases)});
  if (!text.ok()) return text.status();
  int64_t v = def;
  if (*text && (!absl::SimpleAtoi(**text, &v) || v < lo || v > hi)) {
    return absl::InvalidArgumentError(absl::StrCat(
        key, "=", **text, ": ", key, " must be an integer in [", lo, ", ", hi, "]"));
  }
  resolved_[key] = absl::StrCat(v);
  return v;
}

absl::StatusOr<bool> ParamReader::Bool(const std::string& key, bool def,
                                       const std::string& doc) {
  auto text = Lookup(key, {});
  Record({key, "bool", def ? "true" : "false", "true | false", doc, {}});
  if (!text.ok()) return text.status();
  bool v = def;
  if (*text) {
    if (**text == "true" || **text == "1") {
      v = true;
    } else if (**text == "false" || **text == "0") {
      v = false;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(key, "=", **text, ": ", key, " must be true or false"));
    }
  }
  resolved_[key] = v ? "true" : "false";
  return v;
}

absl::StatusOr<std::string> ParamReader::Choice(const std::string& key, std::string def,
                                                const std::vector<std::string>& allowed,
                                                const std::string& doc) {
  auto text = Lookup(key, {});
  Record({key, "choice", def, absl::StrJoin(allowed, " | "), doc, {}});
  if (!text.ok()) return text.status();
  std::string v = text->value_or(def);
  if (std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
    return absl::InvalidArgumentError(absl::StrCat(key, "=", v, ": ", key, " must be one of ",
                                                   absl::StrJoin(allowed, ", ")));
  }
  resolved_[key] = v;
  return v;
}

absl::StatusOr<std::optional<std::string>> ParamReader::Text(const std::string& key,
                                                             const std::string& default_text,
                                                             const std::string& type,
                                                             const std::string& range,
                                                             const std::string& doc) {
  auto text = Lookup(key, {});
  Record({key, type, default_text, range, doc, {}});
  return text;
}

std::map<std::string, std::string> ParamReader::Prefixed(const std::string& prefix) {
  prefixes_.push_back(prefix);
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : given_) {
    if (k.rfind(prefix, 0) == 0) out[k.substr(prefix.size())] = v;
  }
  return out;
}

absl::Status ParamReader::Finish() const {
  for (const auto& [k, v] : given_) {
    if (known_.count(k)) continue;
    if (std::any_of(prefixes_.begin(), prefixes_.end(),
                    [&](const std::string& p) { return k.rfind(p, 0) == 0; })) {
      continue;
    }
    std::vector<std::string> names;
    for (const ParamSpec& s : specs_) names.push_back(s.name);
    for (const std::string& p : prefixes_) names.push_back(p + "<key>");
    return absl::InvalidArgumentError(absl::StrCat("unknown parameter '", k, "' for ", kind_,
                                                   " '", method_, "'; known: ",
                                                   absl::StrJoin(names, ", ")));
  }
  return absl::OkStatus();
}

ParamSchemaCapture::ParamSchemaCapture(std::vector<ParamSpec>* out) { schema_sink = out; }
ParamSchemaCapture::~ParamSchemaCapture() { schema_sink = nullptr; }

}  // namespace debias::util
