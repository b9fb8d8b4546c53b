// Wire-level malformed-request suite (issue 9, "Bad input"): every RPC of
// every debias service gets empty, unparseable, oversize, wrong-type and
// out-of-range requests as raw bytes through grpc::GenericStub, and each
// answer must carry the documented status code (and name the field or limit),
// after which the server must still answer its health check.
//
// The RPCs are enumerated from the generated descriptors, so a new RPC
// without rows in the tables below fails CoversEveryRpc.
//
// Codes: field validation INVALID_ARGUMENT, absent objects NOT_FOUND, name
// taken ALREADY_EXISTS, wrong state FAILED_PRECONDITION (proto comments and
// docs/SECURITY.md); a message past --max_message_bytes RESOURCE_EXHAUSTED
// (gRPC's own check); bytes that are not a protobuf message of the method's
// request type INTERNAL (gRPC's deserialisation failure, before any debias
// code runs); missing/unknown token UNAUTHENTICATED, too small a role
// PERMISSION_DENIED, past --max_in_flight RESOURCE_EXHAUSTED naming it.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/text_format.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/util/status_matchers.h"

namespace debias {
namespace {

namespace fs = std::filesystem;
using C = grpc::StatusCode;

constexpr char kReaderToken[] = "wire-reader-token-0123456789";
constexpr char kWriterToken[] = "wire-writer-token-0123456789";
constexpr char kAdminToken[] = "wire-admin-token-01234567890";
// Small enough that an oversize message is cheap to build, large enough for
// a max_events_per_batch + 1 batch of tiny events.
constexpr int kMaxMessageBytes = 3 << 20;

// The token each RPC needs at least (server/auth.h), by method name.
enum class Need { kReader, kWriter, kAdmin };
const std::map<std::string, Need>& Roles() {
  static const auto* roles = new std::map<std::string, Need>{
      {"CreateDataset", Need::kWriter}, {"ListDatasets", Need::kReader},
      {"GetDataset", Need::kReader},    {"DeleteDataset", Need::kAdmin},
      {"Ingest", Need::kWriter},        {"GetStats", Need::kReader},
      {"Export", Need::kWriter},        {"Train", Need::kWriter},
      {"ListModels", Need::kReader},    {"GetModel", Need::kReader},
      {"DeleteModel", Need::kAdmin},    {"CancelTraining", Need::kWriter},
      {"ListMethods", Need::kReader},   {"Score", Need::kReader},
      {"TopK", Need::kReader},          {"BatchScore", Need::kReader},
      {"BatchTopK", Need::kReader},
      {"GetPropensities", Need::kReader}, {"SampleNegatives", Need::kWriter},
      {"Evaluate", Need::kReader},      {"ExportModel", Need::kWriter},
      {"ImportModel", Need::kWriter},   {"Backup", Need::kAdmin},
      {"SetModelLabel", Need::kWriter}, {"GetModelLabels", Need::kReader},
  };
  return *roles;
}

// The answer to an empty request (all fields default): the List* calls
// succeed, Backup says backups are off (this server has no --backup_dir),
// everything else names a required field.
C EmptyRequestCode(const std::string& method) {
  if (method == "Backup") return C::FAILED_PRECONDITION;
  return method.rfind("List", 0) == 0 ? C::OK : C::INVALID_ARGUMENT;
}

struct Rpc {
  std::string method;  // "/debias.v1.DatasetService/Ingest"
  std::string name;    // "Ingest"
  const google::protobuf::MethodDescriptor* desc;
};

// Every RPC of every service declared in proto/debias/v1/*.proto (found
// next to this file); a declared service the test binary does not link
// (so the server cannot serve it) is a failure.
const std::vector<Rpc>& AllRpcs() {
  static const auto* rpcs = [] {
    auto* out = new std::vector<Rpc>;
    const fs::path dir = fs::path(DEBIAS_SOURCE_DIR) /
                         "proto" / "debias" / "v1";
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.path().extension() == ".proto") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    EXPECT_GE(files.size(), 5u) << "no protos found in " << dir;
    const auto* pool = google::protobuf::DescriptorPool::generated_pool();
    for (const fs::path& f : files) {
      const std::string name = "debias/v1/" + f.filename().string();
      const auto* file = pool->FindFileByName(name);
      if (file == nullptr) {
        std::ifstream in(f);
        std::stringstream text;
        text << in.rdbuf();
        EXPECT_EQ(text.str().find("\nservice "), std::string::npos)
            << name << " declares a service that the server library does not link";
        continue;
      }
      for (int s = 0; s < file->service_count(); ++s) {
        const auto* service = file->service(s);
        for (int m = 0; m < service->method_count(); ++m) {
          const auto* md = service->method(m);
          out->push_back({absl::StrCat("/", service->full_name(), "/", md->name()), md->name(), md});
        }
      }
    }
    return out;
  }();
  return *rpcs;
}

const Rpc* FindRpc(const std::string& service_slash_method) {
  for (const Rpc& r : AllRpcs()) {
    if (r.method == "/debias.v1." + service_slash_method) return &r;
  }
  return nullptr;
}

// A request of the method's input type from protobuf text format, through a
// dynamic message (rows for RPCs whose generated classes this file need not
// know).
std::string FromText(const Rpc& rpc, const std::string& text) {
  google::protobuf::DynamicMessageFactory factory;
  std::unique_ptr<google::protobuf::Message> m(
      factory.GetPrototype(rpc.desc->input_type())->New());
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, m.get()))
      << rpc.method << ": bad text '" << text << "'";
  return m->SerializeAsString();
}

// One call of any kind through the generic stub: sends `messages` (raw
// bytes, one gRPC message each), half-closes, reads every response.
struct Answer {
  grpc::Status status;
  std::vector<std::string> responses;
};

class RawCall : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  RawCall(grpc::GenericStub* stub, grpc::ClientContext* ctx, const std::string& method,
          std::vector<std::string> messages)
      : messages_(std::move(messages)) {
    stub->PrepareBidiStreamingCall(ctx, method, grpc::StubOptions(), this);
    StartRead(&in_);
    NextWrite();
    StartCall();
  }
  void OnWriteDone(bool ok) override {
    if (ok) NextWrite();  // else the server has ended the call; OnDone follows
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    std::vector<grpc::Slice> slices;
    std::string bytes;
    if (in_.Dump(&slices).ok()) {
      for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    answer_.responses.push_back(std::move(bytes));
    StartRead(&in_);
  }
  void OnDone(const grpc::Status& s) override {
    std::lock_guard<std::mutex> l(mu_);
    answer_.status = s;
    done_ = true;
    cv_.notify_all();
  }
  Answer Await() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return done_; });
    return std::move(answer_);
  }

 private:
  void NextWrite() {
    if (next_ == messages_.size()) {
      StartWritesDone();
      return;
    }
    grpc::Slice slice(messages_[next_]);
    out_ = grpc::ByteBuffer(&slice, 1);
    ++next_;
    StartWrite(&out_);
  }
  std::vector<std::string> messages_;
  size_t next_ = 0;
  grpc::ByteBuffer out_, in_;
  Answer answer_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

// --- Request builders ---------------------------------------------------------

template <typename M>
std::string Bytes(const M& m) {
  return m.SerializeAsString();
}

v1::Interaction Event(const std::string& user, const std::string& item, float label = 1) {
  v1::Interaction e;
  e.set_user(user);
  e.set_item(item);
  e.set_label(label);
  return e;
}

std::string IngestMsg(const std::string& dataset, std::vector<v1::Interaction> events,
                      bool create = false) {
  v1::IngestRequest r;
  r.set_dataset(dataset);
  r.set_create_if_missing(create);
  for (auto& e : events) *r.add_events() = std::move(e);
  return Bytes(r);
}

// Byte strings that are not a protobuf message of any type: an invalid wire
// type (7), a length-delimited field longer than the message, a varint that
// never ends, and (for requests with a string field) that field holding
// invalid UTF-8, which proto3 parsers reject.
std::vector<std::pair<std::string, std::string>> Garbage(
    const google::protobuf::MethodDescriptor* md) {
  std::vector<std::pair<std::string, std::string>> out = {
      {"invalid_wire_type", std::string("\x0f\xff\xff\xff\xff", 5)},
      {"truncated_length", std::string("\x0a\x64" "abc", 5)},
      {"endless_varint", std::string("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 12)},
  };
  const auto* type = md->input_type();
  for (int f = 0; f < type->field_count(); ++f) {
    const auto* field = type->field(f);
    if (field->type() != google::protobuf::FieldDescriptor::TYPE_STRING) continue;
    std::string utf8;
    utf8.push_back(static_cast<char>(field->number() << 3 | 2));  // numbers < 16
    utf8.push_back('\x02');
    utf8.push_back('\xff');
    utf8.push_back('\xfe');
    out.emplace_back(absl::StrCat("invalid_utf8_in_", field->name()), utf8);
    break;
  }
  return out;
}

// Another message's bytes, chosen so that its only field, number 1, has a
// different wire type from the method's field 1: a protobuf parser keeps such
// a field as unknown, so the server sees an empty request and must say so.
std::string ForeignBytes(const google::protobuf::MethodDescriptor* md) {
  using FD = google::protobuf::FieldDescriptor;
  const auto* f1 = md->input_type()->FindFieldByNumber(1);
  EXPECT_TRUE(f1 == nullptr || !f1->is_repeated() || f1->type() == FD::TYPE_MESSAGE ||
              f1->type() == FD::TYPE_STRING)
      << md->full_name() << ": field 1 is a repeated scalar; pick another foreign message";
  if (f1 != nullptr && (f1->type() == FD::TYPE_STRING || f1->type() == FD::TYPE_BYTES ||
                        f1->type() == FD::TYPE_MESSAGE)) {
    v1::GetModelRequest r;  // field 1: varint
    r.set_id(42);
    return Bytes(r);
  }
  v1::CreateDatasetRequest r;  // field 1: length-delimited
  r.set_name("foreign");
  return Bytes(r);
}

// --- The server ---------------------------------------------------------------

class WireMalformedTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() /
                        ("debias_wire_test_" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    {
      std::ofstream f(*dir_ / "tokens");
      f << "reader " << kReaderToken << "\nwriter " << kWriterToken << "\nadmin "
        << kAdminToken << "\n";
    }
    server::ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.data_dir = (*dir_ / "db").string();
    o.auth_tokens = (*dir_ / "tokens").string();
    o.limits.max_message_bytes = kMaxMessageBytes;
    auto s = server::DebiasServer::Start(o);
    ASSERT_OK(s);
    server_ = s->release();
    target_ = new std::string("127.0.0.1:" + std::to_string(server_->port()));
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(-1);
    args.SetMaxReceiveMessageSize(-1);
    auto channel =
        grpc::CreateCustomChannel(*target_, grpc::InsecureChannelCredentials(), args);
    stub_ = new grpc::GenericStub(channel);
    ClientOptions co;
    co.token = kAdminToken;
    client_ = Client::Connect(*target_, co).release();

    // A small implicit dataset and a tiny ready model for the scoring rows.
    std::vector<data::Interaction> events;
    for (int u = 0; u < 30; ++u) {
      for (int i = 0; i < 12; ++i) {
        if ((u * 7 + i * 3) % 4 != 0) continue;
        data::Interaction e;
        e.user = absl::StrCat("u", u);
        e.item = absl::StrCat("i", i);
        events.push_back(e);
      }
    }
    ASSERT_OK(client_->Ingest("clicks", events).status);
    v1::TrainRequest tr;
    tr.set_dataset("clicks");
    tr.set_loss("relmf");
    tr.set_seed(1);
    (*tr.mutable_params())["epochs"] = "1";
    (*tr.mutable_params())["dim"] = "4";
    auto m = client_->Train(tr);
    ASSERT_OK(m);
    ASSERT_EQ(m->state(), "ready") << m->error();
    model_id_ = m->id();
  }
  static void TearDownTestSuite() {
    delete client_;
    delete stub_;
    delete server_;
    fs::remove_all(*dir_);
    delete dir_;
    delete target_;
  }

  // `token` empty: no authorization metadata.
  static Answer Call(const std::string& method, std::vector<std::string> messages,
                     const std::string& token = kAdminToken) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (!token.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    RawCall call(stub_, &ctx, method, std::move(messages));
    return call.Await();
  }

  // The server answers health (health needs no token) within 2 s.
  static void ExpectHealthy(const std::string& after) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    auto stub = grpc::health::v1::Health::NewStub(client_->channel());
    grpc::Status s = stub->Check(&ctx, req, &resp);
    EXPECT_TRUE(s.ok() && resp.status() == grpc::health::v1::HealthCheckResponse::SERVING)
        << "health after " << after << ": " << s.error_message();
  }

  static void Expect(const std::string& what, const Answer& a, C code,
                     const std::string& substr = "") {
    EXPECT_EQ(a.status.error_code(), code)
        << what << ": got code " << a.status.error_code() << " '" << a.status.error_message()
        << "'";
    if (!substr.empty()) {
      EXPECT_NE(a.status.error_message().find(substr), std::string::npos)
          << what << ": message '" << a.status.error_message() << "' lacks '" << substr << "'";
    }
    ExpectHealthy(what);
  }

  static fs::path* dir_;
  static server::DebiasServer* server_;
  static std::string* target_;
  static grpc::GenericStub* stub_;
  static Client* client_;
  static uint64_t model_id_;
};

fs::path* WireMalformedTest::dir_ = nullptr;
server::DebiasServer* WireMalformedTest::server_ = nullptr;
std::string* WireMalformedTest::target_ = nullptr;
grpc::GenericStub* WireMalformedTest::stub_ = nullptr;
Client* WireMalformedTest::client_ = nullptr;
uint64_t WireMalformedTest::model_id_ = 0;

// --- Generic rows: every RPC -----------------------------------------------------

TEST_F(WireMalformedTest, CoversEveryRpc) {
  const auto rpcs = AllRpcs();
  EXPECT_GE(rpcs.size(), 19u);
  for (const Rpc& r : rpcs) {
    EXPECT_TRUE(Roles().count(r.name)) << r.method << " has no row in Roles()";
  }
}

TEST_F(WireMalformedTest, EmptyRequests) {
  for (const Rpc& r : AllRpcs()) {
    Expect(absl::StrCat(r.method, " empty"), Call(r.method, {""}), EmptyRequestCode(r.name));
  }
}

// gRPC parses the request before the handler runs: an unparseable unary or
// server-streaming request is INTERNAL. On a client stream (Ingest,
// ImportModel) the handler's Read() just returns false, as at the end of the
// stream, so the call ends as an empty stream would: Ingest OK with nothing
// acknowledged, ImportModel INVALID_ARGUMENT (no header). See
// IngestStopsAtAnUnparseableMessage for what that means for the batches.
TEST_F(WireMalformedTest, UnparseableBytesAreRejected) {
  for (const Rpc& r : AllRpcs()) {
    for (const auto& [name, bytes] : Garbage(r.desc)) {
      const std::string what = absl::StrCat(r.method, " ", name);
      Answer a = Call(r.method, {bytes});
      if (!r.desc->client_streaming()) {
        Expect(what, a, C::INTERNAL);
      } else if (r.name == "Ingest") {
        Expect(what, a, C::OK);
        EXPECT_TRUE(a.responses.empty()) << what << ": acknowledged garbage";
      } else {
        Expect(what, a, C::INVALID_ARGUMENT);
      }
    }
  }
}

// An unparseable message in the middle of an Ingest stream ends the stream
// there: batches before it are acknowledged and stored, nothing after it is
// applied, and the acknowledgements tell the client where it stopped.
TEST_F(WireMalformedTest, IngestStopsAtAnUnparseableMessage) {
  Answer a = Call("/debias.v1.DatasetService/Ingest",
                  {IngestMsg("garbled", {Event("u1", "i1")}, true),
                   std::string("\x0f\xff\xff\xff\xff", 5),
                   IngestMsg("", {Event("u3", "i3")})});
  EXPECT_EQ(a.responses.size(), 1u);
  auto stats = client_->GetStats("garbled");
  ASSERT_OK(stats);
  EXPECT_EQ(stats->events(), 1u) << "a batch after the unparseable message was applied";
  ExpectHealthy("garbled ingest");
}

TEST_F(WireMalformedTest, OversizeMessagesAreResourceExhausted) {
  const std::string big(kMaxMessageBytes + 1024, 'x');
  for (const Rpc& r : AllRpcs()) {
    Expect(absl::StrCat(r.method, " oversize"), Call(r.method, {big}), C::RESOURCE_EXHAUSTED);
  }
}

TEST_F(WireMalformedTest, WrongMessageTypesReadAsEmptyRequests) {
  for (const Rpc& r : AllRpcs()) {
    Expect(absl::StrCat(r.method, " wrong type"), Call(r.method, {ForeignBytes(r.desc)}),
           EmptyRequestCode(r.name));
  }
}

TEST_F(WireMalformedTest, TokensAndRolesAreCheckedOnEveryRpc) {
  for (const Rpc& r : AllRpcs()) {
    Expect(absl::StrCat(r.method, " no token"), Call(r.method, {""}, ""), C::UNAUTHENTICATED);
    Expect(absl::StrCat(r.method, " unknown token"),
           Call(r.method, {""}, "not-a-configured-token-000"), C::UNAUTHENTICATED);
    const Need need = Roles().at(r.name);
    if (need >= Need::kWriter) {
      Expect(absl::StrCat(r.method, " reader token"), Call(r.method, {""}, kReaderToken),
             C::PERMISSION_DENIED);
    }
    if (need == Need::kAdmin) {
      Expect(absl::StrCat(r.method, " writer token"), Call(r.method, {""}, kWriterToken),
             C::PERMISSION_DENIED);
    }
  }
}

// --- Out-of-range rows ---------------------------------------------------------------

struct Row {
  std::string method;  // service/method, e.g. "DatasetService/GetDataset"
  std::string what;
  std::vector<std::string> messages;
  C code;
  std::string substr;  // the message names the field or the limit
  // Alternatively the messages in protobuf text format.
  std::vector<std::string> text = {};
};

std::vector<Row> OutOfRangeRows(uint64_t model) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<Row> rows;
  auto add = [&](std::string method, std::string what, std::vector<std::string> msgs, C code,
                 std::string substr) {
    rows.push_back({std::move(method), std::move(what), std::move(msgs), code, std::move(substr)});
  };

  // DatasetService -------------------------------------------------------------
  const std::string DS = "DatasetService/";
  auto create = [](std::string name, std::string desc = "", std::string fb = "") {
    v1::CreateDatasetRequest r;
    r.set_name(name);
    r.set_description(desc);
    r.set_feedback(fb);
    return Bytes(r);
  };
  add(DS + "CreateDataset", "slash in name", {create("a/b")}, C::INVALID_ARGUMENT, "dataset name");
  add(DS + "CreateDataset", "leading dot", {create(".hidden")}, C::INVALID_ARGUMENT, "dataset name");
  add(DS + "CreateDataset", "129-char name", {create(std::string(129, 'a'))}, C::INVALID_ARGUMENT,
      "1-128");
  add(DS + "CreateDataset", "NUL in name", {create(std::string("a\0b", 3))}, C::INVALID_ARGUMENT,
      "dataset name");
  add(DS + "CreateDataset", "unknown feedback", {create("fb", "", "sometimes")},
      C::INVALID_ARGUMENT, "feedback");
  add(DS + "CreateDataset", "4097-byte description", {create("desc", std::string(4097, 'd'))},
      C::INVALID_ARGUMENT, "description");
  add(DS + "CreateDataset", "name taken", {create("clicks")}, C::ALREADY_EXISTS, "clicks");
  auto named = [](auto r, std::string name) {
    r.set_name(name);
    return Bytes(r);
  };
  add(DS + "GetDataset", "absent", {named(v1::GetDatasetRequest(), "absent")}, C::NOT_FOUND,
      "absent");
  add(DS + "GetDataset", "bad name", {named(v1::GetDatasetRequest(), "../etc")},
      C::INVALID_ARGUMENT, "dataset name");
  add(DS + "DeleteDataset", "absent", {named(v1::DeleteDatasetRequest(), "absent")},
      C::NOT_FOUND, "absent");
  add(DS + "DeleteDataset", "bad name", {named(v1::DeleteDatasetRequest(), "a b")},
      C::INVALID_ARGUMENT, "dataset name");
  add(DS + "GetStats", "absent", {named(v1::GetStatsRequest(), "absent")}, C::NOT_FOUND,
      "absent");
  add(DS + "GetStats", "bad name", {named(v1::GetStatsRequest(), "-x")}, C::INVALID_ARGUMENT,
      "dataset name");
  {
    v1::ExportRequest r;
    r.set_name("clicks");
    r.set_batch_size(100001);
    add(DS + "Export", "batch_size over max_export_batch", {Bytes(r)}, C::INVALID_ARGUMENT,
        "batch_size=100001");
    r.set_batch_size(std::numeric_limits<uint32_t>::max());
    add(DS + "Export", "batch_size uint32 max", {Bytes(r)}, C::INVALID_ARGUMENT, "batch_size");
    r.set_batch_size(0);
    r.set_name("absent");
    add(DS + "Export", "absent", {Bytes(r)}, C::NOT_FOUND, "absent");
  }
  // Ingest: every bad event rejects its batch; nothing of it is stored (checked
  // by IngestRejectionsStoreNothing).
  auto bad_event = [&](std::string what, v1::Interaction e, std::string substr) {
    add(DS + "Ingest", what, {IngestMsg("bad-ingest", {Event("u", "i"), e}, true)},
        C::INVALID_ARGUMENT, substr);
  };
  bad_event("empty user", Event("", "i"), "events[1].user");
  bad_event("empty item", Event("u", ""), "events[1].item");
  bad_event("NaN label", Event("u", "i", nan), "label");
  bad_event("inf label", Event("u", "i", inf), "label");
  bad_event("-inf label", Event("u", "i", -inf), "label");
  bad_event("1025-byte user", Event(std::string(1025, 'u'), "i"), "user");
  bad_event("1025-byte item", Event("u", std::string(1025, 'i')), "item");
  {
    v1::Interaction e = Event("u", "i");
    e.set_position(0);
    bad_event("position 0", e, "position=0");
    e.set_position(-3);
    bad_event("negative position", e, "position=-3");
    e.set_position(100001);
    bad_event("position past 100000", e, "position=100001");
  }
  for (float p : {0.0f, -0.5f, 1.5f, nan, inf}) {
    v1::Interaction e = Event("u", "i");
    e.set_propensity(p);
    bad_event(absl::StrCat("propensity ", p), e, "propensity");
  }
  {
    v1::Interaction e = Event("u", "i");
    e.set_list_id("");
    bad_event("empty list_id", e, "list_id");
    e = Event("u", "i");
    for (int k = 0; k < 4097; ++k) e.add_features(0.5f);
    bad_event("4097 features", e, "features");
    e = Event("u", "i");
    e.add_features(1.0f);
    e.add_features(nan);
    bad_event("NaN feature", e, "features[1]");
    e = Event("u", "i");
    e.set_event_id(std::string(1025, 'e'));
    bad_event("1025-byte event_id", e, "event_id");
  }
  add(DS + "Ingest", "no dataset in first message", {IngestMsg("", {Event("u", "i")})},
      C::INVALID_ARGUMENT, "dataset: required");
  add(DS + "Ingest", "bad dataset name", {IngestMsg("a/b", {Event("u", "i")}, true)},
      C::INVALID_ARGUMENT, "dataset name");
  add(DS + "Ingest", "absent dataset, no create_if_missing",
      {IngestMsg("absent", {Event("u", "i")})}, C::NOT_FOUND, "create_if_missing");
  add(DS + "Ingest", "second message names another dataset",
      {IngestMsg("bad-ingest-2", {Event("u", "i")}, true), IngestMsg("clicks", {Event("u", "i")})},
      C::INVALID_ARGUMENT, "one dataset");
  {
    std::vector<v1::Interaction> many(100001, Event("u", "i"));
    add(DS + "Ingest", "100001 events in one message", {IngestMsg("bad-ingest", many, true)},
        C::INVALID_ARGUMENT, "at most 100000");
  }

  // ModelService -----------------------------------------------------------------
  const std::string MS = "ModelService/";
  auto train = [](std::string dataset, std::string loss) {
    v1::TrainRequest r;
    r.set_dataset(dataset);
    r.set_loss(loss);
    (*r.mutable_params())["epochs"] = "1";
    return r;
  };
  add(MS + "Train", "no loss", {Bytes(train("clicks", ""))}, C::INVALID_ARGUMENT, "loss");
  add(MS + "Train", "unknown loss", {Bytes(train("clicks", "no-such-loss"))}, C::INVALID_ARGUMENT,
      "no-such-loss");
  add(MS + "Train", "absent dataset", {Bytes(train("absent", "relmf"))}, C::NOT_FOUND, "absent");
  add(MS + "Train", "bad dataset name", {Bytes(train("a/b", "relmf"))}, C::INVALID_ARGUMENT,
      "dataset name");
  add(MS + "Train", "loss for another feedback kind", {Bytes(train("clicks", "dla"))},
      C::INVALID_ARGUMENT, "feedback");
  {
    auto r = train("clicks", "relmf");
    r.set_feedback("sometimes");
    add(MS + "Train", "unknown feedback", {Bytes(r)}, C::INVALID_ARGUMENT, "sometimes");
  }
  for (double clip : {0.0, -1.0, 1.5, std::nan("")}) {
    auto r = train("clicks", "relmf");
    r.set_clip(clip);
    add(MS + "Train", absl::StrCat("clip ", clip), {Bytes(r)}, C::INVALID_ARGUMENT, "clip");
  }
  {
    auto r = train("clicks", "relmf");
    r.set_threshold(std::nan(""));
    add(MS + "Train", "NaN threshold", {Bytes(r)}, C::INVALID_ARGUMENT, "threshold");
    r = train("clicks", "relmf");
    for (int k = 0; k < 65; ++k) (*r.mutable_params())[absl::StrCat("p", k)] = "1";
    add(MS + "Train", "65 params", {Bytes(r)}, C::INVALID_ARGUMENT, "at most 64");
    r = train("clicks", "relmf");
    (*r.mutable_params())[std::string(129, 'k')] = "1";
    add(MS + "Train", "129-byte param key", {Bytes(r)}, C::INVALID_ARGUMENT, "params");
    r = train("clicks", "relmf");
    (*r.mutable_params())["dim"] = std::string(4097, '1');
    add(MS + "Train", "4097-byte param value", {Bytes(r)}, C::INVALID_ARGUMENT, "params");
    r = train("clicks", "relmf");
    r.set_mar_dataset("a/b");
    add(MS + "Train", "bad mar_dataset name", {Bytes(r)}, C::INVALID_ARGUMENT, "mar_dataset");
    r.set_mar_dataset("absent");
    add(MS + "Train", "absent mar_dataset", {Bytes(r)}, C::NOT_FOUND, "absent");
  }
  auto id_req = [](auto r, uint64_t id) {
    r.set_id(id);
    return Bytes(r);
  };
  const uint64_t absent_model = 1u << 30;
  add(MS + "GetModel", "absent", {id_req(v1::GetModelRequest(), absent_model)}, C::NOT_FOUND,
      "not found");
  add(MS + "GetModel", "uint64 max", {id_req(v1::GetModelRequest(), UINT64_MAX)}, C::NOT_FOUND,
      "not found");
  add(MS + "DeleteModel", "absent", {id_req(v1::DeleteModelRequest(), absent_model)},
      C::NOT_FOUND, "not found");
  add(MS + "CancelTraining", "absent", {id_req(v1::CancelTrainingRequest(), absent_model)},
      C::NOT_FOUND, "not found");
  add(MS + "CancelTraining", "model not training", {id_req(v1::CancelTrainingRequest(), model)},
      C::FAILED_PRECONDITION, "not training");

  // ScoringService -----------------------------------------------------------------
  const std::string SS = "ScoringService/";
  auto score = [&](std::string user, std::vector<std::string> items, uint64_t id) {
    v1::ScoreRequest r;
    r.set_model_id(id);
    r.set_user(user);
    for (auto& i : items) r.add_items(i);
    return r;
  };
  add(SS + "Score", "absent model", {Bytes(score("u0", {"i0"}, absent_model))}, C::NOT_FOUND,
      "not found");
  add(SS + "Score", "no items", {Bytes(score("u0", {}, model))}, C::INVALID_ARGUMENT, "items");
  add(SS + "Score", "10001 items", {Bytes(score("u0", std::vector<std::string>(10001, "i0"), model))},
      C::INVALID_ARGUMENT, "max_candidates");
  add(SS + "Score", "unknown user", {Bytes(score("nobody", {"i0"}, model))}, C::NOT_FOUND,
      "nobody");
  add(SS + "Score", "empty user", {Bytes(score("", {"i0"}, model))}, C::INVALID_ARGUMENT, "user");
  add(SS + "Score", "unknown item", {Bytes(score("u0", {"i0", "nothing"}, model))}, C::NOT_FOUND,
      "items[1]");
  {
    auto r = score("u0", {"i0"}, model);
    r.add_candidates()->add_features(1.0f);
    add(SS + "Score", "items and candidates", {Bytes(r)}, C::INVALID_ARGUMENT, "one or the other");
    r = score("", {}, model);
    r.add_candidates()->add_features(1.0f);
    add(SS + "Score", "candidates for an id model", {Bytes(r)}, C::INVALID_ARGUMENT, "candidates");
  }
  auto topk = [&](uint32_t k, std::string user = "u0", uint64_t id = 0) {
    v1::TopKRequest r;
    r.set_model_id(id ? id : model);
    r.set_user(user);
    r.set_k(k);
    return r;
  };
  add(SS + "TopK", "k=0", {Bytes(topk(0))}, C::INVALID_ARGUMENT, "k=0");
  add(SS + "TopK", "k=1001", {Bytes(topk(1001))}, C::INVALID_ARGUMENT, "k=1001: must be in [1, 1000]");
  add(SS + "TopK", "k=uint32 max", {Bytes(topk(UINT32_MAX))}, C::INVALID_ARGUMENT, "must be in");
  add(SS + "TopK", "unknown user", {Bytes(topk(5, "nobody"))}, C::NOT_FOUND, "nobody");
  add(SS + "TopK", "absent model", {Bytes(topk(5, "u0", absent_model))}, C::NOT_FOUND,
      "not found");
  {
    auto r = topk(5);
    for (int c = 0; c < 10001; ++c) r.add_candidates()->set_item("c");
    add(SS + "TopK", "10001 candidates", {Bytes(r)}, C::INVALID_ARGUMENT, "max_candidates");
  }
  {
    auto r = topk(5);
    r.set_retrieval("fast");
    add(SS + "TopK", "unknown retrieval", {Bytes(r)}, C::INVALID_ARGUMENT,
        "retrieval='fast': must be auto, exact or approximate");
    r.set_retrieval("approximate");
    add(SS + "TopK", "approximate without an index", {Bytes(r)}, C::FAILED_PRECONDITION,
        "model " + std::to_string(model) + ": retrieval=approximate");
  }
  auto batch_topk = [&](int users, uint32_t k, uint64_t id = 0) {
    v1::BatchTopKRequest r;
    r.set_model_id(id ? id : model);
    for (int u = 0; u < users; ++u) r.add_users("u0");
    r.set_k(k);
    return r;
  };
  add(SS + "BatchTopK", "no users", {Bytes(batch_topk(0, 5))}, C::INVALID_ARGUMENT,
      "users: 0 given; must be in [1, 1000]");
  add(SS + "BatchTopK", "1001 users", {Bytes(batch_topk(1001, 5))}, C::INVALID_ARGUMENT,
      "users: 1001 given; must be in [1, 1000]");
  add(SS + "BatchTopK", "k=0", {Bytes(batch_topk(1, 0))}, C::INVALID_ARGUMENT, "k=0");
  add(SS + "BatchTopK", "k=1001", {Bytes(batch_topk(1, 1001))}, C::INVALID_ARGUMENT,
      "k=1001: must be in [1, 1000]");
  add(SS + "BatchTopK", "absent model", {Bytes(batch_topk(1, 5, absent_model))}, C::NOT_FOUND,
      "not found");
  {
    auto r = batch_topk(2, 5);
    r.set_users(1, "nobody");
    add(SS + "BatchTopK", "unknown user", {Bytes(r)}, C::NOT_FOUND, "users[1]");
    r = batch_topk(1, 5);
    r.set_retrieval("fast");
    add(SS + "BatchTopK", "unknown retrieval", {Bytes(r)}, C::INVALID_ARGUMENT, "retrieval='fast'");
  }
  auto batch = [&](int users, int items_each, uint64_t id = 0) {
    v1::BatchScoreRequest r;
    r.set_model_id(id ? id : model);
    for (int u = 0; u < users; ++u) {
      auto* ui = r.add_requests();
      ui->set_user("u0");
      for (int i = 0; i < items_each; ++i) ui->add_items("i0");
    }
    return r;
  };
  add(SS + "BatchScore", "no users", {Bytes(batch(0, 1))}, C::INVALID_ARGUMENT, "requests");
  add(SS + "BatchScore", "1001 users", {Bytes(batch(1001, 1))}, C::INVALID_ARGUMENT, "1000");
  add(SS + "BatchScore", "a user with no items", {Bytes(batch(2, 0))}, C::INVALID_ARGUMENT,
      "requests[0].items");
  add(SS + "BatchScore", "10001 items for a user", {Bytes(batch(1, 10001))}, C::INVALID_ARGUMENT,
      "requests[0].items");
  add(SS + "BatchScore", "absent model", {Bytes(batch(1, 1, absent_model))}, C::NOT_FOUND,
      "not found");
  {
    auto r = batch(2, 1);
    r.mutable_requests(1)->set_user("nobody");
    add(SS + "BatchScore", "unknown user", {Bytes(r)}, C::NOT_FOUND, "requests[1]");
  }
  auto props = [&](int pairs, std::string user = "u0") {
    v1::GetPropensitiesRequest r;
    r.set_model_id(model);
    for (int k = 0; k < pairs; ++k) {
      auto* p = r.add_pairs();
      p->set_user(user);
      p->set_item("i0");
    }
    return r;
  };
  add(SS + "GetPropensities", "10001 pairs", {Bytes(props(10001))}, C::INVALID_ARGUMENT,
      "max_candidates");
  add(SS + "GetPropensities", "no pairs, no position curve", {Bytes(props(0))},
      C::INVALID_ARGUMENT, "pairs");
  add(SS + "GetPropensities", "unknown user", {Bytes(props(1, "nobody"))}, C::NOT_FOUND,
      "pairs[0]");
  auto neg = [&](uint32_t n, std::string sampler = "", std::string dataset = "clicks",
                 uint64_t id = 0) {
    v1::SampleNegativesRequest r;
    r.set_model_id(id);
    r.set_dataset(dataset);
    r.set_user("u0");
    r.set_n(n);
    r.set_sampler(sampler);
    r.set_seed(3);
    return r;
  };
  add(SS + "SampleNegatives", "model and dataset", {Bytes(neg(5, "", "clicks", model))},
      C::INVALID_ARGUMENT, "exactly one");
  add(SS + "SampleNegatives", "n=0", {Bytes(neg(0))}, C::INVALID_ARGUMENT, "n=0");
  add(SS + "SampleNegatives", "n=10001", {Bytes(neg(10001))}, C::INVALID_ARGUMENT, "n=10001");
  add(SS + "SampleNegatives", "n=uint32 max", {Bytes(neg(UINT32_MAX))}, C::INVALID_ARGUMENT,
      "must be in");
  // Like an unknown loss: INVALID_ARGUMENT naming the field, listing the
  // known samplers.
  add(SS + "SampleNegatives", "unknown sampler", {Bytes(neg(5, "no-such-sampler"))},
      C::INVALID_ARGUMENT, "known samplers");
  add(SS + "SampleNegatives", "nbpo without an nbpo model", {Bytes(neg(5, "nbpo", "", model))},
      C::INVALID_ARGUMENT, "nbpo");
  add(SS + "SampleNegatives", "absent dataset", {Bytes(neg(5, "", "absent"))}, C::NOT_FOUND,
      "absent");
  add(SS + "SampleNegatives", "bad dataset name", {Bytes(neg(5, "", "a b"))},
      C::INVALID_ARGUMENT, "dataset name");
  add(SS + "SampleNegatives", "absent model", {Bytes(neg(5, "", "", absent_model))},
      C::NOT_FOUND, "not found");
  for (double power : {-0.5, 10.5, std::nan(""), HUGE_VAL}) {
    auto r = neg(5, "popularity");
    r.set_power(power);
    add(SS + "SampleNegatives", absl::StrCat("power ", power), {Bytes(r)}, C::INVALID_ARGUMENT,
        "power");
  }
  {
    auto r = neg(5);
    r.set_user("");
    add(SS + "SampleNegatives", "empty user", {Bytes(r)}, C::INVALID_ARGUMENT, "user");
    r.set_user("nobody");
    add(SS + "SampleNegatives", "unknown user", {Bytes(r)}, C::NOT_FOUND, "nobody");
  }

  // EvaluationService -----------------------------------------------------------
  const std::string ES = "EvaluationService/";
  auto eval = [&](std::string estimator = "") {
    v1::EvaluateRequest r;
    r.set_model_id(model);
    r.set_dataset("clicks");
    r.set_estimator(estimator);
    return r;
  };
  {
    auto r = eval();
    r.set_model_id(absent_model);
    add(ES + "Evaluate", "absent model", {Bytes(r)}, C::NOT_FOUND, "not found");
    r = eval();
    r.set_dataset("absent");
    add(ES + "Evaluate", "absent dataset", {Bytes(r)}, C::NOT_FOUND, "absent");
    r = eval();
    r.set_dataset("a/b");
    add(ES + "Evaluate", "bad dataset name", {Bytes(r)}, C::INVALID_ARGUMENT, "dataset name");
    r = eval();
    r.add_k(0);
    add(ES + "Evaluate", "k=0", {Bytes(r)}, C::INVALID_ARGUMENT, "k=0");
    r = eval();
    r.add_k(1001);
    add(ES + "Evaluate", "k=1001", {Bytes(r)}, C::INVALID_ARGUMENT, "k=1001");
    r = eval();
    for (int k = 1; k <= 21; ++k) r.add_k(k);
    add(ES + "Evaluate", "21 cut-offs", {Bytes(r)}, C::INVALID_ARGUMENT, "at most 20");
    r = eval();
    r.set_threshold(std::nan(""));
    add(ES + "Evaluate", "NaN threshold", {Bytes(r)}, C::INVALID_ARGUMENT, "threshold");
    r = eval();
    r.set_convention("mine");
    add(ES + "Evaluate", "unknown convention", {Bytes(r)}, C::INVALID_ARGUMENT, "convention");
    r = eval();
    r.set_bootstrap(10);
    add(ES + "Evaluate", "bootstrap without an estimator", {Bytes(r)}, C::INVALID_ARGUMENT,
        "bootstrap");
    r = eval("ips");
    r.set_bootstrap(10001);
    add(ES + "Evaluate", "bootstrap over max_bootstrap", {Bytes(r)}, C::INVALID_ARGUMENT,
        "max_bootstrap");
    r = eval("ips");
    r.set_bootstrap(UINT32_MAX);
    add(ES + "Evaluate", "bootstrap uint32 max", {Bytes(r)}, C::INVALID_ARGUMENT, "bootstrap=");
    for (double conf : {0.3, 1.0, std::nan(""), -1.0}) {
      r = eval("ips");
      r.set_confidence(conf);
      add(ES + "Evaluate", absl::StrCat("confidence ", conf), {Bytes(r)}, C::INVALID_ARGUMENT,
          "confidence");
    }
    for (double clip : {-0.1, 1.5, std::nan(""), HUGE_VAL}) {
      r = eval("ips");
      r.set_clip(clip);
      add(ES + "Evaluate", absl::StrCat("clip ", clip), {Bytes(r)}, C::INVALID_ARGUMENT, "clip");
    }
    r = eval("magic");
    add(ES + "Evaluate", "unknown estimator", {Bytes(r)}, C::INVALID_ARGUMENT, "magic");
    r = eval("ips");
    r.add_k(5);
    r.add_k(5);
    add(ES + "Evaluate", "k listed twice", {Bytes(r)}, C::INVALID_ARGUMENT, "twice");
    r = eval("ips");
    r.set_model_id(0);
    auto* s = r.add_scores();
    s->set_user("u0");
    s->add_items("i0");
    s->add_scores(std::numeric_limits<float>::quiet_NaN());
    add(ES + "Evaluate", "NaN uploaded score", {Bytes(r)}, C::INVALID_ARGUMENT, "finite");
    s->set_scores(0, 1.0f);
    s->add_items("i1");
    add(ES + "Evaluate", "items and scores of different lengths", {Bytes(r)},
        C::INVALID_ARGUMENT, "scores[0]");
    r = eval("ips");
    r.set_model_id(0);
    for (int u = 0; u < 1001; ++u) {
      auto* us = r.add_scores();
      us->set_user(absl::StrCat("u", u));
      us->add_items("i0");
      us->add_scores(1.0f);
    }
    add(ES + "Evaluate", "1001 uploaded users", {Bytes(r)}, C::INVALID_ARGUMENT, "1000");
    r = eval("ips");
    r.set_policy_estimator("ips");
    add(ES + "Evaluate", "estimator and policy_estimator", {Bytes(r)}, C::INVALID_ARGUMENT,
        "policy_estimator");
    r = eval();
    r.set_policy_estimator("guess");
    add(ES + "Evaluate", "unknown policy_estimator", {Bytes(r)}, C::INVALID_ARGUMENT, "guess");
    r = eval();
    r.set_policy_estimator("switch-dr");
    r.set_tau(-1);
    add(ES + "Evaluate", "negative tau", {Bytes(r)}, C::INVALID_ARGUMENT, "tau");
    r = eval();
    r.set_policy_estimator("dr-os");
    r.set_lambda(std::nan(""));
    add(ES + "Evaluate", "NaN lambda", {Bytes(r)}, C::INVALID_ARGUMENT, "lambda");
    r = eval();
    r.set_policy_estimator("ips");
    r.set_target("softmax");
    r.set_temperature(-2);
    add(ES + "Evaluate", "negative temperature", {Bytes(r)}, C::INVALID_ARGUMENT, "temperature");
  }
  // Model snapshots and backups (rows in text format).
  auto text = [&](std::string method, std::string what, std::vector<std::string> msgs, C code,
                  std::string substr) {
    rows.push_back({std::move(method), std::move(what), {}, code, std::move(substr),
                    std::move(msgs)});
  };
  text(MS + "ExportModel", "absent", {"id: 1073741824"}, C::NOT_FOUND, "not found");
  text(MS + "ImportModel", "parameters before the header", {"parameters: 'abc'"},
       C::INVALID_ARGUMENT, "header");
  text(MS + "ImportModel", "unknown format version",
       {"header { format_version: 2 parameters_bytes: 3 }", "parameters: 'abc'"},
       C::FAILED_PRECONDITION, "format_version=2");
  text(MS + "ImportModel", "no parameters", {"header { format_version: 1 parameters_bytes: 0 }"},
       C::INVALID_ARGUMENT, "parameters_bytes=0");
  text(MS + "ImportModel", "parameters_bytes uint64 max",
       {"header { format_version: 1 parameters_bytes: 18446744073709551615 }"},
       C::INVALID_ARGUMENT, "max_import_bytes");
  text(MS + "ImportModel", "record_json not JSON",
       {"header { format_version: 1 parameters_bytes: 3 record_json: '{not json' }",
        "parameters: 'abc'"},
       C::INVALID_ARGUMENT, "record_json");
  // Model names, versions and labels.
  text(MS + "SetModelLabel", "bad name", {"name: 'Bad Name' label: 'stable' version: 1"},
       C::INVALID_ARGUMENT, "name='Bad Name'");
  text(MS + "SetModelLabel", "bad label", {"name: 'rec' label: 'UP' version: 1"},
       C::INVALID_ARGUMENT, "label='UP'");
  text(MS + "SetModelLabel", "unknown name", {"name: 'nosuch' label: 'stable' version: 1"},
       C::NOT_FOUND, "nosuch");
  text(MS + "GetModelLabels", "unknown name", {"name: 'nosuch'"}, C::NOT_FOUND, "nosuch");
  text(MS + "GetModelLabels", "name too long", {absl::StrCat("name: '", std::string(64, 'a'), "'")},
       C::INVALID_ARGUMENT, "name=");
  text("ScoringService/Score", "model.name bad", {"model { name: 'A' } user: 'u' items: 'i'"},
       C::INVALID_ARGUMENT, "model.name");
  text("ScoringService/Score", "model id and name", {"model { id: 1 name: 'a' } user: 'u' items: 'i'"},
       C::INVALID_ARGUMENT, "give one or the other");
  text("ScoringService/TopK", "unknown model name", {"model { name: 'nosuch' } user: 'u' k: 1"},
       C::NOT_FOUND, "nosuch");
  text("AdminService/Backup", "no --backup_dir", {"name: 'a/b'"}, C::FAILED_PRECONDITION,
       "backup_dir");
  return rows;
}

TEST_F(WireMalformedTest, OutOfRangeRequests) {
  std::map<std::string, int> per_rpc;
  for (const Row& row : OutOfRangeRows(model_id_)) {
    const Rpc* rpc = FindRpc(row.method);
    if (rpc == nullptr) continue;  // an RPC this build does not have (yet)
    ++per_rpc[rpc->name];
    std::vector<std::string> messages = row.messages;
    for (const std::string& t : row.text) messages.push_back(FromText(*rpc, t));
    Expect(absl::StrCat(row.method, " ", row.what), Call(rpc->method, messages), row.code,
           row.substr);
  }
  // Every RPC that takes a field has out-of-range rows (the List* calls take
  // none that can be out of range, ListModels' filter aside).
  for (const Rpc& r : AllRpcs()) {
    if (r.name.rfind("List", 0) == 0) continue;
    EXPECT_GT(per_rpc[r.name], 0) << r.method << " has no out-of-range row";
  }
}

// A rejected Ingest batch stores nothing, and the dataset it would have
// created is not left behind half-made with events.
TEST_F(WireMalformedTest, IngestRejectionsStoreNothing) {
  v1::Interaction bad = Event("u", "i", std::numeric_limits<float>::quiet_NaN());
  Answer a = Call("/debias.v1.DatasetService/Ingest",
                  {IngestMsg("reject-me", {Event("u1", "i1"), Event("u2", "i2"), bad}, true)});
  ASSERT_EQ(a.status.error_code(), C::INVALID_ARGUMENT) << a.status.error_message();
  auto stats = client_->GetStats("reject-me");
  if (stats.ok()) {
    EXPECT_EQ(stats->events(), 0u);
  } else {
    EXPECT_EQ(stats.status().code(), absl::StatusCode::kNotFound);
  }
  // A good batch acknowledged before a bad one stays; the bad one does not.
  a = Call("/debias.v1.DatasetService/Ingest",
           {IngestMsg("half-stream", {Event("u1", "i1")}, true),
            IngestMsg("", {Event("u2", "i2"), Event("", "i3")})});
  ASSERT_EQ(a.status.error_code(), C::INVALID_ARGUMENT) << a.status.error_message();
  ASSERT_EQ(a.responses.size(), 1u);
  v1::IngestResponse ack;
  ASSERT_TRUE(ack.ParseFromString(a.responses[0]));
  EXPECT_EQ(ack.events_acknowledged(), 1u);
  auto half = client_->GetStats("half-stream");
  ASSERT_OK(half);
  EXPECT_EQ(half->events(), 1u);
  EXPECT_EQ(half->users(), 1u);
  EXPECT_EQ(half->items(), 1u);
  ExpectHealthy("ingest rejections");
}

// Events of one dataset that carry features must all carry the same number
// (proto/debias/v1/common.proto). A batch breaking that must be rejected at
// ingest; accepting it would leave a dataset whose view can no longer be
// built (GetStats, Export and Train would fail on it for good).
TEST_F(WireMalformedTest, FeatureLengthsMustAgreeWithinADataset) {
  v1::Interaction two = Event("u1", "i1");
  two.add_features(1);
  two.add_features(2);
  v1::Interaction three = Event("u2", "i2");
  three.add_features(1);
  three.add_features(2);
  three.add_features(3);
  Answer a = Call("/debias.v1.DatasetService/Ingest", {IngestMsg("feat", {two}, true)});
  ASSERT_TRUE(a.status.ok()) << a.status.error_message();
  a = Call("/debias.v1.DatasetService/Ingest", {IngestMsg("feat", {three})});
  EXPECT_EQ(a.status.error_code(), C::INVALID_ARGUMENT) << a.status.error_message();
  EXPECT_NE(a.status.error_message().find("features"), std::string::npos)
      << a.status.error_message();
  // Within one batch, too.
  a = Call("/debias.v1.DatasetService/Ingest", {IngestMsg("feat-batch", {two, three}, true)});
  EXPECT_EQ(a.status.error_code(), C::INVALID_ARGUMENT) << a.status.error_message();
  auto stats = client_->GetStats("feat");
  ASSERT_OK(stats);
  EXPECT_EQ(stats->events(), 1u);
  EXPECT_EQ(stats->feature_dim(), 2);
  ExpectHealthy("feature lengths");
}

// Past --max_in_flight a call is RESOURCE_EXHAUSTED naming the limit, at
// once, while health keeps answering; the slots come back when calls end.
TEST(WireInFlightTest, CallsPastTheInFlightCapAreResourceExhausted) {
  const fs::path dir = fs::temp_directory_path() /
                       ("debias_wire_inflight_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  server::ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.data_dir = (dir / "db").string();
  o.limits.max_in_flight = 2;
  auto s = server::DebiasServer::Start(o);
  ASSERT_OK(s);
  auto client = Client::Connect("127.0.0.1:" + std::to_string((*s)->port()));
  ASSERT_OK(client->CreateDataset("d"));
  auto stub = v1::DatasetService::NewStub(client->channel());
  // Two open Ingest streams hold both slots for their whole life.
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  std::vector<std::unique_ptr<grpc::ClientReaderWriter<v1::IngestRequest, v1::IngestResponse>>>
      streams;
  for (int k = 0; k < 2; ++k) {
    ctxs.push_back(std::make_unique<grpc::ClientContext>());
    streams.push_back(stub->Ingest(ctxs.back().get()));
    v1::IngestRequest req;
    req.set_dataset("d");
    *req.add_events() = Event(absl::StrCat("u", k), "i");
    ASSERT_TRUE(streams.back()->Write(req));
    v1::IngestResponse resp;
    ASSERT_TRUE(streams.back()->Read(&resp));  // the handler runs: its slot is held
    EXPECT_EQ(resp.events_acknowledged(), 1u);
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto third = client->GetStats("d");
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted) << third.status();
  EXPECT_NE(third.status().message().find("max_in_flight"), std::string::npos)
      << third.status();
  EXPECT_LT(secs, 1.0);
  EXPECT_OK(client->Health());
  for (size_t k = 0; k < streams.size(); ++k) {
    streams[k]->WritesDone();
    EXPECT_TRUE(streams[k]->Finish().ok());
  }
  // Slots are released as calls end.
  absl::Status after = absl::UnknownError("not tried");
  for (int tries = 0; tries < 50 && !after.ok(); ++tries) {
    auto st = client->GetStats("d");
    after = st.status();
    if (!after.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_OK(after);
  client.reset();
  s->reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace debias
