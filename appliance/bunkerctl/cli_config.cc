#include "appliance/bunkerctl/cli_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

namespace bunker::bunkerctl {

std::string DefaultConfigPath() {
  if (const char* p = std::getenv("BUNKER_CONFIG"); p != nullptr && *p != '\0') {
    return p;
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::string(home) + "/.config/bunker/config.yaml";
  }
  return "";
}

Result<CliConfig> LoadCliConfig(const std::string& path) {
  CliConfig c;
  if (path.empty() || !std::filesystem::exists(path)) {
    return c;
  }
  try {
    YAML::Node root = YAML::LoadFile(path);
    if (root.IsNull()) {
      return c;
    }
    if (!root.IsMap()) {
      return InvalidArgument("config " + path + ": must be a mapping");
    }
    for (const auto& kv : root) {
      std::string key = kv.first.as<std::string>();
      if (key == "server") {
        c.server = kv.second.as<std::string>();
      } else if (key == "ca_file") {
        c.ca_file = kv.second.as<std::string>();
      } else if (key == "insecure_skip_tls_verify") {
        c.insecure_skip_tls_verify = kv.second.as<bool>();
      } else if (key == "token") {
        c.token = kv.second.as<std::string>();
      } else {
        return InvalidArgument("config " + path + ": unknown key \"" + key + "\"");
      }
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument("config " + path + ": " + e.what());
  }
  return c;
}

Status SaveCliConfig(const std::string& path, const CliConfig& c) {
  if (path.empty()) {
    return InvalidArgument("no config path: set HOME or BUNKER_CONFIG");
  }
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return IOError("create " + parent.string() + ": " + ec.message());
    }
  }
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "server" << YAML::Value << c.server;
  if (!c.ca_file.empty()) {
    out << YAML::Key << "ca_file" << YAML::Value << c.ca_file;
  }
  if (c.insecure_skip_tls_verify) {
    out << YAML::Key << "insecure_skip_tls_verify" << YAML::Value << true;
  }
  out << YAML::Key << "token" << YAML::Value << c.token;
  out << YAML::EndMap;
  std::string text = std::string(out.c_str()) + "\n";
  std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return ErrnoStatus("create " + tmp, errno);
  }
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            fchmod(fd, 0600) == 0 && fsync(fd) == 0;
  int err = errno;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    err = ok ? errno : err;
    unlink(tmp.c_str());
    return ErrnoStatus("write " + path, err);
  }
  return Status::Ok();
}

}  // namespace bunker::bunkerctl
