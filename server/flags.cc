#include "server/flags.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "debias/v1/server_config.pb.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

#ifndef DEBIAS_VERSION
#define DEBIAS_VERSION "dev"
#endif

namespace debias::server {

namespace {

// The integer settings with their ranges: one table for the flags' checks
// and the config file's.
struct IntSetting {
  const char* name;
  int min, max;
  const char* help;
  int Limits::*field;
};
constexpr IntSetting kIntSettings[] = {
    {"max_message_bytes", 1 << 16, 1 << 30, "largest request/response message",
     &Limits::max_message_bytes},
    {"max_training_jobs", 1, 64, "concurrent training jobs", &Limits::max_training_jobs},
    {"max_loaded_models", 1, 10000,
     "ready models kept loaded for serving; past it the least recently used is dropped",
     &Limits::max_loaded_models},
    {"max_candidates", 1, 1000000, "items per Score request", &Limits::max_candidates},
    {"max_k", 1, 1000000, "largest TopK k", &Limits::max_k},
    {"max_in_flight", 1, 100000,
     "calls handled at once (streams included, health excluded); past it RESOURCE_EXHAUSTED",
     &Limits::max_in_flight},
    {"max_pollers", 1, 1024,
     "gRPC threads kept waiting for calls; a call that finds none waiting starts a thread "
     "that exits afterwards, so keep it at or above the usual number of concurrent calls",
     &Limits::max_pollers},
    {"max_bootstrap", 0, 1000000, "largest Evaluate bootstrap resample count",
     &Limits::max_bootstrap},
    {"keepalive_time_ms", 1000, 7200000, "ping an idle client connection this often",
     &Limits::keepalive_time_ms},
    {"poll_seconds", 1, 3600, "seconds between scans of --model_repository",
     &Limits::poll_seconds},
    {"max_connection_age_seconds", 0, 86400,
     "close each client connection after this long (plus as long again, at most 30 s, for "
     "calls in flight) so clients re-resolve and spread over new replicas; 0 = never",
     &Limits::max_connection_age_seconds},
    {"keepalive_timeout_ms", 1000, 600000,
     "close a connection whose keepalive ping is not answered within this",
     &Limits::keepalive_timeout_ms},
    {"ann_min_items", 0, 2000000000,
     "build an approximate (HNSW) TopK index for models of at least this many items (0: never)",
     &Limits::ann_min_items},
    {"ann_m", 4, 128, "HNSW graph degree of the approximate index", &Limits::ann_m},
    {"ann_ef_construction", 8, 4096, "HNSW candidate list while building the index",
     &Limits::ann_ef_construction},
    {"ann_ef_search", 1, 65536,
     "HNSW candidate list while searching (higher: better recall, slower)",
     &Limits::ann_ef_search},
};

const char* const kLogLevels[] = {"trace", "debug", "info", "warn", "error"};

class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (first.empty()) first = absl::StrCat("line ", line + 1, ":", column + 1, ": ", message);
  }
  std::string first;
};

}  // namespace

void AddServerFlags(CLI::App& app, ServerOptions* o, ProcessOptions* p) {
  app.add_option("--config", p->config,
                 "text-format debias.v1.ServerConfig file (proto/debias/v1/server_config.proto);"
                 " flags given here override it");
  app.add_option("--listen", o->listen, "host:port to listen on (port 0: any free)")
      ->capture_default_str();
  app.add_option("--data_dir", o->data_dir, "RocksDB directory")->capture_default_str();
  app.add_flag("--sync,!--no_sync", o->sync, "fsync every ingest batch and model write");
  app.add_flag("--reflection", o->reflection, "serve gRPC server reflection");
  for (const auto& s : kIntSettings) {
    app.add_option(absl::StrCat("--", s.name), o->limits.*(s.field), s.help)
        ->check(CLI::Range(s.min, s.max))
        ->capture_default_str();
  }
  app.add_option("--max_loaded_model_bytes", o->limits.max_loaded_model_bytes,
                 "bytes the loaded models may hold in all (parameters, key tables, item "
                 "blocks, approximate indexes); past it the least recently used are dropped "
                 "(0: no limit)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 50))
      ->capture_default_str();
  app.add_option("--auth_tokens", o->auth_tokens,
                 "token file: lines 'ROLE TOKEN' (reader|writer|admin); re-read on SIGHUP; "
                 "without it every local call is accepted (development mode)");
  app.add_option("--tls_cert", o->tls_cert, "PEM certificate chain of the server");
  app.add_option("--tls_key", o->tls_key, "PEM private key of the server");
  app.add_option("--tls_client_ca", o->tls_client_ca,
                 "PEM CA; clients must present a certificate it signed (mutual TLS)");
  app.add_flag("--allow_insecure", o->allow_insecure,
               "allow plaintext on a non-loopback --listen address");
  app.add_option("--metrics_listen", o->metrics_listen,
                 "host:port of the Prometheus /metrics HTTP endpoint (default: off)");
  app.add_option("--backup_dir", o->backup_dir,
                 "directory the Backup RPC writes checkpoints into (default: Backup off)");
  app.add_option("--model_repository", o->model_repository,
                 "snapshot repository to serve models from: NAME/VERSION/model.pb and "
                 "NAME/labels, scanned every --poll_seconds (docs/OPERATIONS.md)");
  app.add_option("--log_level", p->log_level, "trace|debug|info|warn|error (debug: one line per call)")
      ->check(CLI::IsMember(std::vector<std::string>(std::begin(kLogLevels), std::end(kLogLevels))))
      ->capture_default_str();
  app.add_option("--port_file", p->port_file,
                 "write the bound port to this file once serving (for tests/scripts)");
}

absl::Status ApplyConfigText(const std::string& text, ServerOptions* o, ProcessOptions* p) {
  v1::ServerConfig c;
  google::protobuf::TextFormat::Parser parser;
  ErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &c)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config: ", errors.first.empty() ? "not a text-format ServerConfig" : errors.first));
  }
  if (c.has_listen()) o->listen = c.listen();
  if (c.has_data_dir()) o->data_dir = c.data_dir();
  if (c.has_sync()) o->sync = c.sync();
  if (c.has_reflection()) o->reflection = c.reflection();
  const auto* desc = c.GetDescriptor();
  const auto* refl = c.GetReflection();
  for (const auto& s : kIntSettings) {
    const auto* f = desc->FindFieldByName(s.name);
    if (f == nullptr || !refl->HasField(c, f)) continue;
    const int v = refl->GetInt32(c, f);
    if (v < s.min || v > s.max) {
      return absl::InvalidArgumentError(absl::StrCat("config: ", s.name, "=", v,
                                                     ": must be in [", s.min, ", ", s.max, "]"));
    }
    o->limits.*(s.field) = v;
  }
  if (c.has_max_loaded_model_bytes()) {
    if (c.max_loaded_model_bytes() < 0 || c.max_loaded_model_bytes() > (int64_t{1} << 50)) {
      return absl::InvalidArgumentError(
          absl::StrCat("config: max_loaded_model_bytes=", c.max_loaded_model_bytes(),
                       ": must be in [0, ", int64_t{1} << 50, "]"));
    }
    o->limits.max_loaded_model_bytes = c.max_loaded_model_bytes();
  }
  if (c.has_auth_tokens()) o->auth_tokens = c.auth_tokens();
  if (c.has_tls_cert()) o->tls_cert = c.tls_cert();
  if (c.has_tls_key()) o->tls_key = c.tls_key();
  if (c.has_tls_client_ca()) o->tls_client_ca = c.tls_client_ca();
  if (c.has_allow_insecure()) o->allow_insecure = c.allow_insecure();
  if (c.has_metrics_listen()) o->metrics_listen = c.metrics_listen();
  if (c.has_backup_dir()) o->backup_dir = c.backup_dir();
  if (c.has_model_repository()) o->model_repository = c.model_repository();
  if (c.has_log_level()) {
    bool known = false;
    for (const char* l : kLogLevels) known |= c.log_level() == l;
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          "config: log_level='", c.log_level(), "': must be trace, debug, info, warn or error"));
    }
    p->log_level = c.log_level();
  }
  if (c.has_port_file()) p->port_file = c.port_file();
  return absl::OkStatus();
}

absl::Status ApplyConfigFile(const std::string& path, ServerOptions* o, ProcessOptions* p) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("config '", path, "': cannot read"));
  std::stringstream s;
  s << in.rdbuf();
  absl::Status st = ApplyConfigText(s.str(), o, p);
  if (!st.ok()) {
    return absl::Status(st.code(), absl::StrCat("'", path, "': ", st.message()));
  }
  return st;
}

std::string FindConfigFlag(int argc, const char* const* argv) {
  std::string found;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      found = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      found = std::string(a.substr(9));
    }
  }
  return found;
}

int ParseServerCommandLine(int argc, char** argv, ServerOptions* options,
                           ProcessOptions* process) {
  if (std::string config = FindConfigFlag(argc, argv); !config.empty()) {
    if (absl::Status s = ApplyConfigFile(config, options, process); !s.ok()) {
      std::fprintf(stderr, "debiasd: %s\n", std::string(s.message()).c_str());
      return 2;
    }
  }
  CLI::App app{"debiasd: debiasing service for implicit feedback (gRPC)"};
  app.set_version_flag("--version", std::string("debiasd ") + DEBIAS_VERSION);
  AddServerFlags(app, options, process);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return -1;
}

}  // namespace debias::server
