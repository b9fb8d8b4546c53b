// CSV encoding of interactions: the writer, and the RFC 4180 record reader
// the csv loader (core/data/loaders.h) is built on.
//
// The CSV layout is header-driven: columns user, item, label (required), then
// any of timestamp, list_id, position, propensity, features (';'-separated
// floats) and event_id. WriteCsv's output loads back through
// LoadStream(..., Format::kCsv, ...) to exactly the same events.
#ifndef DEBIAS_CORE_DATA_CSV_H_
#define DEBIAS_CORE_DATA_CSV_H_

#include <cstdint>
#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/data/interaction.h"

namespace debias::data {

// Writes `events` as CSV to `out`: a header naming user,item,label and then,
// in this order, only those of timestamp, list_id, position, propensity,
// features, event_id that at least one event uses; then one row per event.
// Floats are written with %.9g (exact float round trip), features joined
// with ';'. Keys containing a comma, quote, CR or LF are quoted (RFC 4180,
// inner quotes doubled). Absent optional values are empty cells.
// Errors: INVALID_ARGUMENT naming the event index if an event could not be
// read back (empty key, non-finite number, bad position or propensity; size
// limits are not applied); DATA_LOSS if the stream fails. Nothing is written
// when an event is invalid.
absl::Status WriteCsv(const std::vector<Interaction>& events, std::ostream& out);

// Reads RFC 4180 records from a stream: fields separated by ',', optionally
// enclosed in '"' with '""' for a literal quote; a quoted field may span
// lines. CRLF and LF line ends are accepted (a quoted line break becomes
// "\n"); blank and all-whitespace lines between records are skipped.
// Fields are kept verbatim (no trimming). Not thread-safe; the stream must
// outlive the reader.
class CsvRecordReader {
 public:
  explicit CsvRecordReader(std::istream& in) : in_(in) {}

  // Reads the next record. Returns true when one was read, false at end of
  // input. On a malformed record (unterminated quote, text after a closing
  // quote) returns INVALID_ARGUMENT with the reason only (the caller adds
  // file and line()); the reader then continues after that record.
  // INVALID_ARGUMENT also if the stream fails for a reason other than EOF.
  absl::StatusOr<bool> Next();

  // 1-based physical line on which the last record started.
  uint64_t line() const { return record_line_; }
  size_t num_fields() const { return num_fields_; }
  // Field i of the last record, i < num_fields().
  const std::string& field(size_t i) const { return fields_[i]; }

 private:
  bool ReadLine();  // next physical line into line_, CR stripped

  std::istream& in_;
  std::string line_;
  uint64_t physical_line_ = 0;
  uint64_t record_line_ = 0;
  // Reused across records so steady-state reading does not allocate.
  std::vector<std::string> fields_;
  size_t num_fields_ = 0;
};

}  // namespace debias::data

#endif  // DEBIAS_CORE_DATA_CSV_H_
