#include "server/auth.h"
#include "wire/status.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace debias::server {

std::string_view RoleName(Role r) {
  switch (r) {
    case Role::kReader:
      return "reader";
    case Role::kWriter:
      return "writer";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

absl::StatusOr<std::vector<Authenticator::Entry>> Authenticator::Parse(std::string_view text) {
  std::vector<Entry> out;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++line_no;
    if (auto hash = line.find('#'); hash != absl::string_view::npos) line = line.substr(0, hash);
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    std::vector<absl::string_view> parts =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (parts.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line_no, ": expected 'ROLE TOKEN' (role reader, writer or admin)"));
    }
    Entry e;
    if (parts[0] == "reader") {
      e.role = Role::kReader;
    } else if (parts[0] == "writer") {
      e.role = Role::kWriter;
    } else if (parts[0] == "admin") {
      e.role = Role::kAdmin;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line_no, ": role '", std::string(parts[0].substr(0, 32)),
          "' must be reader, writer or admin"));
    }
    if (parts[1].size() < 16) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_no, ": tokens must be at least 16 characters"));
    }
    e.token = std::string(parts[1]);
    out.push_back(std::move(e));
  }
  if (out.empty()) return absl::FailedPreconditionError("no token in the token file");
  return out;
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::FromString(std::string_view text,
                                                                         std::string path) {
  auto entries = Parse(text);
  if (!entries.ok()) return entries.status();
  std::unique_ptr<Authenticator> a(new Authenticator(std::move(path)));
  absl::MutexLock l(&a->mu_);
  a->entries_ = std::move(*entries);
  return a;
}

namespace {
absl::StatusOr<std::string> ReadAll(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("auth_tokens '", path, "': cannot read"));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::FromFile(const std::string& path) {
  auto text = ReadAll(path);
  if (!text.ok()) return text.status();
  auto a = FromString(*text, path);
  if (!a.ok()) {
    return absl::Status(a.status().code(),
                        absl::StrCat("auth_tokens '", path, "': ", a.status().message()));
  }
  return a;
}

absl::Status Authenticator::Reload() {
  if (path_.empty()) return absl::FailedPreconditionError("no token file to reload");
  auto text = ReadAll(path_);
  if (!text.ok()) return text.status();
  auto entries = Parse(*text);
  if (!entries.ok()) {
    return absl::Status(entries.status().code(),
                        absl::StrCat("auth_tokens '", path_, "': ", entries.status().message()));
  }
  absl::MutexLock l(&mu_);
  entries_ = std::move(*entries);
  return absl::OkStatus();
}

size_t Authenticator::size() const {
  absl::MutexLock l(&mu_);
  return entries_.size();
}

namespace {
// Constant-time equality: the time depends only on the lengths.
bool SameToken(std::string_view a, std::string_view b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? a[i] : 0;
    const unsigned char y = i < b.size() ? b[i] : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}
}  // namespace

grpc::Status Authenticator::CheckHeader(std::string_view header, Role need) const {
  constexpr std::string_view kPrefix = "Bearer ";
  if (header.size() <= kPrefix.size() || header.substr(0, kPrefix.size()) != kPrefix) {
    return ToGrpcStatus(absl::UnauthenticatedError("missing bearer token: send metadata 'authorization: Bearer TOKEN' "
                        "(debiasctl --token or DEBIAS_TOKEN)"));
  }
  const std::string_view token = header.substr(kPrefix.size());
  bool found = false;
  Role role = Role::kReader;
  {
    absl::MutexLock l(&mu_);
    for (const Entry& e : entries_) {  // no early exit: compare every token
      const bool same = SameToken(token, e.token);
      if (same && (!found || e.role > role)) role = e.role;
      found |= same;
    }
  }
  if (!found) return ToGrpcStatus(absl::UnauthenticatedError("unknown token"));
  if (role < need) {
    return ToGrpcStatus(absl::PermissionDeniedError(absl::StrCat("this call needs role ", std::string(RoleName(need)),
                                     "; the token has role ", std::string(RoleName(role)))));
  }
  return grpc::Status::OK;
}

grpc::Status Authenticator::Check(const grpc::ServerContext& ctx, Role need) const {
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return CheckHeader("", need);
  return CheckHeader(std::string_view(it->second.data(), it->second.size()), need);
}

grpc::Status Authorize(const Authenticator* auth, const grpc::ServerContext* ctx, Role need) {
  if (auth == nullptr) return grpc::Status::OK;
  return auth->Check(*ctx, need);
}

Admission Admit(InFlight* in_flight, const Authenticator* auth, const grpc::ServerContext* ctx,
                Role need) {
  InFlight::Slot slot = in_flight ? in_flight->Acquire() : InFlight::Slot::None();
  if (in_flight && !slot.ok()) {
    return {ToGrpcStatus(absl::ResourceExhaustedError(absl::StrCat("server busy: ", in_flight->max(),
                                      " calls in flight (max_in_flight); retry with backoff"))),
            std::move(slot)};
  }
  return {Authorize(auth, ctx, need), std::move(slot)};
}

}  // namespace debias::server
