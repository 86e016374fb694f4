#!/usr/bin/env bash
# make demo: the main job on the embedded defaults, with what exists today.
#
# Bunker's appliance (bunkerd, bunkerctl) is only started and the Kubernetes
# side is not built yet. The demo runs the node agent's data mover the way
# the appliance will: a block volume and a directory tree are backed up into an
# encrypted, deduplicated repository in a local directory (the embedded default
# location), changed, backed up again incrementally, verified and restored, and
# every restore is compared with its source. Every number printed is measured
# by this run.
set -euo pipefail

build_dir="${1:-build/release}"
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
[[ "$build_dir" = /* ]] || build_dir="$top/$build_dir"
agent="$build_dir/nodeagent/agent/bunker-agent"
[[ -x "$agent" ]] || { echo "demo: $agent is not built (run make build)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/var/tmp}/bunker-demo.XXXXXX")"
trap 'rm -rf "$work"' EXIT
repo="$work/repository"
export BUNKER_PASSWORD_FILE="$work/password"
head -c 24 /dev/urandom | base64 >"$BUNKER_PASSWORD_FILE"

say() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "bunker-agent $*"; "$agent" "$@"; }

say "A 256 MiB block volume (random, text and zeros) and a small directory tree"
python3 "$top/tests/bench/mkimage.py" create "$work/volume.img" --size-gib 0.25 --seed 7
mkdir -p "$work/app/data/logs"
for i in $(seq 1 50); do
  printf 'row %d of the demo table, written by the application\n' $(seq 1 2000) >"$work/app/data/table-$i.csv"
done
head -c 3000000 /dev/urandom >"$work/app/data/blob.bin"
ln -s data/table-1.csv "$work/app/current"
echo "started" >"$work/app/data/logs/app.log"

say "Create the repository (local directory: the embedded default location)"
run repo init --repo "$repo"

say "Full backup of the block volume"
run backup --repo "$repo" --volume "$work/volume.img" --volume-id pvc-db --tag app=demo

say "Change 1% of the volume, back up again: only new chunks are stored"
python3 "$top/tests/bench/mkimage.py" mutate "$work/volume.img" --seed 8 >/dev/null
run backup --repo "$repo" --volume "$work/volume.img" --volume-id pvc-db --tag app=demo

say "File-mode backup of the application's directory, then an incremental one"
if run backup --repo "$repo" --volume "$work/app" --volume-id pvc-app; then
  echo "appended line" >>"$work/app/data/logs/app.log"
  run backup --repo "$repo" --volume "$work/app" --volume-id pvc-app
  file_mode=1
else
  echo "(file mode is not available in this build; continuing with block mode)"
  file_mode=0
fi

say "Snapshots"
run snapshots --repo "$repo"

say "Verify every pack and blob"
run check --repo "$repo" --read-data

say "Restore the latest snapshot of the volume and compare it byte for byte"
run restore --repo "$repo" --snapshot latest --volume-id pvc-db --target "$work/restored.img"
cmp "$work/volume.img" "$work/restored.img"
echo "restored volume is identical to the source ($(du -k --apparent-size "$work/restored.img" | cut -f1) KiB, $(du -k "$work/restored.img" | cut -f1) KiB allocated: zeros stayed holes)"

if [[ $file_mode == 1 ]]; then
  say "Restore the directory tree and compare it"
  run restore --repo "$repo" --snapshot latest --volume-id pvc-app --target "$work/restored-app"
  diff -r --no-dereference "$work/app" "$work/restored-app"
  echo "restored tree is identical to the source"
fi

say "Repository size and deduplication"
run stats --repo "$repo"

say "Keep only the latest snapshot per volume, then garbage-collect"
run forget --repo "$repo" --keep-last 1
run prune --repo "$repo"
run check --repo "$repo"

printf '\ndemo: done. Everything above was computed by this run. The appliance (bunkerd, bunkerctl)\n'
printf 'is only started and the Kubernetes side is not built yet, so the demo drives the agent directly\n'
printf '(see README.md).\n'
