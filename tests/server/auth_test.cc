// Tokens, roles, TLS, mutual TLS and the non-loopback guard, through the
// real server and client library.
#include "server/auth.h"

#include <atomic>
#include <filesystem>
#include <thread>
#include <fstream>
#include <unistd.h>

#include "client/client.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "absl/strings/str_cat.h"
#include "tests/util/status_matchers.h"

namespace debias {
namespace {

namespace fs = std::filesystem;
using ::debias::testing::StatusIs;
using server::Authenticator;
using server::Role;

constexpr char kReader[] = "reader-token-0123456789";
constexpr char kWriter[] = "writer-token-0123456789";
constexpr char kAdmin[] = "admin-token-01234567890";

TEST(AuthenticatorTest, ParsesRolesCommentsAndRejectsBadLines) {
  auto a = Authenticator::FromString(
      "# debias tokens\n\nreader reader-token-0123456789\n"
      "writer\twriter-token-0123456789  # the pipeline\n");
  ASSERT_OK(a);
  EXPECT_EQ((*a)->size(), 2u);
  EXPECT_THAT(Authenticator::FromString("root abcdefghijklmnopqrstuvwxyz\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "line 1"));
  EXPECT_THAT(Authenticator::FromString("reader short\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "16 characters"));
  EXPECT_THAT(Authenticator::FromString("reader a b c\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "ROLE TOKEN"));
  EXPECT_THAT(Authenticator::FromString("# nothing\n").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, "no token"));
}

TEST(AuthenticatorTest, RolesNestAndUnknownTokensAreRejected) {
  auto a = Authenticator::FromString(absl::StrCat("reader ", kReader, "\nwriter ", kWriter,
                                                  "\nadmin ", kAdmin, "\n"));
  ASSERT_OK(a);
  const Authenticator& auth = **a;
  auto code = [&](std::string header, Role need) {
    return auth.CheckHeader(header, need).error_code();
  };
  using C = grpc::StatusCode;
  EXPECT_EQ(code("", Role::kReader), C::UNAUTHENTICATED);
  EXPECT_EQ(code("Bearer ", Role::kReader), C::UNAUTHENTICATED);
  EXPECT_EQ(code(std::string("Basic ") + kReader, Role::kReader), C::UNAUTHENTICATED);
  EXPECT_EQ(code("Bearer reader-token-012345678", Role::kReader), C::UNAUTHENTICATED);  // prefix
  EXPECT_EQ(code("Bearer reader-token-01234567890", Role::kReader), C::UNAUTHENTICATED);
  EXPECT_EQ(code(std::string("Bearer ") + kReader, Role::kReader), C::OK);
  EXPECT_EQ(code(std::string("Bearer ") + kReader, Role::kWriter), C::PERMISSION_DENIED);
  EXPECT_EQ(code(std::string("Bearer ") + kWriter, Role::kReader), C::OK);
  EXPECT_EQ(code(std::string("Bearer ") + kWriter, Role::kAdmin), C::PERMISSION_DENIED);
  EXPECT_EQ(code(std::string("Bearer ") + kAdmin, Role::kAdmin), C::OK);
  // The message names the roles, never the token.
  grpc::Status s = auth.CheckHeader(std::string("Bearer ") + kReader, Role::kAdmin);
  EXPECT_NE(s.error_message().find("needs role admin"), std::string::npos);
  EXPECT_EQ(s.error_message().find(kReader), std::string::npos);
}

TEST(LoopbackTest, RecognisesLoopbackAddresses) {
  EXPECT_TRUE(server::IsLoopbackAddress("127.0.0.1:50051"));
  EXPECT_TRUE(server::IsLoopbackAddress("localhost:1"));
  EXPECT_TRUE(server::IsLoopbackAddress("[::1]:50051"));
  EXPECT_FALSE(server::IsLoopbackAddress("0.0.0.0:50051"));
  EXPECT_FALSE(server::IsLoopbackAddress("[::]:50051"));
  EXPECT_FALSE(server::IsLoopbackAddress("10.1.2.3:50051"));
}

class SecureServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("debias_auth_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }
  void WriteTokens(const std::string& text) { std::ofstream(dir_ / "tokens") << text; }
  server::ServerOptions Options() {
    server::ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.data_dir = (dir_ / "db").string();
    return o;
  }
  std::unique_ptr<Client> Connect(ClientOptions o = {}) {
    return Client::Connect("127.0.0.1:" + std::to_string(server_->port()), o);
  }
  std::unique_ptr<Client> WithToken(const std::string& token) {
    ClientOptions o;
    o.token = token;
    return Connect(o);
  }
  // A CA and certificates for the server (localhost, 127.0.0.1) and a client.
  bool MakeCertificates() {
    const std::string d = dir_.string();
    const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    const std::string cmd =
        "cd " + d + " && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.cnf && " +
        "openssl req -x509 " + key + " -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca && " +
        "openssl req " + key + " -keyout server.key -out server.csr -subj /CN=localhost && " +
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial " +
        "-out server.pem -days 2 -extfile san.cnf && " +
        "openssl req " + key + " -keyout client.key -out client.csr -subj /CN=client && " +
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial " +
        "-out client.pem -days 2";
    return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
  }

  fs::path dir_;
  std::unique_ptr<server::DebiasServer> server_;
};

TEST_F(SecureServerTest, TokensGateEveryCallByRoleAndReloadOnRequest) {
  WriteTokens(absl::StrCat("reader ", kReader, "\nwriter ", kWriter, "\nadmin ", kAdmin, "\n"));
  server::ServerOptions o = Options();
  o.auth_tokens = (dir_ / "tokens").string();
  auto s = server::DebiasServer::Start(o);
  ASSERT_OK(s);
  server_ = std::move(*s);

  EXPECT_OK(Connect()->Health());  // health checks need no token
  EXPECT_THAT(Connect()->ListDatasets(), StatusIs(absl::StatusCode::kUnauthenticated, ""));
  EXPECT_THAT(WithToken("not-a-token-at-all-xx")->ListDatasets(),
              StatusIs(absl::StatusCode::kUnauthenticated, ""));
  EXPECT_OK(WithToken(kReader)->ListDatasets());

  data::Interaction e;
  e.user = "u";
  e.item = "i";
  std::vector<data::Interaction> events{e};
  EXPECT_THAT(WithToken(kReader)->Ingest("d", events).status,
              StatusIs(absl::StatusCode::kPermissionDenied, "writer"));
  EXPECT_THAT(Connect()->Ingest("d", events).status,
              StatusIs(absl::StatusCode::kUnauthenticated, ""));
  IngestSummary ok = WithToken(kWriter)->Ingest("d", events);
  ASSERT_OK(ok.status);
  EXPECT_EQ(ok.events_acknowledged, 1u);
  EXPECT_THAT(WithToken(kWriter)->DeleteDataset("d"),
              StatusIs(absl::StatusCode::kPermissionDenied, "admin"));
  EXPECT_OK(WithToken(kReader)->GetStats("d"));
  v1::TrainRequest t;
  t.set_dataset("d");
  t.set_loss("naive");
  EXPECT_THAT(WithToken(kReader)->Train(t), StatusIs(absl::StatusCode::kPermissionDenied, ""));
  EXPECT_OK(WithToken(kAdmin)->DeleteDataset("d"));

  // Rotate: the reader token is replaced; a broken file keeps the old table.
  WriteTokens(absl::StrCat("reader reader-token-NEW-0123456789\nadmin ", kAdmin, "\n"));
  ASSERT_OK(server_->ReloadTokens());
  EXPECT_THAT(WithToken(kReader)->ListDatasets(), StatusIs(absl::StatusCode::kUnauthenticated, ""));
  EXPECT_OK(WithToken("reader-token-NEW-0123456789")->ListDatasets());
  WriteTokens("superuser x\n");
  EXPECT_THAT(server_->ReloadTokens(), StatusIs(absl::StatusCode::kInvalidArgument, ""));
  EXPECT_OK(WithToken("reader-token-NEW-0123456789")->ListDatasets());
}

TEST_F(SecureServerTest, BadTokenFilesAndPlaintextOnTheNetworkAreRefused) {
  server::ServerOptions o = Options();
  o.auth_tokens = (dir_ / "missing").string();
  EXPECT_THAT(server::DebiasServer::Start(o).status(),
              StatusIs(absl::StatusCode::kNotFound, "auth_tokens"));
  WriteTokens("reader tiny\n");
  o.auth_tokens = (dir_ / "tokens").string();
  EXPECT_THAT(server::DebiasServer::Start(o).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "line 1"));

  o = Options();
  o.listen = "0.0.0.0:0";
  EXPECT_THAT(server::DebiasServer::Start(o).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, "allow_insecure"));
  o.allow_insecure = true;
  auto s = server::DebiasServer::Start(o);
  ASSERT_OK(s);
  server_ = std::move(*s);
  EXPECT_OK(Connect()->Health());
}

TEST_F(SecureServerTest, TlsAndMutualTls) {
  if (std::system("openssl version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl";
  ASSERT_TRUE(MakeCertificates());
  const std::string d = dir_.string();
  server::ServerOptions o = Options();
  o.tls_cert = d + "/server.pem";
  o.tls_key = d + "/server.key";
  auto s = server::DebiasServer::Start(o);
  ASSERT_OK(s);
  server_ = std::move(*s);
  ClientOptions tls;
  tls.tls_ca = d + "/ca.pem";
  tls.timeout = std::chrono::milliseconds(5000);
  EXPECT_OK(Connect(tls)->ListDatasets());
  ClientOptions plain;
  plain.timeout = std::chrono::milliseconds(2000);
  EXPECT_THAT(Connect(plain)->ListDatasets(), StatusIs(absl::StatusCode::kUnavailable, ""));
  ClientOptions wrong_ca = tls;
  wrong_ca.tls_ca = d + "/client.pem";  // not the CA
  EXPECT_THAT(Connect(wrong_ca)->ListDatasets(), StatusIs(absl::StatusCode::kUnavailable, ""));
  server_.reset();

  // Mutual TLS: the client must present a certificate signed by the CA.
  o.data_dir = d + "/db2";
  o.tls_client_ca = d + "/ca.pem";
  s = server::DebiasServer::Start(o);
  ASSERT_OK(s);
  server_ = std::move(*s);
  EXPECT_THAT(Connect(tls)->ListDatasets(), StatusIs(absl::StatusCode::kUnavailable, ""));
  ClientOptions mutual = tls;
  mutual.tls_cert = d + "/client.pem";
  mutual.tls_key = d + "/client.key";
  EXPECT_OK(Connect(mutual)->ListDatasets());

  // Broken TLS settings are clear errors at start.
  o.tls_key = d + "/nope.key";
  EXPECT_THAT(server::DebiasServer::Start(o).status(),
              StatusIs(absl::StatusCode::kNotFound, "tls_key"));
  o.tls_key = d + "/san.cnf";
  EXPECT_THAT(server::DebiasServer::Start(o).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "PEM"));
}

}  // namespace
}  // namespace debias

namespace debias {
namespace {

TEST_F(SecureServerTest, InFlightCapAnswersResourceExhaustedAndHealthStillAnswers) {
  server::ServerOptions o = Options();
  o.limits.max_in_flight = 1;
  auto s = server::DebiasServer::Start(o);
  ASSERT_OK(s);
  server_ = std::move(*s);
  auto client = Connect();
  // An open ingest stream holds the only slot until the client closes it.
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::DatasetService::NewStub(channel);
  grpc::ClientContext stream_ctx;
  auto stream = stub->Ingest(&stream_ctx);
  v1::IngestRequest first;
  first.set_dataset("d");
  first.set_create_if_missing(true);
  auto* e = first.add_events();
  e->set_user("u");
  e->set_item("i");
  e->set_label(1);
  ASSERT_TRUE(stream->Write(first));
  v1::IngestResponse ack;
  ASSERT_TRUE(stream->Read(&ack));  // the handler is running and holds the slot
  EXPECT_THAT(client->ListDatasets(),
              StatusIs(absl::StatusCode::kResourceExhausted, "max_in_flight"));
  EXPECT_OK(client->Health());
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_OK(client->ListDatasets());  // the slot came back
}

}  // namespace
}  // namespace debias
