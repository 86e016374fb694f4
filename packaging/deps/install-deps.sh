#!/usr/bin/env bash
# Installs everything Bunker's build, tests, demo and bench need on Debian 12.
# Idempotent: skips apt-get when every package is already installed and npm ci
# when tests/node_modules matches tests/package-lock.json.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
top="$(cd "$here/../.." && pwd)"
mapfile -t pkgs < <(grep -v -E '^\s*(#|$)' "$here/debian-packages.txt")
# make fuzz also needs clang and libFuzzer's runtime (not needed by make test).
if [[ "${1:-}" == "--with-fuzz" ]]; then
  pkgs+=(clang libclang-rt-14-dev)
fi

# Node.js and npm run the S3 and Azure test servers. Use the machine's own when
# present (it may come from another source whose npm conflicts with Debian's).
if ! command -v npm >/dev/null 2>&1; then
  pkgs+=(nodejs npm)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    sudo=sudo
  else
    sudo=
  fi
  echo "deps: installing ${#missing[@]} Debian packages: ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "deps: all ${#pkgs[@]} Debian packages present"
fi

# npm packages for the test servers, pinned by tests/package-lock.json.
if [[ -f "$top/tests/package-lock.json" ]]; then
  stamp="$top/tests/node_modules/.bunker-lock.sha256"
  want="$(sha256sum "$top/tests/package-lock.json" | cut -d' ' -f1)"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "deps: npm ci in tests/"
    (cd "$top/tests" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$stamp"
  else
    echo "deps: tests/node_modules up to date"
  fi
fi
