// Crash test (issue 9, "Faults"; ctest -L crash): 20 rounds of SIGKILL of the
// real debiasd binary while client threads stream ingests and a training job
// runs (and, every fourth round, one more SIGKILL 0-60 ms into the start,
// while the store is being opened). After each restart:
//  - the server answers health within 5 s of being started;
//  - every acknowledged event is present exactly once (read back with Export
//    and GetStats) and no batch is partly applied: a batch the server did not
//    acknowledge before the kill is either all there or not at all, and
//    re-sending it (as a client retrying would) never duplicates it;
//  - every model whose training the client saw finish "ready" is still ready,
//    loads and scores; a model interrupted by the kill is "failed" (never left
//    "training"), or "ready" if it finished just before the kill.
// An ingest acknowledgement means the batch is in RocksDB's write-ahead log
// (fsynced with --sync, which every other round uses); a process crash must
// not lose it (docs/SECURITY.md, "Durability").
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "tests/util/spawn.h"

namespace debias {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kRounds = 20;
constexpr int kThreads = 3;
constexpr int kBatchEvents = 100;    // events per ingest batch (one message)
constexpr int kBatchesPerCall = 5;   // batches per Ingest stream

std::string Slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string Tail(const std::string& s, size_t n = 3000) {
  return s.size() <= n ? s : s.substr(s.size() - n);
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Batch `seq` of ingest thread `t`: kBatchEvents events whose timestamps
// seq * 1000 + k identify the batch and the event; user and item follow
// from k, so Export shows exactly what was stored. The event id makes a
// re-sent batch (a retrying client) add nothing.
std::vector<data::Interaction> MakeBatch(int t, int64_t seq) {
  std::vector<data::Interaction> out(kBatchEvents);
  for (int k = 0; k < kBatchEvents; ++k) {
    out[k].user = absl::StrCat("c", t, "u", k % 16);
    out[k].item = absl::StrCat("i", k % 32);
    out[k].label = 1.0f;
    out[k].timestamp = seq * 1000 + k;
    out[k].event_id = absl::StrCat("t", t, "s", seq, "k", k);
  }
  return out;
}

struct IngestLedger {
  std::mutex mu;
  int64_t next_seq = 0;
  std::set<int64_t> acked;    // acknowledged batches: must be present, once
  std::set<int64_t> unknown;  // sent, not acknowledged: all or nothing
};

struct ModelLedger {
  std::mutex mu;
  std::set<uint64_t> ready;        // the client saw them finish ready
  std::set<uint64_t> interrupted;  // started, stream broken by the kill
};

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("debias_crash_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    Kill();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  // Starts debiasd on the store; its output goes to `log_`.
  void Spawn(const std::string& log_name, bool sync) {
    fs::remove(dir_ / "port");
    log_ = dir_ / log_name;
    // Not fork + exec: the client threads of the last round may hold
    // malloc's locks (tests/util/spawn.h).
    std::vector<std::string> argv = {std::string(DEBIAS_BINARY_DIR) + "/server/debiasd",
                                     "--listen", "127.0.0.1:0",
                                     "--data_dir", (dir_ / "db").string(),
                                     "--port_file", (dir_ / "port").string(),
                                     "--max_training_jobs", "1"};
    if (sync) argv.push_back("--sync");
    pid_ = testing::SpawnWithLog(argv, log_.string());
  }

  // A SIGKILL while the server opens the store (WAL replay, marking
  // interrupted jobs) or just after.
  void KillDuringStartup(int round, int after_ms) {
    Spawn(absl::StrCat("debiasd.", round, ".early.log"), false);
    std::this_thread::sleep_for(std::chrono::milliseconds(after_ms));
    Kill();
  }

  // Starts debiasd and waits until it answers health; returns the seconds
  // from the spawn to the first SERVING answer.
  double Start(int round, bool sync) {
    const auto t0 = Clock::now();
    Spawn(absl::StrCat("debiasd.", round, ".log"), sync);
    if (pid_ < 0) {
      ADD_FAILURE() << "posix_spawn of debiasd failed";
      return 1e9;
    }
    while (!fs::exists(dir_ / "port") && Seconds(t0) < 10) {
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        ADD_FAILURE() << "debiasd exited at start (round " << round << "):\n" << Tail(Slurp(log_));
        return 1e9;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!fs::exists(dir_ / "port")) {
      ADD_FAILURE() << "no port file after 10 s:\n" << Tail(Slurp(log_));
      return 1e9;
    }
    target_ = "127.0.0.1:" + std::to_string(std::stoi(Slurp(dir_ / "port")));
    ClientOptions co;
    co.timeout = std::chrono::milliseconds(5000);
    client_ = Client::Connect(target_, co);
    while (!client_->Health().ok() && Seconds(t0) < 10) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return Seconds(t0);
  }

  void Kill() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  // Streams batches into "ingest-<t>" until the server dies: first the
  // batches a previous round left unacknowledged (re-sent, as a retrying
  // client would), then new ones.
  void IngestLoop(int t, std::atomic<bool>* stop) {
    IngestLedger& L = ledgers_[t];
    auto client = Client::Connect(target_);
    const std::string dataset = absl::StrCat("ingest-", t);
    std::vector<int64_t> retry;
    {
      std::lock_guard<std::mutex> l(L.mu);
      retry.assign(L.unknown.begin(), L.unknown.end());
    }
    while (!stop->load()) {
      std::vector<int64_t> seqs;
      while (!retry.empty() && seqs.size() < kBatchesPerCall) {
        seqs.push_back(retry.back());
        retry.pop_back();
      }
      {
        std::lock_guard<std::mutex> l(L.mu);
        while (seqs.size() < kBatchesPerCall) seqs.push_back(L.next_seq++);
        for (int64_t s : seqs) L.unknown.insert(s);
      }
      std::vector<data::Interaction> events;
      for (int64_t s : seqs) {
        auto b = MakeBatch(t, s);
        events.insert(events.end(), b.begin(), b.end());
      }
      IngestOptions io;
      io.batch_size = kBatchEvents;
      io.create_if_missing = true;
      IngestSummary sum = client->Ingest(dataset, events, io);
      EXPECT_EQ(sum.events_acknowledged % kBatchEvents, 0u)
          << "acknowledgements come per whole batch";
      const size_t acked_batches = sum.events_acknowledged / kBatchEvents;
      {
        std::lock_guard<std::mutex> l(L.mu);
        for (size_t k = 0; k < acked_batches && k < seqs.size(); ++k) {
          L.unknown.erase(seqs[k]);
          L.acked.insert(seqs[k]);
        }
      }
      if (!sum.status.ok()) return;  // the server went away
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // Trains relmf jobs of random length on "train-src" until the server dies.
  void TrainLoop(uint64_t seed, std::atomic<bool>* stop) {
    std::mt19937_64 rng(seed);
    auto client = Client::Connect(target_);
    while (!stop->load()) {
      v1::TrainRequest req;
      req.set_dataset("train-src");
      req.set_loss("relmf");
      req.set_seed(rng() % 1000);
      (*req.mutable_params())["epochs"] =
          std::to_string(std::uniform_int_distribution<int>(1, 40)(rng));
      (*req.mutable_params())["dim"] = "8";
      uint64_t started = 0;
      auto m = client->Train(req, [&](const v1::TrainEvent& ev) {
        if (ev.has_started()) {
          started = ev.started().model_id();
          std::lock_guard<std::mutex> l(models_.mu);
          models_.interrupted.insert(started);
        }
      });
      std::lock_guard<std::mutex> l(models_.mu);
      if (m.ok() && m->state() == "ready") {
        models_.interrupted.erase(m->id());
        models_.ready.insert(m->id());
      } else if (m.ok()) {
        ADD_FAILURE() << "model " << m->id() << " ended " << m->state() << ": " << m->error();
        return;
      } else {
        return;  // the server went away (or had no free slot: try next round)
      }
    }
  }

  void VerifyIngests(int round) {
    for (int t = 0; t < kThreads; ++t) {
      IngestLedger& L = ledgers_[t];
      const std::string dataset = absl::StrCat("ingest-", t);
      std::map<int64_t, std::vector<int>> seen;  // seq -> copies of each event
      uint64_t exported = 0;
      auto st = client_->Export(dataset, [&](const v1::ExportResponse& r) {
        for (const auto& e : r.events()) {
          ++exported;
          const int64_t seq = e.timestamp() / 1000, k = e.timestamp() % 1000;
          if (!e.has_timestamp() || e.timestamp() < 0 || k >= kBatchEvents) {
            ADD_FAILURE() << dataset << ": an event nobody sent: " << e.ShortDebugString();
            return false;
          }
          EXPECT_EQ(e.user(), absl::StrCat("c", t, "u", k % 16)) << "seq " << seq << " k " << k;
          EXPECT_EQ(e.item(), absl::StrCat("i", k % 32)) << "seq " << seq << " k " << k;
          auto& copies = seen[seq];
          if (copies.empty()) copies.assign(kBatchEvents, 0);
          ++copies[k];
        }
        return true;
      });
      std::lock_guard<std::mutex> l(L.mu);
      if (L.acked.empty() && L.unknown.empty()) continue;
      if (absl::IsNotFound(st) && L.acked.empty()) continue;  // never created
      ASSERT_TRUE(st.ok()) << dataset << ": " << st;
      for (const auto& [seq, copies] : seen) {
        ASSERT_TRUE(L.acked.count(seq) || L.unknown.count(seq))
            << dataset << ": batch " << seq << " was never sent";
        int present = 0;
        for (int k = 0; k < kBatchEvents; ++k) {
          EXPECT_LE(copies[k], 1) << dataset << ": batch " << seq << " event " << k
                                  << " stored " << copies[k] << " times";
          present += copies[k] > 0;
        }
        EXPECT_EQ(present, kBatchEvents)
            << dataset << ": batch " << seq << " partly applied (" << present << " of "
            << kBatchEvents << " events) after round " << round;
      }
      for (int64_t seq : L.unknown) ++(seen.count(seq) ? unacked_present_ : unacked_absent_);
      size_t lost = 0;
      for (int64_t seq : L.acked) {
        if (!seen.count(seq)) {
          if (++lost <= 5) ADD_FAILURE() << dataset << ": acknowledged batch " << seq
                                         << " lost after round " << round;
        }
      }
      EXPECT_EQ(lost, 0u) << dataset << ": acknowledged batches lost";
      auto stats = client_->GetStats(dataset);
      ASSERT_TRUE(stats.ok()) << stats.status();
      EXPECT_EQ(stats->events(), exported) << dataset;
      EXPECT_EQ(exported, seen.size() * static_cast<uint64_t>(kBatchEvents)) << dataset;
    }
  }

  void VerifyModels(int round) {
    auto list = client_->ListModels();
    ASSERT_TRUE(list.ok()) << list.status();
    std::map<uint64_t, v1::Model> by_id;
    for (const auto& m : *list) by_id[m.id()] = m;
    std::lock_guard<std::mutex> l(models_.mu);
    for (const auto& [id, m] : by_id) {
      EXPECT_NE(m.state(), "training")
          << "model " << id << " left training by a killed server (round " << round << ")";
      if (m.state() == "ready") continue;
      EXPECT_EQ(m.state(), "failed") << "model " << id;
      EXPECT_FALSE(models_.ready.count(id)) << "model " << id << " was ready, now " << m.state();
    }
    // Every model seen ready (and every ready one the server lists) loads
    // and scores.
    std::set<uint64_t> check = models_.ready;
    for (const auto& [id, m] : by_id) {
      if (m.state() == "ready") check.insert(id);
    }
    for (uint64_t id : check) {
      ASSERT_TRUE(by_id.count(id)) << "model " << id << " was ready before round " << round
                                   << " and is gone";
      ASSERT_EQ(by_id[id].state(), "ready") << "model " << id;
      v1::ScoreRequest sr;
      sr.set_model_id(id);
      sr.set_user("s0");
      sr.add_items("t0");
      sr.add_items("t1");
      auto sc = client_->Score(sr);
      ASSERT_TRUE(sc.ok()) << "model " << id << ": " << sc.status();
      ASSERT_EQ(sc->scores_size(), 2);
      for (float s : sc->scores()) EXPECT_TRUE(std::isfinite(s)) << "model " << id;
      ++models_scored_;
    }
    for (uint64_t id : models_.interrupted) {
      if (!by_id.count(id)) continue;  // the kill came before its record was written
      const auto& m = by_id[id];
      if (m.state() == "failed") {
        EXPECT_NE(m.error().find("interrupted"), std::string::npos) << m.error();
        interrupted_failed_.insert(id);
      }
    }
  }

  fs::path dir_, log_;
  pid_t pid_ = -1;
  std::string target_;
  std::unique_ptr<Client> client_;
  IngestLedger ledgers_[kThreads];
  ModelLedger models_;
  size_t models_scored_ = 0;
  // Unacknowledged batches found whole / absent after a restart (summed over
  // rounds), and interrupted jobs found failed.
  size_t unacked_present_ = 0, unacked_absent_ = 0;
  std::set<uint64_t> interrupted_failed_;
};

TEST_F(CrashTest, SigkillLosesNoAcknowledgedEventAndNoCompletedModel) {
  const auto t_start = Clock::now();
  std::mt19937_64 rng(20261127);
  double worst_health = 0;
  int startup_kills = 0;
  for (int round = 0; round < kRounds && !HasFatalFailure(); ++round) {
    const bool sync = round % 2 == 1;
    if (round % 4 == 2) {
      KillDuringStartup(round, std::uniform_int_distribution<int>(0, 60)(rng));
      ++startup_kills;
    }
    const double health = Start(round, sync);
    worst_health = std::max(worst_health, health);
    ASSERT_LT(health, 5.0) << "round " << round << ": no health within 5 s\n"
                           << Tail(Slurp(log_));
    SCOPED_TRACE(absl::StrCat("round ", round, sync ? " (--sync)" : ""));
    if (round == 0) {
      // The training data: 300 users x 120 items, about 20 clicks each.
      std::vector<data::Interaction> clicks;
      std::mt19937_64 g(7);
      for (int u = 0; u < 300; ++u) {
        for (int c = 0; c < 20; ++c) {
          data::Interaction e;
          e.user = absl::StrCat("s", u);
          e.item = absl::StrCat("t", (u + c * c + g() % 7) % 120);
          clicks.push_back(e);
        }
      }
      ASSERT_TRUE(client_->Ingest("train-src", clicks).status.ok());
    } else {
      VerifyIngests(round);
      VerifyModels(round);
    }
    if (HasFatalFailure()) break;

    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) threads.emplace_back([&, t] { IngestLoop(t, &stop); });
    threads.emplace_back([&, round] { TrainLoop(round + 1, &stop); });
    // Kill somewhere in the first 0.05-0.7 s of traffic.
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 700)(rng)));
    client_.reset();
    Kill();
    stop = true;
    for (auto& th : threads) th.join();
  }
  if (!HasFatalFailure()) {
    // A last restart, and the final state.
    const double health = Start(kRounds, false);
    EXPECT_LT(health, 5.0);
    worst_health = std::max(worst_health, health);
    VerifyIngests(kRounds);
    VerifyModels(kRounds);
  }
  size_t acked = 0, unknown = 0;
  for (auto& L : ledgers_) {
    acked += L.acked.size();
    unknown += L.unknown.size();
  }
  // The run did what it claims: many acknowledged batches, models completed
  // and interrupted.
  EXPECT_GT(acked, 100u);
  EXPECT_GT(models_.ready.size(), 0u);
  EXPECT_GT(interrupted_failed_.size(), 0u) << "no training job was ever caught by a kill";
  std::printf("crash test: %d rounds (%d more kills during startup) in %.1f s; %zu batches acknowledged, %zu unacknowledged "
              "at the end; unacknowledged batches seen after restarts: %zu whole, %zu absent; "
              "%zu models ready, %zu interrupted (%zu seen failed); %zu ready-model checks; "
              "worst start-to-health %.2f s\n",
              kRounds, startup_kills, Seconds(t_start), acked, unknown, unacked_present_, unacked_absent_,
              models_.ready.size(), models_.interrupted.size(), interrupted_failed_.size(),
              models_scored_, worst_health);
}

}  // namespace
}  // namespace debias
