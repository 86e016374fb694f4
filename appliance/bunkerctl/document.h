#pragma once

// Inputs bunkerctl reads besides its flags: secrets from files or stdin (so
// they never appear in argv, shell history or `ps`), request documents given
// with -f (JSON or YAML), and KEY=VALUE flag values.
// Thread-safety: pure functions over files and stdin.

#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "nodeagent/core/util/status.h"

namespace bunker::bunkerctl {

// The contents of `path` ("-": stdin). With `trim`, trailing newlines are
// dropped (passwords, keys); without, the text is kept as is (kubeconfigs).
// A trimmed secret from stdin at a terminal is prompted for, one line, with
// echo off.
// NotFound when the file cannot be read.
Result<std::string> ReadSecret(const std::string& path, bool trim = true);

// A JSON or YAML document from `path` ("-": stdin) as JSON. JSON is parsed as
// JSON; anything else as YAML, where unquoted scalars become null, booleans,
// integers or floats when they read as such, and quoted ones stay strings.
// InvalidArgument naming the file and the parse error otherwise.
Result<nlohmann::json> ReadDocument(const std::string& path);

// "key=value" → {key, value}; InvalidArgument (naming `flag`) when there is
// no '=' or the key is empty.
Result<std::pair<std::string, std::string>> SplitKeyValue(const std::string& text,
                                                          const std::string& flag);

}  // namespace bunker::bunkerctl
