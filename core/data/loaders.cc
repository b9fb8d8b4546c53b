#include "core/data/loaders.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "core/data/csv.h"
#include "core/util/status_macros.h"

namespace debias::data {
namespace {

constexpr size_t kMaxSkippedExamples = 10;

// Keeps messages bounded when a cell is huge.
std::string Quoted(absl::string_view s) {
  constexpr size_t kMax = 64;
  if (s.size() <= kMax) return absl::StrCat("'", s, "'");
  return absl::StrCat("'", s.substr(0, kMax), "...'");
}

bool ParseFloat(absl::string_view s, float* out) {
  return absl::SimpleAtof(s, out) && std::isfinite(*out);
}

// Collects events and bad rows; the policy (fail vs. skip) lives here.
class Sink {
 public:
  Sink(std::string_view name, const LoadOptions& options)
      : name_(name), options_(options) {}

  // An error that no row skipping can recover from.
  absl::Status Fatal(uint64_t line, absl::string_view reason) const {
    return absl::InvalidArgumentError(absl::StrCat(name_, ":", line, ": ", reason));
  }

  // A bad row: fails the load, or is counted when skipping.
  absl::Status BadRow(uint64_t line, absl::string_view reason) {
    if (!options_.skip_bad_rows) return Fatal(line, reason);
    ++result_.skipped_rows;
    if (result_.skipped_examples.size() < kMaxSkippedExamples) {
      result_.skipped_examples.push_back(
          absl::StrCat(name_, ":", line, ": ", reason));
    }
    return absl::OkStatus();
  }

  // Thresholds and validates `e`; appends it or reports a bad row. Returns
  // whether it was appended in *added (when non-null).
  absl::Status Emit(uint64_t line, Interaction&& e, bool* added = nullptr) {
    if (added != nullptr) *added = false;
    if (options_.threshold.has_value()) {
      e.label = e.label >= *options_.threshold ? 1.0f : 0.0f;
    }
    if (absl::Status st = ValidateInteraction(e, options_.limits); !st.ok()) {
      return BadRow(line, st.message());
    }
    result_.events.push_back(std::move(e));
    if (added != nullptr) *added = true;
    return absl::OkStatus();
  }

  void CountRow() { ++result_.rows_read; }

  // Records the bytes between the stream's current position and its end, if
  // the stream can tell, so that MaybeReserve can size the event vector.
  void MeasureStream(std::istream& in) {
    const std::istream::pos_type start = in.tellg();
    if (start == std::istream::pos_type(-1)) {
      in.clear();
      return;
    }
    in.seekg(0, std::ios::end);
    const std::istream::pos_type end = in.tellg();
    in.seekg(start);
    if (!in || end == std::istream::pos_type(-1) || end < start) {
      in.clear();
      in.seekg(start);
      return;
    }
    stream_start_ = static_cast<int64_t>(start);
    stream_bytes_ = static_cast<int64_t>(end - start);
  }

  // Called by line-based formats (one event per row) after each row: once
  // kSampleRows rows are in, reserves room for the whole stream from the
  // bytes per row seen so far. Growing a vector of 2M 200-byte events by
  // doubling otherwise costs more than parsing them.
  void MaybeReserve(std::istream& in) {
    constexpr uint64_t kSampleRows = 4096;
    if (result_.rows_read != kSampleRows || stream_bytes_ <= 0) return;
    const std::istream::pos_type pos = in.tellg();
    if (pos == std::istream::pos_type(-1)) {
      in.clear();
      return;
    }
    const double used = static_cast<double>(static_cast<int64_t>(pos) - stream_start_);
    if (used <= 0) return;
    const double rows = static_cast<double>(stream_bytes_) / used *
                        static_cast<double>(kSampleRows) * 1.05;
    constexpr double kMaxReserve = 1 << 28;
    result_.events.reserve(static_cast<size_t>(std::min(rows, kMaxReserve)) + 64);
  }

  // Gives back a reservation that skipped or blank rows left mostly unused.
  void ShrinkIfOverReserved() {
    std::vector<Interaction>& ev = result_.events;
    if (ev.capacity() > 4096 && ev.capacity() > ev.size() + ev.size() / 2) {
      ev.shrink_to_fit();
    }
  }
  const LoadOptions& options() const { return options_; }
  LoadResult& result() { return result_; }

 private:
  std::string name_;
  const LoadOptions& options_;
  LoadResult result_;
  int64_t stream_start_ = 0;
  int64_t stream_bytes_ = 0;
};

// Splits `s` on runs of ASCII whitespace into `out` (reused).
void SplitWhitespace(absl::string_view s, std::vector<absl::string_view>& out) {
  out.clear();
  size_t i = 0;
  const size_t n = s.size();
  while (true) {
    while (i < n && absl::ascii_isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i == n) return;
    const size_t b = i;
    while (i < n && !absl::ascii_isspace(static_cast<unsigned char>(s[i]))) ++i;
    out.push_back(s.substr(b, i - b));
  }
}

// Physical lines with LF or CRLF ends; `line` is 1-based after Next().
class LineReader {
 public:
  explicit LineReader(std::istream& in) : in_(in) {}
  bool Next() {
    if (!std::getline(in_, text_)) return false;
    ++line_;
    if (!text_.empty() && text_.back() == '\r') text_.pop_back();
    return true;
  }
  const std::string& text() const { return text_; }
  uint64_t line() const { return line_; }
  bool bad() const { return in_.bad(); }

 private:
  std::istream& in_;
  std::string text_;
  uint64_t line_ = 0;
};

// ---------------------------------------------------------------- csv

enum CsvCol { kUser, kItem, kLabel, kTs, kList, kPos, kProp, kFeat, kEid, kNumCols };
constexpr const char* kCsvColNames[kNumCols] = {
    "user", "item", "label", "timestamp", "list_id", "position",
    "propensity", "features", "event_id"};

int CsvColumnOf(const std::string& name) {
  if (name == "query") return kUser;
  if (name == "doc") return kItem;
  for (int c = 0; c < kNumCols; ++c) {
    if (name == kCsvColNames[c]) return c;
  }
  return -1;
}

std::string KnownCsvColumns() {
  return "user (or query), item (or doc), label, timestamp, list_id, "
         "position, propensity, features, event_id";
}

// Parses ';'-separated floats; on failure returns the reason.
std::optional<std::string> ParseFeatures(const std::string& cell,
                                         std::vector<float>& out) {
  out.clear();
  absl::string_view s = cell;
  size_t i = 0;
  while (true) {
    const size_t sep = s.find(';', i);
    const absl::string_view piece =
        s.substr(i, sep == absl::string_view::npos ? absl::string_view::npos
                                                   : sep - i);
    float v;
    if (!ParseFloat(piece, &v)) {
      return absl::StrCat("features[", out.size(), "] ", Quoted(piece),
                          " is not a finite number");
    }
    out.push_back(v);
    if (sep == absl::string_view::npos) return std::nullopt;
    i = sep + 1;
  }
}

// Fills `e` from the record; returns the reason on a bad cell.
std::optional<std::string> CsvRowToEvent(const CsvRecordReader& r,
                                         const std::vector<int>& col_of,
                                         Interaction& e) {
  for (size_t f = 0; f < col_of.size(); ++f) {
    const std::string& cell = r.field(f);
    const int c = col_of[f];
    switch (c) {
      case kUser:
        e.user = cell;
        break;
      case kItem:
        e.item = cell;
        break;
      case kLabel:
        if (!ParseFloat(cell, &e.label)) {
          return absl::StrCat("label ", Quoted(cell), " is not a number");
        }
        break;
      case kTs: {
        if (cell.empty()) break;
        int64_t v;
        if (!absl::SimpleAtoi(cell, &v)) {
          return absl::StrCat("timestamp ", Quoted(cell),
                              " is not a 64-bit integer");
        }
        e.timestamp = v;
        break;
      }
      case kList:
        if (!cell.empty()) e.list_id = cell;
        break;
      case kPos: {
        if (cell.empty()) break;
        int32_t v;
        if (!absl::SimpleAtoi(cell, &v)) {
          return absl::StrCat("position ", Quoted(cell),
                              " is not a 32-bit integer");
        }
        e.position = v;
        break;
      }
      case kProp: {
        if (cell.empty()) break;
        float v;
        if (!ParseFloat(cell, &v)) {
          return absl::StrCat("propensity ", Quoted(cell), " is not a number");
        }
        e.propensity = v;
        break;
      }
      case kFeat:
        if (cell.empty()) break;
        if (auto err = ParseFeatures(cell, e.features)) return err;
        break;
      case kEid:
        e.event_id = cell;
        break;
      default:
        break;
    }
  }
  return std::nullopt;
}

absl::Status LoadCsv(std::istream& in, Sink& sink) {
  CsvRecordReader r(in);
  absl::StatusOr<bool> got = r.Next();
  if (!got.ok()) return sink.Fatal(r.line(), got.status().message());
  if (!*got) {
    return sink.Fatal(1, "no header; expected a header line with columns "
                         "user,item,label");
  }
  const uint64_t header_line = r.line();
  std::vector<int> col_of(r.num_fields());
  int field_of[kNumCols];
  std::fill(std::begin(field_of), std::end(field_of), -1);
  for (size_t f = 0; f < r.num_fields(); ++f) {
    absl::string_view raw = r.field(f);
    if (f == 0 && absl::StartsWith(raw, "\xEF\xBB\xBF")) raw.remove_prefix(3);
    const std::string name =
        absl::AsciiStrToLower(absl::StripAsciiWhitespace(raw));
    const int c = CsvColumnOf(name);
    if (c < 0) {
      return sink.Fatal(header_line,
                        absl::StrCat("unknown column ", Quoted(name),
                                     "; known columns: ", KnownCsvColumns()));
    }
    if (field_of[c] >= 0) {
      return sink.Fatal(header_line,
                        absl::StrCat("duplicate column ", Quoted(name), " (",
                                     kCsvColNames[c], " given twice)"));
    }
    field_of[c] = static_cast<int>(f);
    col_of[f] = c;
  }
  for (int c : {kUser, kItem, kLabel}) {
    if (field_of[c] < 0) {
      return sink.Fatal(header_line, absl::StrCat("missing required column '",
                                                  kCsvColNames[c], "'"));
    }
  }

  while (true) {
    got = r.Next();
    if (!got.ok()) {
      sink.CountRow();
      RETURN_IF_ERROR(sink.BadRow(r.line(), got.status().message()));
      continue;
    }
    if (!*got) break;
    sink.CountRow();
    sink.MaybeReserve(in);
    if (r.num_fields() != col_of.size()) {
      RETURN_IF_ERROR(sink.BadRow(
          r.line(), absl::StrCat("expected ", col_of.size(),
                                 " fields as in the header, got ",
                                 r.num_fields())));
      continue;
    }
    Interaction e;
    if (auto err = CsvRowToEvent(r, col_of, e)) {
      RETURN_IF_ERROR(sink.BadRow(r.line(), *err));
      continue;
    }
    RETURN_IF_ERROR(sink.Emit(r.line(), std::move(e)));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------- coat

absl::Status LoadCoat(std::istream& in, Sink& sink) {
  LineReader lr(in);
  std::vector<absl::string_view> tok;
  std::vector<float> vals;
  std::optional<size_t> num_cols;
  uint64_t row = 0;
  while (lr.Next()) {
    SplitWhitespace(lr.text(), tok);
    if (tok.empty()) continue;
    // A skipped row still takes its index, so later users keep their ids.
    const uint64_t user = row++;
    sink.CountRow();
    vals.clear();
    std::optional<std::string> err;
    for (size_t j = 0; j < tok.size(); ++j) {
      float v;
      if (!ParseFloat(tok[j], &v)) {
        err = absl::StrCat("column ", j, ": rating ", Quoted(tok[j]),
                           " is not a number");
        break;
      }
      vals.push_back(v);
    }
    if (!err && num_cols.has_value() && vals.size() != *num_cols) {
      err = absl::StrCat("row has ", vals.size(), " columns; expected ",
                         *num_cols, " as in the first row");
    }
    if (err) {
      RETURN_IF_ERROR(sink.BadRow(lr.line(), *err));
      continue;
    }
    if (!num_cols.has_value()) num_cols = vals.size();
    const std::string user_key = absl::StrCat(user);
    for (size_t j = 0; j < vals.size(); ++j) {
      if (vals[j] == 0.0f) continue;
      Interaction e;
      e.user = user_key;
      e.item = absl::StrCat(j);
      e.label = vals[j];
      RETURN_IF_ERROR(sink.Emit(lr.line(), std::move(e)));
    }
  }
  if (lr.bad()) return sink.Fatal(lr.line() + 1, "read error");
  return absl::OkStatus();
}

// ---------------------------------------------------------------- yahoo

absl::Status LoadYahoo(std::istream& in, Sink& sink) {
  LineReader lr(in);
  std::vector<absl::string_view> tok;
  while (lr.Next()) {
    SplitWhitespace(lr.text(), tok);
    if (tok.empty()) continue;
    sink.CountRow();
    sink.MaybeReserve(in);
    if (tok.size() != 3) {
      RETURN_IF_ERROR(sink.BadRow(
          lr.line(), absl::StrCat("expected 3 fields 'user item rating', got ",
                                  tok.size())));
      continue;
    }
    Interaction e;
    if (!ParseFloat(tok[2], &e.label)) {
      RETURN_IF_ERROR(sink.BadRow(
          lr.line(), absl::StrCat("rating ", Quoted(tok[2]), " is not a number")));
      continue;
    }
    e.user = std::string(tok[0]);
    e.item = std::string(tok[1]);
    RETURN_IF_ERROR(sink.Emit(lr.line(), std::move(e)));
  }
  if (lr.bad()) return sink.Fatal(lr.line() + 1, "read error");
  return absl::OkStatus();
}

// ---------------------------------------------------------------- nbpo-json

// A scanner for exactly the shape [[int, ...], ...]; hand-written (rather
// than nlohmann::json) so that every bad id is reported with its line.
class JsonListScanner {
 public:
  JsonListScanner(const std::string& text, Sink& sink)
      : s_(text), sink_(sink) {}

  absl::Status Run() {
    SkipWs();
    if (!Eat('[')) return Expected("'[' opening the list of users");
    SkipWs();
    if (Eat(']')) return End();
    for (uint64_t user = 0;; ++user) {
      SkipWs();
      if (!Eat('[')) {
        return Expected(absl::StrCat("'[' opening the item list of user ", user));
      }
      const std::string user_key = absl::StrCat(user);
      SkipWs();
      if (!Eat(']')) {
        while (true) {
          SkipWs();
          RETURN_IF_ERROR(Item(user_key));
          SkipWs();
          if (Eat(',')) continue;
          if (Eat(']')) break;
          return Expected(absl::StrCat("',' or ']' in the item list of user ", user));
        }
      }
      SkipWs();
      if (Eat(',')) continue;
      if (Eat(']')) return End();
      return Expected("',' or ']' in the list of users");
    }
  }

 private:
  absl::Status End() {
    SkipWs();
    if (p_ != s_.size()) return Expected("end of input after the list of users");
    return absl::OkStatus();
  }

  absl::Status Expected(absl::string_view what) {
    if (p_ >= s_.size()) {
      return sink_.Fatal(line_, absl::StrCat("expected ", what, ", got end of input"));
    }
    return sink_.Fatal(line_, absl::StrCat("expected ", what, ", got '",
                                           absl::string_view(&s_[p_], 1), "'"));
  }

  absl::Status Item(const std::string& user_key) {
    if (p_ >= s_.size()) return Expected("an item id");
    const char c = s_[p_];
    const size_t b = p_;
    if (c == '"') {
      ++p_;
      while (p_ < s_.size() && s_[p_] != '"') {
        if (s_[p_] == '\\') ++p_;
        if (p_ < s_.size() && s_[p_] == '\n') ++line_;
        ++p_;
      }
      if (p_ >= s_.size()) return sink_.Fatal(line_, "unterminated string");
      ++p_;
      sink_.CountRow();
      return sink_.BadRow(line_, absl::StrCat("item id ", Quoted(Slice(b)),
                                              " is not an integer"));
    }
    if (c == '-' || (c >= '0' && c <= '9') || absl::ascii_isalpha(c)) {
      while (p_ < s_.size() &&
             (absl::ascii_isalnum(s_[p_]) || s_[p_] == '-' || s_[p_] == '+' ||
              s_[p_] == '.')) {
        ++p_;
      }
      sink_.CountRow();
      const absl::string_view tok = Slice(b);
      uint64_t id;
      const auto [end, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), id);
      if (ec != std::errc() || end != tok.data() + tok.size()) {
        double d;
        const auto [dend, dec] =
            std::from_chars(tok.data(), tok.data() + tok.size(), d);
        const bool is_number =
            dec == std::errc() && dend == tok.data() + tok.size();
        absl::string_view why = "is not an integer";
        if (is_number && d < 0) why = "is negative";
        if (is_number && d >= 0 && d == std::floor(d) && d < 9007199254740992.0) {
          id = static_cast<uint64_t>(d);  // 72.0 is the id 72
        } else {
          return sink_.BadRow(line_, absl::StrCat("item id ", Quoted(tok), " ", why));
        }
      }
      Interaction e;
      e.user = user_key;
      e.item = absl::StrCat(id);
      e.label = 1.0f;
      return sink_.Emit(line_, std::move(e));
    }
    return Expected("an item id (a non-negative integer)");
  }

  absl::string_view Slice(size_t b) const {
    return absl::string_view(s_).substr(b, p_ - b);
  }
  void SkipWs() {
    while (p_ < s_.size() && absl::ascii_isspace(static_cast<unsigned char>(s_[p_]))) {
      if (s_[p_] == '\n') ++line_;
      ++p_;
    }
  }
  bool Eat(char c) {
    if (p_ < s_.size() && s_[p_] == c) {
      ++p_;
      return true;
    }
    return false;
  }

  const std::string& s_;
  Sink& sink_;
  size_t p_ = 0;
  uint64_t line_ = 1;
};

absl::Status ReadAll(std::istream& in, std::string& out) {
  char buf[1 << 16];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    out.append(buf, static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return absl::InvalidArgumentError("read error");
  return absl::OkStatus();
}

absl::Status LoadNbpoJson(std::istream& in, Sink& sink) {
  std::string text;
  if (absl::Status st = ReadAll(in, text); !st.ok()) {
    return sink.Fatal(1, st.message());
  }
  return JsonListScanner(text, sink).Run();
}

// ---------------------------------------------------------------- libsvm

// The X of "docid = X" / "docid=X" in a LETOR comment, or empty.
absl::string_view DocIdFromComment(absl::string_view comment) {
  const size_t k = comment.find("docid");
  if (k == absl::string_view::npos) return {};
  size_t i = k + 5;
  while (i < comment.size() && (comment[i] == ' ' || comment[i] == '\t')) ++i;
  if (i >= comment.size() || comment[i] != '=') return {};
  ++i;
  while (i < comment.size() && (comment[i] == ' ' || comment[i] == '\t')) ++i;
  size_t j = i;
  while (j < comment.size() &&
         !absl::ascii_isspace(static_cast<unsigned char>(comment[j]))) {
    ++j;
  }
  return comment.substr(i, j - i);
}

absl::Status LoadLibsvm(std::istream& in, Sink& sink) {
  LineReader lr(in);
  std::vector<absl::string_view> tok;
  absl::flat_hash_map<std::string, uint64_t> docs_in_query;
  // Sparse features of the events appended so far: event i owns
  // sparse[offsets[i], offsets[i+1]).
  std::vector<std::pair<uint32_t, float>> sparse;
  std::vector<size_t> offsets = {0};
  uint32_t dim = 0;
  const size_t max_features = sink.options().limits.max_features;
  while (lr.Next()) {
    absl::string_view text = lr.text();
    absl::string_view comment;
    if (const size_t h = text.find('#'); h != absl::string_view::npos) {
      comment = text.substr(h + 1);
      text = text.substr(0, h);
    }
    SplitWhitespace(text, tok);
    if (tok.empty()) continue;  // blank or comment-only line
    sink.CountRow();
    sink.MaybeReserve(in);
    Interaction e;
    if (!ParseFloat(tok[0], &e.label)) {
      RETURN_IF_ERROR(sink.BadRow(
          lr.line(), absl::StrCat("label ", Quoted(tok[0]), " is not a number")));
      continue;
    }
    if (tok.size() < 2 || !absl::StartsWith(tok[1], "qid:") || tok[1].size() == 4) {
      RETURN_IF_ERROR(sink.BadRow(
          lr.line(), "expected 'qid:Q' after the label"));
      continue;
    }
    const std::string qid(tok[1].substr(4));
    const uint64_t index_in_query = docs_in_query[qid]++;
    const size_t sparse_begin = sparse.size();
    uint32_t row_dim = 0;
    std::optional<std::string> err;
    for (size_t t = 2; t < tok.size() && !err; ++t) {
      const size_t colon = tok[t].find(':');
      uint32_t fid = 0;
      float v;
      if (colon == absl::string_view::npos ||
          !absl::SimpleAtoi(tok[t].substr(0, colon), &fid) || fid < 1) {
        err = absl::StrCat("feature ", Quoted(tok[t]),
                           " is not 'fid:value' with an integer fid >= 1");
      } else if (fid > max_features) {
        err = absl::StrCat("feature id ", fid, " exceeds max_features=",
                           max_features);
      } else if (!ParseFloat(tok[t].substr(colon + 1), &v)) {
        err = absl::StrCat("feature ", fid, " value ",
                           Quoted(tok[t].substr(colon + 1)),
                           " is not a finite number");
      } else {
        sparse.emplace_back(fid, v);
        row_dim = std::max(row_dim, fid);
      }
    }
    if (err) {
      sparse.resize(sparse_begin);
      RETURN_IF_ERROR(sink.BadRow(lr.line(), *err));
      continue;
    }
    e.user = qid;
    e.list_id = qid;
    const absl::string_view docid = DocIdFromComment(comment);
    e.item = docid.empty() ? absl::StrCat(qid, "-", index_in_query)
                           : std::string(docid);
    bool added = false;
    RETURN_IF_ERROR(sink.Emit(lr.line(), std::move(e), &added));
    if (added) {
      offsets.push_back(sparse.size());
      dim = std::max(dim, row_dim);
    } else {
      sparse.resize(sparse_begin);
    }
  }
  if (lr.bad()) return sink.Fatal(lr.line() + 1, "read error");
  if (dim > 0) {
    std::vector<Interaction>& events = sink.result().events;
    for (size_t i = 0; i < events.size(); ++i) {
      events[i].features.assign(dim, 0.0f);
      for (size_t k = offsets[i]; k < offsets[i + 1]; ++k) {
        events[i].features[sparse[k].first - 1] = sparse[k].second;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> FormatNames() {
  return {"csv", "coat", "yahoo", "nbpo-json", "libsvm"};
}

std::string FormatName(Format format) {
  return FormatNames()[static_cast<size_t>(format)];
}

absl::StatusOr<Format> ParseFormat(std::string_view name) {
  const std::vector<std::string> names = FormatNames();
  for (size_t i = 0; i < names.size(); ++i) {
    if (name == names[i]) return static_cast<Format>(i);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("format ", Quoted(std::string(name)),
                   ": must be one of ", absl::StrJoin(names, ", ")));
}

absl::StatusOr<LoadResult> LoadStream(std::istream& in, std::string_view name,
                                      Format format, const LoadOptions& options) {
  Sink sink(name, options);
  if (format == Format::kCsv || format == Format::kYahoo ||
      format == Format::kLibsvm) {
    sink.MeasureStream(in);
  }
  switch (format) {
    case Format::kCsv:
      RETURN_IF_ERROR(LoadCsv(in, sink));
      break;
    case Format::kCoat:
      RETURN_IF_ERROR(LoadCoat(in, sink));
      break;
    case Format::kYahoo:
      RETURN_IF_ERROR(LoadYahoo(in, sink));
      break;
    case Format::kNbpoJson:
      RETURN_IF_ERROR(LoadNbpoJson(in, sink));
      break;
    case Format::kLibsvm:
      RETURN_IF_ERROR(LoadLibsvm(in, sink));
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("format ", static_cast<int>(format), ": unknown"));
  }
  sink.ShrinkIfOverReserved();
  return std::move(sink.result());
}

absl::StatusOr<LoadResult> LoadFile(const std::string& path, Format format,
                                    const LoadOptions& options) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": is a directory, not a file"));
  }
  std::vector<char> buffer(1 << 20);
  std::ifstream f;
  f.rdbuf()->pubsetbuf(buffer.data(), static_cast<std::streamsize>(buffer.size()));
  f.open(path, std::ios::in | std::ios::binary);
  if (!f.is_open()) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  return LoadStream(f, path, format, options);
}

}  // namespace debias::data
