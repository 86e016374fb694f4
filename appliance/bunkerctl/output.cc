#include "appliance/bunkerctl/output.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>

namespace bunker::bunkerctl {
namespace {

void EmitYaml(YAML::Emitter& out, const nlohmann::json& v) {
  if (v.is_object()) {
    out << YAML::BeginMap;
    for (const auto& [k, item] : v.items()) {
      out << YAML::Key << k << YAML::Value;
      EmitYaml(out, item);
    }
    out << YAML::EndMap;
  } else if (v.is_array()) {
    out << YAML::BeginSeq;
    for (const auto& item : v) {
      EmitYaml(out, item);
    }
    out << YAML::EndSeq;
  } else if (v.is_string()) {
    out << YAML::DoubleQuoted << v.get<std::string>();
  } else if (v.is_null()) {
    out << YAML::Null;
  } else {
    out << v.dump();
  }
}

std::string Cell(const nlohmann::json& v) {
  if (v.is_null()) {
    return "-";
  }
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// A column's value: "a.b" walks into objects, a trailing '#' counts an array.
std::string ColumnValue(const nlohmann::json& row, std::string column) {
  bool count = !column.empty() && column.back() == '#';
  if (count) {
    column.pop_back();
  }
  const nlohmann::json* v = &row;
  size_t start = 0;
  while (true) {
    size_t dot = column.find('.', start);
    std::string key = column.substr(start, dot == std::string::npos ? dot : dot - start);
    if (!v->is_object() || !v->contains(key)) {
      return "-";
    }
    v = &(*v)[key];
    if (dot == std::string::npos) {
      break;
    }
    start = dot + 1;
  }
  if (count) {
    return v->is_array() ? std::to_string(v->size()) : "-";
  }
  return Cell(*v);
}

// A column's header: its last key, upper-cased, '_' as ' '.
std::string Header(const std::string& column) {
  std::string h = column.substr(column.rfind('.') + 1);
  if (!h.empty() && h.back() == '#') {
    h.pop_back();
  }
  std::transform(h.begin(), h.end(), h.begin(), [](char ch) {
    return ch == '_' ? ' ' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  });
  return h;
}

}  // namespace

bool ParseOutputFormat(const std::string& text, OutputFormat* out) {
  if (text == "table") {
    *out = OutputFormat::kTable;
  } else if (text == "json") {
    *out = OutputFormat::kJson;
  } else if (text == "yaml") {
    *out = OutputFormat::kYaml;
  } else {
    return false;
  }
  return true;
}

std::string Render(const nlohmann::json& value, OutputFormat format,
                   const std::vector<std::string>& columns) {
  if (format == OutputFormat::kJson) {
    return value.dump(2) + "\n";
  }
  if (format == OutputFormat::kYaml) {
    YAML::Emitter out;
    EmitYaml(out, value);
    return std::string(out.c_str()) + "\n";
  }
  std::vector<nlohmann::json> rows;
  if (value.is_object() && value.contains("items") && value["items"].is_array()) {
    rows.assign(value["items"].begin(), value["items"].end());
  } else {
    rows.push_back(value);
  }
  std::vector<std::vector<std::string>> cells;
  std::vector<size_t> width(columns.size());
  std::vector<std::string> header;
  for (const std::string& c : columns) {
    header.push_back(Header(c));
  }
  cells.push_back(header);
  for (const nlohmann::json& row : rows) {
    std::vector<std::string> line;
    for (const std::string& c : columns) {
      line.push_back(ColumnValue(row, c));
    }
    cells.push_back(line);
  }
  for (const auto& line : cells) {
    for (size_t i = 0; i < line.size(); ++i) {
      width[i] = std::max(width[i], line[i].size());
    }
  }
  std::string out;
  for (const auto& line : cells) {
    for (size_t i = 0; i < line.size(); ++i) {
      out += line[i];
      if (i + 1 < line.size()) {
        out += std::string(width[i] - line[i].size() + 3, ' ');
      }
    }
    out += "\n";
  }
  return out;
}

}  // namespace bunker::bunkerctl
