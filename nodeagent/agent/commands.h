#pragma once

// bunker-agent's verbs. Each returns a process exit code and prints its
// result: human text by default, one JSON object on stdout with --json.
// Errors are one line on stderr ("bunker-agent: <what failed>: <why>").

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nodeagent/core/util/status.h"

namespace bunker::agent {

// Exit codes (also listed in --help).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;   // the operation failed
inline constexpr int kExitUsage = 2;     // bad flags or arguments
inline constexpr int kExitAuth = 3;      // wrong password, permission denied
inline constexpr int kExitLocked = 4;    // repository locked by another operation
inline constexpr int kExitDamaged = 5;   // check found damaged or missing data
inline constexpr int kExitNotFound = 6;  // repository, snapshot or volume not found

struct GlobalOptions {
  std::string repo;           // --repo / BUNKER_REPOSITORY
  std::string password_file;  // --password-file / BUNKER_PASSWORD_FILE
  bool json = false;
  std::string io_engine = "auto";
  std::string s3_endpoint, s3_region, s3_ca_file;
  std::string s3_addressing = "auto";  // auto, path, virtual-hosted
  bool s3_unsigned_payload = false;
};

struct InitArgs {
  uint32_t block_size = 1 << 20;
};
struct KeyAddArgs {
  std::string new_password_file;
  std::string label;
};
struct BackupArgs {
  std::string volume;
  std::string mode;  // "", block, file
  std::string volume_id;
  std::string parent;
  bool full = false;
  std::vector<std::string> tags;  // k=v
  int workers = 0;
  std::string direct = "auto";       // O_DIRECT: auto, on, off
  bool verify_before_upload = true;  // off only to benchmark the verification's cost
};
struct RestoreArgs {
  std::string snapshot = "latest";
  std::string volume_id;
  std::string target;
  bool overwrite = false;
  bool allow_special = false;  // device nodes and setuid/setgid bits (effective as root)
  int workers = 0;
};
struct CheckArgs {
  bool read_data = false;
  std::string read_data_subset;  // "N%"
};
struct ForgetArgs {
  int keep_last = -1;
  std::vector<std::string> snapshots;  // --snapshot ID, repeatable
  std::string volume_id;
  bool dry_run = false;
  bool prune = false;
};
struct PruneArgs {
  bool dry_run = false;
};

int CmdInit(const GlobalOptions& g, const InitArgs& a);
int CmdProbe(const GlobalOptions& g);
int CmdKeyAdd(const GlobalOptions& g, const KeyAddArgs& a);
int CmdKeyList(const GlobalOptions& g);
int CmdKeyRemove(const GlobalOptions& g, const std::string& id);
int CmdBackup(const GlobalOptions& g, const BackupArgs& a);
int CmdRestore(const GlobalOptions& g, const RestoreArgs& a);
int CmdSnapshots(const GlobalOptions& g, const std::string& volume_id);
int CmdCheck(const GlobalOptions& g, const CheckArgs& a);
int CmdForget(const GlobalOptions& g, const ForgetArgs& a);
int CmdPrune(const GlobalOptions& g, const PruneArgs& a);
int CmdStats(const GlobalOptions& g);

// Prints `st` as the one error line (or a JSON error object with --json) and
// maps its code to an exit code.
int Fail(const GlobalOptions& g, const Status& st);

}  // namespace bunker::agent
