#pragma once

// Helpers for the bunker-agent integration tests: run the real binary against
// a file:// repository in a per-test temp dir, build deterministic volume
// images, compare restored files, copy and damage repositories.
//
// Nothing here knows the repository's internals beyond FORMAT.md's object
// names (config, keys/, data/xx/<id>, index/, snapshots/, locks/).

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/harness/process.h"
#include "tests/harness/temp_dir.h"

namespace bunker::testing {

inline constexpr uint64_t kMiB = uint64_t{1} << 20;
inline constexpr uint64_t kKiB = uint64_t{1} << 10;
// The repository's default block-mode chunk size (`repo init` default).
inline constexpr uint64_t kChunk = kMiB;
// What a failpoint armed with `crash` exits with (nodeagent/core/util/failpoint.h).
inline constexpr int kFailpointExit = 86;

// ${BUNKER_BINARY_DIR}/nodeagent/agent/bunker-agent, or $BUNKER_TEST_AGENT_BINARY
// when set (to test a copy while the build directory is being rebuilt).
std::filesystem::path AgentBinary();

// ---- Volume images -------------------------------------------------------

enum class Fill {
  kRandom,  // pseudo-random bytes: incompressible, unique per seed
  kText,    // pseudo-random words and lines: compressible, unique per seed
  kZero,    // zeros: a hole, never stored
};

struct Region {
  Fill fill = Fill::kRandom;
  uint64_t seed = 0;
  uint64_t size = kMiB;
};

inline Region Random(uint64_t seed, uint64_t size = kMiB) { return {Fill::kRandom, seed, size}; }
inline Region Text(uint64_t seed, uint64_t size = kMiB) { return {Fill::kText, seed, size}; }
inline Region Zero(uint64_t size = kMiB) { return {Fill::kZero, 0, size}; }

// The bytes of `regions`, in order. Deterministic: the same regions always
// give the same bytes (the generators are fixed, not std::*_distribution).
std::string ImageBytes(const std::vector<Region>& regions);

// Writes ImageBytes(regions) to `path` (zeros are written, not skipped, so
// the image itself is not sparse). Fails the current test on error.
void WriteImage(const std::filesystem::path& path, const std::vector<Region>& regions);

// Overwrites [offset, offset+length) of `path` with pseudo-random bytes.
void ScribbleRange(const std::filesystem::path& path, uint64_t offset, uint64_t length,
                   uint64_t seed);

// Bytes of `path` that lie in all-zero chunks of `chunk` bytes (the last
// chunk may be short): what a block backup records as holes.
uint64_t HoleBytes(const std::filesystem::path& path, uint64_t chunk = kChunk);

// Empty when the two files have the same bytes; else what differs (sizes,
// first differing offset) for an assertion message.
std::string CompareFiles(const std::filesystem::path& a, const std::filesystem::path& b);

// st_blocks * 512.
uint64_t AllocatedBytes(const std::filesystem::path& path);

// ---- Repository files ------------------------------------------------------

// Every file and directory under `dir` (relative path → "size mtime_ns" for
// files, "dir mtime_ns" for directories): two equal listings mean nothing
// was created, removed or rewritten.
std::map<std::string, std::string> ListTree(const std::filesystem::path& dir);

// Printable difference of two ListTree results.
std::string DiffTrees(const std::map<std::string, std::string>& before,
                      const std::map<std::string, std::string>& after);

// Regular files directly or recursively under `dir` / `sub`, relative to `dir`
// (e.g. "data/3d/3d…"), sorted. Temp files (".tmp-…") are left out.
std::vector<std::string> ObjectNames(const std::filesystem::path& dir, const std::string& sub);

// `cp -a src dst` (keeps mtimes, which prune's age rule looks at).
void CopyTree(const std::filesystem::path& src, const std::filesystem::path& dst);

// XORs the byte at `offset` of `path` with 0x01.
void FlipByte(const std::filesystem::path& path, uint64_t offset);

// Returns once the wall clock's second is past the mtime of every object in
// `repo`/data. prune deletes unreferenced packs only when they are older than
// its start (whole seconds, FORMAT.md "deletes nothing newer than its mark
// phase"), so a test that expects them gone must not prune in the same second
// that a crashed writer left them.
void WaitUntilPacksAreOlderThanNow(const std::filesystem::path& repo);

// ---- Output --------------------------------------------------------------

// stdout parsed as one JSON object; nullopt (and a test failure naming the
// output) if it is not one.
std::optional<nlohmann::json> StdoutJson(const RunResult& r);

// Non-empty lines of `text`.
std::vector<std::string> Lines(const std::string& text);

// ---- The fixture -----------------------------------------------------------

// Each test gets its own temp dir with a repository directory `repo_` (not
// yet initialised) and runs bunker-agent with a scrubbed environment: no
// BUNKER_* variable leaks in from the caller, BUNKER_PASSWORD is `password_`.
class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override;

  const std::filesystem::path& dir() const { return tmp_.path(); }
  static std::string UrlOf(const std::filesystem::path& repo) { return "file://" + repo.string(); }
  std::string Url() const { return UrlOf(repo_); }

  // bunker-agent `args` (no --repo added). `env` applies after the scrub.
  RunResult Agent(const std::vector<std::string>& args, const EnvChanges& env = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(120)) const;
  // bunker-agent --repo file://<repo> `args`.
  RunResult In(const std::filesystem::path& repo, const std::vector<std::string>& args,
               const EnvChanges& env = {}) const;
  RunResult InRepo(const std::vector<std::string>& args, const EnvChanges& env = {}) const {
    return In(repo_, args, env);
  }

  // The scrubbed environment (plus `extra`), for Process::Start.
  EnvChanges Env(const EnvChanges& extra = {}) const;

  // These fail the test (non-fatally) and return nullopt when the command
  // does not exit 0 with a JSON object on stdout.
  std::optional<nlohmann::json> JsonOk(const std::filesystem::path& repo,
                                       const std::vector<std::string>& args,
                                       const EnvChanges& env = {});
  void Init(const std::filesystem::path& repo);
  std::optional<nlohmann::json> Backup(const std::filesystem::path& repo,
                                       const std::filesystem::path& image,
                                       const std::string& volume_id,
                                       const std::vector<std::string>& extra = {});
  // Snapshot list (oldest first), optionally of one volume.
  std::optional<nlohmann::json> Snapshots(const std::filesystem::path& repo,
                                          const std::string& volume_id = "");

  // Restores `snapshot` into a new file under dir() and compares it with
  // `image`; returns the CompareFiles result (empty: identical), or what went
  // wrong with the restore.
  std::string RestoreAndCompare(const std::filesystem::path& repo, const std::string& snapshot,
                                const std::filesystem::path& image);

  // `check [--read-data] --json`: exits 0 and its only problems are
  // "unreferenced" packs. Returns the number of unreferenced packs, or -1
  // after a failure; `report` receives check's JSON.
  int CheckHealthy(const std::filesystem::path& repo, bool read_data = true,
                   nlohmann::json* report = nullptr);

  TempDir tmp_;
  std::filesystem::path repo_;
  std::string password_ = "correct horse battery staple";
  int restore_counter_ = 0;
};

}  // namespace bunker::testing
