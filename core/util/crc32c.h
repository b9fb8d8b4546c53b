// CRC-32C (Castagnoli, the polynomial of iSCSI, ext4 and RocksDB), used to
// check model snapshots moved between servers. Table-driven, one byte at a
// time: a few hundred MB/s, far above the network paths it guards.
#ifndef DEBIAS_CORE_UTIL_CRC32C_H_
#define DEBIAS_CORE_UTIL_CRC32C_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace debias::util {

namespace internal {
constexpr std::array<uint32_t, 256> MakeCrc32cTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}
inline constexpr std::array<uint32_t, 256> kCrc32cTable = MakeCrc32cTable();
}  // namespace internal

// Extends `crc` (the value returned for the preceding bytes; 0 to start)
// over `data`. Crc32c("123456789") == 0xE3069283.
inline uint32_t Crc32c(std::string_view data, uint32_t crc = 0) {
  crc = ~crc;
  for (unsigned char b : data) crc = internal::kCrc32cTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

}  // namespace debias::util

#endif  // DEBIAS_CORE_UTIL_CRC32C_H_
