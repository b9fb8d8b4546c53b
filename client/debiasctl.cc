// debiasctl: the command-line client of debiasd. See docs/CLI.md.
#include <iostream>

#include "absl/synchronization/mutex.h"
#include "client/cli.h"

#ifndef DEBIAS_VERSION
#define DEBIAS_VERSION "dev"
#endif

int main(int argc, char** argv) {
  // As in debiasd (server/main.cc): no absl::Mutex deadlock detection (a
  // global lock graph updated on every gRPC lock) outside the tests.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  debias::cli::Context ctx;
  CLI::App app{"debiasctl: client for the debias service"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("debiasctl ") + DEBIAS_VERSION);
  auto* version = app.add_subcommand("version", "print the client version");
  version->callback([&ctx] {
    ctx.run = [] {
      std::cout << "debiasctl " << DEBIAS_VERSION << std::endl;
      return 0;
    };
  });
  debias::cli::RegisterDataCommands(app, ctx);
  debias::cli::RegisterModelCommands(app, ctx);
  debias::cli::RegisterBenchCommands(app, ctx);
  debias::cli::RegisterReplayCommand(app, ctx);
  debias::cli::RegisterAdminCommands(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return ctx.run ? ctx.run() : 2;
}
