#include "nodeagent/core/io/uring.h"

#include <sched.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace bunker::io::internal {

namespace {

bool SimulateEperm() {
  const char* v = std::getenv("BUNKER_IO_URING_SIMULATE_EPERM");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

}  // namespace

Result<std::unique_ptr<Uring>> Uring::Create(unsigned entries) {
  if (SimulateEperm()) {
    return ErrnoStatus("io_uring_queue_init (simulated by BUNKER_IO_URING_SIMULATE_EPERM)", EPERM);
  }
  std::unique_ptr<Uring> u(new Uring(entries));
  int rc = io_uring_queue_init(entries, &u->ring_, 0);
  if (rc < 0) {
    // Not yet initialised: the destructor must not call io_uring_queue_exit.
    u->entries_ = 0;
    return ErrnoStatus("io_uring_queue_init(" + std::to_string(entries) + ")", -rc);
  }
  return u;
}

Uring::~Uring() {
  if (entries_ != 0) {
    io_uring_queue_exit(&ring_);
  }
}

bool Uring::LimitKernelWorkers(unsigned bounded) {
  unsigned values[2] = {bounded, 0};  // 0 leaves the unbounded limit as it is
  return io_uring_register_iowq_max_workers(&ring_, values) == 0;
}

bool Uring::RegisterBuffer(void* base, size_t bytes) {
  iovec v{base, bytes};
  return io_uring_register_buffers(&ring_, &v, 1) == 0;
}

io_uring_sqe* Uring::GetSqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    // Only reachable by breaking the caller's contract; submitting frees the
    // queue and keeps the program correct.
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

Status Uring::SubmitAndWait(unsigned wait_for) {
  // EAGAIN/EBUSY mean the kernel is short of memory or the completion queue
  // is full; neither lasts, since callers bound what is in flight.
  constexpr int kMaxBusyRetries = 1000;
  int busy = 0;
  for (;;) {
    int rc = io_uring_submit_and_wait(&ring_, wait_for);
    if (rc >= 0) {
      return Status::Ok();
    }
    if (rc == -EINTR) {
      continue;
    }
    if ((rc == -EAGAIN || rc == -EBUSY) && ++busy <= kMaxBusyRetries) {
      sched_yield();
      continue;
    }
    return ErrnoStatus("io_uring_submit_and_wait", -rc);
  }
}

}  // namespace bunker::io::internal
