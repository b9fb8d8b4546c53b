// debiasd's command line and configuration file, in one place.
//
// Every setting is both a flag (--name) and a field of the text-format
// config file (proto/debias/v1/server_config.proto, same name). The file is
// read first; flags given on the command line override it.
#ifndef DEBIAS_SERVER_FLAGS_H_
#define DEBIAS_SERVER_FLAGS_H_

#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "server/options.h"

namespace debias::server {

// Settings of the debiasd process that are not ServerOptions.
struct ProcessOptions {
  std::string log_level = "info";
  std::string port_file;
  std::string config;
};

// Adds every flag to `app`, bound to `options` / `process`; the current
// values are the defaults (so call ApplyConfigFile first).
void AddServerFlags(CLI::App& app, ServerOptions* options, ProcessOptions* process);

// Reads a text-format ServerConfig and copies every field it sets into
// `options` / `process`. NOT_FOUND when unreadable, INVALID_ARGUMENT naming
// the line for a parse error or an unknown field, and for a value out of its
// flag's range.
absl::Status ApplyConfigFile(const std::string& path, ServerOptions* options,
                             ProcessOptions* process);
absl::Status ApplyConfigText(const std::string& text, ServerOptions* options,
                             ProcessOptions* process);

// The value of --config (or --config=) in argv, if given.
std::string FindConfigFlag(int argc, const char* const* argv);

// Parses argv: the config file named by --config, then the flags. Returns
// the exit code to use when the process must stop (help, version, errors
// printed), or -1 to go on.
int ParseServerCommandLine(int argc, char** argv, ServerOptions* options,
                           ProcessOptions* process);

}  // namespace debias::server

#endif  // DEBIAS_SERVER_FLAGS_H_
