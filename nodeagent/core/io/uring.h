#pragma once

// A small RAII owner of a `struct io_uring` (internal to nodeagent/core/io).
//
// Thread-safety: none; a ring is driven by one thread at a time.

#include <liburing.h>

#include <memory>

#include "nodeagent/core/util/status.h"

namespace bunker::io::internal {

class Uring {
 public:
  // Sets up a ring with `entries` submission entries (completion queue twice
  // that). Env BUNKER_IO_URING_SIMULATE_EPERM=1 makes this fail with EPERM, as
  // a container's default seccomp profile would, so the fallback can be
  // tested; it is read on every call.
  static Result<std::unique_ptr<Uring>> Create(unsigned entries);

  ~Uring();
  Uring(const Uring&) = delete;
  Uring& operator=(const Uring&) = delete;

  // A free submission entry. The caller keeps the number of prepared plus
  // in-flight operations at most `entries`, which guarantees one is free.
  io_uring_sqe* GetSqe();

  // Submits every prepared entry and, if `wait_for` > 0, waits until at least
  // that many completions are ready. Retries EINTR/EAGAIN/EBUSY.
  Status SubmitAndWait(unsigned wait_for);

  // Calls fn(const io_uring_cqe&) for every ready completion and consumes
  // them. fn may prepare new entries (submitted by the next SubmitAndWait).
  template <typename Fn>
  unsigned ForEachCompletion(Fn&& fn) {
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      fn(*cqe);
      ++seen;
    }
    io_uring_cq_advance(&ring_, seen);
    return seen;
  }

  // Caps the kernel's io-wq workers that run this ring's punted requests
  // (bounded: regular-file and block I/O). False when the kernel cannot (older
  // than 5.15), which only leaves its default.
  bool LimitKernelWorkers(unsigned bounded);

  // Registers [base, base + bytes) as fixed buffer 0 (its pages pinned
  // once, not on every request: io_uring_prep_read_fixed). False when the
  // kernel refuses (RLIMIT_MEMLOCK for an unprivileged process, an old
  // kernel); plain requests then work as before.
  bool RegisterBuffer(void* base, size_t bytes);

  // Entries prepared and not yet submitted.
  unsigned pending() const { return io_uring_sq_ready(&ring_); }

  unsigned entries() const { return entries_; }

 private:
  explicit Uring(unsigned entries) : entries_(entries) {}

  io_uring ring_{};
  unsigned entries_;
};

}  // namespace bunker::io::internal
