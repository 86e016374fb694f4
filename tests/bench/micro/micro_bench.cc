// Single-core throughput of the data-path primitives on 1 MiB buffers: HMAC
// (chunk id), AES-256-GCM seal/open, LZ4 on random and on text-like data,
// FastCDC scanning and the all-zero check. Prints MB/s (10^6 bytes per second
// of this thread's CPU time, so that other load on the machine does not count),
// best of three timed rounds per case.
//
// Then the compute floor of a full block backup of the bench image (40%
// random, 30% text, 30% zeros: tests/bench/mkimage.py), from these rates:
// every primitive the backup must run on each byte, summed, divided by the
// cores. With `--image PATH` (a bench image) the LZ4 rates and ratio come
// from that image's own text chunks instead of the synthetic text.
//
//   bunker_micro_bench [SECONDS_PER_CASE] [--image PATH]

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <time.h>

#include <lz4.h>

#include "nodeagent/core/chunk/chunker.h"
#include "nodeagent/core/chunk/compress.h"
#include "nodeagent/core/crypto/crypto.h"
#include "nodeagent/core/crypto/hmac_pair.h"

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

// Up to `want` 1 MiB chunks of `path` that are neither all zero nor rejected
// by the compressor's sample (the text regions of a bench image).
std::vector<Bytes> TextChunksOf(const std::string& path, size_t want) {
  std::vector<Bytes> out;
  std::ifstream in(path, std::ios::binary);
  Bytes chunk(kMiB), scratch;
  while (out.size() < want && in.read(reinterpret_cast<char*>(chunk.data()), kMiB)) {
    if (!chunk::IsAllZero(chunk) && chunk::Lz4Compress(chunk, &scratch)) out.push_back(chunk);
  }
  return out;
}

int Main(int argc, char** argv) {
  std::string image;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--image" && i + 1 < argc) {
      image = argv[++i];
    } else {
      g_seconds = std::atof(argv[i]);
    }
  }
  const Bytes random = PseudoRandom(kMiB, 1);
  const Bytes text = TextLike(kMiB, 2);
  const crypto::Key key = crypto::RandomKey();

  crypto::Hmac hmac(key);
  const double hmac_rate = Measure(kMiB, [&] { Sink(hmac.Compute(random)[0]); });
  Report("Hmac::Compute 1 MiB", hmac_rate);
  Report("Hmac::Compute 4 KiB",
         Measure(4096, [&] { Sink(hmac.Compute(ByteSpan(random).first(4096))[0]); }));
  Report("Sha256 1 MiB", Measure(kMiB, [&] { Sink(crypto::Sha256(random)[0]); }));
  // Two chunks' ids at once, as a block backup computes them (hmac_pair.h).
  const crypto::HmacPair pair(key);
  const Bytes random2(random.rbegin(), random.rend());
  const double pair_rate = Measure(2 * kMiB, [&] {
    crypto::Digest a, b;
    pair.Compute(random, random2, &a, &b);
    Sink(a[0] ^ b[0]);
  });
  Report(pair.accelerated() ? "HmacPair 2 x 1 MiB (SHA-NI, interleaved)"
                            : "HmacPair 2 x 1 MiB (no SHA-NI: OpenSSL each)",
         pair_rate);

  crypto::Gmac gmac(key);
  const double gmac_rate = Measure(kMiB, [&] { Sink(gmac.Compute(random)[0]); });
  Report("Gmac::Compute 1 MiB (fingerprint)", gmac_rate);

  crypto::Aead aead(key);
  Bytes sealed;
  const double seal_rate = Measure(kMiB, [&] {
    sealed.clear();
    if (!aead.Seal(random, {}, &sealed).ok()) std::abort();
  });
  Report("Aead::Seal 1 MiB (reused output)", seal_rate);
  Bytes opened;
  const double open_rate = Measure(kMiB, [&] {
    if (!aead.Open(sealed, {}, &opened).ok()) std::abort();
  });
  Report("Aead::Open 1 MiB (reused output)", open_rate);
  const Bytes copy = random;
  const double compare_rate = Measure(
      kMiB, [&] { Sink(static_cast<uint64_t>(std::memcmp(copy.data(), random.data(), kMiB))); });
  Report("memcmp 1 MiB (the self-check's compare)", compare_rate);

  Bytes compressed;
  const double reject_rate = Measure(kMiB, [&] {
    if (chunk::Lz4Compress(random, &compressed)) std::abort();
  });
  Report("Lz4Compress 1 MiB random (rejected)", reject_rate);
  double text_rate = Measure(kMiB, [&] {
    if (!chunk::Lz4Compress(text, &compressed)) std::abort();
  });
  Report("Lz4Compress 1 MiB text-like", text_rate);
  if (!chunk::Lz4Compress(text, &compressed)) std::abort();
  double text_ratio = static_cast<double>(text.size()) / static_cast<double>(compressed.size());
  std::printf("  (text-like ratio: %.2f)\n", text_ratio);
  Bytes decompressed;
  double decompress_rate = Measure(kMiB, [&] {
    if (!chunk::Lz4Decompress(compressed, text.size(), &decompressed).ok()) std::abort();
  });
  std::vector<Bytes> image_text;
  if (!image.empty()) {
    image_text = TextChunksOf(image, 64);
    if (image_text.empty()) {
      std::fprintf(stderr, "%s: no compressible chunk found\n", image.c_str());
      return 2;
    }
    size_t next = 0, stored = 0;
    text_rate = Measure(kMiB, [&] {
      if (!chunk::Lz4Compress(image_text[next++ % image_text.size()], &compressed)) std::abort();
    });
    Report("Lz4Compress 1 MiB, the image's text", text_rate);
    std::vector<Bytes> packed;
    for (const Bytes& c : image_text) {
      if (!chunk::Lz4Compress(c, &compressed)) std::abort();
      packed.push_back(compressed);
      stored += compressed.size();
    }
    text_ratio = static_cast<double>(image_text.size() * kMiB) / static_cast<double>(stored);
    std::printf("  (ratio of the image's text: %.2f over %zu chunks)\n", text_ratio,
                image_text.size());
    next = 0;
    decompress_rate = Measure(kMiB, [&] {
      const Bytes& p = packed[next++ % packed.size()];
      if (!chunk::Lz4Decompress(p, kMiB, &decompressed).ok()) std::abort();
    });
  }
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
  Report(image.empty() ? "Lz4Decompress 1 MiB text-like (output)"
                       : "Lz4Decompress 1 MiB, the image's text (output)",
         decompress_rate);

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
  const double zero_rate = Measure(kMiB, [&] { Sink(chunk::IsAllZero(zeros)); });
  Report("IsAllZero 1 MiB zeros", zero_rate);

  // The floor: CPU seconds per GiB of bench image for the work a full
  // backup cannot skip (rates are MB/s, so bytes / rate / 1e6 is seconds).
  const double gib = static_cast<double>(size_t{1} << 30) / 1e6;  // in MB
  const double rnd = 0.4 * gib, txt = 0.3 * gib, zero = 0.3 * gib, nonzero = rnd + txt;
  const double sealed_mb = rnd + txt / text_ratio;
  struct Part {
    const char* what;
    double seconds;
  };
  const Part parts[] = {
      {"zero check, every byte", (nonzero + zero) / zero_rate},
      {"HMAC-SHA256 chunk ids (pairs), non-zero", nonzero / pair_rate},
      {"GMAC fingerprints, non-zero bytes", nonzero / gmac_rate},
      {"LZ4 of the text", txt / text_rate},
      {"LZ4 sample of the random chunks", rnd / reject_rate},
      {"AES-256-GCM seal", sealed_mb / seal_rate},
      {"self-check: GCM open", sealed_mb / open_rate},
      {"self-check: LZ4 decode of the text", txt / decompress_rate},
      {"self-check: compare", nonzero / compare_rate},
  };
  double total = 0;
  std::printf(
      "\nFull backup of the bench image (40%% random, 30%% text, 30%% zeros), CPU s per GiB:\n");
  for (const Part& p : parts) {
    std::printf("  %-40s %6.3f\n", p.what, p.seconds);
    total += p.seconds;
  }
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::printf("  %-40s %6.3f\n", "total", total);
  std::printf(
      "Floor on %u cores: %.3f s per GiB = %.0f MB/s, before reading the volume, the kernel's\n"
      "copies, the key derivation and the repository's writes.\n",
      cores, total / cores, gib / (total / cores));
  return 0;
}

}  // namespace
}  // namespace bunker

int main(int argc, char** argv) { return bunker::Main(argc, argv); }
