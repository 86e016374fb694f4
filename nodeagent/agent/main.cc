// bunker-agent: the node agent's data mover on the command line.
// Wires the command line to the verbs in commands.cc; nothing else.

#include <malloc.h>

#include <cstdlib>
#include <iostream>
#include <string_view>

#include <CLI/CLI.hpp>

#include "nodeagent/agent/commands.h"
#include "nodeagent/core/util/log.h"

namespace {

const char kFooter[] = R"(Environment:
  BUNKER_REPOSITORY     repository URL (instead of --repo)
  BUNKER_PASSWORD       repository password (instead of --password-file)
  BUNKER_PASSWORD_FILE  file holding the password
  BUNKER_IO_ENGINE      auto | io_uring | pread (volume I/O engine)

Repository URLs: file:///srv/backups (or a plain path), nfs://host/export/dir,
s3://bucket/prefix (with --s3-endpoint for MinIO/Ceph; credentials from
AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials).

Exit codes: 0 ok, 1 failed, 2 bad usage, 3 wrong password or permission denied,
4 repository locked, 5 damaged or missing data, 6 not found.

Examples:
  bunker-agent repo init --repo /srv/backups
  bunker-agent backup --repo /srv/backups --volume /dev/vg0/pvc-db --volume-id pvc-db
  bunker-agent backup --repo /srv/backups --volume /var/lib/app --mode file
  bunker-agent snapshots --repo /srv/backups
  bunker-agent restore --repo /srv/backups --snapshot latest --volume-id pvc-db --target /dev/vg0/new
  bunker-agent check --repo /srv/backups --read-data
  bunker-agent forget --repo /srv/backups --keep-last 7 && bunker-agent prune --repo /srv/backups
  bunker-agent forget --repo /srv/backups --snapshot 3f2a9c1d)";

}  // namespace

int main(int argc, char** argv) {
  using namespace bunker::agent;
  // Pack buffers (16 MiB) are mmapped and given back when freed, instead of
  // lingering in malloc arenas: keeps peak memory flat and predictable.
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  CLI::App app{
      "bunker-agent: back up and restore volumes into an encrypted, deduplicated repository.\n"
      "Block volumes (devices, images) are read with io_uring in fixed chunks; directories\n"
      "are read file by file with content-defined chunks. Data is LZ4-compressed and\n"
      "AES-256-GCM-encrypted before it leaves the node.",
      "bunker-agent"};
  app.footer(kFooter);
  app.require_subcommand(1);
  app.fallthrough();

  GlobalOptions g;
  std::string log_level = "warn";
  if (const char* env = std::getenv("BUNKER_REPOSITORY")) g.repo = env;
  if (const char* env = std::getenv("BUNKER_PASSWORD_FILE")) g.password_file = env;
  if (const char* env = std::getenv("BUNKER_IO_ENGINE")) g.io_engine = env;
  app.add_option("-r,--repo", g.repo, "Repository URL (file:///dir, nfs://…, s3://…)");
  app.add_option("-p,--password-file", g.password_file, "File whose first line is the password");
  app.add_flag("--json", g.json,
               "Machine-readable output: one JSON object on stdout, progress as JSON lines on "
               "stderr");
  app.add_option("--io-engine", g.io_engine, "Volume I/O: auto, io_uring or pread")
      ->check(CLI::IsMember({"auto", "io_uring", "pread"}));
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--s3-endpoint", g.s3_endpoint, "S3 endpoint URL (s3:// repositories)");
  app.add_option("--s3-region", g.s3_region, "S3 region");
  app.add_option("--s3-ca-file", g.s3_ca_file, "CA bundle to verify the S3 endpoint");
  app.add_option("--s3-addressing", g.s3_addressing,
                 "auto (path style for custom endpoints), path or virtual-hosted")
      ->check(CLI::IsMember({"auto", "path", "virtual-hosted"}));
  app.add_flag("--s3-unsigned-payload", g.s3_unsigned_payload,
               "Skip the payload hash in signatures (https only)");

  // repo init | key add | key list | key remove
  CLI::App* repo_cmd = app.add_subcommand("repo", "Create a repository and manage its keys");
  repo_cmd->require_subcommand(1);
  InitArgs init;
  CLI::App* init_cmd = repo_cmd->add_subcommand("init", "Create a new repository at --repo");
  CLI::App* probe_cmd = repo_cmd->add_subcommand(
      "probe", "Check a location: write, read, list and delete a probe object");
  init_cmd->add_option("--block-size", init.block_size,
                       "Chunk size of block-mode backups in bytes (default 1 MiB)");
  CLI::App* key_cmd = repo_cmd->add_subcommand(
      "key", "Passwords: each key wraps the same master key with another password");
  key_cmd->require_subcommand(1);
  KeyAddArgs key_add;
  CLI::App* key_add_cmd = key_cmd->add_subcommand("add", "Add a password");
  key_add_cmd->add_option("--new-password-file", key_add.new_password_file,
                          "File with the new password (or env BUNKER_NEW_PASSWORD)");
  key_add_cmd->add_option("--label", key_add.label, "A note stored with the key");
  CLI::App* key_list_cmd = key_cmd->add_subcommand("list", "List keys (* marks the one in use)");
  std::string key_id;
  CLI::App* key_rm_cmd = key_cmd->add_subcommand("remove", "Remove a key (not the last one)");
  key_rm_cmd->add_option("id", key_id, "Key id or unique prefix")->required();

  BackupArgs backup;
  CLI::App* backup_cmd = app.add_subcommand("backup", "Back up a volume");
  backup_cmd->footer(
      std::string("Backups of different volumes may run at once into one repository. They\n"
                  "commit one at a time (a commit lease in the repository); a chunk that two\n"
                  "of them stored is kept once, and counted as reused by the later.\n\n") +
      kFooter);
  backup_cmd
      ->add_option("--volume", backup.volume,
                   "Block device, image file (block mode) or directory (file mode)")
      ->required();
  backup_cmd->add_option("--mode", backup.mode, "block or file (default: from the volume)")
      ->check(CLI::IsMember({"block", "file"}));
  backup_cmd->add_option("--volume-id", backup.volume_id,
                         "Name grouping this volume's snapshots (default: the path)");
  backup_cmd->add_option("--parent", backup.parent,
                         "Snapshot to compare with (default: latest of the volume id)");
  backup_cmd->add_flag("--full", backup.full,
                       "Full backup: no parent, every stored chunk's pack checked to exist");
  backup_cmd->add_option("--tag", backup.tags, "key=value label, repeatable");
  backup_cmd->add_option("--workers", backup.workers, "Worker threads (default: one per core)");
  backup_cmd
      ->add_option("--direct", backup.direct,
                   "O_DIRECT reads: auto (block devices yes, image files no), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  // Hidden: for benchmarking what the verification costs, never for production.
  backup_cmd
      ->add_flag("!--no-verify-before-upload", backup.verify_before_upload,
                 "Skip decoding every blob again before its pack is uploaded (benchmarking the "
                 "verification's cost only)")
      ->group("");

  RestoreArgs restore;
  CLI::App* restore_cmd = app.add_subcommand("restore", "Restore a snapshot");
  restore_cmd->footer(
      "A new target is written as .<name>.bunker-restore-<pid>-<random> beside it\n"
      "and renamed into place only when the restore is complete and synced: an\n"
      "interrupted restore leaves that name, never a target that looks complete (the\n"
      "next restore names leftovers).\n"
      "An existing target (--overwrite, or a block device) is written in place.");
  restore_cmd->add_option("--snapshot", restore.snapshot,
                          "Snapshot id, unique prefix, or latest (default)");
  restore_cmd->add_option("--volume-id", restore.volume_id, "With latest: of this volume");
  restore_cmd
      ->add_option("--target", restore.target,
                   "File or block device (block mode), directory (file mode)")
      ->required();
  restore_cmd->add_flag("--overwrite", restore.overwrite, "Replace an existing target");
  restore_cmd->add_flag("--allow-special", restore.allow_special,
                        "File mode, as root: create device nodes and keep setuid/setgid bits "
                        "(without it they are skipped and counted)");
  restore_cmd->add_option("--workers", restore.workers, "Worker threads (default: one per core)");

  std::string snapshots_volume;
  CLI::App* snapshots_cmd = app.add_subcommand("snapshots", "List snapshots");
  snapshots_cmd->add_option("--volume-id", snapshots_volume, "Only this volume");

  CheckArgs check;
  CLI::App* check_cmd = app.add_subcommand("check", "Verify the repository");
  check_cmd->add_flag("--read-data", check.read_data,
                      "Read every pack and verify every blob (hash, MAC, id)");
  check_cmd->add_option("--read-data-subset", check.read_data_subset,
                        "Read only some packs: a random share (10%) or slice n of t (3/7: "
                        "slices 1/7 … 7/7 together read every pack once)");

  ForgetArgs forget;
  CLI::App* forget_cmd =
      app.add_subcommand("forget", "Remove old snapshots (data stays until prune)");
  CLI::Option* keep_last_opt =
      forget_cmd
          ->add_option("--keep-last", forget.keep_last,
                       "Keep the N newest snapshots per volume, remove the older ones (0 "
                       "removes them all and needs --volume-id)")
          ->check(CLI::Validator(
              [](const std::string& v) -> std::string {
                // An empty value (a script's unset $KEEP) would otherwise
                // convert to 0: keep nothing.
                const bool digits = !v.empty() && v.size() <= 9 &&
                                    v.find_first_not_of("0123456789") == std::string::npos;
                return digits ? std::string()
                              : "a count of snapshots (0 or more) is needed, not \"" + v + "\"";
              },
              "N"));
  forget_cmd
      ->add_option("--snapshot", forget.snapshots,
                   "Remove this snapshot instead (its id or at least 6 of its hex digits); "
                   "repeatable. Also removes a snapshot that cannot be read (check names "
                   "it), so that prune runs again; name that one without --volume-id")
      ->excludes(keep_last_opt);
  forget_cmd->add_option("--volume-id", forget.volume_id, "Only this volume");
  forget_cmd->add_flag("--dry-run", forget.dry_run, "Show what would be removed");

  PruneArgs prune;
  CLI::App* prune_cmd = app.add_subcommand("prune", "Delete data no snapshot references");
  prune_cmd->add_flag("--dry-run", prune.dry_run, "Show what would be deleted");

  CLI::App* stats_cmd = app.add_subcommand("stats", "Repository size and deduplication");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    // --json may not have been parsed yet when the error struck.
    bool json = false;
    for (int i = 1; i < argc; ++i) json = json || std::string_view(argv[i]) == "--json";
    if (json) {
      g.json = true;
      return Fail(g, bunker::InvalidArgument(std::string(e.what()) + " (see --help)"));
    }
    app.exit(e);
    return kExitUsage;
  }
  bunker::InitLogging(log_level);

  if (*init_cmd) return CmdInit(g, init);
  if (*probe_cmd) return CmdProbe(g);
  if (*key_add_cmd) return CmdKeyAdd(g, key_add);
  if (*key_list_cmd) return CmdKeyList(g);
  if (*key_rm_cmd) return CmdKeyRemove(g, key_id);
  if (*backup_cmd) return CmdBackup(g, backup);
  if (*restore_cmd) return CmdRestore(g, restore);
  if (*snapshots_cmd) return CmdSnapshots(g, snapshots_volume);
  if (*check_cmd) return CmdCheck(g, check);
  if (*forget_cmd) return CmdForget(g, forget);
  if (*prune_cmd) return CmdPrune(g, prune);
  if (*stats_cmd) return CmdStats(g);
  std::cerr << app.help() << std::endl;
  return kExitUsage;
}
