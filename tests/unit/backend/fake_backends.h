#pragma once

// Test doubles for backend wrappers: an in-memory Backend (optionally able to
// resume listings) and a scripted fault injector. Thread-safe.

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "nodeagent/core/backend/backend.h"
#include "nodeagent/core/backend/resumable_list.h"

namespace bunker::backend {

// Objects in a sorted map; List visits in byte order.
class MemoryBackend : public Backend {
 public:
  std::string Describe() const override { return "mem://test"; }
  std::chrono::milliseconds ListSettleTime() const override { return std::chrono::milliseconds(7); }
  Status Put(std::string_view name, ByteSpan data) override {
    std::lock_guard<std::mutex> lock(mu_);
    objects_[std::string(name)] = Bytes(data.begin(), data.end());
    return Status::Ok();
  }
  Result<Bytes> Get(std::string_view name) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = objects_.find(std::string(name));
    if (it == objects_.end()) return NotFound(std::string(name));
    return it->second;
  }
  Result<Bytes> GetRange(std::string_view name, uint64_t offset, uint64_t length) override {
    ASSIGN_OR_RETURN(Bytes all, Get(name));
    if (offset + length > all.size()) return Corruption("short");
    return Bytes(all.begin() + static_cast<ptrdiff_t>(offset),
                 all.begin() + static_cast<ptrdiff_t>(offset + length));
  }
  Result<ObjectInfo> Stat(std::string_view name) override {
    ASSIGN_OR_RETURN(Bytes all, Get(name));
    return ObjectInfo{std::string(name), all.size(), 0};
  }
  Status Delete(std::string_view name) override {
    std::lock_guard<std::mutex> lock(mu_);
    objects_.erase(std::string(name));
    return Status::Ok();
  }
  Status List(std::string_view prefix,
              const std::function<Status(const ObjectInfo&)>& visit) override {
    return ListFrom(prefix, "", visit);
  }

  // Called before each listed object with its position; a non-OK Status
  // fails the listing there (fault injection for List).
  std::function<Status(size_t index)> list_fault;

 protected:
  Status ListFrom(std::string_view prefix, std::string_view after,
                  const std::function<Status(const ObjectInfo&)>& visit) {
    std::map<std::string, Bytes> copy;
    {
      std::lock_guard<std::mutex> lock(mu_);
      copy = objects_;
    }
    size_t index = 0;
    for (const auto& [name, data] : copy) {
      if (!name.starts_with(prefix) || (!after.empty() && name <= after)) continue;
      if (list_fault) RETURN_IF_ERROR(list_fault(index));
      ++index;
      RETURN_IF_ERROR(visit(ObjectInfo{name, data.size(), 0}));
    }
    return Status::Ok();
  }

 private:
  std::mutex mu_;
  std::map<std::string, Bytes> objects_;
};

class ResumableMemoryBackend final : public MemoryBackend, public ResumableList {
 public:
  Status ListAfter(std::string_view prefix, std::string_view start_after,
                   const std::function<Status(const ObjectInfo&)>& visit) override {
    ++list_after_calls;
    return ListFrom(prefix, start_after, visit);
  }
  int list_after_calls = 0;
};

// Forwards to `inner` unless `fault(operation, name)` returns an error.
// Operations: "put", "get", "get_range", "stat", "delete", "list".
class FaultyBackend final : public Backend {
 public:
  FaultyBackend(Backend* inner, std::function<Status(std::string_view, std::string_view)> fault)
      : inner_(inner), fault_(std::move(fault)) {}
  std::string Describe() const override { return "faulty " + inner_->Describe(); }
  std::chrono::milliseconds ListSettleTime() const override { return inner_->ListSettleTime(); }
  Status Put(std::string_view name, ByteSpan data) override {
    RETURN_IF_ERROR(fault_("put", name));
    return inner_->Put(name, data);
  }
  Result<Bytes> Get(std::string_view name) override {
    RETURN_IF_ERROR(fault_("get", name));
    Result<Bytes> got = inner_->Get(name);
    if (got.ok() && mutate_get) mutate_get(&*got);
    return got;
  }

  // Changes what Get returns (a backend that corrupts data).
  std::function<void(Bytes*)> mutate_get;
  Result<Bytes> GetRange(std::string_view name, uint64_t offset, uint64_t length) override {
    RETURN_IF_ERROR(fault_("get_range", name));
    return inner_->GetRange(name, offset, length);
  }
  Result<ObjectInfo> Stat(std::string_view name) override {
    RETURN_IF_ERROR(fault_("stat", name));
    return inner_->Stat(name);
  }
  Status Delete(std::string_view name) override {
    RETURN_IF_ERROR(fault_("delete", name));
    return inner_->Delete(name);
  }
  Status List(std::string_view prefix,
              const std::function<Status(const ObjectInfo&)>& visit) override {
    RETURN_IF_ERROR(fault_("list", prefix));
    return inner_->List(prefix, visit);
  }

 private:
  Backend* inner_;
  std::function<Status(std::string_view, std::string_view)> fault_;
};

}  // namespace bunker::backend
