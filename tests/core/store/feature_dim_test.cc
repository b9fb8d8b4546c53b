// Regression test: events of a dataset that carry features must all carry the
// same number (proto/debias/v1/common.proto). The store used to accept a
// batch whose feature vectors had another length than the dataset's (or
// lengths differing within the batch); the dataset's view could then no
// longer be built, so GetStats, Export and Train failed on it for good.
#include <unistd.h>

#include <filesystem>

#include "core/store/interaction_store.h"
#include "core/store/keys.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "rocksdb/db.h"
#include "tests/util/status_matchers.h"

namespace debias::store {
namespace {

using ::debias::testing::StatusIs;
using data::Interaction;

Interaction Ev(std::string u, std::string i, std::vector<float> features) {
  Interaction e;
  e.user = std::move(u);
  e.item = std::move(i);
  e.features = std::move(features);
  return e;
}

class FeatureDimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("debias_feature_dim_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    store_.reset();
    StoreOptions o;
    o.path = dir_.string();
    auto s = InteractionStore::Open(o);
    ASSERT_OK(s);
    store_ = std::move(*s);
  }
  // The view builds and holds `events` events of feature length `dim`.
  void ExpectView(const std::string& name, size_t events, int dim) {
    auto v = store_->LoadView(name);
    ASSERT_OK(v);
    EXPECT_EQ((*v)->num_events(), events);
    EXPECT_EQ((*v)->feature_dim, dim);
  }
  std::filesystem::path dir_;
  std::unique_ptr<InteractionStore> store_;
};

TEST_F(FeatureDimTest, ABatchWithAnotherLengthIsRejectedAndTheDatasetStaysReadable) {
  ASSERT_OK(store_->Ingest("d", std::vector{Ev("u1", "i1", {1, 2})}, true));
  const auto before = store_->GetDataset("d");
  ASSERT_OK(before);
  EXPECT_THAT(store_->Ingest("d", std::vector{Ev("u2", "i2", {1, 2, 3})}),
              StatusIs(absl::StatusCode::kInvalidArgument, "holds feature vectors of 2"));
  // Nothing of the rejected batch was written: no version, no new keys.
  auto after = store_->GetDataset("d");
  ASSERT_OK(after);
  EXPECT_EQ(after->data_version, before->data_version);
  EXPECT_EQ(after->users, 1u);
  // Events without features and events of the dataset's length still go in.
  ASSERT_OK(store_->Ingest("d", std::vector{Ev("u3", "i3", {}), Ev("u4", "i4", {3, 4})}));
  ExpectView("d", 3, 2);
  // The length survives a reopen.
  Reopen();
  EXPECT_THAT(store_->Ingest("d", std::vector{Ev("u5", "i5", {1})}),
              StatusIs(absl::StatusCode::kInvalidArgument, "holds feature vectors of 2"));
  ExpectView("d", 3, 2);
}

TEST_F(FeatureDimTest, LengthsMustAgreeWithinABatch) {
  EXPECT_THAT(store_->Ingest("b", std::vector{Ev("u1", "i1", {1, 2}), Ev("u2", "i2", {}),
                                              Ev("u3", "i3", {1, 2, 3})},
                             true),
              StatusIs(absl::StatusCode::kInvalidArgument, "events[2].features: 3 values"));
  EXPECT_THAT(store_->GetDataset("b").status(), StatusIs(absl::StatusCode::kNotFound, "b"));
}

TEST_F(FeatureDimTest, ADatasetWithoutFeaturesTakesTheFirstLengthIngested) {
  ASSERT_OK(store_->Ingest("d", std::vector{Ev("u1", "i1", {})}, true));
  ASSERT_OK(store_->Ingest("d", std::vector{Ev("u2", "i2", {5, 6, 7})}));
  EXPECT_THAT(store_->Ingest("d", std::vector{Ev("u3", "i3", {5, 6})}),
              StatusIs(absl::StatusCode::kInvalidArgument, "holds feature vectors of 3"));
  ExpectView("d", 2, 3);
  // A deleted and re-created dataset starts over.
  ASSERT_OK(store_->DeleteDataset("d"));
  ASSERT_OK(store_->Ingest("d", std::vector{Ev("u3", "i3", {5, 6})}, true));
  ExpectView("d", 1, 2);
}

// Datasets written before the length was recorded in their metadata: the
// store finds it from the stored events.
TEST_F(FeatureDimTest, MetadataWithoutTheLengthIsResolvedFromTheEvents) {
  ASSERT_OK(store_->Ingest("old", std::vector{Ev("u1", "i1", {}), Ev("u2", "i2", {1, 2})}, true));
  ASSERT_OK(store_->Ingest("old-plain", std::vector{Ev("u1", "i1", {})}, true));
  store_.reset();
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_.string(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    for (const char* name : {"old", "old-plain"}) {
      std::string v;
      ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), keys::DatasetMeta(name), &v).ok());
      nlohmann::json j = nlohmann::json::parse(v);
      ASSERT_TRUE(j.contains("feature_dim"));
      j.erase("feature_dim");
      ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), keys::DatasetMeta(name), j.dump()).ok());
    }
  }
  Reopen();
  EXPECT_THAT(store_->Ingest("old", std::vector{Ev("u3", "i3", {1, 2, 3})}),
              StatusIs(absl::StatusCode::kInvalidArgument, "holds feature vectors of 2"));
  ASSERT_OK(store_->Ingest("old", std::vector{Ev("u3", "i3", {3, 4})}));
  ExpectView("old", 3, 2);
  ASSERT_OK(store_->Ingest("old-plain", std::vector{Ev("u3", "i3", {1, 2, 3})}));
  ExpectView("old-plain", 2, 3);
}

}  // namespace
}  // namespace debias::store
