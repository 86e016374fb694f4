#pragma once

// How bunkerctl prints API objects: -o table (default; chosen columns),
// json (the API's JSON, indented) or yaml (the same data as YAML).
// Thread-safety: pure functions.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bunker::bunkerctl {

enum class OutputFormat { kTable, kJson, kYaml };

// Parses "table" / "json" / "yaml"; false otherwise.
bool ParseOutputFormat(const std::string& text, OutputFormat* out);

// `value` is one object or {"items": [...]}; `columns` are the keys shown as
// table columns: "key", "key.sub" (into an object; header SUB) or "key#" (an
// array's length). Headers are the last key upper-cased; missing values "-".
std::string Render(const nlohmann::json& value, OutputFormat format,
                   const std::vector<std::string>& columns);

}  // namespace bunker::bunkerctl
