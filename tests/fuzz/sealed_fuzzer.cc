// BlobCodec::Open on stored sealed objects (FORMAT.md: index files,
// snapshots, pack trailers, leases), followed by the object's decoder when
// the object opens, as Repository does.
//
// Input: kind(u8) || stored object. kind % 4: 0 index, 1 snapshot,
// 2 pack trailer, 3 lease. Opened with the test key: seeds are real objects
// sealed with it; mutations exercise the AEAD failure path (a forged or
// damaged object never reaches a decoder).
//
// Properties: every rejection is Corruption.

#include "nodeagent/core/repo/codec.h"
#include "nodeagent/core/repo/snapshot.h"
#include "tests/fuzz/fuzz_target.h"

namespace bunker::fuzz {
namespace {

repo::BlobCodec& Codec() {
  static repo::BlobCodec codec(TestMasterKey());
  return codec;
}

}  // namespace

BUNKER_FUZZ_TARGET(sealed) {
  InputReader in(data);
  uint8_t kind = 0;
  if (!in.U8(&kind)) return false;
  static constexpr std::string_view kAads[] = {repo::kAadIndex, repo::kAadSnapshot,
                                               repo::kAadTrailer, repo::kAadLease};
  Bytes plain;
  Status st = Codec().Open(kAads[kind % 4], in.Rest(), "fuzz object", &plain);
  if (!st.ok()) {
    FUZZ_CHECK(st.code() == Code::kCorruption, Describe(st));
    FUZZ_CHECK(plain.empty(), "unauthenticated plaintext handed out");
    return false;
  }
  switch (kind % 4) {
    case 0: {
      Result<std::vector<repo::PackEntries>> r = repo::DecodeIndex(plain, "fuzz index");
      FUZZ_CHECK(r.ok() || r.status().code() == Code::kCorruption, Describe(r.status()));
      break;
    }
    case 1: {
      Result<repo::Snapshot> r = repo::DecodeSnapshotJson(plain, "fuzz snapshot");
      FUZZ_CHECK(r.ok() || r.status().code() == Code::kCorruption, Describe(r.status()));
      break;
    }
    default:
      break;  // trailers need their pack (pack_fuzzer); leases: lease_fuzzer
  }
  return true;
}

}  // namespace bunker::fuzz
