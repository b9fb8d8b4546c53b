// A damaged database never crashes debias and never serves wrong data:
// damaged metadata or table files make Open (or the read that meets the
// damage) fail with DATA_LOSS naming RocksDB's finding; a write-ahead log torn
// mid-record (a crash during a write) recovers every batch before the tear,
// each batch whole.
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "core/store/interaction_store.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::store {
namespace {

namespace fs = std::filesystem;
using ::debias::testing::StatusIs;

class CorruptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           absl::StrCat("debias_corruption_", ::getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static absl::StatusOr<std::unique_ptr<InteractionStore>> OpenAt(const fs::path& p) {
    StoreOptions o;
    o.path = p.string();
    o.create_if_missing = false;
    return InteractionStore::Open(o);
  }
  // `batches` ingests of 100 events each into dataset "d"; returns the events.
  static void Fill(InteractionStore* s, int batches) {
    for (int b = 0; b < batches; ++b) {
      std::vector<data::Interaction> ev(100);
      for (int k = 0; k < 100; ++k) {
        ev[k].user = absl::StrCat("u", (b * 100 + k) % 97);
        ev[k].item = absl::StrCat("i", b, "_", k);
        ev[k].label = 1;
      }
      ASSERT_TRUE(s->Ingest("d", ev, true).ok());
    }
  }
  // A store with 10 batches flushed into table files (a checkpoint flushes).
  fs::path FlushedStore() {
    const fs::path live = dir_ / "live", flushed = dir_ / "flushed";
    StoreOptions o;
    o.path = live.string();
    auto s = InteractionStore::Open(o);
    EXPECT_TRUE(s.ok());
    Fill(s->get(), 10);
    EXPECT_TRUE((*s)->Checkpoint(flushed.string()).ok());
    return flushed;
  }
  static std::vector<fs::path> FilesEndingWith(const fs::path& d, const std::string& suffix) {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(d)) {
      const std::string n = e.path().filename().string();
      if (n.size() >= suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) {
        out.push_back(e.path());
      }
    }
    return out;
  }
  static std::vector<fs::path> FilesStartingWith(const fs::path& d, const std::string& prefix) {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(d)) {
      if (e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path());
    }
    return out;
  }
  fs::path dir_;
};

TEST_F(CorruptionTest, IntactStoreOpensWithEveryEvent) {
  auto s = OpenAt(FlushedStore());
  ASSERT_OK(s);
  auto v = (*s)->LoadView("d");
  ASSERT_OK(v);
  EXPECT_EQ((*v)->num_events(), 1000u);
}

TEST_F(CorruptionTest, TruncatedManifestRefusesToOpen) {
  const fs::path db = FlushedStore();
  auto manifests = FilesStartingWith(db, "MANIFEST-");
  ASSERT_FALSE(manifests.empty());
  for (const auto& m : manifests) fs::resize_file(m, fs::file_size(m) / 2);
  // RocksDB alone opens this as an empty database and deletes the tables.
  const size_t tables = FilesEndingWith(db, ".sst").size();
  ASSERT_GT(tables, 0u);
  EXPECT_THAT(OpenAt(db), StatusIs(absl::StatusCode::kDataLoss, "MANIFEST is damaged"));
  EXPECT_EQ(FilesEndingWith(db, ".sst").size(), tables);  // nothing was deleted
  // Several attempts change nothing either.
  EXPECT_THAT(OpenAt(db), StatusIs(absl::StatusCode::kDataLoss, "MANIFEST is damaged"));
}

TEST_F(CorruptionTest, ObsoleteTablesLeftByACrashDoNotStopTheOpen) {
  // A crash between a compaction's commit and the deletion of its inputs
  // leaves table files older than the newest listed one: RocksDB deletes
  // them at open, and the store must open (the crash test hit this).
  const fs::path db = FlushedStore();
  auto tables = FilesEndingWith(db, ".sst");
  ASSERT_FALSE(tables.empty());
  const fs::path obsolete = db / "000001.sst";
  ASSERT_FALSE(fs::exists(obsolete));
  fs::copy_file(tables.front(), obsolete);
  auto s = OpenAt(db);
  ASSERT_OK(s);
  auto v = (*s)->LoadView("d");
  ASSERT_OK(v);
  EXPECT_EQ((*v)->num_events(), 1000u);
}

TEST_F(CorruptionTest, TruncatedTableFileRefusesToOpenOrToRead) {
  const fs::path db = FlushedStore();
  auto tables = FilesEndingWith(db, ".sst");
  ASSERT_FALSE(tables.empty());
  for (const auto& t : tables) fs::resize_file(t, fs::file_size(t) - 20);
  auto s = OpenAt(db);
  if (!s.ok()) {
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss, "opening the store")) << s.status();
    return;
  }
  EXPECT_THAT((*s)->LoadView("d"), StatusIs(absl::StatusCode::kDataLoss, ""));
}

TEST_F(CorruptionTest, FlippedBytesInATableAreDetectedNotServed) {
  const fs::path db = FlushedStore();
  auto tables = FilesEndingWith(db, ".sst");
  ASSERT_FALSE(tables.empty());
  for (const auto& t : tables) {
    // Damage the data blocks (the front of the file), several places.
    std::fstream f(t, std::ios::in | std::ios::out | std::ios::binary);
    const auto size = static_cast<std::streamoff>(fs::file_size(t));
    for (std::streamoff off = 64; off < size / 2; off += size / 16) {
      f.seekg(off);
      char c = 0;
      f.read(&c, 1);
      f.seekp(off);
      c = static_cast<char>(c ^ 0x5a);
      f.write(&c, 1);
    }
  }
  auto s = OpenAt(db);
  if (!s.ok()) {
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss, "")) << s.status();
    return;
  }
  // Open may succeed (data blocks are checked when read): the read must fail.
  auto v = (*s)->LoadView("d");
  EXPECT_THAT(v, StatusIs(absl::StatusCode::kDataLoss, ""));
}

TEST_F(CorruptionTest, CloseFlushesSoTheNextOpenReplaysNoLog) {
  const fs::path db = dir_ / "closed";
  {
    StoreOptions o;
    o.path = db.string();
    auto s = InteractionStore::Open(o);
    ASSERT_OK(s);
    Fill(s->get(), 10);
  }
  EXPECT_FALSE(FilesEndingWith(db, ".sst").empty());
  uintmax_t log_bytes = 0;
  for (const auto& l : FilesEndingWith(db, ".log")) log_bytes += fs::file_size(l);
  EXPECT_EQ(log_bytes, 0u);
  auto s = OpenAt(db);
  ASSERT_OK(s);
  auto v = (*s)->LoadView("d");
  ASSERT_OK(v);
  EXPECT_EQ((*v)->num_events(), 1000u);
}

TEST_F(CorruptionTest, TornLogTailRecoversEveryWholeBatchBeforeIt) {
  const fs::path db = dir_ / "wal";
  {
    StoreOptions o;
    o.path = db.string();
    o.flush_on_close = false;  // as a crash leaves it
    auto s = InteractionStore::Open(o);
    ASSERT_OK(s);
    Fill(s->get(), 10);
  }  // closed without a flush: the batches live in the write-ahead log
  auto logs = FilesEndingWith(db, ".log");
  ASSERT_EQ(logs.size(), 1u);
  // A crash in the middle of the last write: cut into its record.
  fs::resize_file(logs[0], fs::file_size(logs[0]) - 30);
  auto s = OpenAt(db);
  ASSERT_OK(s);
  auto v = (*s)->LoadView("d");
  ASSERT_OK(v);
  // Nine whole batches; the torn tenth is absent, not half there.
  EXPECT_EQ((*v)->num_events(), 900u);
  auto info = (*s)->GetDataset("d");
  ASSERT_OK(info);
  EXPECT_EQ(info->data_version, 9u);
}

}  // namespace
}  // namespace debias::store
