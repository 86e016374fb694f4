#include "nodeagent/core/repo/snapshot.h"

#include <chrono>
#include <ctime>
#include <limits>
#include <type_traits>

#include <nlohmann/json.hpp>

namespace bunker::repo {

using nlohmann::json;

std::string NowRfc3339() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof(out), "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

std::string EncodeSnapshotJson(const Snapshot& s) {
  json j;
  j["version"] = s.version;
  j["volume_id"] = s.volume_id;
  j["mode"] = s.mode;
  j["time"] = s.time;
  j["host"] = s.host;
  j["tags"] = s.tags;
  j["kind"] = s.kind;
  j["parent"] = s.parent ? json(ToHex(*s.parent)) : json(nullptr);
  j["size"] = s.size;
  if (s.mode == "block") {
    j["chunk_size"] = s.chunk_size;
    json content = json::array();
    for (const BlobId& id : s.content) content.push_back(ToHex(id));
    j["content"] = content;
  }
  if (s.tree) j["tree"] = ToHex(*s.tree);
  const SnapshotStats& st = s.stats;
  j["stats"] = {{"bytes_read", st.bytes_read},           {"bytes_new", st.bytes_new},
                {"bytes_reused", st.bytes_reused},       {"bytes_hole", st.bytes_hole},
                {"bytes_stored", st.bytes_stored},       {"blobs_new", st.blobs_new},
                {"blobs_reused", st.blobs_reused},       {"files_new", st.files_new},
                {"files_unchanged", st.files_unchanged}, {"duration_seconds", st.duration_seconds}};
  return j.dump();
}

namespace {

template <typename T>
Status Field(const json& j, const char* name, T* out, std::string_view what, bool required = true) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) {
    if (!required) return Status::Ok();
    return Corruption(std::string(what) + ": field \"" + name + "\" is missing");
  }
  auto wrong = [&] {
    return Corruption(std::string(what) + ": field \"" + name + "\" has the wrong type");
  };
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // Integers only: a float is never cast (out of range it would be UB).
    if (!it->is_number_integer()) return wrong();
    if (it->is_number_unsigned()) {
      uint64_t u = it->template get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<T>::max())) return wrong();
      *out = static_cast<T>(u);
    } else {
      int64_t v = it->template get<int64_t>();
      if (v < 0 ||
          static_cast<uint64_t>(v) > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
        return wrong();
      }
      *out = static_cast<T>(v);
    }
    return Status::Ok();
  }
  try {
    *out = it->template get<T>();
  } catch (const json::exception&) {
    return wrong();
  }
  return Status::Ok();
}

}  // namespace

Result<Snapshot> DecodeSnapshotJson(ByteSpan data, std::string_view what) {
  json j = json::parse(data.begin(), data.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Corruption(std::string(what) + ": not a JSON object");
  }
  Snapshot s;
  RETURN_IF_ERROR(Field(j, "version", &s.version, what));
  if (s.version != 1) {
    return Corruption(std::string(what) + ": snapshot format version " + std::to_string(s.version) +
                      " is not supported (this build reads 1)");
  }
  RETURN_IF_ERROR(Field(j, "volume_id", &s.volume_id, what));
  RETURN_IF_ERROR(Field(j, "mode", &s.mode, what));
  RETURN_IF_ERROR(Field(j, "time", &s.time, what));
  RETURN_IF_ERROR(Field(j, "host", &s.host, what, false));
  RETURN_IF_ERROR(Field(j, "tags", &s.tags, what, false));
  RETURN_IF_ERROR(Field(j, "kind", &s.kind, what));
  std::string parent;
  RETURN_IF_ERROR(Field(j, "parent", &parent, what, false));
  if (!parent.empty()) {
    Result<Id> id = ParseId(parent);
    if (!id.ok()) return Corruption(std::string(what) + ": bad parent id");
    s.parent = *id;
  }
  if (s.mode == "block") {
    RETURN_IF_ERROR(Field(j, "size", &s.size, what));
    RETURN_IF_ERROR(Field(j, "chunk_size", &s.chunk_size, what));
    if (s.chunk_size == 0 || s.chunk_size > (16u << 20)) {
      return Corruption(std::string(what) + ": chunk_size out of range");
    }
    std::vector<std::string> content;
    RETURN_IF_ERROR(Field(j, "content", &content, what));
    for (const std::string& hex : content) {
      Result<Id> id = ParseId(hex);
      if (!id.ok()) return Corruption(std::string(what) + ": bad content id");
      s.content.push_back(*id);
    }
    if (s.size > (uint64_t{1} << 56)) {
      return Corruption(std::string(what) + ": volume size out of range");
    }
    uint64_t chunks = (s.size + s.chunk_size - 1) / s.chunk_size;
    if (chunks > uint64_t{s.content.size()} * 4096) {
      return Corruption(std::string(what) + ": content list too short for the volume size");
    }
  } else if (s.mode == "file") {
    RETURN_IF_ERROR(Field(j, "size", &s.size, what, false));
    std::string tree;
    RETURN_IF_ERROR(Field(j, "tree", &tree, what));
    Result<Id> id = ParseId(tree);
    if (!id.ok()) return Corruption(std::string(what) + ": bad tree id");
    s.tree = *id;
  } else {
    return Corruption(std::string(what) + ": unknown mode \"" + s.mode + "\"");
  }
  if (auto it = j.find("stats"); it != j.end() && it->is_object()) {
    const json& st = *it;
    SnapshotStats& o = s.stats;
    RETURN_IF_ERROR(Field(st, "bytes_read", &o.bytes_read, what, false));
    RETURN_IF_ERROR(Field(st, "bytes_new", &o.bytes_new, what, false));
    RETURN_IF_ERROR(Field(st, "bytes_reused", &o.bytes_reused, what, false));
    RETURN_IF_ERROR(Field(st, "bytes_hole", &o.bytes_hole, what, false));
    RETURN_IF_ERROR(Field(st, "bytes_stored", &o.bytes_stored, what, false));
    RETURN_IF_ERROR(Field(st, "blobs_new", &o.blobs_new, what, false));
    RETURN_IF_ERROR(Field(st, "blobs_reused", &o.blobs_reused, what, false));
    RETURN_IF_ERROR(Field(st, "files_new", &o.files_new, what, false));
    RETURN_IF_ERROR(Field(st, "files_unchanged", &o.files_unchanged, what, false));
    RETURN_IF_ERROR(Field(st, "duration_seconds", &o.duration_seconds, what, false));
  }
  return s;
}

}  // namespace bunker::repo
