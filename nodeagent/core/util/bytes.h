#pragma once

// Byte buffers, hex, little-endian fields, and a bounded reader for decoding
// untrusted input. Everything read from a repository goes through ByteReader,
// which checks every length against what remains before anything is
// allocated or copied.

#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nodeagent/core/util/status.h"

namespace bunker {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;
using MutableByteSpan = std::span<uint8_t>;

inline ByteSpan AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view AsChars(ByteSpan b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

std::string HexEncode(ByteSpan data);
// Accepts lower or upper case; InvalidArgument on odd length or a non-hex digit.
Result<Bytes> HexDecode(std::string_view hex);

// Base64 (standard alphabet, padded), for JSON fields.
std::string Base64Encode(ByteSpan data);
Result<Bytes> Base64Decode(std::string_view text);

inline void PutU8(Bytes* out, uint8_t v) { out->push_back(v); }
inline void PutU16(Bytes* out, uint16_t v) {
  out->push_back(static_cast<uint8_t>(v));
  out->push_back(static_cast<uint8_t>(v >> 8));
}
inline void PutU32(Bytes* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<uint8_t>(v >> (8 * i)));
}
inline void PutU64(Bytes* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<uint8_t>(v >> (8 * i)));
}
inline void PutBytes(Bytes* out, ByteSpan b) { out->insert(out->end(), b.begin(), b.end()); }

inline uint32_t LoadU32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
inline uint64_t LoadU64(const uint8_t* p) {
  return uint64_t(LoadU32(p)) | uint64_t(LoadU32(p + 4)) << 32;
}

// Reads little-endian fields from an untrusted buffer. Every accessor fails
// with Corruption (naming `what`) instead of reading past the end.
class ByteReader {
 public:
  ByteReader(ByteSpan data, std::string what) : data_(data), what_(std::move(what)) {}

  size_t remaining() const { return data_.size() - pos_; }
  size_t position() const { return pos_; }
  bool done() const { return pos_ == data_.size(); }

  Status U8(uint8_t* v);
  Status U16(uint16_t* v);
  Status U32(uint32_t* v);
  Status U64(uint64_t* v);
  // Returns a view of the next n bytes (no copy).
  Status Span(size_t n, ByteSpan* out);
  template <size_t N>
  Status Array(std::array<uint8_t, N>* out) {
    ByteSpan s;
    RETURN_IF_ERROR(Span(N, &s));
    std::memcpy(out->data(), s.data(), N);
    return Status::Ok();
  }
  // Checks that `count` records of `each` bytes can still follow, before the
  // caller reserves memory for them.
  Status CheckCount(uint64_t count, size_t each, std::string_view field) const;

 private:
  Status Short(size_t need) const;

  ByteSpan data_;
  size_t pos_ = 0;
  std::string what_;
};

}  // namespace bunker
