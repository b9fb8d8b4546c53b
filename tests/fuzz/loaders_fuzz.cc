// Fuzz target: every loader of core/data/loaders.h and the CSV record reader
// of core/data/csv.h, fed raw bytes.
//
// Input: byte 0 picks the format (low 3 bits, mod 5; 5-7 drive the bare
// CsvRecordReader), bit 3 skip_bad_rows, bit 4 a label threshold (the next
// byte / 64), bit 5 small limits; the rest is the file.
// Checks: no crash; on success every event passes ValidateInteraction, the
// row counters are consistent, and CSV output of the loaded events (WriteCsv)
// loads back to the same events.
#include <cstdint>
#include <sstream>
#include <string>

#include "core/data/csv.h"
#include "core/data/interaction.h"
#include "core/data/loaders.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using namespace debias;

void FuzzRecordReader(std::string_view bytes) {
  std::istringstream in{std::string(bytes)};
  data::CsvRecordReader reader(in);
  uint64_t last_line = 0;
  for (int records = 0; records < 100000; ++records) {
    auto more = reader.Next();
    if (!more.ok()) continue;  // malformed record: the reader moves on
    if (!*more) break;
    FUZZ_CHECK(reader.line() >= 1);
    FUZZ_CHECK(reader.line() > last_line);
    last_line = reader.line();
    for (size_t f = 0; f < reader.num_fields(); ++f) (void)reader.field(f).size();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 16)) return 0;
  fuzz::Input input(data, size);
  const uint8_t mode = input.Byte();
  const int format_index = mode & 7;
  data::LoadOptions options;
  options.skip_bad_rows = mode & 8;
  if (mode & 16) options.threshold = input.Byte() / 64.0f;
  if (mode & 32) {
    options.limits.max_key_bytes = 4;
    options.limits.max_features = 3;
    options.limits.max_position = 5;
  }
  const std::string_view bytes = input.Rest();
  if (format_index >= 5) {
    FuzzRecordReader(bytes);
    return 0;
  }
  const auto format = static_cast<data::Format>(format_index);
  FUZZ_CHECK(data::ParseFormat(data::FormatName(format)).value() == format);

  std::istringstream in{std::string(bytes)};
  auto loaded = data::LoadStream(in, "fuzz", format, options);
  if (!loaded.ok()) {
    FUZZ_CHECK(loaded.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  FUZZ_CHECK(loaded->skipped_rows <= loaded->rows_read);
  FUZZ_CHECK(loaded->skipped_examples.size() <= 10);
  FUZZ_CHECK(loaded->skipped_examples.size() <= loaded->skipped_rows);
  if (!options.skip_bad_rows) FUZZ_CHECK(loaded->skipped_rows == 0);
  for (const auto& e : loaded->events) {
    FUZZ_CHECK(data::ValidateInteraction(e, options.limits).ok());
    if (options.threshold) FUZZ_CHECK(e.label == 0.0f || e.label == 1.0f);
  }

  // Round trip through the writer (the documented WriteCsv contract).
  std::ostringstream out;
  const absl::Status written = data::WriteCsv(loaded->events, out);
  FUZZ_CHECK(written.ok());
  std::istringstream back_in(out.str());
  data::LoadOptions back_options;
  back_options.limits = options.limits;
  auto back = data::LoadStream(back_in, "roundtrip", data::Format::kCsv, back_options);
  if (loaded->events.empty()) return 0;  // a header-only file may not reload
  FUZZ_CHECK(back.ok());
  FUZZ_CHECK(back->events == loaded->events);
  return 0;
}
