// The one parameter parser of the trainers and the propensity estimators,
// and the schema it records.
//
// A trainer (or estimator) reads each of its parameters through a
// ParamReader, giving the key, its default, its range (or choices) and one
// line of doc:
//
//   ParamReader p(spec.params, "relmf");
//   ASSIGN_OR_RETURN(double lr, p.Double("lr", 0.02, {1e-12, 10}, "learning rate"));
//   RETURN_IF_ERROR(p.Finish());  // unknown keys -> INVALID_ARGUMENT
//
// Every key read is also recorded as a ParamSpec. The parsing code is thus
// the schema: the registry lists a method's parameters by running its parser
// on an empty request under a ParamSchemaCapture (core/train/registry.h,
// MethodParams; the propensity registry likewise, EstimatorParams), so
// `debiasctl methods`, ListMethods and docs/METHODS.md cannot disagree with
// what the trainer accepts.
//
// It lives in core/util, below every component that parses parameters;
// core/models/trainer_params.h re-exports it into debias::models.
//
// Conventions: one spelling per knob across methods (epochs, lr, l2, dim,
// batch_size, ...); older spellings are accepted as aliases for one release
// and named in the doc. Values are echoed in the model spec by their
// canonical key.
#ifndef DEBIAS_CORE_UTIL_PARAMS_H_
#define DEBIAS_CORE_UTIL_PARAMS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace debias::util {

// One parameter of a method, as its trainer reads it.
struct ParamSpec {
  std::string name;
  std::string type;           // "int", "double", "bool", "choice"
  std::string default_value;  // as text; may depend on the feedback kind
  std::string range;          // "[lo, hi]", "(lo, hi]" or "a | b | c"
  std::string doc;
  std::vector<std::string> aliases;  // older spellings, accepted
};

// A numeric range; lo_open makes it (lo, hi].
struct Range {
  double lo, hi;
  bool lo_open = false;
};

class ParamReader {
 public:
  // `given` must outlive the reader. Errors name the method as
  // "<kind> '<method>'", e.g. "loss 'relmf'" or "propensity estimator
  // 'popularity'".
  ParamReader(const std::map<std::string, std::string>& given, std::string method,
              std::string kind = "loss");
  ~ParamReader();
  ParamReader(const ParamReader&) = delete;
  ParamReader& operator=(const ParamReader&) = delete;

  absl::StatusOr<double> Double(const std::string& key, double def, Range range,
                                const std::string& doc, std::vector<std::string> aliases = {});
  // A number without a default value: nullopt unless given. The schema
  // shows `default_text` (what the method does instead, e.g. "from data").
  absl::StatusOr<std::optional<double>> OptionalDouble(const std::string& key, Range range,
                                                       const std::string& default_text,
                                                       const std::string& doc);
  absl::StatusOr<int64_t> Int(const std::string& key, int64_t def, int64_t lo, int64_t hi,
                              const std::string& doc, std::vector<std::string> aliases = {});
  absl::StatusOr<bool> Bool(const std::string& key, bool def, const std::string& doc);
  absl::StatusOr<std::string> Choice(const std::string& key, std::string def,
                                     const std::vector<std::string>& allowed,
                                     const std::string& doc);
  // A value the trainer parses itself (a list, say): the given text, or
  // nullopt for the default, which is recorded as `default_text`. The
  // trainer sets resolved()[key].
  absl::StatusOr<std::optional<std::string>> Text(const std::string& key,
                                                  const std::string& default_text,
                                                  const std::string& type,
                                                  const std::string& range,
                                                  const std::string& doc);
  // Whether the request gives `key` (or one of its aliases).
  bool Given(const std::string& key, const std::vector<std::string>& aliases = {}) const;

  // Keys starting with `prefix` (e.g. "prop." for the propensity
  // estimator's own keys) are passed through: Finish() does not refuse
  // them. Returns them with the prefix stripped.
  std::map<std::string, std::string> Prefixed(const std::string& prefix);

  // INVALID_ARGUMENT for a key nobody read (naming it and listing the known
  // ones), or for a key given twice under two spellings.
  absl::Status Finish() const;

  // The value used for every key read (defaults included), by canonical key.
  std::map<std::string, std::string>& resolved() { return resolved_; }
  const std::vector<ParamSpec>& specs() const { return specs_; }

 private:
  // The given text of `key` or an alias; error when both are given.
  absl::StatusOr<std::optional<std::string>> Lookup(const std::string& key,
                                                    const std::vector<std::string>& aliases);
  void Record(ParamSpec spec);

  const std::map<std::string, std::string>& given_;
  std::string method_;
  std::string kind_;
  std::set<std::string> known_;  // canonical keys and aliases read
  std::vector<std::string> prefixes_;
  std::map<std::string, std::string> resolved_;
  std::vector<ParamSpec> specs_;
};

// While alive, every ParamReader of this thread adds the specs it recorded
// to `out` when it is destroyed (the registry's dry run; one at a time per
// thread).
class ParamSchemaCapture {
 public:
  explicit ParamSchemaCapture(std::vector<ParamSpec>* out);
  ~ParamSchemaCapture();
  ParamSchemaCapture(const ParamSchemaCapture&) = delete;
  ParamSchemaCapture& operator=(const ParamSchemaCapture&) = delete;
};

// Text of a number as the specs echo it (shortest round-trip form).
std::string ParamNumber(double v);

}  // namespace debias::util

#endif  // DEBIAS_CORE_UTIL_PARAMS_H_
