// Manual throughput check for nodeagent/core/io (not a test; numbers depend
// on the machine). Reads a volume with BlockReader, or writes one with
// BlockWriter, and prints MB/s.
//
//   io_throughput read PATH [auto|io_uring|pread] [direct:0|1] [chunk KiB] [queue depth]
//   io_throughput write PATH SIZE_MiB [auto|io_uring|pread] [queue depth] [prebuilt:0|1]
// With prebuilt=1 every chunk's buffer is made before the clock starts (the
// writer alone); otherwise each is allocated and filled in the loop, as a
// restore worker would.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "nodeagent/core/io/block_io.h"

namespace {

using bunker::BufferPool;
using bunker::Bytes;
using bunker::io::BlockReader;
using bunker::io::BlockWriter;
using bunker::io::Engine;
using bunker::io::EngineName;
using bunker::io::ParseEngine;
using Clock = std::chrono::steady_clock;

int Usage() {
  std::fprintf(stderr,
               "usage: io_throughput read PATH [engine] [direct 0|1] [chunk KiB] [depth]\n"
               "       io_throughput write PATH SIZE_MiB [engine] [depth] [prebuilt 0|1]\n");
  return 2;
}

Engine EngineArg(int argc, char** argv, int i) {
  if (argc <= i) {
    return Engine::kAuto;
  }
  auto e = ParseEngine(argv[i]);
  if (!e.ok()) {
    std::fprintf(stderr, "%s\n", e.status().ToString().c_str());
    std::exit(2);
  }
  return *e;
}

int Read(int argc, char** argv) {
  bunker::io::ReadOptions o;
  o.engine = EngineArg(argc, argv, 3);
  o.direct = argc > 4 ? std::atoi(argv[4]) != 0 : false;
  o.chunk_size = argc > 5 ? static_cast<uint32_t>(std::atoi(argv[5])) * 1024 : 1 << 20;
  o.queue_depth = argc > 6 ? static_cast<uint32_t>(std::atoi(argv[6])) : 16;
  BufferPool pool(o.chunk_size, o.queue_depth + 1);
  auto reader = BlockReader::Open(argv[2], o, &pool);
  if (!reader.ok()) {
    std::fprintf(stderr, "%s\n", reader.status().ToString().c_str());
    return 1;
  }
  uint64_t bytes = 0;
  uint64_t sum = 0;  // touch the data as a consumer would
  auto start = Clock::now();
  for (;;) {
    auto next = (*reader)->Next();
    if (!next.ok()) {
      std::fprintf(stderr, "%s\n", next.status().ToString().c_str());
      return 1;
    }
    if (!next->has_value()) {
      break;
    }
    bytes += (**next).data.size();
    sum += (**next).data.data()[0];
  }
  double s = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "read %s engine=%s direct=%d chunk=%u depth=%u: %.0f MB in %.3f s = %.0f MB/s (%lu)\n",
      argv[2], std::string(EngineName((*reader)->engine())).c_str(), (*reader)->direct() ? 1 : 0,
      o.chunk_size, o.queue_depth, bytes / 1e6, s, bytes / 1e6 / s,
      static_cast<unsigned long>(sum));
  return 0;
}

int Write(int argc, char** argv) {
  if (argc < 4) {
    return Usage();
  }
  uint64_t size = std::strtoull(argv[3], nullptr, 10) << 20;
  bunker::io::WriteOptions o;
  o.engine = EngineArg(argc, argv, 4);
  o.queue_depth = argc > 5 ? static_cast<uint32_t>(std::atoi(argv[5])) : 16;
  const size_t chunk = 1 << 20;
  Bytes pattern(chunk);
  for (size_t i = 0; i < chunk; ++i) {
    pattern[i] = static_cast<uint8_t>(i * 131 + 7);
  }
  const bool prebuilt = argc > 6 && std::atoi(argv[6]) != 0;
  auto make = [&](uint64_t off) {
    return Bytes(pattern.begin(),
                 pattern.begin() + static_cast<ptrdiff_t>(std::min<uint64_t>(chunk, size - off)));
  };
  std::vector<Bytes> chunks;
  if (prebuilt) {
    for (uint64_t off = 0; off < size; off += chunk) {
      chunks.push_back(make(off));
    }
  }
  auto start = Clock::now();
  auto writer = BlockWriter::Open(argv[2], size, /*overwrite=*/true, o);
  if (!writer.ok()) {
    std::fprintf(stderr, "%s\n", writer.status().ToString().c_str());
    return 1;
  }
  for (uint64_t off = 0; off < size; off += chunk) {
    Bytes data = prebuilt ? std::move(chunks[off / chunk]) : make(off);
    if (auto st = (*writer)->WriteAt(off, std::move(data)); !st.ok()) {
      std::fprintf(stderr, "%s\n", st.ToString().c_str());
      return 1;
    }
  }
  auto queued = Clock::now();
  if (auto st = (*writer)->Finish(); !st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    return 1;
  }
  double total = std::chrono::duration<double>(Clock::now() - start).count();
  double before_sync = std::chrono::duration<double>(queued - start).count();
  std::printf(
      "write %s engine=%s depth=%u prebuilt=%d: %.0f MB; to page cache %.3f s = %.0f MB/s; with "
      "fdatasync "
      "%.3f s = %.0f MB/s\n",
      argv[2], std::string(EngineName((*writer)->engine())).c_str(), o.queue_depth,
      prebuilt ? 1 : 0, size / 1e6, before_sync, size / 1e6 / before_sync, total,
      size / 1e6 / total);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    return Usage();
  }
  if (std::strcmp(argv[1], "read") == 0) {
    return Read(argc, argv);
  }
  if (std::strcmp(argv[1], "write") == 0) {
    return Write(argc, argv);
  }
  return Usage();
}
