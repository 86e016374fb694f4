#include "appliance/bunkerctl/document.h"

#include <termios.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <fstream>
#include <iostream>
#include <sstream>

namespace bunker::bunkerctl {
namespace {

using json = nlohmann::json;

json PlainScalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") {
    return nullptr;
  }
  if (s == "true" || s == "True" || s == "TRUE") {
    return true;
  }
  if (s == "false" || s == "False" || s == "FALSE") {
    return false;
  }
  int64_t i = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
  if (ec == std::errc() && end == s.data() + s.size()) {
    return i;
  }
  json number = json::parse(s, nullptr, false);
  if (number.is_number()) {
    return number;
  }
  return s;
}

json YamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : node) {
        out[kv.first.as<std::string>()] = YamlToJson(kv.second);
      }
      return out;
    }
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : node) {
        out.push_back(YamlToJson(item));
      }
      return out;
    }
    case YAML::NodeType::Scalar:
      // yaml-cpp tags quoted scalars "!"; plain ones "?".
      return node.Tag() == "!" ? json(node.Scalar()) : PlainScalar(node.Scalar());
    default:
      return nullptr;
  }
}

}  // namespace

Result<std::string> ReadSecret(const std::string& path, bool trim) {
  std::stringstream ss;
  if (path == "-" && trim && isatty(STDIN_FILENO) == 1) {
    // A person at a terminal: one line, not echoed.
    std::cerr << "Password: " << std::flush;
    termios saved{};
    bool restore = tcgetattr(STDIN_FILENO, &saved) == 0;
    if (restore) {
      termios quiet = saved;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    std::string line;
    std::getline(std::cin, line);
    if (restore) {
      tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    }
    std::cerr << "\n";
    return line;
  }
  if (path == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in) {
      return NotFound("cannot read " + path);
    }
    ss << in.rdbuf();
  }
  std::string s = ss.str();
  while (trim && !s.empty() && (s.back() == '\n' || s.back() == '\r')) {
    s.pop_back();
  }
  return s;
}

Result<json> ReadDocument(const std::string& path) {
  Result<std::string> text = ReadSecret(path, /*trim=*/false);
  if (!text.ok()) {
    return text.status();
  }
  const std::string name = path == "-" ? "stdin" : path;
  size_t first = text->find_first_not_of(" \t\r\n");
  if (first != std::string::npos && ((*text)[first] == '{' || (*text)[first] == '[')) {
    json doc = json::parse(*text, nullptr, false);
    if (doc.is_discarded()) {
      return InvalidArgument(name + ": not valid JSON");
    }
    return doc;
  }
  try {
    return YamlToJson(YAML::Load(*text));
  } catch (const YAML::Exception& e) {
    return InvalidArgument(name + ": " + e.what());
  }
}

Result<std::pair<std::string, std::string>> SplitKeyValue(const std::string& text,
                                                          const std::string& flag) {
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return InvalidArgument(flag + " \"" + text + "\": expected KEY=VALUE");
  }
  return std::pair{text.substr(0, eq), text.substr(eq + 1)};
}

}  // namespace bunker::bunkerctl
