// The error-code table of docs/API.md, held on the wire: every row of
// proto/debias/v1/error_codes.tsv is sent as a real request to a real server
// (with tokens, so the auth rows apply) and must come back with its code.
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/client.h"
#include "debias/v1/admin_service.grpc.pb.h"
#include "debias/v1/dataset_service.grpc.pb.h"
#include "debias/v1/evaluation_service.grpc.pb.h"
#include "debias/v1/model_service.grpc.pb.h"
#include "debias/v1/scoring_service.grpc.pb.h"
#include "google/protobuf/text_format.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/util/status_matchers.h"

namespace debias {
namespace {

namespace fs = std::filesystem;

struct Row {
  int line = 0;
  std::string rpc, code, trigger, token, request;
};

std::vector<Row> ReadTable() {
  std::ifstream in(std::string(DEBIAS_SOURCE_DIR) + "/proto/debias/v1/error_codes.tsv");
  std::vector<Row> rows;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f = absl::StrSplit(line, '\t');
    EXPECT_EQ(f.size(), 5u) << "error_codes.tsv:" << n << ": 5 tab-separated columns";
    if (f.size() != 5) continue;
    rows.push_back({n, f[0], f[1], f[2], f[3], f[4]});
  }
  return rows;
}

// Parses `text` into a fresh Req; fails the test on a typo in the table.
template <typename Req>
Req Parse(const std::string& text, int line) {
  Req req;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &req))
      << "error_codes.tsv:" << line << ": not a " << Req::descriptor()->full_name() << ": "
      << text;
  return req;
}

std::optional<grpc::StatusCode> CodeNamed(const std::string& name) {
  for (int c = 1; c <= 16; ++c) {
    const auto code = static_cast<absl::StatusCode>(c);
    if (absl::StatusCodeToString(code) == name) return static_cast<grpc::StatusCode>(c);
  }
  return std::nullopt;
}

using Call = std::function<grpc::Status(grpc::ClientContext*, const std::string&, int)>;

template <typename Stub, typename Req, typename Resp>
Call Unary(Stub* stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*)) {
  return [stub, method](grpc::ClientContext* ctx, const std::string& text, int line) {
    Resp resp;
    return (stub->*method)(ctx, Parse<Req>(text, line), &resp);
  };
}

template <typename Stub, typename Req, typename Resp>
Call ServerStream(Stub* stub, std::unique_ptr<grpc::ClientReader<Resp>> (Stub::*method)(
                                  grpc::ClientContext*, const Req&)) {
  return [stub, method](grpc::ClientContext* ctx, const std::string& text, int line) {
    auto reader = (stub->*method)(ctx, Parse<Req>(text, line));
    Resp resp;
    while (reader->Read(&resp)) {
    }
    return reader->Finish();
  };
}

class ErrorTableTest : public ::testing::Test {
 protected:
  static constexpr char kAdmin[] = "admin-token-0123456789";
  static constexpr char kWriter[] = "writer-token-0123456789";
  static constexpr char kReader[] = "reader-token-0123456789";

  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("debias_error_table_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "tokens") << "admin " << kAdmin << "\nwriter " << kWriter
                                   << "\nreader " << kReader << "\n";
    server::ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.data_dir = (dir_ / "db").string();
    o.auth_tokens = (dir_ / "tokens").string();
    auto s = server::DebiasServer::Start(o);
    ASSERT_OK(s);
    server_ = std::move(*s);
    const std::string target = "127.0.0.1:" + std::to_string(server_->port());
    ClientOptions co;
    co.token = kAdmin;
    admin_ = Client::Connect(target, co);
    channel_ = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
    Seed();
  }
  void TearDown() override {
    admin_.reset();
    server_.reset();
    fs::remove_all(dir_);
  }

  // The state the table's requests assume (see the header of the table).
  void Seed() {
    std::vector<data::Interaction> events;
    for (int u = 0; u < 20; ++u) {
      for (int i = 0; i < 10; ++i) {
        if ((u + i) % 3 != 0) continue;
        data::Interaction e;
        e.user = absl::StrCat("u", u);
        e.item = absl::StrCat("i", i);
        e.label = 1;
        if (u == 0 && i == 0) e.event_id = "e1";
        events.push_back(e);
      }
    }
    ASSERT_OK(admin_->Ingest("d", events).status);
    ASSERT_OK(admin_->CreateDataset("clicks", "", "implicit"));
    ASSERT_OK(admin_->CreateDataset("empty"));
    v1::TrainRequest train;
    train.set_dataset("d");
    train.set_loss("naive");
    (*train.mutable_params())["epochs"] = "2";
    auto model = admin_->Train(train);
    ASSERT_OK(model);
    ASSERT_EQ(model->id(), 1u);
    ASSERT_EQ(model->state(), "ready");
  }

  std::map<std::string, Call> Calls() {
    std::map<std::string, Call> c;
    auto* ds = (ds_ = v1::DatasetService::NewStub(channel_)).get();
    auto* ms = (ms_ = v1::ModelService::NewStub(channel_)).get();
    auto* ss = (ss_ = v1::ScoringService::NewStub(channel_)).get();
    auto* es = (es_ = v1::EvaluationService::NewStub(channel_)).get();
    auto* as = (as_ = v1::AdminService::NewStub(channel_)).get();
    auto* hs = (hs_ = grpc::health::v1::Health::NewStub(channel_)).get();
    using DS = v1::DatasetService::Stub;
    using MS = v1::ModelService::Stub;
    using SS = v1::ScoringService::Stub;
    c["CreateDataset"] = Unary(ds, &DS::CreateDataset);
    c["ListDatasets"] = Unary(ds, &DS::ListDatasets);
    c["GetDataset"] = Unary(ds, &DS::GetDataset);
    c["DeleteDataset"] = Unary(ds, &DS::DeleteDataset);
    c["GetStats"] = Unary(ds, &DS::GetStats);
    c["Export"] = ServerStream(ds, &DS::Export);
    c["Ingest"] = [ds](grpc::ClientContext* ctx, const std::string& text, int line) {
      auto stream = ds->Ingest(ctx);
      stream->Write(Parse<v1::IngestRequest>(text, line));
      stream->WritesDone();
      v1::IngestResponse resp;
      while (stream->Read(&resp)) {
      }
      return stream->Finish();
    };
    // A job that starts and then fails ends the stream OK with a failed
    // model: its error_code is the row's code.
    c["Train"] = [ms](grpc::ClientContext* ctx, const std::string& text, int line) {
      auto reader = ms->Train(ctx, Parse<v1::TrainRequest>(text, line));
      v1::TrainEvent event;
      v1::Model finished;
      while (reader->Read(&event)) {
        if (event.has_finished()) finished = event.finished();
      }
      grpc::Status st = reader->Finish();
      if (!st.ok() || finished.state() != "failed") return st;
      return grpc::Status(CodeNamed(finished.error_code()).value_or(grpc::StatusCode::UNKNOWN),
                          finished.error());
    };
    c["ListModels"] = Unary(ms, &MS::ListModels);
    c["GetModel"] = Unary(ms, &MS::GetModel);
    c["DeleteModel"] = Unary(ms, &MS::DeleteModel);
    c["CancelTraining"] = Unary(ms, &MS::CancelTraining);
    c["ListMethods"] = Unary(ms, &MS::ListMethods);
    c["ExportModel"] = ServerStream(ms, &MS::ExportModel);
    c["ImportModel"] = [ms](grpc::ClientContext* ctx, const std::string& text, int line) {
      v1::Model resp;
      auto stream = ms->ImportModel(ctx, &resp);
      stream->Write(Parse<v1::ModelChunk>(text, line));
      stream->WritesDone();
      return stream->Finish();
    };
    c["Score"] = Unary(ss, &SS::Score);
    c["TopK"] = Unary(ss, &SS::TopK);
    c["BatchScore"] = Unary(ss, &SS::BatchScore);
    c["BatchTopK"] = ServerStream(ss, &SS::BatchTopK);
    c["SetModelLabel"] = Unary(ms, &MS::SetModelLabel);
    c["GetModelLabels"] = Unary(ms, &MS::GetModelLabels);
    c["GetPropensities"] = Unary(ss, &SS::GetPropensities);
    c["SampleNegatives"] = Unary(ss, &SS::SampleNegatives);
    c["Evaluate"] = Unary(es, &v1::EvaluationService::Stub::Evaluate);
    c["Backup"] = Unary(as, &v1::AdminService::Stub::Backup);
    c["Check"] = Unary(hs, &grpc::health::v1::Health::Stub::Check);
    return c;
  }

  fs::path dir_;
  std::unique_ptr<server::DebiasServer> server_;
  std::unique_ptr<Client> admin_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::DatasetService::Stub> ds_;
  std::unique_ptr<v1::ModelService::Stub> ms_;
  std::unique_ptr<v1::ScoringService::Stub> ss_;
  std::unique_ptr<v1::EvaluationService::Stub> es_;
  std::unique_ptr<v1::AdminService::Stub> as_;
  std::unique_ptr<grpc::health::v1::Health::Stub> hs_;
};

TEST_F(ErrorTableTest, EveryRowComesBackWithItsCode) {
  const std::vector<Row> rows = ReadTable();
  ASSERT_GE(rows.size(), 40u);
  std::map<std::string, Call> calls = Calls();
  const std::map<std::string, std::string> tokens = {
      {"admin", kAdmin}, {"writer", kWriter}, {"reader", kReader}, {"none", ""}};
  std::set<std::string> rpcs_with_rows;
  int exercised = 0;
  for (const Row& row : rows) {
    SCOPED_TRACE(absl::StrCat("error_codes.tsv:", row.line, ": ", row.rpc, " ", row.code));
    const std::optional<grpc::StatusCode> code = CodeNamed(row.code);
    ASSERT_TRUE(code.has_value()) << "unknown code " << row.code;
    const grpc::StatusCode want = *code;
    if (row.request == "-") continue;  // held by the test the trigger names
    std::string rpc = row.rpc, request = row.request;
    if (rpc == "*") {
      std::pair<std::string, std::string> split = absl::StrSplit(request, absl::MaxSplits(':', 1));
      rpc = split.first;
      request = std::string(absl::StripLeadingAsciiWhitespace(split.second));
    }
    rpcs_with_rows.insert(rpc);
    ASSERT_TRUE(calls.count(rpc)) << "unknown RPC " << rpc;
    ASSERT_TRUE(tokens.count(row.token)) << "token must be admin, writer, reader or none";
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    if (!row.token.empty() && row.token != "none") {
      ctx.AddMetadata("authorization", std::string("Bearer ") + tokens.at(row.token));
    }
    grpc::Status got = calls.at(rpc)(&ctx, request, row.line);
    EXPECT_EQ(got.error_code(), want) << "got " << got.error_code() << ": "
                                      << got.error_message() << "\nfor " << request;
    ++exercised;
  }
  EXPECT_GE(exercised, 40);
  // Every RPC that can fail on its input has at least one row.
  for (const char* rpc : {"CreateDataset", "GetDataset", "DeleteDataset", "GetStats", "Export",
                          "Ingest", "Train", "GetModel", "DeleteModel", "CancelTraining",
                          "ExportModel", "ImportModel", "Score", "TopK", "BatchScore",
                          "GetPropensities", "SampleNegatives", "Evaluate", "Backup",
                          "BatchTopK", "SetModelLabel", "GetModelLabels"}) {
    EXPECT_TRUE(rpcs_with_rows.count(rpc)) << rpc << " has no row in error_codes.tsv";
  }
  // A rejected Train leaves no model record behind (model 1 is the seed's).
  auto models = admin_->ListModels();
  ASSERT_OK(models);
  for (const auto& m : *models) {
    if (m.id() == 1) continue;
    EXPECT_EQ(m.state(), "failed") << "model " << m.id();
    EXPECT_EQ(m.dataset(), "empty") << "only the FAILED_PRECONDITION row may leave a record; "
                                    << m.error();
  }
}

}  // namespace
}  // namespace debias
