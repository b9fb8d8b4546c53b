#include "core/data/loaders.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "core/data/csv.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::data {
namespace {

using ::debias::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;
constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

absl::StatusOr<LoadResult> Load(const std::string& text, Format format,
                                LoadOptions options = {},
                                std::string_view name = "t.txt") {
  std::istringstream in(text);
  return LoadStream(in, name, format, options);
}

LoadOptions Skip() {
  LoadOptions o;
  o.skip_bad_rows = true;
  return o;
}

// ------------------------------------------------------------ format names

TEST(FormatTest, ParsesEveryNameAndListsThemOnError) {
  EXPECT_THAT(FormatNames(),
              ElementsAre("csv", "coat", "yahoo", "nbpo-json", "libsvm"));
  for (const std::string& n : FormatNames()) {
    absl::StatusOr<Format> f = ParseFormat(n);
    ASSERT_OK(f);
    EXPECT_EQ(FormatName(*f), n);
  }
  EXPECT_EQ(*ParseFormat("nbpo-json"), Format::kNbpoJson);
  EXPECT_THAT(ParseFormat("parquet"),
              StatusIs(kInvalid, "'parquet': must be one of csv, coat, yahoo, "
                                 "nbpo-json, libsvm"));
}

// ------------------------------------------------------------ csv

TEST(CsvLoaderTest, ColumnsInAnyOrderWithAliasesAndEmptyOptionals) {
  absl::StatusOr<LoadResult> r = Load(
      "position,doc,label,query,propensity,timestamp,features,list_id,event_id\r\n"
      "2,d1,1,q1,0.5,100,1;2.5;-3,L1,e1\r\n"
      "\r\n"
      ",d2,0,q1,,,,,\r\n",
      Format::kCsv);
  ASSERT_OK(r);
  EXPECT_EQ(r->rows_read, 2u);
  ASSERT_THAT(r->events, SizeIs(2));
  const Interaction& a = r->events[0];
  EXPECT_EQ(a.user, "q1");
  EXPECT_EQ(a.item, "d1");
  EXPECT_EQ(a.label, 1.0f);
  EXPECT_EQ(a.position, 2);
  EXPECT_EQ(a.propensity, 0.5f);
  EXPECT_EQ(a.timestamp, 100);
  EXPECT_THAT(a.features, ElementsAre(1.0f, 2.5f, -3.0f));
  EXPECT_EQ(a.list_id, "L1");
  EXPECT_EQ(a.event_id, "e1");
  const Interaction& b = r->events[1];
  EXPECT_EQ(b.label, 0.0f);
  EXPECT_FALSE(b.position.has_value());
  EXPECT_FALSE(b.propensity.has_value());
  EXPECT_FALSE(b.timestamp.has_value());
  EXPECT_FALSE(b.list_id.has_value());
  EXPECT_TRUE(b.features.empty());
  EXPECT_EQ(b.event_id, "");
}

TEST(CsvLoaderTest, QuotedKeys) {
  absl::StatusOr<LoadResult> r = Load(
      "user,item,label\n\"a,b\",\"say \"\"hi\"\"\",1\n\"multi\nline\",x,1\n",
      Format::kCsv);
  ASSERT_OK(r);
  ASSERT_THAT(r->events, SizeIs(2));
  EXPECT_EQ(r->events[0].user, "a,b");
  EXPECT_EQ(r->events[0].item, "say \"hi\"");
  EXPECT_EQ(r->events[1].user, "multi\nline");
}

TEST(CsvLoaderTest, HeaderErrorsAtLineOne) {
  EXPECT_THAT(Load("user,item,label,color\n", Format::kCsv, {}, "train.csv"),
              StatusIs(kInvalid, "train.csv:1: unknown column 'color'"));
  EXPECT_THAT(Load("user,item,label,query\n", Format::kCsv, {}, "train.csv"),
              StatusIs(kInvalid, "train.csv:1: duplicate column 'query'"));
  EXPECT_THAT(Load("user,label,label\n", Format::kCsv, {}, "train.csv"),
              StatusIs(kInvalid, "train.csv:1: duplicate column 'label'"));
  EXPECT_THAT(Load("user,label\nu,1\n", Format::kCsv, {}, "train.csv"),
              StatusIs(kInvalid, "train.csv:1: missing required column 'item'"));
  EXPECT_THAT(Load("", Format::kCsv, {}, "train.csv"),
              StatusIs(kInvalid, "train.csv:1: no header"));
  // Header errors are not row errors: skipping does not hide them.
  EXPECT_THAT(Load("user,item\n", Format::kCsv, Skip(), "train.csv"),
              StatusIs(kInvalid, "missing required column 'label'"));
}

TEST(CsvLoaderTest, BadRowsNameFileAndLine) {
  const std::string head = "user,item,label,timestamp,position,propensity,features\n";
  struct Case {
    std::string row;
    std::string message;
  } cases[] = {
      {"u,i,abc,,,,", "train.csv:3: label 'abc' is not a number"},
      {"u,i,nan,,,,", "train.csv:3: label 'nan' is not a number"},
      {"u,i,1,12x,,,", "train.csv:3: timestamp '12x' is not a 64-bit integer"},
      {"u,i,1,,1.5,,", "train.csv:3: position '1.5' is not a 32-bit integer"},
      {"u,i,1,,0,,", "train.csv:3: position=0: must be in [1, 100000]"},
      {"u,i,1,,,1.5,", "train.csv:3: propensity=1.5: must be in (0, 1] when set"},
      {"u,i,1,,,x,", "train.csv:3: propensity 'x' is not a number"},
      {"u,i,1,,,,1;;2", "train.csv:3: features[1] '' is not a finite number"},
      {",i,1,,,,", "train.csv:3: user: must be a non-empty key"},
      {"u,i,1", "train.csv:3: expected 7 fields as in the header, got 3"},
      {"\"u\"x,i,1,,,,", "train.csv:3: field 1: unexpected text after the closing quote"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.row);
    EXPECT_THAT(Load(head + "ok,ok,1,,,,\n" + c.row + "\nok,ok,1,,,,\n",
                     Format::kCsv, {}, "train.csv"),
                StatusIs(kInvalid, c.message));
    absl::StatusOr<LoadResult> r =
        Load(head + "ok,ok,1,,,,\n" + c.row + "\nok,ok,1,,,,\n", Format::kCsv,
             Skip(), "train.csv");
    ASSERT_OK(r);
    EXPECT_EQ(r->rows_read, 3u);
    EXPECT_EQ(r->skipped_rows, 1u);
    EXPECT_EQ(r->events.size(), 2u);
    EXPECT_THAT(r->skipped_examples, ElementsAre(c.message));
  }
}

TEST(CsvLoaderTest, LineNumbersCountBlankLinesAndMultilineRecords) {
  EXPECT_THAT(Load("user,item,label\n\n\"a\nb\",i,1\nu,i,x\n", Format::kCsv, {},
                   "f.csv"),
              StatusIs(kInvalid, "f.csv:5: label 'x' is not a number"));
  EXPECT_THAT(Load("user,item,label\nu,i,1\n\"open,i,1\nu,i,1\n", Format::kCsv,
                   {}, "f.csv"),
              StatusIs(kInvalid, "f.csv:3: field 1: quoted field is not terminated"));
}

TEST(CsvLoaderTest, SkipBadRowsKeepsFirstTenExamples) {
  std::string text = "user,item,label\n";
  for (int i = 0; i < 25; ++i) text += "u,i," + std::string(i % 2 ? "1" : "bad") + "\n";
  absl::StatusOr<LoadResult> r = Load(text, Format::kCsv, Skip(), "s.csv");
  ASSERT_OK(r);
  EXPECT_EQ(r->rows_read, 25u);
  EXPECT_EQ(r->skipped_rows, 13u);
  EXPECT_EQ(r->events.size(), 12u);
  ASSERT_THAT(r->skipped_examples, SizeIs(10));
  EXPECT_EQ(r->skipped_examples[0], "s.csv:2: label 'bad' is not a number");
  EXPECT_EQ(r->skipped_examples[9], "s.csv:20: label 'bad' is not a number");
  // Without skipping: no partial result.
  EXPECT_THAT(Load(text, Format::kCsv, {}, "s.csv"),
              StatusIs(kInvalid, "s.csv:2: label 'bad'"));
}

TEST(CsvLoaderTest, LimitsAreApplied) {
  LoadOptions o;
  o.limits.max_key_bytes = 3;
  EXPECT_THAT(Load("user,item,label\nabcd,i,1\n", Format::kCsv, o, "l.csv"),
              StatusIs(kInvalid, "l.csv:2: user: key of 4 bytes; at most 3"));
  o.limits.max_features = 2;
  EXPECT_THAT(Load("user,item,label,features\nu,i,1,1;2;3\n", Format::kCsv, o,
                   "l.csv"),
              StatusIs(kInvalid, "l.csv:2: features: 3 values; at most 2"));
}

TEST(CsvLoaderTest, RoundTripThroughWriteCsvUsingEveryColumn) {
  std::vector<Interaction> events;
  for (int i = 0; i < 50; ++i) {
    Interaction e;
    e.user = "user " + std::to_string(i % 7) + (i % 5 == 0 ? ",\"x\"" : "");
    e.item = "item\n" + std::to_string(i);
    e.label = static_cast<float>(i) / 3.0f - 4.0f;
    if (i % 2) e.timestamp = int64_t{1} << (i % 63);
    if (i % 3) e.list_id = "list-" + std::to_string(i / 10);
    if (i % 4) e.position = 1 + i;
    if (i % 5) e.propensity = 1.0f / static_cast<float>(1 + i);
    if (i % 6) e.features = {0.1f * i, -1e-20f, 7.0f};
    if (i % 7) e.event_id = "ev," + std::to_string(i);
    events.push_back(e);
  }
  std::ostringstream out;
  ASSERT_OK(WriteCsv(events, out));
  absl::StatusOr<LoadResult> r = Load(out.str(), Format::kCsv);
  ASSERT_OK(r);
  EXPECT_EQ(r->events, events);
}

TEST(CsvLoaderTest, ThresholdBinarizesLabels) {
  LoadOptions o;
  o.threshold = 3.0f;
  absl::StatusOr<LoadResult> r =
      Load("user,item,label\nu,a,2.99\nu,b,3\nu,c,5\nu,d,-1\n", Format::kCsv, o);
  ASSERT_OK(r);
  std::vector<float> labels;
  for (const auto& e : r->events) labels.push_back(e.label);
  EXPECT_THAT(labels, ElementsAre(0.0f, 1.0f, 1.0f, 0.0f));
}

// A stream that cannot seek or tell, like a pipe.
class PipeBuf : public std::streambuf {
 public:
  explicit PipeBuf(std::string text) : text_(std::move(text)) {}

 protected:
  int_type underflow() override {
    if (pos_ >= text_.size()) return traits_type::eof();
    const size_t n = std::min<size_t>(7, text_.size() - pos_);
    char* p = text_.data() + pos_;
    setg(p, p, p + n);
    pos_ += n;
    return traits_type::to_int_type(*p);
  }

 private:
  std::string text_;
  size_t pos_ = 0;
};

TEST(CsvLoaderTest, ManyRowsWithSkipsFromSeekableAndPipeStreams) {
  std::string text = "user,item,label,position\n";
  for (int i = 0; i < 9000; ++i) {
    text += "u" + std::to_string(i % 97) + ",i" + std::to_string(i) + "," +
            std::to_string(i % 3) + "," + (i % 4 == 0 ? "0" : "1") + "\n";
    if (i % 10 == 0) text += "\n";
  }
  for (bool pipe : {false, true}) {
    SCOPED_TRACE(pipe ? "pipe" : "stringstream");
    PipeBuf buf(text);
    std::istream pipe_in(&buf);
    std::istringstream string_in(text);
    absl::StatusOr<LoadResult> r =
        LoadStream(pipe ? pipe_in : static_cast<std::istream&>(string_in),
                   "big.csv", Format::kCsv, Skip());
    ASSERT_OK(r);
    EXPECT_EQ(r->rows_read, 9000u);
    EXPECT_EQ(r->skipped_rows, 2250u);
    ASSERT_EQ(r->events.size(), 6750u);
    EXPECT_EQ(r->events[0].item, "i1");
    EXPECT_EQ(r->events.back().item, "i8999");
    EXPECT_EQ(r->events.back().label, 8999 % 3);
    EXPECT_EQ(r->skipped_examples[1],
              "big.csv:7: position=0: must be in [1, 100000]");
    EXPECT_LE(r->events.capacity(), r->events.size() * 3 / 2 + 1);
  }
}

// ------------------------------------------------------------ coat

TEST(CoatLoaderTest, OneEventPerNonzeroCell) {
  absl::StatusOr<LoadResult> r =
      Load("0 3 0\n\n5 0 1\r\n0 0 0\n", Format::kCoat);
  ASSERT_OK(r);
  EXPECT_EQ(r->rows_read, 3u);
  ASSERT_THAT(r->events, SizeIs(3));
  EXPECT_EQ(r->events[0].user, "0");
  EXPECT_EQ(r->events[0].item, "1");
  EXPECT_EQ(r->events[0].label, 3.0f);
  EXPECT_EQ(r->events[1].user, "1");
  EXPECT_EQ(r->events[1].item, "0");
  EXPECT_EQ(r->events[2].user, "1");
  EXPECT_EQ(r->events[2].item, "2");
  EXPECT_EQ(r->events[2].label, 1.0f);
}

TEST(CoatLoaderTest, UnequalRowsAndBadNumbers) {
  EXPECT_THAT(Load("1 2 3\n1 2\n", Format::kCoat, {}, "m.ascii"),
              StatusIs(kInvalid, "m.ascii:2: row has 2 columns; expected 3"));
  EXPECT_THAT(Load("1 2 3\n1 x 3\n", Format::kCoat, {}, "m.ascii"),
              StatusIs(kInvalid, "m.ascii:2: column 1: rating 'x' is not a number"));
  absl::StatusOr<LoadResult> r =
      Load("1 0 0\n1 2\n0 0 4\n", Format::kCoat, Skip(), "m.ascii");
  ASSERT_OK(r);
  EXPECT_EQ(r->rows_read, 3u);
  EXPECT_EQ(r->skipped_rows, 1u);
  ASSERT_THAT(r->events, SizeIs(2));
  // The skipped row keeps its index: the third row is still user 2.
  EXPECT_EQ(r->events[1].user, "2");
  EXPECT_EQ(r->events[1].item, "2");
}

TEST(CoatLoaderTest, Threshold) {
  LoadOptions o;
  o.threshold = 4.0f;
  absl::StatusOr<LoadResult> r = Load("3 4 5 0\n", Format::kCoat, o);
  ASSERT_OK(r);
  ASSERT_THAT(r->events, SizeIs(3));
  EXPECT_EQ(r->events[0].label, 0.0f);
  EXPECT_EQ(r->events[1].label, 1.0f);
  EXPECT_EQ(r->events[2].label, 1.0f);
}

void ExpectCoatFile(const std::string& file, size_t events) {
  const std::string dir = DEBIAS_SHARED_DATA_DIR "/coat";
  if (!std::filesystem::exists(dir + "/" + file)) GTEST_SKIP() << dir << " absent";
  absl::StatusOr<LoadResult> r = LoadFile(dir + "/" + file, Format::kCoat, {});
  ASSERT_OK(r);
  EXPECT_EQ(r->events.size(), events);
  EXPECT_EQ(r->rows_read, 290u);
  absl::flat_hash_set<std::string> users, items;
  float lo = 10, hi = -10;
  for (const auto& e : r->events) {
    users.insert(e.user);
    items.insert(e.item);
    lo = std::min(lo, e.label);
    hi = std::max(hi, e.label);
  }
  EXPECT_EQ(users.size(), 290u);
  EXPECT_LE(items.size(), 300u);
  EXPECT_EQ(lo, 1.0f);
  EXPECT_EQ(hi, 5.0f);
}

TEST(CoatLoaderTest, SharedTrain) { ExpectCoatFile("train.ascii", 6960); }
TEST(CoatLoaderTest, SharedTest) { ExpectCoatFile("test.ascii", 4640); }

// ------------------------------------------------------------ yahoo

TEST(YahooLoaderTest, Triples) {
  absl::StatusOr<LoadResult> r = Load("1\t14\t5\n1  35 1\r\n\n2 14 3\n", Format::kYahoo);
  ASSERT_OK(r);
  EXPECT_EQ(r->rows_read, 3u);
  ASSERT_THAT(r->events, SizeIs(3));
  EXPECT_EQ(r->events[1].user, "1");
  EXPECT_EQ(r->events[1].item, "35");
  EXPECT_EQ(r->events[1].label, 1.0f);
  EXPECT_EQ(r->events[2].user, "2");
  EXPECT_EQ(r->events[2].label, 3.0f);
}

TEST(YahooLoaderTest, BadRows) {
  EXPECT_THAT(Load("1 2 3\n1 2\n", Format::kYahoo, {}, "ydata.txt"),
              StatusIs(kInvalid, "ydata.txt:2: expected 3 fields 'user item rating', got 2"));
  EXPECT_THAT(Load("1 2 3\n\n1 2 five\n", Format::kYahoo, {}, "ydata.txt"),
              StatusIs(kInvalid, "ydata.txt:3: rating 'five' is not a number"));
  LoadOptions o = Skip();
  o.threshold = 4.0f;
  absl::StatusOr<LoadResult> r =
      Load("1 2 3\n1 2 3 4\n1 3 4\n", Format::kYahoo, o, "ydata.txt");
  ASSERT_OK(r);
  EXPECT_EQ(r->skipped_rows, 1u);
  ASSERT_THAT(r->events, SizeIs(2));
  EXPECT_EQ(r->events[0].label, 0.0f);
  EXPECT_EQ(r->events[1].label, 1.0f);
}

// ------------------------------------------------------------ nbpo-json

TEST(NbpoJsonLoaderTest, ListsOfItemIds) {
  absl::StatusOr<LoadResult> r =
      Load(" [[3, 1], [], [\n7]]\n", Format::kNbpoJson);
  ASSERT_OK(r);
  EXPECT_EQ(r->rows_read, 3u);
  ASSERT_THAT(r->events, SizeIs(3));
  EXPECT_EQ(r->events[0].user, "0");
  EXPECT_EQ(r->events[0].item, "3");
  EXPECT_EQ(r->events[1].item, "1");
  EXPECT_EQ(r->events[2].user, "2");
  EXPECT_EQ(r->events[2].item, "7");
  EXPECT_EQ(r->events[2].label, 1.0f);
  ASSERT_OK(Load("[]", Format::kNbpoJson));
}

TEST(NbpoJsonLoaderTest, BadIdsAreRowErrorsWithTheirLine) {
  EXPECT_THAT(Load("[[1,\n2.5]]", Format::kNbpoJson, {}, "a.json"),
              StatusIs(kInvalid, "a.json:2: item id '2.5' is not an integer"));
  EXPECT_THAT(Load("[[1],\n\n[-4]]", Format::kNbpoJson, {}, "a.json"),
              StatusIs(kInvalid, "a.json:3: item id '-4' is negative"));
  EXPECT_THAT(Load("[[\"7\"]]", Format::kNbpoJson, {}, "a.json"),
              StatusIs(kInvalid, "a.json:1: item id '\"7\"' is not an integer"));
  EXPECT_THAT(Load("[[null]]", Format::kNbpoJson, {}, "a.json"),
              StatusIs(kInvalid, "a.json:1: item id 'null' is not an integer"));
  absl::StatusOr<LoadResult> r =
      Load("[[1, -1, 2], [true, 3.0]]", Format::kNbpoJson, Skip(), "a.json");
  ASSERT_OK(r);
  EXPECT_EQ(r->rows_read, 5u);
  EXPECT_EQ(r->skipped_rows, 2u);
  ASSERT_THAT(r->events, SizeIs(3));
  EXPECT_EQ(r->events[2].user, "1");
  EXPECT_EQ(r->events[2].item, "3");  // 3.0 is the integer 3
}

TEST(NbpoJsonLoaderTest, StructuralErrorsAlwaysFail) {
  EXPECT_THAT(Load("{\"a\": 1}", Format::kNbpoJson, Skip(), "a.json"),
              StatusIs(kInvalid, "a.json:1: expected '[' opening the list of users"));
  EXPECT_THAT(Load("[[1, 2]\n", Format::kNbpoJson, Skip(), "a.json"),
              StatusIs(kInvalid, "a.json:2: expected ',' or ']' in the list of users, got end"));
  EXPECT_THAT(Load("[[1 2]]", Format::kNbpoJson, Skip(), "a.json"),
              StatusIs(kInvalid, "expected ',' or ']' in the item list of user 0"));
  EXPECT_THAT(Load("[[1, [2]]]", Format::kNbpoJson, Skip(), "a.json"),
              StatusIs(kInvalid, "expected an item id"));
  EXPECT_THAT(Load("[[1]] x", Format::kNbpoJson, Skip(), "a.json"),
              StatusIs(kInvalid, "expected end of input"));
  EXPECT_THAT(Load("[3]", Format::kNbpoJson, Skip(), "a.json"),
              StatusIs(kInvalid, "expected '[' opening the item list of user 0"));
}

TEST(NbpoJsonLoaderTest, SharedAmazonTrain) {
  const std::string path = DEBIAS_SHARED_DATA_DIR "/amazon-14core/train_data.json";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " absent";
  absl::StatusOr<LoadResult> r = LoadFile(path, Format::kNbpoJson, {});
  ASSERT_OK(r);
  EXPECT_EQ(r->events.size(), 31887u);
  absl::flat_hash_set<std::string> users, items;
  for (const auto& e : r->events) {
    users.insert(e.user);
    items.insert(e.item);
  }
  EXPECT_EQ(users.size(), 1435u);
  EXPECT_LE(items.size(), 1522u);
  EXPECT_EQ(r->events.front().user, "0");
  EXPECT_EQ(r->events.front().item, "72");
}

// ------------------------------------------------------------ libsvm

TEST(LibsvmLoaderTest, LetorLinesBecomeDenseFeatures) {
  absl::StatusOr<LoadResult> r = Load(
      "# header comment\n"
      "2 qid:10 1:0.5 3:1.5 # docid = GX000-00 inc = 1\n"
      "0 qid:10 2:-1\n"
      "1 qid:11 4:2 #docid=D7\r\n"
      "\n"
      "0 qid:10 1:1\n",
      Format::kLibsvm);
  ASSERT_OK(r);
  EXPECT_EQ(r->rows_read, 4u);
  ASSERT_THAT(r->events, SizeIs(4));
  const auto& e = r->events;
  EXPECT_EQ(e[0].user, "10");
  EXPECT_EQ(e[0].list_id, "10");
  EXPECT_EQ(e[0].item, "GX000-00");
  EXPECT_EQ(e[0].label, 2.0f);
  EXPECT_FALSE(e[0].position.has_value());
  EXPECT_THAT(e[0].features, ElementsAre(0.5f, 0.0f, 1.5f, 0.0f));
  EXPECT_EQ(e[1].item, "10-1");
  EXPECT_THAT(e[1].features, ElementsAre(0.0f, -1.0f, 0.0f, 0.0f));
  EXPECT_EQ(e[2].user, "11");
  EXPECT_EQ(e[2].item, "D7");
  EXPECT_THAT(e[2].features, ElementsAre(0.0f, 0.0f, 0.0f, 2.0f));
  EXPECT_EQ(e[3].item, "10-2");
  EXPECT_THAT(e[3].features, ElementsAre(1.0f, 0.0f, 0.0f, 0.0f));
}

TEST(LibsvmLoaderTest, BadLines) {
  struct Case {
    std::string line;
    std::string message;
  } cases[] = {
      {"x qid:1 1:1", "r.txt:2: label 'x' is not a number"},
      {"1 1:1", "r.txt:2: expected 'qid:Q' after the label"},
      {"1 qid: 1:1", "r.txt:2: expected 'qid:Q' after the label"},
      {"1 qid:1 0:1", "r.txt:2: feature '0:1' is not 'fid:value' with an integer fid >= 1"},
      {"1 qid:1 a:1", "r.txt:2: feature 'a:1' is not 'fid:value'"},
      {"1 qid:1 5000:1", "r.txt:2: feature id 5000 exceeds max_features=4096"},
      {"1 qid:1 2:inf", "r.txt:2: feature 2 value 'inf' is not a finite number"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.line);
    const std::string text = "1 qid:1 1:1\n" + c.line + "\n0 qid:1 3:1\n";
    EXPECT_THAT(Load(text, Format::kLibsvm, {}, "r.txt"), StatusIs(kInvalid, c.message));
    absl::StatusOr<LoadResult> r = Load(text, Format::kLibsvm, Skip(), "r.txt");
    ASSERT_OK(r);
    EXPECT_EQ(r->skipped_rows, 1u);
    ASSERT_THAT(r->events, SizeIs(2));
    // The skipped line's features do not leak into the dimension.
    EXPECT_THAT(r->events[1].features, ElementsAre(0.0f, 0.0f, 1.0f));
  }
}

TEST(LibsvmLoaderTest, ThresholdAndNoFeatures) {
  LoadOptions o;
  o.threshold = 2.0f;
  absl::StatusOr<LoadResult> r = Load("3 qid:a\n1 qid:a\n", Format::kLibsvm, o);
  ASSERT_OK(r);
  ASSERT_THAT(r->events, SizeIs(2));
  EXPECT_EQ(r->events[0].label, 1.0f);
  EXPECT_EQ(r->events[1].label, 0.0f);
  EXPECT_TRUE(r->events[0].features.empty());
  EXPECT_EQ(r->events[1].item, "a-1");
}

// ------------------------------------------------------------ files

TEST(LoadFileTest, MissingFileIsNotFound) {
  EXPECT_THAT(LoadFile("/nonexistent/dir/x.csv", Format::kCsv, {}),
              StatusIs(absl::StatusCode::kNotFound, "/nonexistent/dir/x.csv"));
  EXPECT_THAT(LoadFile(::testing::TempDir(), Format::kCsv, {}),
              StatusIs(absl::StatusCode::kNotFound, "directory"));
}

TEST(LoadFileTest, ErrorsNameThePath) {
  const std::string path = ::testing::TempDir() + "/loaders_test_bad.csv";
  {
    std::ofstream f(path);
    f << "user,item,label\nu,i,1\nu,i,abc\n";
  }
  EXPECT_THAT(LoadFile(path, Format::kCsv, {}),
              StatusIs(kInvalid, path + ":3: label 'abc' is not a number"));
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace debias::data
