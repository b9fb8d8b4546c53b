// Bounded polling for tests that wait on another thread or the server.
#ifndef DEBIAS_TESTS_UTIL_WAIT_H_
#define DEBIAS_TESTS_UTIL_WAIT_H_

#include <chrono>
#include <functional>
#include <thread>

namespace debias::testing {

// Calls `done` every `poll` until it returns true (true) or `timeout` has
// passed (false; `done` is called once more at the end). Never waits
// forever: a test whose condition never comes fails instead of hanging
// until ctest's timeout.
inline bool WaitUntil(const std::function<bool()>& done,
                      std::chrono::milliseconds timeout = std::chrono::seconds(60),
                      std::chrono::milliseconds poll = std::chrono::milliseconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(poll);
  }
  return done();
}

}  // namespace debias::testing

#endif  // DEBIAS_TESTS_UTIL_WAIT_H_
