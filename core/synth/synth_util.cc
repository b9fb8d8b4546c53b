#include "core/synth/synth_util.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/clickmodels/click_model.h"
#include "core/data/csv.h"

namespace debias::synth::internal {

double StandardNormal(std::mt19937_64& rng) {
  // 1 - U in (0, 1] keeps the log finite.
  const double u1 = 1.0 - clickmodels::Uniform01(rng);
  const double u2 = clickmodels::Uniform01(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

void FillStandardNormal(std::mt19937_64& rng, float* out, size_t n) {
  size_t k = 0;
  for (; k + 1 < n; k += 2) {
    const double r =
        std::sqrt(-2.0 * std::log(1.0 - clickmodels::Uniform01(rng)));
    const double t = 2.0 * std::numbers::pi * clickmodels::Uniform01(rng);
    out[k] = static_cast<float>(r * std::cos(t));
    out[k + 1] = static_cast<float>(r * std::sin(t));
  }
  if (k < n) out[k] = static_cast<float>(StandardNormal(rng));
}

absl::Status WriteEventsCsv(
    const std::string& path, uint64_t total, uint64_t chunk_rows,
    const std::function<void(uint64_t, std::vector<data::Interaction>*)>&
        fill) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::DataLossError(absl::StrCat(path, ": cannot open"));
  std::vector<data::Interaction> chunk;
  uint64_t begin = 0;
  bool first = true;
  do {
    chunk.clear();
    if (begin < total) fill(begin, &chunk);
    std::ostringstream buf;
    if (absl::Status s = data::WriteCsv(chunk, buf); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
    }
    std::string text = std::move(buf).str();
    if (!first) {
      // Later chunks repeat the header line; drop it.
      const size_t nl = text.find('\n');
      text.erase(0, nl == std::string::npos ? text.size() : nl + 1);
    }
    out << text;
    first = false;
    begin += chunk_rows;
  } while (begin < total);
  out.flush();
  if (!out) return absl::DataLossError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

absl::Status WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::DataLossError(absl::StrCat(path, ": cannot open"));
  out << text;
  out.flush();
  if (!out) return absl::DataLossError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

absl::Status EnsureDirectory(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    return absl::DataLossError(
        absl::StrCat(dir, ": cannot create directory: ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace debias::synth::internal
