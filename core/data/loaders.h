// Loaders: read interaction logs and public benchmark files into events.
//
// Formats:
//  - kCsv ("csv"): header-driven CSV (see csv.h). Columns user (alias
//    query), item (alias doc), label are required; timestamp, list_id,
//    position, propensity, features (';'-separated floats), event_id are
//    optional, in any order. Empty optional cells mean "absent". Unknown or
//    duplicate columns are an error at line 1.
//  - kCoat ("coat"): Schnabel et al.'s ascii rating matrix (rows = users,
//    columns = items, 0 = missing). user = 0-based row index, item = 0-based
//    column index (decimal), label = rating, one event per nonzero cell.
//  - kYahoo ("yahoo"): Yahoo! R3 triples "user item rating", whitespace
//    separated, keys as written.
//  - kNbpoJson ("nbpo-json"): a JSON list of lists of non-negative integer
//    item ids (the NBPO Amazon split); user = list index, item = id, label 1.
//  - kLibsvm ("libsvm"): LETOR "label qid:Q fid:val ... [# comment]" with
//    1-based feature ids; features are dense with length = the largest
//    feature id in the file (missing = 0); user = list_id = Q; item = the
//    "docid = X" of the comment, else "Q-<n>" (n = 0-based index of the line
//    within its query); label = graded relevance.
//
// Errors: INVALID_ARGUMENT "NAME:LINE: reason" (NAME = the path or stream
// name, LINE 1-based). Without skip_bad_rows the first bad row fails the
// whole load; with it bad rows are counted and skipped (structural errors
// such as a bad CSV header or malformed JSON still fail). Every event
// returned passes ValidateInteraction(event, options.limits).
// Thread safety: the functions are reentrant; a stream must not be shared.
#ifndef DEBIAS_CORE_DATA_LOADERS_H_
#define DEBIAS_CORE_DATA_LOADERS_H_

#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/interaction.h"

namespace debias::data {

enum class Format { kCsv, kCoat, kYahoo, kNbpoJson, kLibsvm };

// "csv", "coat", "yahoo", "nbpo-json", "libsvm" -> Format; otherwise
// INVALID_ARGUMENT listing the known names.
absl::StatusOr<Format> ParseFormat(std::string_view name);
// The names ParseFormat accepts, in enum order.
std::vector<std::string> FormatNames();
std::string FormatName(Format format);

struct LoadOptions {
  // Count and skip bad rows instead of failing the load.
  bool skip_bad_rows = false;
  // When set, every label becomes 1 if label >= *threshold, else 0.
  std::optional<float> threshold;
  InteractionLimits limits;
};

struct LoadResult {
  std::vector<Interaction> events;
  // Data rows read (CSV records after the header, matrix rows, triples,
  // JSON item ids, LETOR lines), including skipped ones.
  uint64_t rows_read = 0;
  uint64_t skipped_rows = 0;
  // "NAME:LINE: reason" of the first 10 skipped rows.
  std::vector<std::string> skipped_examples;
};

// Loads `path`. NOT_FOUND if the file cannot be opened; otherwise as
// LoadStream with name = path.
absl::StatusOr<LoadResult> LoadFile(const std::string& path, Format format,
                                    const LoadOptions& options);

// Loads from `in`; `name` prefixes error messages.
absl::StatusOr<LoadResult> LoadStream(std::istream& in, std::string_view name,
                                      Format format, const LoadOptions& options);

}  // namespace debias::data

#endif  // DEBIAS_CORE_DATA_LOADERS_H_
