#pragma once

// Scaffolding shared by the libFuzzer harnesses (tests/fuzz/*_fuzzer.cc).
//
// A harness is written once, with BUNKER_FUZZ_TARGET(name), and built two ways:
//  - in the fuzz build (clang, -DBUNKER_FUZZ=ON, BUNKER_FUZZ_LIBFUZZER defined)
//    its body is LLVMFuzzerTestOneInput of the executable `<name>_fuzzer`;
//  - in the normal build (tests/unit/fuzz_regressions) its body registers
//    itself under `name`, and fuzz_regression_test replays every file of
//    tests/fuzz/corpus/<name>/ and tests/fuzz/regressions/<name>/ through it.
//
// A body returns true when the decoder accepted the input (the replay checks
// that every corpus reaches the success path at least once, so a harness
// cannot silently rot into testing only the first length check).
//
// Properties are checked with FUZZ_CHECK: a violation prints the message and
// aborts under the fuzzer (a finding with its input saved); in the replay it
// is a test failure naming the input file.
//
// KnownBug(id) marks a product bug that is reported but not fixed yet (listed
// in tests/fuzz/README.md): the harness tolerates it so that fuzzing goes on
// past it, prints "KNOWN-BUG <id>" once per process, and, with the
// environment variable BUNKER_FUZZ_STRICT=1, treats it as a finding.
//
// Thread-safety: harness bodies run on one thread.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "nodeagent/core/repo/codec.h"
#include "nodeagent/core/util/bytes.h"
#include "nodeagent/core/util/status.h"

namespace bunker::fuzz {

using TargetFn = bool (*)(ByteSpan data);

struct TargetEntry {
  const char* name;
  TargetFn fn;
};

// Registered harnesses (replay build only).
inline std::vector<TargetEntry>& Targets() {
  static std::vector<TargetEntry> targets;
  return targets;
}

inline bool Register(const char* name, TargetFn fn) {
  Targets().push_back({name, fn});
  return true;
}

// Property violations of the current input. Null: abort at the first one
// (fuzzing). The replay points it at a vector and reports its contents.
inline std::vector<std::string>*& FailureSink() {
  static std::vector<std::string>* sink = nullptr;
  return sink;
}

inline void Fail(const char* file, int line, const std::string& what) {
  std::string msg = std::string(file) + ":" + std::to_string(line) + ": " + what;
  if (FailureSink() != nullptr) {
    FailureSink()->push_back(msg);
    return;
  }
  std::fprintf(stderr, "FUZZ PROPERTY VIOLATED: %s\n", msg.c_str());
  std::fflush(stderr);
  std::abort();
}

// Known product bugs hit by the current process (replay: by the current input).
inline std::set<std::string>& KnownBugsHit() {
  static std::set<std::string> hit;
  return hit;
}

// BUNKER_FUZZ_STRICT=1: known bugs are findings too.
inline bool Strict() {
  const char* v = std::getenv("BUNKER_FUZZ_STRICT");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

inline void KnownBug(const char* file, int line, const char* id, const std::string& detail) {
  if (Strict()) {
    Fail(file, line, std::string("known bug ") + id + " (strict mode): " + detail);
    return;
  }
  if (KnownBugsHit().insert(id).second) {
    std::fprintf(stderr, "KNOWN-BUG %s: %s\n", id, detail.c_str());
  }
}

// A Status from a decoder: OK, or an error with one of the expected codes.
inline std::string Describe(const Status& st) { return st.ToString().substr(0, 300); }

// The fixed master key the sealed-object harnesses and the seed writer use.
inline repo::MasterKey TestMasterKey() {
  repo::MasterKey k;
  for (size_t i = 0; i < k.enc.size(); ++i) {
    k.enc[i] = static_cast<uint8_t>(0x10 + i);
    k.mac[i] = static_cast<uint8_t>(0xa0 + i);
  }
  return k;
}

// Little-endian reads of a harness's input header; false when too short.
class InputReader {
 public:
  explicit InputReader(ByteSpan data) : data_(data) {}
  bool U8(uint8_t* v) {
    if (data_.size() - pos_ < 1) return false;
    *v = data_[pos_++];
    return true;
  }
  bool U16(uint16_t* v) {
    if (data_.size() - pos_ < 2) return false;
    *v = static_cast<uint16_t>(data_[pos_] | data_[pos_ + 1] << 8);
    pos_ += 2;
    return true;
  }
  bool U32(uint32_t* v) {
    if (data_.size() - pos_ < 4) return false;
    *v = LoadU32(data_.data() + pos_);
    pos_ += 4;
    return true;
  }
  bool U64(uint64_t* v) {
    if (data_.size() - pos_ < 8) return false;
    *v = LoadU64(data_.data() + pos_);
    pos_ += 8;
    return true;
  }
  bool Take(size_t n, ByteSpan* out) {
    if (data_.size() - pos_ < n) return false;
    *out = data_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  ByteSpan Rest() const { return data_.subspan(pos_); }

 private:
  ByteSpan data_;
  size_t pos_ = 0;
};

}  // namespace bunker::fuzz

#define FUZZ_CHECK(cond, what)                                                                \
  do {                                                                                        \
    if (!(cond)) ::bunker::fuzz::Fail(__FILE__, __LINE__, std::string(#cond " — ") + (what)); \
  } while (0)

#define FUZZ_KNOWN_BUG(id, detail) ::bunker::fuzz::KnownBug(__FILE__, __LINE__, id, detail)

#ifdef BUNKER_FUZZ_LIBFUZZER
// Undefined behaviour stops the run (a finding), even when the harness is
// started by hand without UBSAN_OPTIONS.
extern "C" const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }
#define BUNKER_FUZZ_ENTRY(name)                                             \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { \
    BunkerFuzz_##name(::bunker::ByteSpan(data, size));                      \
    return 0;                                                               \
  }
#else
#define BUNKER_FUZZ_ENTRY(name)                                     \
  [[maybe_unused]] static const bool kBunkerFuzzRegistered_##name = \
      ::bunker::fuzz::Register(#name, &BunkerFuzz_##name);
#endif

// BUNKER_FUZZ_TARGET(index) { …body using `data` (a ByteSpan)…; return accepted; }
#define BUNKER_FUZZ_TARGET(name)                          \
  static bool BunkerFuzz_##name(::bunker::ByteSpan data); \
  BUNKER_FUZZ_ENTRY(name)                                 \
  static bool BunkerFuzz_##name(::bunker::ByteSpan data)
