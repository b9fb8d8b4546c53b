// End-to-end: the real debiasd binary on a free port, driven by the real
// debiasctl binary, as a user's script would.
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/util/spawn.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kBin = DEBIAS_BINARY_DIR;

struct Result {
  int exit_code;
  std::string out, err;
};

std::string Slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

class CliE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("debias_e2e_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    pid_ = debias::testing::SpawnWithLog(
        {kBin + "/server/debiasd", "--listen", "127.0.0.1:0", "--data_dir",
         (dir_ / "db").string(), "--port_file", (dir_ / "port").string(), "--metrics_listen",
         "127.0.0.1:0"},
        (dir_ / "debiasd.log").string());
    ASSERT_GT(pid_, 0);
    for (int i = 0; i < 200 && !fs::exists(dir_ / "port"); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(fs::exists(dir_ / "port")) << Slurp(dir_ / "debiasd.log");
    server_ = "127.0.0.1:" + std::to_string(std::stoi(Slurp(dir_ / "port")));
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    fs::remove_all(dir_);
  }
  Result Ctl(const std::string& args) {
    const fs::path out = dir_ / "out", err = dir_ / "err";
    const std::string cmd = kBin + "/client/debiasctl " + args + " --server " + server_ +
                            " >" + out.string() + " 2>" + err.string();
    int rc = std::system(cmd.c_str());
    return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, Slurp(out), Slurp(err)};
  }
  json CtlJson(const std::string& args) {
    Result r = Ctl(args + " --json");
    EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.err;
    return json::parse(r.out);
  }
  // SIGTERM, and the exit status of the server.
  int StopServer() {
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 200; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }
  fs::path dir_;
  pid_t pid_ = -1;
  std::string server_;
};

TEST_F(CliE2eTest, TheLogNamesTheMetricsPortActuallyBound) {
  // --metrics_listen 127.0.0.1:0 binds a free port: the log must say which
  // (it said 0, which no scraper can use).
  const std::string log = Slurp(dir_ / "debiasd.log");
  const std::string marker = "metrics on http://127.0.0.1:";
  const size_t at = log.find(marker);
  ASSERT_NE(at, std::string::npos) << log;
  const int port = std::atoi(log.c_str() + at + marker.size());
  ASSERT_GT(port, 0) << log;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << "nothing listens on the logged port " << port;
  ::close(fd);
}

TEST_F(CliE2eTest, SynthIngestStatsThenCleanShutdown) {
  const std::string world = (dir_ / "world").string();
  json synth = CtlJson("synth --world mnar --users 300 --items 200 --seed 3 --out " + world);
  const uint64_t clicks = synth["summary"]["clicks"];
  ASSERT_GT(clicks, 100u);

  json ing = CtlJson("ingest --dataset train --format csv " + world + "/train.csv");
  EXPECT_EQ(ing["dataset"], "train");
  EXPECT_EQ(ing["events_acknowledged"], clicks);
  json stats = CtlJson("stats --dataset train");
  EXPECT_EQ(stats["events"], clicks);
  EXPECT_EQ(stats["positives"], clicks);
  EXPECT_EQ(stats["users"], synth["summary"]["users_with_clicks"]);
  EXPECT_EQ(stats["items"], synth["summary"]["items_with_clicks"]);
  EXPECT_EQ(stats["feedback"], "implicit");

  // The rows carry no event id: re-ingesting stores them again, and says so
  // before it does.
  Result again = Ctl("ingest --dataset train --format csv " + world + "/train.csv --json");
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("rows without an event_id are stored as new events"),
            std::string::npos)
      << again.err;
  EXPECT_EQ(json::parse(again.out)["events_stored"], clicks);
  EXPECT_EQ(CtlJson("stats --dataset train")["events"], 2 * clicks);

  json test_ing = CtlJson("ingest --dataset test --format csv " + world + "/test.csv");
  EXPECT_EQ(test_ing["events_acknowledged"], synth["summary"]["test_events"]);
  json list = CtlJson("datasets");
  ASSERT_EQ(list["datasets"].size(), 2u);
  // An undeclared feedback kind is shown as decided from the data, not as
  // an empty column.
  Result human = Ctl("datasets");
  EXPECT_NE(human.out.find("(from data)"), std::string::npos) << human.out;

  // Export writes the same events back.
  json exp = CtlJson("export --dataset train --out " + (dir_ / "exported.csv").string());
  EXPECT_EQ(exp["events"], 2 * clicks);

  EXPECT_EQ(StopServer(), 0);
}

// Model names, versions and labels through debiasctl (issue 23): train
// --name, --model NAME[:VERSION|@LABEL], label set/list, model publish into
// a repository layout, and the error codes of the reference contract.
TEST_F(CliE2eTest, NamesVersionsLabelsAndPublish) {
  const std::string world = (dir_ / "world").string();
  CtlJson("synth --world mnar --users 200 --items 100 --seed 3 --out " + world);
  CtlJson("ingest --dataset clicks --format csv " + world + "/train.csv");
  const std::string train = "train --dataset clicks --loss naive --param epochs=2 --name rec";
  json v1 = CtlJson(train + " --seed 1");
  json v2 = CtlJson(train + " --seed 2");
  EXPECT_EQ(v1["name"], "rec");
  EXPECT_EQ(v1["version"], 1);
  EXPECT_EQ(v2["version"], 2);
  // The first event's user and item (train.csv: user,item,...).
  std::string user, item;
  {
    std::ifstream csv(world + "/train.csv");
    std::string header, row;
    std::getline(csv, header);
    std::getline(csv, row);
    std::stringstream fields(row);
    std::getline(fields, user, ',');
    std::getline(fields, item, ',');
  }
  const std::string items = " --user " + user + " --items " + item;

  // The name alone: latest ready version; after `label set`, the stable one.
  json s = CtlJson("score --model rec" + items);
  EXPECT_EQ(s["served"]["version"], 2);
  json labels = CtlJson("label set rec stable 1");
  EXPECT_EQ(labels["labels"]["stable"], 1);
  EXPECT_EQ(CtlJson("score --model rec" + items)["served"]["version"], 1);
  EXPECT_EQ(CtlJson("topk --model rec:2 --user " + user + " --k 3")["served"]["version"], 2);
  CtlJson("label set rec canary 2");
  EXPECT_EQ(CtlJson("score --model rec@canary" + items)["model_id"], v2["model_id"]);
  // A numeric --model is still an id.
  EXPECT_EQ(CtlJson("score --model " + v1["model_id"].dump() + items)["served"]["name"], "rec");
  json listed = CtlJson("label list rec");
  EXPECT_EQ(listed["versions"], json::array({1, 2}));

  Result r = Ctl("score --model rec@gold" + items);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("NOT_FOUND"), std::string::npos) << r.err;
  r = Ctl("label set rec stable 9");
  EXPECT_NE(r.err.find("NOT_FOUND"), std::string::npos) << r.err;
  r = Ctl("train --dataset clicks --loss naive --name Bad_Name");
  EXPECT_NE(r.err.find("INVALID_ARGUMENT"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("name='Bad_Name'"), std::string::npos) << r.err;
  r = Ctl("score --model 'rec:x'" + items);
  EXPECT_NE(r.err.find("INVALID_ARGUMENT"), std::string::npos) << r.err;

  // publish: NAME/VERSION/model.pb and the labels file, no temporary left.
  const fs::path repo = dir_ / "repo";
  json pub = CtlJson("model publish --model rec@canary --repository " + repo.string() +
                     " --label stable");
  EXPECT_EQ(pub["version"], 2);
  EXPECT_TRUE(fs::exists(repo / "rec" / "2" / "model.pb"));
  EXPECT_EQ(Slurp(repo / "rec" / "labels"), "stable 2\n");
  int files = 0;
  for (const auto& e : fs::recursive_directory_iterator(repo)) files += e.is_regular_file();
  EXPECT_EQ(files, 2);
  // --lb round_robin over a one-address list works the same.
  EXPECT_EQ(Ctl("health --lb round_robin").exit_code, 0);
  EXPECT_EQ(StopServer(), 0);
}

TEST_F(CliE2eTest, TopKAndBatchTopKAgree) {
  const std::string world = (dir_ / "world").string();
  CtlJson("synth --world mnar --users 200 --items 150 --seed 4 --out " + world);
  CtlJson("ingest --dataset train --format csv " + world + "/train.csv");
  json model = CtlJson("train --dataset train --loss naive --seed 1 --param epochs=2 --param dim=8");
  ASSERT_EQ(model["state"], "ready") << model.dump();
  const std::string id = std::to_string(model["model_id"].get<uint64_t>());
  // Two users with clicks, from the CSV (header first).
  std::ifstream csv(world + "/train.csv");
  std::string line;
  std::vector<std::string> users;
  std::getline(csv, line);
  while (users.size() < 2 && std::getline(csv, line)) {
    const std::string u = line.substr(0, line.find(','));
    if (users.empty() || users.back() != u) users.push_back(u);
  }
  ASSERT_EQ(users.size(), 2u);
  json batch = CtlJson("batch-topk --model " + id + " --users " + users[0] + "," + users[1] +
                       " --k 5 --exclude-seen --retrieval exact");
  EXPECT_EQ(batch["retrieval"], "exact");
  ASSERT_EQ(batch["users"].size(), 2u);
  for (int u = 0; u < 2; ++u) {
    json one = CtlJson("topk --model " + id + " --user " + users[u] +
                       " --k 5 --exclude-seen --retrieval exact");
    EXPECT_EQ(one["retrieval"], "exact");
    EXPECT_EQ(batch["users"][u]["user"], users[u]);
    EXPECT_EQ(batch["users"][u]["items"], one["items"]);
    EXPECT_EQ(batch["users"][u]["scores"], one["scores"]);
  }
  Result approx = Ctl("topk --model " + id + " --user " + users[0] + " --retrieval approximate");
  EXPECT_NE(approx.exit_code, 0);
  EXPECT_NE(approx.err.find("model " + id + ": retrieval=approximate"), std::string::npos)
      << approx.err;
}

TEST_F(CliE2eTest, BadInputGivesClearErrorsAndTheServerStaysUp) {
  {
    std::ofstream f(dir_ / "bad.csv");
    f << "user,item,label\nu1,i1,1\nu2,i2,notanumber\n";
  }
  Result r = Ctl("ingest --dataset bad --format csv " + (dir_ / "bad.csv").string() + " --json");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("bad.csv:3"), std::string::npos) << r.err;
  // Nothing of the file was written.
  r = Ctl("stats --dataset bad --json");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("NOT_FOUND"), std::string::npos) << r.err;

  // With --skip-bad-rows the good row goes in and the skip is counted.
  json ok = CtlJson("ingest --dataset bad --format csv --skip-bad-rows " +
                    (dir_ / "bad.csv").string());
  EXPECT_EQ(ok["events_acknowledged"], 1);
  EXPECT_EQ(ok["skipped_rows"], 1);

  r = Ctl("stats --dataset 'has space' --json");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("INVALID_ARGUMENT"), std::string::npos) << r.err;

  r = Ctl("ingest --dataset x --format nosuch " + (dir_ / "bad.csv").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("nosuch"), std::string::npos) << r.err;

  r = Ctl("ingest --dataset x --format csv " + (dir_ / "missing.csv").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("NOT_FOUND"), std::string::npos) << r.err;

  r = Ctl("delete --dataset nothere --json");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("NOT_FOUND"), std::string::npos) << r.err;

  EXPECT_EQ(CtlJson("health")["status"], "SERVING");
  EXPECT_EQ(StopServer(), 0);
}

TEST_F(CliE2eTest, CoatIngestCountsAndIdempotence) {
  const std::string coat = std::string(DEBIAS_SHARED_DATA_DIR) + "/coat";
  if (!fs::exists(coat + "/train.ascii")) GTEST_SKIP() << "no shared Coat data";
  // Coat's rows have no event id: a dataset created with --dedup natural_key
  // takes a re-ingested file as duplicates; a default one stores it again.
  EXPECT_EQ(CtlJson("ingest --dataset coat-train --dedup natural_key --format coat " + coat +
                    "/train.ascii")["events_stored"],
            6960);
  EXPECT_EQ(CtlJson("ingest --dataset coat-test --format coat " + coat + "/test.ascii")
                ["events_acknowledged"],
            4640);
  json again = CtlJson("ingest --dataset coat-train --format coat " + coat + "/train.ascii");
  EXPECT_EQ(again["events_stored"], 0);
  EXPECT_EQ(again["events_duplicate"], 6960);
  EXPECT_EQ(CtlJson("ingest --dataset coat-test --format coat " + coat + "/test.ascii")
                ["events_stored"],
            4640);
  EXPECT_EQ(CtlJson("stats --dataset coat-test")["events"], 2 * 4640);
  json s = CtlJson("stats --dataset coat-train");
  EXPECT_EQ(s["events"], 6960);
  EXPECT_EQ(s["users"], 290);
  EXPECT_EQ(s["feedback"], "explicit");
  EXPECT_EQ(StopServer(), 0);
}

}  // namespace

namespace {

TEST_F(CliE2eTest, ReplayWritesTheReportAndEvaluateKeepsItsJsonContract) {
  const std::string world = (dir_ / "world").string();
  CtlJson("synth --world mnar --users 200 --items 120 --expected-clicks 3000 --seed 4 --out " +
          world);
  const std::string report = (dir_ / "report.html").string();
  json rep = CtlJson("replay " + world + "/train.csv --test " + world +
                     "/test.csv --dataset logs --models naive,relmf --param epochs=3 "
                     "--bootstrap 50 --k 5 --report " + report);
  ASSERT_EQ(rep["models"].size(), 2u);
  for (const auto& m : rep["models"]) {
    for (const char* est : {"naive", "ips", "snips"}) {
      const json& e = m["estimates"][est];
      ASSERT_TRUE(e["metrics"].contains("dcg@5")) << m["name"] << " " << est;
      const double v = e["metrics"]["dcg@5"];
      EXPECT_LE(e["intervals"]["dcg@5"][0].get<double>(), v);
      EXPECT_GE(e["intervals"]["dcg@5"][1].get<double>(), v);
    }
    EXPECT_TRUE(m["mar_metrics"].contains("dcg@5"));
    EXPECT_GE(m["curve"].size(), 3u);
  }
  const std::string html = Slurp(report);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  // Self-contained: nothing to fetch (the SVG namespace is a name, not a fetch).
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  json saved = json::parse(Slurp(dir_ / "report.json"));
  EXPECT_EQ(saved["models"].size(), 2u);
  // Replay refuses to reuse a dataset.
  Result again = Ctl("replay " + world + "/train.csv --dataset logs --report " + report);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("ALREADY_EXISTS"), std::string::npos) << again.err;

  // The documented contract of evaluate --json.
  const uint64_t id = rep["models"][0]["model_id"];
  json ev = CtlJson("evaluate --model " + std::to_string(id) +
                    " --dataset logs --estimator snips --bootstrap 20 --seed 3 --k 5");
  EXPECT_TRUE(ev["metrics"].contains("dcg@5"));
  EXPECT_EQ(ev["intervals"]["dcg@5"].size(), 2u);
  EXPECT_TRUE(ev["diagnostics"]["weights"].contains("ess"));
  EXPECT_TRUE(ev["diagnostics"].contains("warnings"));

  // The load generator reports throughput, quantiles and no errors.
  json b = CtlJson("bench score --model " + std::to_string(id) +
                   " --concurrency 2 --duration 0.5 --warmup 0.1 --candidates 20");
  EXPECT_GT(b["ok"].get<int64_t>(), 0);
  EXPECT_EQ(b["errors"], 0);
  EXPECT_GT(b["latency_ms"]["p99"].get<double>(), 0);
  EXPECT_LE(b["latency_ms"]["p50"].get<double>(), b["latency_ms"]["p99"].get<double>());
  Result bad = Ctl("bench score --duration 0.2");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--model"), std::string::npos) << bad.err;
}

// Issue 27 at the CLI: several policy estimators on uploaded scores with a
// cross-fitted reward model, categories for mips and SLOPE; the table ends
// with the trust report.
TEST_F(CliE2eTest, EvaluatePrintsTheTrustReportAndSlope) {
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  };
  std::string log = "user,item,label,timestamp,propensity\n", scores = "user,item,score\n";
  char row[64];
  for (int t = 0; t < 40; ++t) {
    std::snprintf(row, sizeof row, "u%d,i%d,%d,%d,0.3333\n", t % 4, t % 3, t % 2, t);
    log += row;
  }
  for (int u = 0; u < 4; ++u) {
    for (int i = 0; i < 3; ++i) {
      std::snprintf(row, sizeof row, "u%d,i%d,%d\n", u, i, (u + i) % 3);
      scores += row;
    }
  }
  CtlJson("ingest --dataset bandit --format csv " + write("log.csv", log));
  const std::string args = "evaluate --dataset bandit --scores " + write("s.csv", scores) +
                           " --policy-estimator ipw,mips,dr --reward-model crossfit "
                           "--crossfit-folds 2 --slope --item-category " +
                           write("cat.csv", "item,category\ni0,A\ni1,A\ni2,B\n");
  Result r = Ctl(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("policy_value/mips"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("which estimator to trust (bias estimated against ipw)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("recommended: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("slope: ipw clip="), std::string::npos) << r.out;
  json j = CtlJson(args);
  EXPECT_EQ(j["diagnostics"]["reward_model"]["kind"], "crossfit");
  EXPECT_TRUE(j["diagnostics"]["trust"]["estimators"].contains("dr"));
  Result bad = Ctl("evaluate --dataset bandit --scores " + (dir_ / "s.csv").string() +
                   " --policy-estimator mips");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("item_category"), std::string::npos) << bad.err;
}

}  // namespace
