#include "core/data/csv.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace debias::data {
namespace {

bool NeedsQuoting(const std::string& s) {
  return s.find_first_of(",\"\r\n") != std::string::npos;
}

void AppendKey(const std::string& s, std::string& out) {
  if (!NeedsQuoting(s)) {
    out += s;
    return;
  }
  out += '"';
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

void AppendFloat(float f, std::string& out) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof(buf), "%.9g", static_cast<double>(f));
  out.append(buf, static_cast<size_t>(n));
}

bool IsBlank(const std::string& s) {
  for (char c : s) {
    if (c != ' ' && c != '\t') return false;
  }
  return true;
}

}  // namespace

absl::Status WriteCsv(const std::vector<Interaction>& events, std::ostream& out) {
  // Only what a reader needs to get the event back is enforced here; size
  // limits are the loader's business.
  InteractionLimits lax;
  lax.max_key_bytes = std::numeric_limits<size_t>::max();
  lax.max_features = std::numeric_limits<size_t>::max();
  lax.max_position = std::numeric_limits<int32_t>::max();
  bool ts = false, list = false, pos = false, prop = false, feat = false,
       eid = false;
  for (size_t i = 0; i < events.size(); ++i) {
    const Interaction& e = events[i];
    if (absl::Status st = ValidateInteraction(e, lax); !st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("event ", i, ": ", st.message()));
    }
    ts |= e.timestamp.has_value();
    list |= e.list_id.has_value();
    pos |= e.position.has_value();
    prop |= e.propensity.has_value();
    feat |= !e.features.empty();
    eid |= !e.event_id.empty();
  }

  std::string buf = "user,item,label";
  if (ts) buf += ",timestamp";
  if (list) buf += ",list_id";
  if (pos) buf += ",position";
  if (prop) buf += ",propensity";
  if (feat) buf += ",features";
  if (eid) buf += ",event_id";
  buf += '\n';
  for (const Interaction& e : events) {
    AppendKey(e.user, buf);
    buf += ',';
    AppendKey(e.item, buf);
    buf += ',';
    AppendFloat(e.label, buf);
    if (ts) {
      buf += ',';
      if (e.timestamp) absl::StrAppend(&buf, *e.timestamp);
    }
    if (list) {
      buf += ',';
      if (e.list_id) AppendKey(*e.list_id, buf);
    }
    if (pos) {
      buf += ',';
      if (e.position) absl::StrAppend(&buf, *e.position);
    }
    if (prop) {
      buf += ',';
      if (e.propensity) AppendFloat(*e.propensity, buf);
    }
    if (feat) {
      buf += ',';
      for (size_t j = 0; j < e.features.size(); ++j) {
        if (j > 0) buf += ';';
        AppendFloat(e.features[j], buf);
      }
    }
    if (eid) {
      buf += ',';
      AppendKey(e.event_id, buf);
    }
    buf += '\n';
    if (buf.size() >= (1 << 16)) {
      out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
      buf.clear();
    }
  }
  out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
  out.flush();
  if (!out) return absl::DataLossError("csv: writing to the output stream failed");
  return absl::OkStatus();
}

bool CsvRecordReader::ReadLine() {
  if (!std::getline(in_, line_)) return false;
  ++physical_line_;
  if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  return true;
}

absl::StatusOr<bool> CsvRecordReader::Next() {
  num_fields_ = 0;
  do {
    if (!ReadLine()) {
      if (in_.bad()) return absl::InvalidArgumentError("read error");
      return false;
    }
  } while (IsBlank(line_));
  record_line_ = physical_line_;

  size_t pos = 0;
  while (true) {
    if (num_fields_ == fields_.size()) fields_.emplace_back();
    std::string& f = fields_[num_fields_++];
    f.clear();
    if (pos < line_.size() && line_[pos] == '"') {
      ++pos;
      while (true) {
        const size_t q = line_.find('"', pos);
        if (q == std::string::npos) {
          f.append(line_, pos, std::string::npos);
          f += '\n';
          if (!ReadLine()) {
            if (in_.bad()) return absl::InvalidArgumentError("read error");
            return absl::InvalidArgumentError(absl::StrCat(
                "field ", num_fields_, ": quoted field is not terminated"));
          }
          pos = 0;
          continue;
        }
        f.append(line_, pos, q - pos);
        if (q + 1 < line_.size() && line_[q + 1] == '"') {
          f += '"';
          pos = q + 2;
          continue;
        }
        pos = q + 1;
        break;
      }
      if (pos == line_.size()) return true;
      if (line_[pos] != ',') {
        return absl::InvalidArgumentError(
            absl::StrCat("field ", num_fields_,
                         ": unexpected text after the closing quote"));
      }
      ++pos;
    } else {
      const size_t c = line_.find(',', pos);
      if (c == std::string::npos) {
        f.append(line_, pos, std::string::npos);
        return true;
      }
      f.append(line_, pos, c - pos);
      pos = c + 1;
    }
  }
}

}  // namespace debias::data
