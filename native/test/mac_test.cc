#include "../kernel/mac.h"

#include <gtest/gtest.h>

namespace nodenet {
namespace {

TEST(MacText, LowerCaseHexWithColons) {
  const uint8_t mac[] = {0x02, 0x42, 0xAC, 0x11, 0x00, 0xFF};
  EXPECT_EQ(MacText(mac, sizeof mac), "02:42:ac:11:00:ff");
}

TEST(MacText, AnyLength) {
  const uint8_t one[] = {0x0a};
  EXPECT_EQ(MacText(one, sizeof one), "0a");
  EXPECT_EQ(MacText(nullptr, 0), "");
  // An ip6gre link's address is the 16-byte tunnel endpoint.
  uint8_t sixteen[16] = {};
  sixteen[15] = 1;
  EXPECT_EQ(MacText(sixteen, sizeof sixteen), "00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:01");
}

}  // namespace
}  // namespace nodenet
