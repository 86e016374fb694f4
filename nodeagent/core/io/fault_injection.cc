#include "nodeagent/core/io/fault_injection.h"

#include <atomic>
#include <memory>
#include <utility>

namespace bunker::io::internal {

namespace {

std::atomic<bool> g_hook_set{false};
// Written only by SetFaultHookForTest, while no reader or writer is open.
std::unique_ptr<FaultHook> g_hook;

}  // namespace

void SetFaultHookForTest(FaultHook hook) {
  if (hook) {
    g_hook = std::make_unique<FaultHook>(std::move(hook));
    g_hook_set.store(true, std::memory_order_release);
  } else {
    g_hook_set.store(false, std::memory_order_release);
    g_hook.reset();
  }
}

int64_t ApplyFault(FaultOp op, uint64_t offset, int64_t result) {
  if (!g_hook_set.load(std::memory_order_acquire)) {
    return result;
  }
  return (*g_hook)(op, offset, result);
}

}  // namespace bunker::io::internal
