#include "client/cli.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"

namespace debias::cli {

ClientOptions Context::Options() const {
  ClientOptions o;
  o.timeout = std::chrono::milliseconds(static_cast<int64_t>(global.timeout_seconds * 1000));
  o.token = global.token;
  if (o.token.empty()) {
    const char* env = std::getenv("DEBIAS_TOKEN");
    if (env != nullptr) o.token = env;
  }
  o.tls_ca = global.tls_ca;
  o.tls_cert = global.tls_cert;
  o.tls_key = global.tls_key;
  o.tls_server_name = global.tls_server_name;
  o.lb_policy = global.lb;
  return o;
}

std::unique_ptr<Client> Context::Connect() const { return Client::Connect(global.server, Options()); }

void AddGlobalOptions(CLI::App* sub, GlobalOptions* g) {
  const char* env = std::getenv("DEBIAS_SERVER");
  if (g->server.empty()) g->server = (env && *env) ? env : "127.0.0.1:50051";
  sub->add_option("--server", g->server,
                  "debiasd address host:port, or a gRPC target of several "
                  "(ipv4:H:P1,H:P2 or dns:///name:port) ($DEBIAS_SERVER)")
      ->capture_default_str();
  sub->add_option("--lb", g->lb,
                  "load balancing over the target's addresses: pick_first (one connection) or "
                  "round_robin (each call to the next address); UNAVAILABLE is retried on "
                  "read-only calls either way")
      ->check(CLI::IsMember({"pick_first", "round_robin"}));
  sub->add_flag("--json", g->json, "print one JSON object on stdout");
  sub->add_option("--timeout", g->timeout_seconds, "per-call deadline in seconds")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  sub->add_option("--token", g->token, "bearer token (default $DEBIAS_TOKEN)");
  sub->add_option("--tls-ca", g->tls_ca, "use TLS, trusting the server certificate's CA (PEM)");
  sub->add_option("--tls-cert", g->tls_cert, "client certificate for mutual TLS (PEM)");
  sub->add_option("--tls-key", g->tls_key, "client private key for mutual TLS (PEM)");
  sub->add_option("--tls-server-name", g->tls_server_name,
                  "name to check in the server certificate (default: the --server host)");
}

nlohmann::json ServedJson(const v1::ServedModel& served) {
  return nlohmann::json{{"id", served.id()}, {"name", served.name()}, {"version", served.version()}};
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(s, ',', absl::SkipEmpty())) out.emplace_back(part);
  return out;
}

nlohmann::json StructJson(const google::protobuf::Struct& s) {
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(s, &out).ok()) return nlohmann::json::object();
  return nlohmann::json::parse(out, nullptr, false);
}

int Emit(const Context& ctx, const nlohmann::json& j, const std::string& human) {
  if (ctx.global.json) {
    std::cout << j.dump() << std::endl;
  } else {
    std::cout << human;
    if (!human.empty() && human.back() != '\n') std::cout << '\n';
    std::cout.flush();
  }
  return 0;
}

int Fail(const absl::Status& s) {
  EndProgress();
  std::cerr << "debiasctl: " << absl::StatusCodeToString(s.code()) << ": " << s.message()
            << std::endl;
  return 1;
}

bool ShowProgress() { return isatty(STDOUT_FILENO) && isatty(STDERR_FILENO); }

namespace {
bool progress_open = false;
}

void ProgressLine(const std::string& text) {
  std::fprintf(stderr, "\r\033[K%s", text.c_str());
  std::fflush(stderr);
  progress_open = true;
}

void EndProgress() {
  if (progress_open) {
    std::fprintf(stderr, "\n");
    progress_open = false;
  }
}

}  // namespace debias::cli
