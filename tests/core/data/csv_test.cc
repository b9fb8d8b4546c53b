#include "core/data/csv.h"

#include <limits>
#include <sstream>

#include "core/data/loaders.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::data {
namespace {

using ::debias::testing::StatusIs;

Interaction Ev(std::string user, std::string item, float label = 1.0f) {
  Interaction e;
  e.user = std::move(user);
  e.item = std::move(item);
  e.label = label;
  return e;
}

std::vector<Interaction> RoundTrip(const std::vector<Interaction>& events) {
  std::ostringstream out;
  EXPECT_OK(WriteCsv(events, out));
  std::istringstream in(out.str());
  absl::StatusOr<LoadResult> r = LoadStream(in, "rt.csv", Format::kCsv, {});
  EXPECT_OK(r);
  if (!r.ok()) return {};
  EXPECT_EQ(r->rows_read, events.size());
  EXPECT_EQ(r->skipped_rows, 0u);
  return r->events;
}

TEST(WriteCsvTest, HeaderHasOnlyRequiredColumnsWhenNothingElseIsUsed) {
  std::ostringstream out;
  ASSERT_OK(WriteCsv({Ev("u", "i", 0.5f)}, out));
  EXPECT_EQ(out.str(), "user,item,label\nu,i,0.5\n");
}

TEST(WriteCsvTest, EmptyInputWritesHeaderAndLoadsBackEmpty) {
  std::ostringstream out;
  ASSERT_OK(WriteCsv({}, out));
  EXPECT_EQ(out.str(), "user,item,label\n");
  EXPECT_TRUE(RoundTrip({}).empty());
}

TEST(WriteCsvTest, ColumnsInFixedOrderAndAbsentCellsEmpty) {
  Interaction a = Ev("u1", "i1", 1.0f);
  a.event_id = "e1";
  a.position = 3;
  Interaction b = Ev("u2", "i2", 0.0f);
  b.timestamp = -7;
  std::ostringstream out;
  ASSERT_OK(WriteCsv({a, b}, out));
  EXPECT_EQ(out.str(),
            "user,item,label,timestamp,position,event_id\n"
            "u1,i1,1,,3,e1\n"
            "u2,i2,0,-7,,\n");
}

TEST(WriteCsvTest, RoundTripsEveryColumnExactly) {
  std::vector<Interaction> events;
  Interaction full = Ev("alice", "doc-9", 0.1f);
  full.timestamp = std::numeric_limits<int64_t>::min() + 1;
  full.list_id = "list,1";
  full.position = 100000;
  full.propensity = 1.0f / 3.0f;
  full.features = {1.0f / 7.0f, -2.5e-30f, 3.4e38f, 0.0f, -0.0f};
  full.event_id = "ev \"1\"";
  events.push_back(full);
  Interaction sparse = Ev("bob", "x", -123456.789f);
  events.push_back(sparse);
  Interaction keys = Ev("a,b", "line1\nline2", 2.0f);
  keys.list_id = "\"quoted\"";
  keys.timestamp = std::numeric_limits<int64_t>::max();
  keys.propensity = 1e-7f;
  keys.features = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f};
  keys.event_id = "cr\r\nlf";  // CRLF inside a quoted key is kept as LF
  events.push_back(keys);

  const std::vector<Interaction> back = RoundTrip(events);
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[0], events[0]);
  EXPECT_EQ(back[1], events[1]);
  Interaction want = keys;
  want.event_id = "cr\nlf";
  EXPECT_EQ(back[2], want);
}

TEST(WriteCsvTest, QuotesKeysWithSpecialCharacters) {
  std::ostringstream out;
  ASSERT_OK(WriteCsv({Ev("a\"b", "c,d", 1.0f)}, out));
  EXPECT_EQ(out.str(), "user,item,label\n\"a\"\"b\",\"c,d\",1\n");
}

TEST(WriteCsvTest, RejectsEventsThatCannotBeReadBack) {
  std::ostringstream out;
  EXPECT_THAT(WriteCsv({Ev("u", "i"), Ev("", "i")},
                       out),
              StatusIs(absl::StatusCode::kInvalidArgument, "event 1: user"));
  EXPECT_TRUE(out.str().empty());
  Interaction nan = Ev("u", "i", std::numeric_limits<float>::quiet_NaN());
  EXPECT_THAT(WriteCsv({nan}, out),
              StatusIs(absl::StatusCode::kInvalidArgument, "event 0: label"));
}

TEST(CsvRecordReaderTest, SplitsQuotedAndMultilineRecords) {
  std::istringstream in("a,\"b,c\",\"d\"\"e\"\r\n\n  \n\"x\ny\",,z\n");
  CsvRecordReader r(in);
  absl::StatusOr<bool> got = r.Next();
  ASSERT_OK(got);
  ASSERT_TRUE(*got);
  EXPECT_EQ(r.line(), 1u);
  ASSERT_EQ(r.num_fields(), 3u);
  EXPECT_EQ(r.field(0), "a");
  EXPECT_EQ(r.field(1), "b,c");
  EXPECT_EQ(r.field(2), "d\"e");
  got = r.Next();
  ASSERT_OK(got);
  ASSERT_TRUE(*got);
  EXPECT_EQ(r.line(), 4u);
  ASSERT_EQ(r.num_fields(), 3u);
  EXPECT_EQ(r.field(0), "x\ny");
  EXPECT_EQ(r.field(1), "");
  EXPECT_EQ(r.field(2), "z");
  got = r.Next();
  ASSERT_OK(got);
  EXPECT_FALSE(*got);
}

TEST(CsvRecordReaderTest, ReportsMalformedQuotes) {
  std::istringstream in("\"ab\"c,d\nok,1\n\"open\nmore\n");
  CsvRecordReader r(in);
  EXPECT_THAT(r.Next(), StatusIs(absl::StatusCode::kInvalidArgument,
                                 "field 1: unexpected text after the closing quote"));
  EXPECT_EQ(r.line(), 1u);
  absl::StatusOr<bool> got = r.Next();
  ASSERT_OK(got);
  EXPECT_TRUE(*got);
  EXPECT_EQ(r.line(), 2u);
  EXPECT_THAT(r.Next(), StatusIs(absl::StatusCode::kInvalidArgument,
                                 "not terminated"));
  EXPECT_EQ(r.line(), 3u);
  got = r.Next();
  ASSERT_OK(got);
  EXPECT_FALSE(*got);
}

}  // namespace
}  // namespace debias::data
