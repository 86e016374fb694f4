#include "nodeagent/core/util/bytes.h"

#include <gtest/gtest.h>

namespace bunker {
namespace {

TEST(BytesTest, HexRoundTrip) {
  Bytes b = {0x00, 0x01, 0xab, 0xff};
  EXPECT_EQ(HexEncode(b), "0001abff");
  EXPECT_EQ(*HexDecode("0001ABff"), b);
  EXPECT_FALSE(HexDecode("abc").ok());
  EXPECT_FALSE(HexDecode("zz").ok());
}

TEST(BytesTest, Base64MatchesRfc4648Vectors) {
  const std::pair<std::string, std::string> kVectors[] = {{"", ""},
                                                          {"f", "Zg=="},
                                                          {"fo", "Zm8="},
                                                          {"foo", "Zm9v"},
                                                          {"foob", "Zm9vYg=="},
                                                          {"fooba", "Zm9vYmE="},
                                                          {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : kVectors) {
    EXPECT_EQ(Base64Encode(AsBytes(plain)), encoded);
    Result<Bytes> back = Base64Decode(encoded);
    ASSERT_TRUE(back.ok()) << encoded;
    EXPECT_EQ(std::string(AsChars(*back)), plain);
  }
  EXPECT_FALSE(Base64Decode("Zm9").ok());
  EXPECT_FALSE(Base64Decode("Z=9v").ok());
  EXPECT_FALSE(Base64Decode("Zm9*").ok());
}

TEST(BytesTest, ReaderRefusesToReadPastTheEnd) {
  Bytes b;
  PutU32(&b, 7);
  PutU16(&b, 3);
  ByteReader r(b, "test object");
  uint32_t v32 = 0;
  ASSERT_TRUE(r.U32(&v32).ok());
  EXPECT_EQ(v32, 7u);
  uint64_t v64 = 0;
  Status s = r.U64(&v64);
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_NE(s.message().find("test object"), std::string::npos);
  ByteSpan span;
  EXPECT_FALSE(r.Span(3, &span).ok());
  EXPECT_TRUE(r.Span(2, &span).ok());
  EXPECT_TRUE(r.done());
}

TEST(BytesTest, CheckCountRejectsCountsThatCannotFit) {
  Bytes b(100);
  ByteReader r(b, "index");
  EXPECT_TRUE(r.CheckCount(2, 50, "entries").ok());
  EXPECT_FALSE(r.CheckCount(3, 50, "entries").ok());
  EXPECT_FALSE(r.CheckCount(uint64_t{1} << 62, 48, "entries").ok());
}

}  // namespace
}  // namespace bunker
