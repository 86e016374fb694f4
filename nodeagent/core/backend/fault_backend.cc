#include "nodeagent/core/backend/fault_backend.h"

#include <cstdlib>
#include <string>
#include <thread>

#include <spdlog/spdlog.h>

namespace bunker::backend {

Result<std::unique_ptr<Backend>> FaultBackend::Wrap(std::unique_ptr<Backend> inner,
                                                    std::string_view spec) {
  std::unique_ptr<FaultBackend> fb(new FaultBackend(std::move(inner)));
  size_t start = 0;
  while (start < spec.size()) {
    size_t end = spec.find(',', start);
    if (end == std::string_view::npos) end = spec.size();
    std::string item(spec.substr(start, end - start));
    start = end + 1;
    if (item.empty()) continue;
    auto bad = [&](std::string_view why) {
      return InvalidArgument("BUNKER_FAULTS rule \"" + item + "\": " + std::string(why));
    };
    size_t colon = item.find(':');
    if (colon == std::string::npos) return bad("expected op:fault");
    std::string op = item.substr(0, colon), rest = item.substr(colon + 1);
    Rule r;
    if (op == "put")
      r.op = Op::kPut;
    else if (op == "get")
      r.op = Op::kGet;
    else if (op == "delete")
      r.op = Op::kDelete;
    else if (op == "list")
      r.op = Op::kList;
    else if (op == "stat")
      r.op = Op::kStat;
    else if (op == "any")
      r.op = Op::kAny;
    else
      return bad("unknown op");
    size_t eq = rest.find('=');
    if (eq != std::string::npos) {
      r.arg = std::strtoull(rest.c_str() + eq + 1, nullptr, 10);
      rest.resize(eq);
    }
    size_t at = rest.find('@');
    if (at != std::string::npos) {
      r.nth = std::strtoull(rest.c_str() + at + 1, nullptr, 10);
      if (r.nth == 0) return bad("@N counts from 1");
      rest.resize(at);
    }
    if (rest == "error")
      r.fault = Fault::kError;
    else if (rest == "fatal")
      r.fault = Fault::kFatal;
    else if (rest == "flip")
      r.fault = Fault::kFlip;
    else if (rest == "truncate")
      r.fault = Fault::kTruncate;
    else if (rest == "partial")
      r.fault = Fault::kPartial;
    else if (rest == "slow")
      r.fault = Fault::kSlow;
    else
      return bad("unknown fault");
    r.calls = std::make_unique<std::atomic<uint64_t>>(0);
    fb->rules_.push_back(std::move(r));
  }
  spdlog::warn("fault injection active on {}: {}", fb->Describe(), std::string(spec));
  return std::unique_ptr<Backend>(std::move(fb));
}

std::vector<FaultBackend::Fault> FaultBackend::Hit(Op op, std::string_view name) {
  std::vector<Fault> out;
  for (Rule& r : rules_) {
    if (r.op != op && r.op != Op::kAny) continue;
    uint64_t n = ++*r.calls;
    if (r.nth != 0 && n != r.nth) continue;
    if (r.fault == Fault::kSlow) {
      std::this_thread::sleep_for(std::chrono::milliseconds(r.arg));
      continue;
    }
    spdlog::debug("injected fault on {}", std::string(name));
    out.push_back(r.fault);
  }
  return out;
}

Status FaultBackend::Check(Op op, std::string_view name, bool* flip, bool* truncate,
                           bool* partial) {
  for (Fault f : Hit(op, name)) {
    switch (f) {
      case Fault::kError:
        return Unavailable("injected fault on " + std::string(name));
      case Fault::kFatal:
        return IOError("injected permanent fault on " + std::string(name));
      case Fault::kFlip:
        if (flip) *flip = true;
        break;
      case Fault::kTruncate:
        if (truncate) *truncate = true;
        break;
      case Fault::kPartial:
        if (partial) *partial = true;
        break;
      case Fault::kSlow:
        break;
    }
  }
  return Status::Ok();
}

void FaultBackend::Damage(bool flip, bool truncate, Bytes* data) {
  if (data->empty()) return;
  if (flip) (*data)[data->size() / 2] ^= 0x10;
  if (truncate) data->pop_back();
}

Status FaultBackend::Put(std::string_view name, ByteSpan data) {
  RETURN_IF_ERROR(Check(Op::kPut, name, nullptr, nullptr, nullptr));
  return inner_->Put(name, data);
}

Result<Bytes> FaultBackend::Get(std::string_view name) {
  bool flip = false, truncate = false;
  RETURN_IF_ERROR(Check(Op::kGet, name, &flip, &truncate, nullptr));
  ASSIGN_OR_RETURN(Bytes data, inner_->Get(name));
  Damage(flip, truncate, &data);
  return data;
}

Result<Bytes> FaultBackend::GetRange(std::string_view name, uint64_t offset, uint64_t length) {
  Bytes out;
  RETURN_IF_ERROR(GetRangeInto(name, offset, length, &out));
  return out;
}

Status FaultBackend::GetRangeInto(std::string_view name, uint64_t offset, uint64_t length,
                                  Bytes* out) {
  bool flip = false, truncate = false;
  RETURN_IF_ERROR(Check(Op::kGet, name, &flip, &truncate, nullptr));
  RETURN_IF_ERROR(inner_->GetRangeInto(name, offset, length, out));
  Damage(flip, truncate, out);
  return Status::Ok();
}

Result<ObjectInfo> FaultBackend::Stat(std::string_view name) {
  RETURN_IF_ERROR(Check(Op::kStat, name, nullptr, nullptr, nullptr));
  return inner_->Stat(name);
}

Status FaultBackend::Delete(std::string_view name) {
  RETURN_IF_ERROR(Check(Op::kDelete, name, nullptr, nullptr, nullptr));
  return inner_->Delete(name);
}

Status FaultBackend::List(std::string_view prefix,
                          const std::function<Status(const ObjectInfo&)>& visit) {
  bool partial = false;
  RETURN_IF_ERROR(Check(Op::kList, prefix, nullptr, nullptr, &partial));
  if (!partial) return inner_->List(prefix, visit);
  // Collect, then report only the first half as if that were everything.
  std::vector<ObjectInfo> all;
  RETURN_IF_ERROR(inner_->List(prefix, [&](const ObjectInfo& info) {
    all.push_back(info);
    return Status::Ok();
  }));
  for (size_t i = 0; i < all.size() / 2; ++i) RETURN_IF_ERROR(visit(all[i]));
  return Status::Ok();
}

}  // namespace bunker::backend
