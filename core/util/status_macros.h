// Error-propagation macros for absl::Status / absl::StatusOr.
//
// Abseil 20220623 (Debian 12) ships neither RETURN_IF_ERROR nor
// ASSIGN_OR_RETURN, so debias defines them once here.
#ifndef DEBIAS_CORE_UTIL_STATUS_MACROS_H_
#define DEBIAS_CORE_UTIL_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define DEBIAS_CONCAT_INNER_(a, b) a##b
#define DEBIAS_CONCAT_(a, b) DEBIAS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                            \
  do {                                                   \
    if (absl::Status _st = (expr); !_st.ok()) return _st; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, Foo());` declares x from a StatusOr, or returns
// its error status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(DEBIAS_CONCAT_(_status_or_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()

#endif  // DEBIAS_CORE_UTIL_STATUS_MACROS_H_
