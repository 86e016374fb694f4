// Single-core throughput of the data-path primitives on 1 MiB buffers: HMAC
// (chunk id), AES-256-GCM seal/open, LZ4 on random and on text-like data,
// FastCDC scanning and the all-zero check. Prints MB/s (10^6 bytes per second
// of this thread's CPU time, so that other load on the machine does not count),
// best of three timed rounds per case.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <string>

#include <time.h>

#include <lz4.h>

#include "nodeagent/core/chunk/chunker.h"
#include "nodeagent/core/chunk/compress.h"
#include "nodeagent/core/crypto/crypto.h"

namespace bunker {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

Bytes PseudoRandom(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes out(n);
  for (size_t i = 0; i + 8 <= n; i += 8) {
    const uint64_t v = rng();
    std::memcpy(out.data() + i, &v, 8);
  }
  return out;
}

Bytes TextLike(size_t n, uint64_t seed) {
  static const char* const kWords[] = {
      "the",     "backup",   "volume",  "chunk",  "snapshot", "INFO",    "WARN",      "pod",
      "node",    "restore",  "pack",    "index",  "kube",     "system",  "error",     "request",
      "handled", "duration", "ms",      "bytes",  "agent",    "cluster", "namespace", "storage",
      "class",   "token",    "session", "closed", "opened",   "user"};
  std::mt19937_64 rng(seed);
  std::string text;
  while (text.size() < n) {
    const uint64_t r = rng();
    text += kWords[r % std::size(kWords)];
    if (r % 7 == 0) {
      text += ' ';
      text += std::to_string((r >> 8) % 100000);
    }
    text += (r >> 40) % 12 == 0 ? '\n' : ' ';
  }
  text.resize(n);
  return Bytes(text.begin(), text.end());
}

double g_seconds = 0.5;
volatile uint64_t g_sink = 0;
// Keeps results observable so the measured work is not optimised away.
void Sink(uint64_t v) { g_sink = v; }

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Runs `op` (which processes `bytes` bytes) repeatedly; best MB/s of 3 rounds.
double Measure(size_t bytes, const std::function<void()>& op) {
  op();  // warm up
  double best = 0;
  for (int round = 0; round < 3; ++round) {
    size_t iterations = 0;
    const double start = ThreadCpuSeconds();
    double elapsed = 0;
    do {
      op();
      ++iterations;
      elapsed = ThreadCpuSeconds() - start;
    } while (elapsed < g_seconds / 3);
    best = std::max(best,
                    static_cast<double>(bytes) * static_cast<double>(iterations) / elapsed / 1e6);
  }
  return best;
}

void Report(const char* name, double mbps) { std::printf("%-40s %9.0f MB/s\n", name, mbps); }

int Main(int argc, char** argv) {
  if (argc > 1) {
    g_seconds = std::atof(argv[1]);
  }
  const Bytes random = PseudoRandom(kMiB, 1);
  const Bytes text = TextLike(kMiB, 2);
  const crypto::Key key = crypto::RandomKey();

  crypto::Hmac hmac(key);
  Report("Hmac::Compute 1 MiB", Measure(kMiB, [&] { Sink(hmac.Compute(random)[0]); }));
  Report("Hmac::Compute 4 KiB",
         Measure(4096, [&] { Sink(hmac.Compute(ByteSpan(random).first(4096))[0]); }));
  Report("Sha256 1 MiB", Measure(kMiB, [&] { Sink(crypto::Sha256(random)[0]); }));

  crypto::Aead aead(key);
  Bytes sealed;
  Report("Aead::Seal 1 MiB (reused output)", Measure(kMiB, [&] {
           sealed.clear();
           if (!aead.Seal(random, {}, &sealed).ok()) std::abort();
         }));
  Bytes opened;
  Report("Aead::Open 1 MiB (reused output)", Measure(kMiB, [&] {
           if (!aead.Open(sealed, {}, &opened).ok()) std::abort();
         }));

  Bytes compressed;
  Report("Lz4Compress 1 MiB random (rejected)", Measure(kMiB, [&] {
           if (chunk::Lz4Compress(random, &compressed)) std::abort();
         }));
  Report("Lz4Compress 1 MiB text-like", Measure(kMiB, [&] {
           if (!chunk::Lz4Compress(text, &compressed)) std::abort();
         }));
  if (!chunk::Lz4Compress(text, &compressed)) std::abort();
  std::printf("  (text-like ratio: %.2f)\n",
              static_cast<double>(text.size()) / static_cast<double>(compressed.size()));
  // Baseline: the library alone on the same data (no sample, unlimited output).
  Bytes bound(static_cast<size_t>(LZ4_compressBound(static_cast<int>(kMiB))));
  Report("  raw LZ4_compress_default, text-like", Measure(kMiB, [&] {
           Sink(static_cast<uint64_t>(LZ4_compress_default(
               reinterpret_cast<const char*>(text.data()), reinterpret_cast<char*>(bound.data()),
               static_cast<int>(kMiB), static_cast<int>(bound.size()))));
         }));
  // Machine code is a middling case between text and random.
  std::ifstream self("/proc/self/exe", std::ios::binary);
  Bytes binary((std::istreambuf_iterator<char>(self)), std::istreambuf_iterator<char>());
  binary.resize(std::min(binary.size(), kMiB));
  Report("Lz4Compress 1 MiB of this executable",
         Measure(binary.size(), [&] { Sink(chunk::Lz4Compress(binary, &compressed)); }));
  std::printf("  (executable ratio: %.2f)\n",
              chunk::Lz4Compress(binary, &compressed)
                  ? static_cast<double>(binary.size()) / static_cast<double>(compressed.size())
                  : 1.0);
  Bytes decompressed;
  if (!chunk::Lz4Compress(text, &compressed)) std::abort();
  Report("Lz4Decompress 1 MiB text-like (output)", Measure(kMiB, [&] {
           if (!chunk::Lz4Decompress(compressed, text.size(), &decompressed).ok()) std::abort();
         }));

  const Bytes big = PseudoRandom(64 * kMiB, 3);
  const chunk::GearTable gear = chunk::MakeGearTable(key);
  const auto scan = [&](const chunk::FastCdc& cdc) {
    size_t pos = 0;
    size_t count = 0;
    while (pos < big.size()) {
      pos += cdc.FindBoundary(ByteSpan(big).subspan(pos), true);
      ++count;
    }
    Sink(count);
  };
  const chunk::FastCdc cdc_default(chunk::CdcParams{}, gear);
  Report("FastCdc scan, 256K/1M/4M (skips min)", Measure(big.size(), [&] { scan(cdc_default); }));
  const chunk::FastCdc cdc_min64(chunk::CdcParams{64, 1 << 20, 4 << 20}, gear);
  Report("FastCdc scan, min 64 B (gear rate)", Measure(big.size(), [&] { scan(cdc_min64); }));

  const Bytes zeros(kMiB, 0);
  Report("IsAllZero 1 MiB zeros", Measure(kMiB, [&] { Sink(chunk::IsAllZero(zeros)); }));
  return 0;
}

}  // namespace
}  // namespace bunker

int main(int argc, char** argv) { return bunker::Main(argc, argv); }
