// Operations features of debiasd through the real server: the Prometheus
// endpoint (scraped over HTTP), request ids, model export/import between two
// servers, backup and restore, Train cancelled with its call, and the
// config file with flag overrides.
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "core/util/crc32c.h"
#include "debias/v1/server_config.pb.h"
#include "core/synth/mnar_world.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "server/flags.h"
#include "server/metrics.h"
#include "server/server.h"
#include "tests/util/status_matchers.h"

namespace debias {
namespace {

using ::debias::testing::StatusIs;
namespace fs = std::filesystem;

fs::path TempDir(const std::string& tag) {
  fs::path d = fs::temp_directory_path() /
               absl::StrCat("debias_ops_", ::getpid(), "_", tag, "_",
                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
  fs::remove_all(d);
  return d;
}

std::unique_ptr<server::DebiasServer> StartServer(const fs::path& data, const fs::path& backups = {},
                                                  bool metrics = false,
                                                  const server::Limits& limits = {}) {
  server::ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.data_dir = data.string();
  o.backup_dir = backups.string();
  o.limits = limits;
  if (metrics) o.metrics_listen = "127.0.0.1:0";
  auto s = server::DebiasServer::Start(o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

std::unique_ptr<Client> ClientFor(const server::DebiasServer& s) {
  return Client::Connect(absl::StrCat("127.0.0.1:", s.port()));
}

std::vector<data::Interaction> Clicks(std::vector<data::Interaction>* mar = nullptr) {
  synth::MnarWorldOptions o;
  o.num_users = 120;
  o.num_items = 80;
  o.expected_clicks = 1500;
  o.mar_test_items_per_user = 5;
  o.seed = 9;
  auto world = synth::MnarWorld::Generate(o);
  EXPECT_TRUE(world.ok());
  if (mar) *mar = world->TestEvents();
  return world->ClickEvents();
}

v1::TrainRequest SmallTrain(const std::string& loss, int epochs = 3) {
  v1::TrainRequest r;
  r.set_dataset("clicks");
  r.set_loss(loss);
  r.set_seed(3);
  (*r.mutable_params())["epochs"] = std::to_string(epochs);
  (*r.mutable_params())["dim"] = "8";
  return r;
}

// Parses "name{labels} value" lines into a map keyed by "name{labels}".
std::map<std::string, double> ParseExposition(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  return out;
}

TEST(MetricsTest, HistogramBucketsAreCumulativeAndHealthSignalsAreFound) {
  server::Histogram h;
  h.Observe(0.0004);
  h.Observe(0.003);
  h.Observe(1000);
  std::string out;
  h.Render("x", "m=\"a\"", &out);
  auto m = ParseExposition(out);
  EXPECT_EQ(m["x_bucket{m=\"a\",le=\"0.0005\"}"], 1);
  EXPECT_EQ(m["x_bucket{m=\"a\",le=\"0.005\"}"], 2);
  EXPECT_EQ(m["x_bucket{m=\"a\",le=\"300\"}"], 2);
  EXPECT_EQ(m["x_bucket{m=\"a\",le=\"+Inf\"}"], 3);
  EXPECT_EQ(m["x_count{m=\"a\"}"], 3);
  EXPECT_NEAR(m["x_sum{m=\"a\"}"], 1000.0034, 1e-9);

  auto d = nlohmann::json::parse(
      R"({"loss":"ips","propensity":{"ess_fraction":0.25,"clipped_fraction":0.1,
          "top1pct_weight_share":0.07}})");
  auto health = server::ExtractDebiasHealth(d);
  EXPECT_DOUBLE_EQ(health.ess_fraction, 0.25);
  EXPECT_DOUBLE_EQ(health.clipped_share, 0.1);
  EXPECT_DOUBLE_EQ(health.top1pct_weight_share, 0.07);
  EXPECT_TRUE(std::isnan(server::ExtractDebiasHealth(nlohmann::json::object()).ess_fraction));
}

TEST(OperationsTest, MetricsEndpointServesTheListedSeriesAndCallsGetRequestIds) {
  const fs::path dir = TempDir("metrics");
  auto srv = StartServer(dir, {}, /*metrics=*/true);
  ASSERT_NE(srv, nullptr);
  ASSERT_GT(srv->metrics_port(), 0);
  auto client = ClientFor(*srv);
  const auto clicks = Clicks();
  ASSERT_OK(client->Ingest("clicks", clicks).status);
  auto m = client->Train(SmallTrain("ips"));
  ASSERT_OK(m);
  ASSERT_EQ(m->state(), "ready") << m->error();
  v1::ScoreRequest sr;
  sr.set_model_id(m->id());
  sr.set_user(clicks.front().user);
  sr.add_items(clicks.front().item);
  ASSERT_OK(client->Score(sr));
  sr.set_model_id(999);
  EXPECT_THAT(client->Score(sr), StatusIs(absl::StatusCode::kNotFound, ""));

  // The server echoes the client's request id, and makes one up otherwise.
  {
    auto stub = v1::ModelService::NewStub(client->channel());
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-request-id", "abc-123");
    v1::ListModelsResponse resp;
    ASSERT_TRUE(stub->ListModels(&ctx, v1::ListModelsRequest(), &resp).ok());
    auto it = ctx.GetServerInitialMetadata().find("x-request-id");
    ASSERT_NE(it, ctx.GetServerInitialMetadata().end());
    EXPECT_EQ(std::string(it->second.data(), it->second.size()), "abc-123");
    grpc::ClientContext ctx2;
    ctx2.AddMetadata("x-request-id", std::string(100, 'x'));  // too long: replaced
    ASSERT_TRUE(stub->ListModels(&ctx2, v1::ListModelsRequest(), &resp).ok());
    auto it2 = ctx2.GetServerInitialMetadata().find("x-request-id");
    ASSERT_NE(it2, ctx2.GetServerInitialMetadata().end());
    EXPECT_EQ(it2->second.size(), 16u);
  }

  httplib::Client http("127.0.0.1", srv->metrics_port());
  auto res = http.Get("/metrics");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_NE(res->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  const auto series = ParseExposition(res->body);
  auto value = [&](const std::string& key) {
    auto it = series.find(key);
    EXPECT_NE(it, series.end()) << "missing series " << key << "\n" << res->body;
    return it == series.end() ? -1.0 : it->second;
  };
  EXPECT_EQ(value("debias_rpc_requests_total{method=\"/debias.v1.ScoringService/Score\","
                  "code=\"OK\"}"), 1);
  EXPECT_EQ(value("debias_rpc_requests_total{method=\"/debias.v1.ScoringService/Score\","
                  "code=\"NOT_FOUND\"}"), 1);
  EXPECT_EQ(value("debias_rpc_latency_seconds_count{method=\"/debias.v1.ScoringService/Score\"}"),
            2);
  EXPECT_EQ(value("debias_rpc_requests_total{method=\"/debias.v1.DatasetService/Ingest\","
                  "code=\"OK\"}"), 1);
  EXPECT_GE(value("debias_rpc_in_flight"), 0);
  EXPECT_EQ(value("debias_ingest_events_total"), clicks.size());
  EXPECT_GT(value("debias_ingest_bytes_total"), 10.0 * clicks.size());
  EXPECT_EQ(value("debias_training_jobs_total{state=\"ready\"}"), 1);
  EXPECT_EQ(value("debias_training_duration_seconds_count{state=\"ready\"}"), 1);
  EXPECT_EQ(value("debias_training_jobs_running"), 0);
  EXPECT_EQ(value("debias_models{state=\"ready\"}"), 1);
  EXPECT_EQ(value("debias_models{state=\"failed\"}"), 0);
  EXPECT_EQ(value("debias_datasets"), 1);
  EXPECT_GT(value("debias_store_disk_bytes"), 0);
  EXPECT_EQ(value("debias_loaded_models"), 1);  // the Score above loaded it
  // Its parameters, key tables and blocked item factors.
  EXPECT_GT(value("debias_loaded_model_bytes"), 4.0 * m->items() * 2);
  EXPECT_GT(value("debias_store_memtable_bytes"), 0);  // the ingest is in the memtable
  EXPECT_GE(value("debias_store_block_cache_bytes"), 0);
  EXPECT_LE(value("debias_store_block_cache_bytes"), 64 << 20);  // StoreOptions default
  EXPECT_GE(value("debias_store_table_readers_bytes"), 0);
  // A running server holds at least its memtable.
  EXPECT_GT(value("process_resident_memory_bytes"), value("debias_store_memtable_bytes"));
  const std::string model_labels = absl::StrCat("{model=\"", m->id(), "\",loss=\"ips\"}");
  const double top1 = value("debias_model_top1pct_weight_share" + model_labels);
  EXPECT_GT(top1, 0.01);  // at least its even share
  EXPECT_LE(top1, 1.0);
  const double ess = value("debias_model_ess_fraction" + model_labels);
  EXPECT_GT(ess, 0.0);
  EXPECT_LE(ess, 1.0);
  EXPECT_GE(value("debias_model_clipped_share" + model_labels), 0.0);
  EXPECT_EQ(value("debias_build_info{version=\"" DEBIAS_VERSION "\"}"), 1);
  // Deleting the model drops it from the serving cache.
  ASSERT_OK(client->DeleteModel(m->id()));
  auto after = http.Get("/metrics");
  ASSERT_TRUE(after);
  const auto series_after = ParseExposition(after->body);
  ASSERT_TRUE(series_after.count("debias_loaded_models")) << after->body;
  EXPECT_EQ(series_after.at("debias_loaded_models"), 0);
  EXPECT_EQ(series_after.at("debias_loaded_model_bytes"), 0);
  EXPECT_EQ(series_after.at("debias_models{state=\"ready\"}"), 0);
  auto health = http.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(http.Get("/nope")->status, 404);
  client.reset();
  srv.reset();
  fs::remove_all(dir);
}

TEST(OperationsTest, ServingCacheKeepsAtMostMaxLoadedModelsAndReloadsDroppedOnes) {
  const fs::path dir = TempDir("lru");
  server::Limits limits;
  limits.max_loaded_models = 2;
  auto srv = StartServer(dir, {}, /*metrics=*/true, limits);
  ASSERT_NE(srv, nullptr);
  auto client = ClientFor(*srv);
  const auto clicks = Clicks();
  ASSERT_OK(client->Ingest("clicks", clicks).status);
  std::vector<uint64_t> ids;
  for (int seed = 1; seed <= 3; ++seed) {
    auto req = SmallTrain("relmf", 1);
    req.set_seed(seed);
    auto m = client->Train(req);
    ASSERT_OK(m);
    ASSERT_EQ(m->state(), "ready") << m->error();
    ids.push_back(m->id());
  }
  auto score = [&](uint64_t id) {
    v1::ScoreRequest sr;
    sr.set_model_id(id);
    sr.set_user(clicks.front().user);
    for (int k = 0; k < 5; ++k) sr.add_items(clicks[k].item);
    auto r = client->Score(sr);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? std::vector<float>(r->scores().begin(), r->scores().end())
                  : std::vector<float>{};
  };
  httplib::Client http("127.0.0.1", srv->metrics_port());
  auto scrape = [&] {
    auto res = http.Get("/metrics");
    EXPECT_TRUE(res);
    return res ? ParseExposition(res->body) : std::map<std::string, double>{};
  };
  std::vector<std::vector<float>> first;
  for (uint64_t id : ids) first.push_back(score(id));
  auto m1 = scrape();
  EXPECT_EQ(m1["debias_loaded_models"], 2);  // the third load dropped the first
  EXPECT_EQ(m1["debias_model_cache_evictions_total"], 1);
  // The dropped model reloads from the store and scores as before; the least
  // recently used of the other two (ids[1]) makes room.
  EXPECT_EQ(score(ids[0]), first[0]);
  EXPECT_EQ(score(ids[2]), first[2]);  // a cache hit: nothing dropped
  auto m2 = scrape();
  EXPECT_EQ(m2["debias_loaded_models"], 2);
  EXPECT_EQ(m2["debias_model_cache_evictions_total"], 2);
  EXPECT_EQ(score(ids[1]), first[1]);  // reloaded again; drops ids[0]
  EXPECT_EQ(scrape()["debias_model_cache_evictions_total"], 3);
  // ids[2] was used after ids[0], so it stayed (first-in-first-out would
  // have dropped it): a hit, no eviction.
  EXPECT_EQ(score(ids[2]), first[2]);
  EXPECT_EQ(scrape()["debias_model_cache_evictions_total"], 3);
  client.reset();
  srv.reset();
  fs::remove_all(dir);
}

TEST(OperationsTest, MetricsListenIsValidated) {
  const fs::path dir = TempDir("badmetrics");
  server::ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.data_dir = dir.string();
  o.metrics_listen = "no-port";
  EXPECT_THAT(server::DebiasServer::Start(o),
              StatusIs(absl::StatusCode::kInvalidArgument, "metrics_listen"));
  fs::remove_all(dir);
}

TEST(OperationsTest, ExportedModelScoresTheSameOnAnotherServer) {
  const fs::path a_dir = TempDir("a"), b_dir = TempDir("b");
  auto a = StartServer(a_dir);
  auto b = StartServer(b_dir);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto ca = ClientFor(*a), cb = ClientFor(*b);
  const auto clicks = Clicks();
  ASSERT_OK(ca->Ingest("clicks", clicks).status);
  auto m = ca->Train(SmallTrain("relmf"));
  ASSERT_OK(m);
  ASSERT_EQ(m->state(), "ready") << m->error();

  auto file = ca->ExportModel(m->id());
  ASSERT_OK(file);
  EXPECT_EQ(file->header().format_version(), 1u);
  EXPECT_EQ(file->header().model().id(), m->id());
  EXPECT_GT(file->header().parameters_bytes(), 0u);
  // Through a file, as `debiasctl model export|import` does.
  std::string bytes;
  ASSERT_TRUE(file->SerializeToString(&bytes));
  v1::ModelSnapshotFile reread;
  ASSERT_TRUE(reread.ParseFromString(bytes));

  auto imported = cb->ImportModel(reread);
  ASSERT_OK(imported);
  EXPECT_EQ(imported->state(), "ready");
  EXPECT_EQ(imported->users(), m->users());
  EXPECT_EQ(imported->items(), m->items());
  EXPECT_EQ(imported->spec().fields().at("loss").string_value(), "relmf");
  EXPECT_EQ(imported->diagnostics().fields().at("imported_from").struct_value().fields()
                .at("model_id").number_value(),
            static_cast<double>(m->id()));

  // Same scores and the same top-k on the replica, which has no dataset.
  for (int u = 0; u < 5; ++u) {
    v1::ScoreRequest sr;
    sr.set_user(clicks[u * 97 % clicks.size()].user);
    for (int i = 0; i < 10; ++i) sr.add_items(clicks[(u * 31 + i * 7) % clicks.size()].item);
    sr.set_model_id(m->id());
    auto sa = ca->Score(sr);
    sr.set_model_id(imported->id());
    auto sb = cb->Score(sr);
    ASSERT_OK(sa);
    ASSERT_OK(sb);
    ASSERT_EQ(sa->scores_size(), sb->scores_size());
    for (int i = 0; i < sa->scores_size(); ++i) EXPECT_EQ(sa->scores(i), sb->scores(i));
    v1::TopKRequest tr;
    tr.set_user(sr.user());
    tr.set_k(10);
    tr.set_model_id(m->id());
    auto ta = ca->TopK(tr);
    tr.set_model_id(imported->id());
    auto tb = cb->TopK(tr);
    ASSERT_OK(ta);
    ASSERT_OK(tb);
    EXPECT_EQ(std::vector<std::string>(ta->items().begin(), ta->items().end()),
              std::vector<std::string>(tb->items().begin(), tb->items().end()));
  }
  // The import survives a restart of the replica.
  const uint64_t imported_id = imported->id();
  cb.reset();
  b.reset();
  b = StartServer(b_dir);
  ASSERT_NE(b, nullptr);
  cb = ClientFor(*b);
  auto again = cb->GetModel(imported_id);
  ASSERT_OK(again);
  EXPECT_EQ(again->state(), "ready");

  // Corrupt or inconsistent snapshots never become models.
  v1::ModelSnapshotFile bad = reread;
  (*bad.mutable_parameters())[bad.parameters().size() / 2] ^= 0x5a;
  EXPECT_THAT(cb->ImportModel(bad), StatusIs(absl::StatusCode::kInvalidArgument, "CRC-32C"));
  bad = reread;
  bad.mutable_parameters()->resize(bad.parameters().size() - 3);
  EXPECT_THAT(cb->ImportModel(bad), StatusIs(absl::StatusCode::kInvalidArgument, "truncated"));
  bad = reread;
  bad.mutable_header()->set_format_version(2);
  EXPECT_THAT(cb->ImportModel(bad),
              StatusIs(absl::StatusCode::kFailedPrecondition, "format_version=2"));
  bad = reread;
  bad.mutable_header()->mutable_user_keys()->RemoveLast();
  EXPECT_THAT(cb->ImportModel(bad), StatusIs(absl::StatusCode::kInvalidArgument, "user_keys"));
  bad = reread;
  bad.mutable_header()->set_record_json("{not json");
  EXPECT_THAT(cb->ImportModel(bad), StatusIs(absl::StatusCode::kInvalidArgument, "record_json"));
  bad = reread;
  bad.set_parameters(std::string(bad.parameters().size(), '\x01'));
  bad.mutable_header()->set_parameters_crc32c(util::Crc32c(bad.parameters()));
  EXPECT_THAT(cb->ImportModel(bad), StatusIs(absl::StatusCode::kInvalidArgument, "parameters"));
  auto list = cb->ListModels();
  ASSERT_OK(list);
  EXPECT_EQ(list->size(), 1u);
  EXPECT_THAT(ca->ExportModel(12345), StatusIs(absl::StatusCode::kNotFound, ""));
  EXPECT_THAT(ca->ExportModel(0), StatusIs(absl::StatusCode::kInvalidArgument, "model_id"));

  ca.reset();
  cb.reset();
  a.reset();
  b.reset();
  fs::remove_all(a_dir);
  fs::remove_all(b_dir);
}

TEST(OperationsTest, BackupWhileServingThenRestoreFromIt) {
  const fs::path dir = TempDir("live"), backups = TempDir("backups");
  auto srv = StartServer(dir, backups);
  ASSERT_NE(srv, nullptr);
  auto client = ClientFor(*srv);
  std::vector<data::Interaction> mar;
  const auto clicks = Clicks(&mar);
  ASSERT_OK(client->Ingest("clicks", clicks).status);
  auto m = client->Train(SmallTrain("naive"));
  ASSERT_OK(m);
  ASSERT_EQ(m->state(), "ready") << m->error();

  auto b = client->Backup("nightly-1");
  ASSERT_OK(b);
  EXPECT_EQ(b->path(), (backups / "nightly-1").string());
  EXPECT_GT(b->bytes(), 0u);
  EXPECT_THAT(client->Backup("nightly-1"), StatusIs(absl::StatusCode::kAlreadyExists, ""));
  EXPECT_THAT(client->Backup("../etc"), StatusIs(absl::StatusCode::kInvalidArgument, "name"));
  auto unnamed = client->Backup("");
  ASSERT_OK(unnamed);
  EXPECT_NE(unnamed->path().find("backup-"), std::string::npos);

  // Writes after the backup are not in it.
  ASSERT_OK(client->Ingest("mar", mar).status);
  auto stats = client->GetStats("clicks");
  ASSERT_OK(stats);
  client.reset();
  srv.reset();

  // Restore: start a server on the checkpoint.
  auto restored = StartServer(backups / "nightly-1");
  ASSERT_NE(restored, nullptr);
  auto rc = ClientFor(*restored);
  auto rstats = rc->GetStats("clicks");
  ASSERT_OK(rstats);
  EXPECT_EQ(rstats->events(), stats->events());
  EXPECT_THAT(rc->GetStats("mar"), StatusIs(absl::StatusCode::kNotFound, ""));
  auto rm = rc->GetModel(m->id());
  ASSERT_OK(rm);
  EXPECT_EQ(rm->state(), "ready");
  v1::ScoreRequest sr;
  sr.set_model_id(m->id());
  sr.set_user(clicks.front().user);
  sr.add_items(clicks.front().item);
  EXPECT_OK(rc->Score(sr));
  rc.reset();
  restored.reset();

  // Without --backup_dir the RPC says how to turn it on.
  auto plain = StartServer(TempDir("plain"));
  ASSERT_NE(plain, nullptr);
  EXPECT_THAT(ClientFor(*plain)->Backup("x"),
              StatusIs(absl::StatusCode::kFailedPrecondition, "--backup_dir"));
  plain.reset();
  fs::remove_all(dir);
  fs::remove_all(backups);
  fs::remove_all(TempDir("plain"));
}

TEST(OperationsTest, TrainCancelledWithItsCallUnlessDetached) {
  const fs::path dir = TempDir("cancel");
  auto srv = StartServer(dir);
  ASSERT_NE(srv, nullptr);
  auto client = ClientFor(*srv);
  ASSERT_OK(client->Ingest("clicks", Clicks()).status);
  auto stub = v1::ModelService::NewStub(client->channel());

  // A deadline that passes mid-training cancels the job.
  uint64_t id = 0;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(1500));
    auto reader = stub->Train(&ctx, SmallTrain("relmf", 100000));
    v1::TrainEvent ev;
    while (reader->Read(&ev)) {
      if (ev.has_started()) id = ev.started().model_id();
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  ASSERT_NE(id, 0u);
  std::string state;
  for (int i = 0; i < 100 && state != "cancelled"; ++i) {
    auto r = client->GetModel(id);
    ASSERT_OK(r);
    state = r->state();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(state, "cancelled");

  // Detached: the job outlives the call.
  auto detached = client->StartTraining(SmallTrain("relmf", 100000));
  ASSERT_OK(detached);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto r = client->GetModel(*detached);
  ASSERT_OK(r);
  EXPECT_EQ(r->state(), "training");
  ASSERT_OK(client->CancelTraining(*detached));
  client.reset();
  srv.reset();
  fs::remove_all(dir);
}

TEST(FlagsTest, ConfigFileThenFlagsOverrideIt) {
  const fs::path dir = TempDir("config");
  fs::create_directories(dir);
  const std::string path = (dir / "debiasd.textproto").string();
  std::ofstream(path) << "# comment\nlisten: \"0.0.0.0:6000\"\nmax_k: 77\nsync: true\n"
                         "metrics_listen: \"127.0.0.1:9464\"\nlog_level: \"debug\"\n";
  std::vector<std::string> args = {"debiasd", "--config", path, "--max_k", "88", "--no_sync"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  server::ServerOptions o;
  server::ProcessOptions p;
  EXPECT_EQ(server::ParseServerCommandLine(argv.size(), argv.data(), &o, &p), -1);
  EXPECT_EQ(o.listen, "0.0.0.0:6000");           // from the file
  EXPECT_EQ(o.limits.max_k, 88);                 // the flag wins
  EXPECT_FALSE(o.sync);                          // the flag wins
  EXPECT_EQ(o.metrics_listen, "127.0.0.1:9464");
  EXPECT_EQ(p.log_level, "debug");

  server::ServerOptions o2;
  server::ProcessOptions p2;
  EXPECT_THAT(server::ApplyConfigText("max_k: 0\n", &o2, &p2),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_k=0: must be in [1, 1000000]"));
  EXPECT_THAT(server::ApplyConfigText("listen: \"a\"\nmax_kk: 3\n", &o2, &p2),
              StatusIs(absl::StatusCode::kInvalidArgument, "line 2"));
  EXPECT_THAT(server::ApplyConfigText("log_level: \"loud\"", &o2, &p2),
              StatusIs(absl::StatusCode::kInvalidArgument, "log_level"));
  EXPECT_THAT(server::ApplyConfigFile((dir / "absent").string(), &o2, &p2),
              StatusIs(absl::StatusCode::kNotFound, ""));
  fs::remove_all(dir);
}

TEST(FlagsTest, EveryFlagIsAConfigFieldAndBack) {
  CLI::App app;
  server::ServerOptions o;
  server::ProcessOptions p;
  server::AddServerFlags(app, &o, &p);
  std::set<std::string> flags;
  for (const CLI::Option* opt : app.get_options()) {
    for (const auto& n : opt->get_lnames()) {
      if (n != "help" && n != "config" && n.rfind("no_", 0) != 0) flags.insert(n);
    }
  }
  std::set<std::string> fields;
  const auto* d = v1::ServerConfig::descriptor();
  for (int i = 0; i < d->field_count(); ++i) fields.insert(d->field(i)->name());
  EXPECT_EQ(flags, fields);
}

}  // namespace
}  // namespace debias

namespace debias {
namespace {

// Deadlines are honoured: an Evaluate whose deadline passes stops its work
// (the handler returns, seen on the server's own request counter) in a small
// fraction of the time the whole evaluation takes, measured against a
// shorter run of the same request in this process.
TEST(OperationsTest, EvaluateStopsWorkWhenItsDeadlinePasses) {
  const fs::path dir = TempDir("deadline");
  server::Limits limits;
  limits.max_bootstrap = 100000;
  auto srv = StartServer(dir, {}, /*metrics=*/true, limits);
  ASSERT_NE(srv, nullptr);
  auto client = ClientFor(*srv);
  synth::MnarWorldOptions wo;
  wo.num_users = 20000;
  wo.num_items = 40;
  wo.expected_clicks = 30000;
  wo.seed = 4;
  auto world = synth::MnarWorld::Generate(wo);
  ASSERT_OK(world);
  ASSERT_OK(client->Ingest("clicks", world->ClickEvents()).status);
  auto m = client->Train(SmallTrain("naive", 1));
  ASSERT_OK(m);
  ASSERT_EQ(m->state(), "ready") << m->error();

  v1::EvaluateRequest req;
  req.set_dataset("clicks");
  req.set_model_id(m->id());
  req.set_estimator("ips");
  req.set_bootstrap(2000);
  req.set_seed(1);
  auto stub = v1::EvaluationService::NewStub(client->channel());
  const auto t_small0 = std::chrono::steady_clock::now();
  {
    grpc::ClientContext ctx;
    v1::EvaluateResponse resp;
    ASSERT_TRUE(stub->Evaluate(&ctx, req, &resp).ok());
  }
  const double t_small =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_small0).count();

  req.set_bootstrap(100000);  // about 50x the work of the run above
  const auto t0 = std::chrono::steady_clock::now();
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
    v1::EvaluateResponse resp;
    EXPECT_EQ(stub->Evaluate(&ctx, req, &resp).error_code(),
              grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  httplib::Client http("127.0.0.1", srv->metrics_port());
  const std::string key =
      "debias_rpc_latency_seconds_count{method=\"/debias.v1.EvaluationService/Evaluate\"}";
  double handled = 0, waited = 0;
  while (waited < 25 * t_small + 5) {
    auto res = http.Get("/metrics");
    ASSERT_TRUE(res);
    handled = ParseExposition(res->body)[key];
    waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (handled >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(handled, 2) << "the evaluation past its deadline is still running";
  // Half of the 50x extrapolation: far above the few ms a cancelled run takes.
  EXPECT_LT(waited, 25 * t_small) << "t_small=" << t_small;
  EXPECT_OK(client->Health());
  client.reset();
  srv.reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace debias

namespace debias {
namespace {

TEST(OperationsTest, UnknownHyperparameterIsInvalidArgument) {
  const fs::path dir = TempDir("params");
  auto srv = StartServer(dir);
  ASSERT_NE(srv, nullptr);
  auto client = ClientFor(*srv);
  ASSERT_OK(client->Ingest("clicks", Clicks()).status);
  v1::TrainRequest r = SmallTrain("relmf");
  (*r.mutable_params())["epochz"] = "3";
  EXPECT_THAT(client->Train(r), StatusIs(absl::StatusCode::kInvalidArgument, "epochz"));
  client.reset();
  srv.reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace debias
