#include "core/util/crc32c.h"

#include <string>

#include "gtest/gtest.h"

namespace debias::util {
namespace {

TEST(Crc32cTest, KnownValues) {
  // The check value of CRC-32C and RFC 3720's 32 zero bytes.
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(""), 0u);
}

TEST(Crc32cTest, ExtendsAcrossChunks) {
  const std::string s = "model parameters streamed in chunks";
  uint32_t crc = 0;
  for (size_t i = 0; i < s.size(); i += 7) crc = Crc32c(std::string_view(s).substr(i, 7), crc);
  EXPECT_EQ(crc, Crc32c(s));
  std::string flipped = s;
  flipped[3] ^= 1;
  EXPECT_NE(Crc32c(flipped), Crc32c(s));
}

}  // namespace
}  // namespace debias::util
