#include "appliance/bunkerd/config.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <filesystem>

namespace bunker::bunkerd {
namespace {

Status ReadString(const YAML::Node& v, const std::string& key, std::string* out) {
  if (!v.IsScalar()) {
    return InvalidArgument(key + ": must be a string");
  }
  *out = v.as<std::string>();
  return Status::Ok();
}

Status ReadInt(const YAML::Node& v, const std::string& key, int64_t min, int64_t max,
               int64_t* out) {
  int64_t parsed = 0;
  if (!v.IsScalar() || !YAML::convert<int64_t>::decode(v, parsed) || parsed < min || parsed > max) {
    return InvalidArgument(key + ": must be an integer from " + std::to_string(min) + " to " +
                           std::to_string(max));
  }
  *out = parsed;
  return Status::Ok();
}

// A list of absolute directory paths.
Status ReadDirList(const YAML::Node& v, const std::string& key, std::vector<std::string>* out) {
  if (!v.IsSequence() && !v.IsNull()) {
    return InvalidArgument(key + ": must be a list of absolute directory paths");
  }
  out->clear();
  for (const YAML::Node& item : v) {
    if (!item.IsScalar() || item.as<std::string>().empty() || item.as<std::string>()[0] != '/') {
      return InvalidArgument(key + ": every entry must be an absolute directory path");
    }
    out->push_back(item.as<std::string>());
  }
  return Status::Ok();
}

}  // namespace

Status LoadConfigFile(const std::string& path, Config* c) {
  if (!std::filesystem::exists(path)) {
    return NotFound("config file " + path + " does not exist");
  }
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return InvalidArgument("config file " + path + ": " + e.what());
  }
  if (root.IsNull()) {
    return Status::Ok();
  }
  if (!root.IsMap()) {
    return InvalidArgument("config file " + path + ": must be a mapping of keys to values");
  }
  for (const auto& kv : root) {
    std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    Status st;
    if (key == "data_dir") {
      st = ReadString(v, key, &c->data_dir);
    } else if (key == "listen") {
      st = ReadString(v, key, &c->listen);
    } else if (key == "tls_cert") {
      st = ReadString(v, key, &c->tls_cert);
    } else if (key == "tls_key") {
      st = ReadString(v, key, &c->tls_key);
    } else if (key == "log_level") {
      st = ReadString(v, key, &c->log_level);
    } else if (key == "log_target") {
      st = ReadString(v, key, &c->log_target);
    } else if (key == "token_ttl_hours") {
      st = ReadInt(v, key, 1, 24 * 365, &c->token_ttl_hours);
    } else if (key == "max_body_bytes") {
      st = ReadInt(v, key, 1024, int64_t{64} << 20, &c->max_body_bytes);
    } else if (key == "threads") {
      st = ReadInt(v, key, 1, 256, &c->threads);
    } else if (key == "worker_threads") {
      st = ReadInt(v, key, 1, 64, &c->worker_threads);
    } else if (key == "probe_threads") {
      st = ReadInt(v, key, 1, 64, &c->probe_threads);
    } else if (key == "max_queued_slow_requests") {
      st = ReadInt(v, key, 1, 100000, &c->max_queued_slow_requests);
    } else if (key == "read_timeout_seconds") {
      st = ReadInt(v, key, 1, 3600, &c->read_timeout_seconds);
    } else if (key == "cluster_probe_timeout_seconds") {
      st = ReadInt(v, key, 1, 300, &c->cluster_probe_timeout_seconds);
    } else if (key == "login_max_failures") {
      st = ReadInt(v, key, 1, 1000, &c->login_max_failures);
    } else if (key == "login_max_failures_per_address") {
      st = ReadInt(v, key, 1, 100000, &c->login_max_failures_per_address);
    } else if (key == "login_failure_window_seconds") {
      st = ReadInt(v, key, 1, 86400, &c->login_failure_window_seconds);
    } else if (key == "file_location_roots") {
      st = ReadDirList(v, key, &c->file_location_roots);
    } else {
      st = InvalidArgument(key + ": unknown key");
    }
    RETURN_IF_ERROR_CTX(st, "config file " + path);
  }
  return Status::Ok();
}

Status SplitListen(const std::string& listen, std::string* host, uint16_t* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return InvalidArgument("listen \"" + listen + "\": expected host:port");
  }
  std::string h = listen.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') {
    h = h.substr(1, h.size() - 2);
  }
  std::string p = listen.substr(colon + 1);
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (ec != std::errc() || ptr != p.data() + p.size() || value > 65535) {
    return InvalidArgument("listen \"" + listen + "\": bad port");
  }
  *host = h;
  *port = static_cast<uint16_t>(value);
  return Status::Ok();
}

}  // namespace bunker::bunkerd
