// gtest matchers for absl::Status (Abseil 20220623 ships none).
#ifndef DEBIAS_TESTS_UTIL_STATUS_MATCHERS_H_
#define DEBIAS_TESTS_UTIL_STATUS_MATCHERS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace debias::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

// Matches a Status or StatusOr whose code is `code` and whose message
// contains `substr`.
MATCHER_P2(StatusIs, code, substr,
           std::string("status code ") + absl::StatusCodeToString(code) +
               " with message containing \"" + std::string(substr) + "\"") {
  const absl::Status& st = GetStatus(arg);
  *result_listener << "status is " << st.ToString();
  return st.code() == code &&
         st.message().find(std::string(substr)) != std::string::npos;
}

MATCHER(IsOk, "is OK") {
  const absl::Status& st = GetStatus(arg);
  *result_listener << "status is " << st.ToString();
  return st.ok();
}

}  // namespace debias::testing

#define ASSERT_OK(expr) ASSERT_THAT((expr), ::debias::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT((expr), ::debias::testing::IsOk())

#endif  // DEBIAS_TESTS_UTIL_STATUS_MATCHERS_H_
