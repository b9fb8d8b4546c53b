// Little-endian binary encoding helpers with bounds-checked decoding.
//
// Used for store keys/values and model snapshots. Big-endian variants are for
// keys whose byte order must sort numerically.
#ifndef DEBIAS_CORE_UTIL_CODING_H_
#define DEBIAS_CORE_UTIL_CODING_H_

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace debias::util {

inline void PutFixed32(std::string* dst, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);
  dst->append(b, 4);
}
inline void PutFixed64(std::string* dst, uint64_t v) {
  char b[8];
  std::memcpy(b, &v, 8);
  dst->append(b, 8);
}
inline void PutFloat(std::string* dst, float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  PutFixed32(dst, u);
}
inline void PutDouble(std::string* dst, double v) {
  uint64_t u;
  std::memcpy(&u, &v, 8);
  PutFixed64(dst, u);
}
// Big-endian, so that byte-wise order equals numeric order (for keys).
inline void PutBigEndian32(std::string* dst, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  dst->append(b, 4);
}
inline void PutBigEndian64(std::string* dst, uint64_t v) {
  PutBigEndian32(dst, static_cast<uint32_t>(v >> 32));
  PutBigEndian32(dst, static_cast<uint32_t>(v));
}
// Length-prefixed bytes (fixed32 length).
inline void PutBytes(std::string* dst, std::string_view s) {
  PutFixed32(dst, static_cast<uint32_t>(s.size()));
  dst->append(s.data(), s.size());
}
inline void PutFloats(std::string* dst, std::span<const float> v) {
  PutFixed64(dst, v.size());
  dst->append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// Sequential reader over a byte string. Every Get returns false (and leaves
// the reader failed) when the input is too short; callers map that to
// DATA_LOSS.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool GetFixed32(uint32_t* v) { return Raw(v, 4); }
  bool GetFixed64(uint64_t* v) { return Raw(v, 8); }
  bool GetFloat(float* v) { return Raw(v, 4); }
  bool GetDouble(double* v) { return Raw(v, 8); }
  bool GetBigEndian32(uint32_t* v) {
    if (!Need(4)) return false;
    const auto* p = reinterpret_cast<const unsigned char*>(in_.data() + pos_);
    *v = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) |
         uint32_t{p[3]};
    pos_ += 4;
    return true;
  }
  bool GetBigEndian64(uint64_t* v) {
    uint32_t hi, lo;
    if (!GetBigEndian32(&hi) || !GetBigEndian32(&lo)) return false;
    *v = (uint64_t{hi} << 32) | lo;
    return true;
  }
  bool GetBytes(std::string_view* s) {
    uint32_t n;
    if (!GetFixed32(&n) || !Need(n)) return failed_ = true, false;
    *s = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  // Reads a PutFloats array; `max_count` bounds the allocation.
  bool GetFloats(std::vector<float>* v, uint64_t max_count = (1ull << 34)) {
    uint64_t n;
    if (!GetFixed64(&n) || n > max_count || !Need(n * sizeof(float))) {
      return failed_ = true, false;
    }
    v->resize(n);
    if (n > 0) std::memcpy(v->data(), in_.data() + pos_, n * sizeof(float));
    pos_ += n * sizeof(float);
    return true;
  }
  size_t remaining() const { return in_.size() - pos_; }
  bool failed() const { return failed_; }
  bool done() const { return !failed_ && pos_ == in_.size(); }

 private:
  bool Need(size_t n) {
    if (failed_ || in_.size() - pos_ < n) return failed_ = true, false;
    return true;
  }
  template <typename T>
  bool Raw(T* v, size_t n) {
    if (!Need(n)) return false;
    std::memcpy(v, in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace debias::util

#endif  // DEBIAS_CORE_UTIL_CODING_H_
