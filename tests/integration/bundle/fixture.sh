#!/usr/bin/env bash
# Builds the test bundle into FIXTURE_DIR once per state of its inputs, under
# a lock (ctest runs each bundle test in its own process, in parallel), and
# prints the build's output. Inputs: the bundle's scripts, image builder,
# units, packaging files and the three binaries; equal inputs, equal bundle
# (SOURCE_DATE_EPOCH is fixed by the caller).
#
# usage: fixture.sh SOURCE_DIR BUILD_DIR FIXTURE_DIR VERSION
set -euo pipefail
src=$1 build=$2 f=$3 version=$4
mkdir -p "$f"
exec 9>"$f.lock"
flock 9
key=$( (cd "$src" && git rev-parse HEAD && cat offline-bundle/* images/* systemd/* packaging/CMakeLists.txt \
  packaging/debian/*/* packaging/kubernetes/* &&
  cat "$build/appliance/bunkerd/bunkerd" "$build/appliance/bunkerctl/bunkerctl" \
    "$build/nodeagent/agent/bunker-agent") | sha256sum | cut -d' ' -f1)
if [[ "$(cat "$f/key" 2>/dev/null)" == "$key" ]]; then
  cat "$f/build.log"
  exit 0
fi
rm -rf "$f/out" "$f"/bunker-offline-* "$f/key"
bash "$src/offline-bundle/build-bundle.sh" --build-dir "$build" --out-dir "$f/out" \
  --no-debian-debs >"$f/build.log" 2>&1 || { cat "$f/build.log" >&2; exit 1; }
tar -xf "$f/out/bunker-offline-$version.tar" -C "$f"
echo "$key" >"$f/key"
cat "$f/build.log"
