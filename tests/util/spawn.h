// Starting a child process from a multithreaded test.
//
// fork() copies only the calling thread; if another thread held a lock of
// malloc or stdio at that moment, a child that allocates before exec (a
// std::string, freopen) waits on it forever. posix_spawn does the
// redirection and the exec without running the parent's code in the child.
#ifndef DEBIAS_TESTS_UTIL_SPAWN_H_
#define DEBIAS_TESTS_UTIL_SPAWN_H_

#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

#include <string>
#include <vector>

extern char** environ;

namespace debias::testing {

// Runs argv[0] (a path) with argv, stdout and stderr appended to `log_path`
// (created or truncated). Returns the child's pid, or -1 (errno-style failure).
inline pid_t SpawnWithLog(const std::vector<std::string>& argv, const std::string& log_path) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

}  // namespace debias::testing

#endif  // DEBIAS_TESTS_UTIL_SPAWN_H_
