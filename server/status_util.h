// Mapping between absl::Status (core) and grpc::Status (the wire): the one
// place that does it. Codes share their numbering, so the mapping is exact.
#ifndef DEBIAS_SERVER_STATUS_UTIL_H_
#define DEBIAS_SERVER_STATUS_UTIL_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace debias::server {

inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

inline absl::Status FromGrpcStatus(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

}  // namespace debias::server

#endif  // DEBIAS_SERVER_STATUS_UTIL_H_
