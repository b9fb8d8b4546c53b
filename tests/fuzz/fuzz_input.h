// Helpers shared by the fuzz targets: a byte consumer that turns the fuzzer's
// input into integers, interesting floating-point values and strings, and a
// check that aborts (so libFuzzer and the replay test both see a failure).
//
// Works with gcc and clang alike (clang's FuzzedDataProvider is not available
// in the gcc replay build).
#ifndef DEBIAS_TESTS_FUZZ_FUZZ_INPUT_H_
#define DEBIAS_TESTS_FUZZ_FUZZ_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

// An invariant the code under test promises; a violation is a bug.
#define FUZZ_CHECK(cond)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__,     \
                   __LINE__, #cond);                                       \
      std::abort();                                                        \
    }                                                                      \
  } while (0)

namespace debias::fuzz {

class Input {
 public:
  Input(const uint8_t* data, size_t size)
      : p_(reinterpret_cast<const char*>(data)), n_(size) {}

  bool empty() const { return n_ == 0; }
  size_t remaining() const { return n_; }

  uint8_t Byte() {
    if (n_ == 0) return 0;
    --n_;
    return static_cast<uint8_t>(*p_++);
  }
  uint32_t U32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | Byte();
    return v;
  }
  uint64_t U64() { return (uint64_t{U32()} << 32) | U32(); }
  // Uniform-ish integer in [lo, hi] from one or four bytes.
  int64_t Range(int64_t lo, int64_t hi) {
    const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
    const uint64_t v = span <= 256 ? Byte() : U32();
    return lo + static_cast<int64_t>(v % span);
  }
  bool Bool() { return Byte() & 1; }

  // A double biased towards the values numeric code gets wrong: NaN, +-inf,
  // 0, -0, denormals, tiny and huge values, 1, values just outside [0, 1],
  // or raw bits.
  double Double() {
    switch (Byte() % 16) {
      case 0: return std::numeric_limits<double>::quiet_NaN();
      case 1: return std::numeric_limits<double>::infinity();
      case 2: return -std::numeric_limits<double>::infinity();
      case 3: return 0.0;
      case 4: return -0.0;
      case 5: return std::numeric_limits<double>::denorm_min();
      case 6: return 1e-300;
      case 7: return 1e-12;
      case 8: return 1.0;
      case 9: return 1.0 + 1e-9;
      case 10: return -1e-9;
      case 11: return 1e300;
      case 12: return std::numeric_limits<float>::denorm_min();
      case 13: {
        uint64_t bits = U64();
        double d;
        std::memcpy(&d, &bits, 8);
        return d;
      }
      default: return Byte() / 255.0;  // an ordinary value in [0, 1]
    }
  }
  float Float() { return static_cast<float>(Double()); }
  // A probability-like value: mostly ordinary, sometimes hostile.
  double Prob() {
    const uint8_t b = Byte();
    if (b < 192) return (b + 1) / 192.0;  // (0, 1]
    return Double();
  }

  // Up to `max_len` bytes (length from one byte).
  std::string String(size_t max_len = 16) {
    size_t len = Byte() % (max_len + 1);
    if (len > n_) len = n_;
    std::string s(p_, len);
    p_ += len;
    n_ -= len;
    return s;
  }
  // Everything that is left.
  std::string_view Rest() {
    std::string_view s(p_, n_);
    p_ += n_;
    n_ = 0;
    return s;
  }

 private:
  const char* p_;
  size_t n_;
};

}  // namespace debias::fuzz

#endif  // DEBIAS_TESTS_FUZZ_FUZZ_INPUT_H_
