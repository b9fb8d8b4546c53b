// Shared plumbing of the debiasctl subcommands: global options, output and
// error reporting. Contract: with --json a command prints exactly one JSON
// object on stdout; on failure it prints "debiasctl: CODE: message" on
// stderr (CODE is the gRPC status name) and exits non-zero.
#ifndef DEBIAS_CLIENT_CLI_H_
#define DEBIAS_CLIENT_CLI_H_

#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "client/client.h"
#include "google/protobuf/struct.pb.h"
#include "nlohmann/json.hpp"

namespace debias::cli {

struct GlobalOptions {
  std::string server;  // host:port; default $DEBIAS_SERVER or 127.0.0.1:50051
  bool json = false;
  double timeout_seconds = 60;
  std::string token;  // default $DEBIAS_TOKEN
  std::string tls_ca, tls_cert, tls_key, tls_server_name;
  std::string lb;  // "" (pick_first) or "round_robin"
};

// State shared by subcommands; `run` is set by the subcommand chosen.
struct Context {
  GlobalOptions global;
  std::function<int()> run;
  std::unique_ptr<Client> Connect() const;
  // The client options the global flags ask for (timeout, token, TLS).
  ClientOptions Options() const;
};

// Adds --server/--json/--timeout to a subcommand.
void AddGlobalOptions(CLI::App* sub, GlobalOptions* g);

// The JSON debiasctl prints for the model that answered a call.
nlohmann::json ServedJson(const v1::ServedModel& served);

// "a,b,,c" -> {"a", "b", "c"}.
std::vector<std::string> SplitList(const std::string& s);
// A protobuf Struct as JSON (an empty object if it cannot be converted).
nlohmann::json StructJson(const google::protobuf::Struct& s);

// Prints `j` (JSON mode) or the human text, and returns 0.
int Emit(const Context& ctx, const nlohmann::json& j, const std::string& human);
// Prints the error and returns the exit code (1).
int Fail(const absl::Status& s);

// True when progress lines should be shown (stdout and stderr are TTYs).
bool ShowProgress();
// Rewrites one progress line on stderr.
void ProgressLine(const std::string& text);
void EndProgress();

// Subcommand families.
void RegisterDataCommands(CLI::App& app, Context& ctx);
void RegisterModelCommands(CLI::App& app, Context& ctx);
void RegisterBenchCommands(CLI::App& app, Context& ctx);
void RegisterReplayCommand(CLI::App& app, Context& ctx);
void RegisterAdminCommands(CLI::App& app, Context& ctx);

}  // namespace debias::cli

#endif  // DEBIAS_CLIENT_CLI_H_
