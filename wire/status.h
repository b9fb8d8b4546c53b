// Mapping between absl::Status (core) and grpc::Status (the wire): the one
// place that does it. Codes share their numbering, so the mapping is exact.
#ifndef DEBIAS_WIRE_STATUS_H_
#define DEBIAS_WIRE_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/status.h"

namespace debias {

// A status message travels in the response's trailers, which clients bound
// (8 kB by default): a message echoing a huge client value would reach the
// caller as RESOURCE_EXHAUSTED instead of its own code. Longer messages are
// cut at a UTF-8 boundary.
inline constexpr size_t kMaxStatusMessageBytes = 2048;

inline std::string BoundedMessage(absl::string_view m) {
  if (m.size() <= kMaxStatusMessageBytes) return std::string(m);
  size_t cut = kMaxStatusMessageBytes;
  while (cut > 0 && (static_cast<unsigned char>(m[cut]) & 0xC0) == 0x80) --cut;
  return absl::StrCat(m.substr(0, cut), "... (message cut at ", cut, " of ", m.size(),
                      " bytes)");
}

inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), BoundedMessage(s.message()));
}


// Names of methods, estimators and samplers a request gives (loss,
// propensity, estimator, ...): 1 to `max_bytes` characters of
// [A-Za-z0-9._+,-] and spaces. INVALID_ARGUMENT names the field and shows at most 64
// characters of the value. Empty values are the caller's business.
inline absl::Status CheckName(absl::string_view field, absl::string_view value,
                              size_t max_bytes = 64) {
  bool ok = value.size() <= max_bytes;
  for (char c : value) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-' || c == '+' || c == ',' || c == ' ');
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      field, "='", value.substr(0, 64), value.size() > 64 ? "...'" : "'", " (", value.size(),
      " bytes): must be at most ", max_bytes, " characters of [A-Za-z0-9._+,-] and spaces; "
      "ListMethods lists the names"));
}

inline absl::Status FromGrpcStatus(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

}  // namespace debias

#endif  // DEBIAS_WIRE_STATUS_H_
