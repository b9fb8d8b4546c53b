// Integration test: an in-process debiasd on a free port, driven through the
// C++ client library.
#include <filesystem>
#include <limits>
#include <set>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "wire/convert.h"
#include "server/server.h"
#include "tests/util/status_matchers.h"

namespace debias {
namespace {

using ::debias::testing::StatusIs;

class DatasetServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("debias_server_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    server::ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.data_dir = dir_.string();
    o.limits.max_events_per_batch = 1000;
    auto s = server::DebiasServer::Start(o);
    ASSERT_OK(s);
    server_ = std::move(*s);
    client_ = Client::Connect("127.0.0.1:" + std::to_string(server_->port()));
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  static std::vector<data::Interaction> Events(int n, int users) {
    std::vector<data::Interaction> out;
    for (int k = 0; k < n; ++k) {
      data::Interaction e;
      e.user = "u" + std::to_string(k % users);
      e.item = "i" + std::to_string(k);
      e.label = (k % 3 == 0) ? 0.0f : 1.0f;
      out.push_back(e);
    }
    return out;
  }
  std::filesystem::path dir_;
  std::unique_ptr<server::DebiasServer> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(DatasetServiceTest, HealthIsServing) { EXPECT_OK(client_->Health()); }

TEST_F(DatasetServiceTest, CreateListGetDelete) {
  ASSERT_OK(client_->CreateDataset("a", "first", "implicit"));
  ASSERT_OK(client_->CreateDataset("b"));
  EXPECT_THAT(client_->CreateDataset("a"),
              StatusIs(absl::StatusCode::kAlreadyExists, "already exists"));
  EXPECT_THAT(client_->CreateDataset("no spaces"),
              StatusIs(absl::StatusCode::kInvalidArgument, "dataset name"));
  EXPECT_THAT(client_->CreateDataset("x", "", "weird"),
              StatusIs(absl::StatusCode::kInvalidArgument, "feedback"));
  auto list = client_->ListDatasets();
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name(), "a");
  auto a = client_->GetDataset("a");
  ASSERT_OK(a);
  EXPECT_EQ(a->description(), "first");
  EXPECT_EQ(a->feedback(), "implicit");
  ASSERT_OK(client_->DeleteDataset("a"));
  EXPECT_THAT(client_->GetDataset("a"), StatusIs(absl::StatusCode::kNotFound, "'a'"));
  EXPECT_THAT(client_->DeleteDataset("a"), StatusIs(absl::StatusCode::kNotFound, "'a'"));
}

TEST_F(DatasetServiceTest, IngestStatsExportRoundTrip) {
  auto events = Events(2500, 50);
  events[0].list_id = "l0";
  events[0].position = 1;
  events[1].propensity = 0.5f;
  for (size_t k = 0; k < events.size(); ++k) events[k].event_id = absl::StrCat("ev-", k);
  IngestOptions io;
  io.batch_size = 700;
  std::vector<uint64_t> progress;
  io.on_progress = [&](uint64_t done, uint64_t) { progress.push_back(done); };
  IngestSummary r = client_->Ingest("d", events, io);
  ASSERT_OK(r.status);
  EXPECT_EQ(r.events_acknowledged, 2500u);
  EXPECT_EQ(progress, (std::vector<uint64_t>{700, 1400, 2100, 2500}));
  // Re-ingest (a retry): the event ids make it add nothing.
  r = client_->Ingest("d", events, io);
  ASSERT_OK(r.status);
  EXPECT_EQ(r.events_duplicate, 2500u);
  auto stats = client_->GetStats("d");
  ASSERT_OK(stats);
  EXPECT_EQ(stats->events(), 2500u);
  EXPECT_EQ(stats->users(), 50u);
  EXPECT_EQ(stats->items(), 2500u);
  EXPECT_EQ(stats->positives(), 2500u - 834u);
  EXPECT_EQ(stats->zero_labels(), 834u);
  EXPECT_EQ(stats->lists(), 1u);
  EXPECT_EQ(stats->with_propensity(), 1u);
  EXPECT_EQ(stats->feedback(), "clicklog");
  EXPECT_EQ(stats->data_version(), 4u);  // the duplicate batches wrote nothing

  // Every field comes back, event ids included, so the export re-ingests
  // without duplicates.
  std::multiset<std::string> want, got;
  auto row = [](const std::string& user, const std::string& item, const std::string& id,
                const std::string& list, int position, float propensity) {
    return absl::StrCat(user, "|", item, "|", id, "|", list, "|", position, "|", propensity);
  };
  for (const auto& e : events) {
    want.insert(row(e.user, e.item, e.event_id, e.list_id.value_or(""), e.position.value_or(0),
                    e.propensity.value_or(0.0f)));
  }
  std::vector<data::Interaction> exported;
  size_t batches = 0;
  ASSERT_OK(client_->Export(
      "d",
      [&](const v1::ExportResponse& resp) {
        ++batches;
        for (const auto& e : resp.events()) {
          got.insert(row(e.user(), e.item(), e.event_id(), e.list_id(), e.position(),
                         e.propensity()));
          data::Interaction x;
          ToCore(e, &x);
          exported.push_back(std::move(x));
        }
        return true;
      },
      1000));
  EXPECT_EQ(got, want);
  EXPECT_EQ(batches, 3u);
  ASSERT_OK(client_->Ingest("d", exported, io).status);
  auto again = client_->GetStats("d");
  ASSERT_OK(again);
  EXPECT_EQ(again->events(), 2500u);
}

TEST_F(DatasetServiceTest, AcknowledgementCountsStoredAndDuplicateEvents) {
  // A bandit log without event ids: users see the same item again, no
  // timestamps. Every decision acknowledged is a decision stored.
  std::vector<data::Interaction> log;
  for (int k = 0; k < 3000; ++k) {
    data::Interaction e;
    e.user = absl::StrCat("u", k % 50);
    e.item = absl::StrCat("i", k % 7);
    e.label = (k % 5 == 0) ? 1.0f : 0.0f;
    e.propensity = 0.5f;
    log.push_back(e);
  }
  IngestOptions small;
  small.batch_size = 1000;
  IngestSummary r = client_->Ingest("bandit", log, small);
  ASSERT_OK(r.status);
  EXPECT_EQ(r.events_acknowledged, 3000u);
  EXPECT_EQ(r.events_stored, 3000u);
  EXPECT_EQ(r.events_duplicate, 0u);
  auto stats = client_->GetStats("bandit");
  ASSERT_OK(stats);
  EXPECT_EQ(stats->events(), 3000u);

  // With event ids, a retried stream adds nothing and says so.
  std::vector<data::Interaction> ided = Events(1500, 10);
  for (size_t k = 0; k < ided.size(); ++k) ided[k].event_id = absl::StrCat("e", k);
  r = client_->Ingest("ided", ided, small);
  ASSERT_OK(r.status);
  EXPECT_EQ(r.events_stored, 1500u);
  r = client_->Ingest("ided", ided, small);
  ASSERT_OK(r.status);
  EXPECT_EQ(r.events_acknowledged, 1500u);
  EXPECT_EQ(r.events_stored, 0u);
  EXPECT_EQ(r.events_duplicate, 1500u);
  // The same id for another event is refused with the field named; the
  // dataset keeps what it had.
  ided[3].label = ided[3].label > 0 ? 0.0f : 1.0f;
  r = client_->Ingest("ided", std::span(ided).subspan(0, 10));
  EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kAlreadyExists, "events[3].event_id='e3'"));
  EXPECT_EQ(r.events_acknowledged, 0u);
  stats = client_->GetStats("ided");
  ASSERT_OK(stats);
  EXPECT_EQ(stats->events(), 1500u);

  // The natural-key policy is chosen at creation and reported.
  ASSERT_OK(client_->CreateDataset("nk", "", "", "natural_key"));
  r = client_->Ingest("nk", log, small);
  ASSERT_OK(r.status);
  EXPECT_EQ(r.events_stored, 350u);  // 50 users x 7 items
  EXPECT_EQ(r.events_duplicate, 2650u);
  auto nk = client_->GetDataset("nk");
  ASSERT_OK(nk);
  EXPECT_EQ(nk->dedup(), "natural_key");
  EXPECT_THAT(client_->CreateDataset("bad", "", "", "latest"),
              StatusIs(absl::StatusCode::kInvalidArgument, "dedup='latest'"));
}

TEST_F(DatasetServiceTest, MalformedIngestIsRejectedWithTheFieldNamed) {
  auto events = Events(10, 2);
  events[7].position = 0;
  IngestSummary r = client_->Ingest("d", events);
  EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kInvalidArgument, "events[7].position"));
  EXPECT_EQ(r.events_acknowledged, 0u);
  // Nothing of the bad batch was written, and the dataset was not created
  // by the failed batch either.
  EXPECT_THAT(client_->GetStats("d"), StatusIs(absl::StatusCode::kNotFound, "'d'"));

  IngestOptions no_create;
  no_create.create_if_missing = false;
  EXPECT_THAT(client_->Ingest("missing", Events(3, 1), no_create).status,
              StatusIs(absl::StatusCode::kNotFound, "missing"));
  EXPECT_THAT(client_->Ingest("bad name", Events(3, 1)).status,
              StatusIs(absl::StatusCode::kInvalidArgument, "dataset name"));
  // Over the per-message limit (1000 in this server).
  IngestOptions big;
  big.batch_size = 1001;
  EXPECT_THAT(client_->Ingest("d", Events(1001, 1), big).status,
              StatusIs(absl::StatusCode::kInvalidArgument, "at most 1000"));
  // A failed batch after good ones: the good ones stay acknowledged.
  auto mixed = Events(30, 3);
  mixed[25].label = std::numeric_limits<float>::quiet_NaN();
  IngestOptions small;
  small.batch_size = 10;
  IngestSummary m = client_->Ingest("d", mixed, small);
  EXPECT_THAT(m.status, StatusIs(absl::StatusCode::kInvalidArgument, "events[5].label"));
  EXPECT_EQ(m.events_acknowledged, 20u);
  auto stats = client_->GetStats("d");
  ASSERT_OK(stats);
  EXPECT_EQ(stats->events(), 20u);
  EXPECT_OK(client_->Health());
}

TEST_F(DatasetServiceTest, ExportAndStatsValidateTheirRequests) {
  EXPECT_THAT(client_->GetStats(""), StatusIs(absl::StatusCode::kInvalidArgument, "dataset name"));
  EXPECT_THAT(client_->Export("nope", [](const v1::ExportResponse&) { return true; }),
              StatusIs(absl::StatusCode::kNotFound, "nope"));
  ASSERT_OK(client_->Ingest("d", Events(5, 1)).status);
  EXPECT_THAT(client_->Export("d", [](const v1::ExportResponse&) { return true; }, 200000),
              StatusIs(absl::StatusCode::kInvalidArgument, "batch_size=200000"));
}

TEST_F(DatasetServiceTest, DataSurvivesARestart) {
  ASSERT_OK(client_->Ingest("d", Events(100, 10)).status);
  const int port = server_->port();
  (void)port;
  client_.reset();
  server_.reset();
  server::ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.data_dir = dir_.string();
  auto s = server::DebiasServer::Start(o);
  ASSERT_OK(s);
  server_ = std::move(*s);
  client_ = Client::Connect("127.0.0.1:" + std::to_string(server_->port()));
  auto stats = client_->GetStats("d");
  ASSERT_OK(stats);
  EXPECT_EQ(stats->events(), 100u);
}

}  // namespace
}  // namespace debias
