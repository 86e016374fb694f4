#!/usr/bin/env bash
# Builds one OCI image archive without a Docker engine (umoci, Debian):
# a minimal root holding the program, exactly the shared libraries `ldd`
# names (the loader included), the CA bundle, /etc/passwd and /etc/group, and
# a runtime user; then `umoci init/new/unpack/repack/config` and a tar of the
# OCI layout (an `oci-archive`, readable by `skopeo inspect oci-archive:FILE`).
#
# Reproducible: every mtime, the image's created time and the archive's tar
# headers are SOURCE_DATE_EPOCH (default: the last commit's time, else 0), so
# the same binary gives the same digests.
#
# usage: build-image.sh --name NAME --binary FILE --out FILE.tar
#          [--user UID:GID] [--home DIR] [--extra FILE]... [--cmd ARG]...
#          [--version V] [--revision R] [--description TEXT] [--sbom FILE]
#   --binary   the program (install it stripped first); lands in /usr/bin/NAME
#   --user     numeric user the image runs as; with a non-zero UID a user
#              named "bunker" is written to /etc/passwd and --home (default
#              /var/lib/bunker) is created for it, mode 0700
#   --extra    another program copied to the same path, with its libraries
#   --cmd      default arguments (repeatable)
#   --sbom     writes one line per file taken from this machine: image path,
#              Debian package and version (dpkg -S, dpkg-query), tab-separated
set -euo pipefail

name='' binary='' out='' user=0:0 home=/var/lib/bunker version=0.0.0 revision=unknown
description='' sbom=''
extras=()
cmds=()
while (($#)); do
  case "$1" in
    --name) name=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --user) user=$2; shift 2 ;;
    --home) home=$2; shift 2 ;;
    --extra) extras+=("$2"); shift 2 ;;
    --cmd) cmds+=("$2"); shift 2 ;;
    --version) version=$2; shift 2 ;;
    --revision) revision=$2; shift 2 ;;
    --description) description=$2; shift 2 ;;
    --sbom) sbom=$2; shift 2 ;;
    *) echo "build-image: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [[ -z "$name" || -z "$binary" || -z "$out" ]]; then
  echo "usage: build-image.sh --name NAME --binary FILE --out FILE.tar [options]" >&2
  exit 2
fi
for tool in umoci ldd tar; do
  command -v "$tool" >/dev/null || { echo "build-image: $tool is missing (make deps)" >&2; exit 1; }
done

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
  SOURCE_DATE_EPOCH=$(git -C "$here" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
uid=${user%%:*}
gid=${user##*:}

work=$(mktemp -d "${TMPDIR:-/tmp}/bunker-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{usr/bin,etc/ssl/certs,tmp}
chmod 1777 "$root/tmp"
taken="$work/taken"  # host paths copied in, for --sbom
: >"$taken"

# Copies FILE to the same path inside the root, following symlinks (the path
# ldd prints is the soname the loader looks for).
copy_in() {
  local src=$1 dst="$root$1"
  mkdir -p "$(dirname "$dst")"
  cp -L --preserve=mode "$src" "$dst"
  echo "$src" >>"$taken"
}

# Copies a program and every library ldd resolves for it; fails when ldd
# cannot find one (the image would not start).
add_program() {
  local src=$1 dst=$2
  mkdir -p "$(dirname "$root$dst")"
  cp -L --preserve=mode "$src" "$root$dst"
  local deps
  deps=$(ldd "$src") || { echo "build-image: ldd $src failed" >&2; exit 1; }
  if grep -q 'not found' <<<"$deps"; then
    echo "build-image: $src needs libraries that are missing here:" >&2
    grep 'not found' <<<"$deps" >&2
    exit 1
  fi
  # "libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1 (0x…)" and the loader
  # "/lib64/ld-linux-x86-64.so.2 (0x…)"; linux-vdso has no file.
  awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$deps" |
    while read -r lib; do copy_in "$lib"; done
}

add_program "$binary" "/usr/bin/$name"
for extra in "${extras[@]}"; do
  add_program "$extra" "$extra"
  echo "$extra" >>"$taken"
done
copy_in /etc/ssl/certs/ca-certificates.crt

printf 'root:x:0:0:root:/root:/usr/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
if [[ "$uid" != 0 ]]; then
  printf 'bunker:x:%s:%s:Bunker:%s:/usr/sbin/nologin\n' "$uid" "$gid" "$home" >>"$root/etc/passwd"
  printf 'bunker:x:%s:\n' "$gid" >>"$root/etc/group"
  mkdir -p "$root$home"
  chown "$uid:$gid" "$root$home"
  chmod 0700 "$root$home"
fi
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"

tag=$version
layout="$work/oci"
umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci unpack --image "$layout:$tag" "$work/bundle" >/dev/null
cp -a "$root/." "$work/bundle/rootfs/"
find "$work/bundle/rootfs" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
umoci repack --image "$layout:$tag" --history.created "$created" \
  --history.created_by "bunker images/build-image.sh" "$work/bundle"

config_args=(
  --config.entrypoint "/usr/bin/$name"
  --config.user "$user"
  --config.workingdir /
  --config.env "PATH=/usr/bin"
  --config.env "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
  --config.label "org.opencontainers.image.title=$name"
  --config.label "org.opencontainers.image.version=$version"
  --config.label "org.opencontainers.image.revision=$revision"
  --config.label "org.opencontainers.image.created=$created"
  --config.label "org.opencontainers.image.vendor=Bunker"
  --manifest.annotation "org.opencontainers.image.version=$version"
  --manifest.annotation "org.opencontainers.image.revision=$revision"
  --created "$created" --architecture amd64 --os linux
  --history.created "$created" --history.created_by "bunker images/build-image.sh"
)
if [[ -n "$description" ]]; then
  config_args+=(--config.label "org.opencontainers.image.description=$description")
fi
for c in "${cmds[@]}"; do
  config_args+=(--config.cmd "$c")
done
umoci config --image "$layout:$tag" "${config_args[@]}"
umoci gc --layout "$layout"

# Which Debian package each file taken from this machine comes from. dpkg
# knows a file by the path its package ships, which after the /usr merge may
# be /usr/lib/… for a /lib/… path (or the reverse), and /etc/ssl/certs's
# bundle is generated by ca-certificates, not shipped.
if [[ -n "$sbom" ]]; then
  mkdir -p "$(dirname "$sbom")"
  sort -u "$taken" | while read -r path; do
    pkg=
    for candidate in "$path" "/usr$path" "${path#/usr}" "$(readlink -f "$path")"; do
      pkg=$(dpkg -S "$candidate" 2>/dev/null | head -1 | cut -d: -f1) && [[ -n "$pkg" ]] && break
    done
    if [[ -z "$pkg" && "$path" == /etc/ssl/certs/* ]]; then
      pkg=ca-certificates
    fi
    if [[ -n "$pkg" ]]; then
      ver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || echo unknown)
    else
      pkg=unknown ver=unknown
    fi
    printf '%s\t%s\t%s\n' "$path" "$pkg" "$ver"
  done >"$sbom"
fi

# The oci-archive: the layout as a tar with fixed headers.
find "$layout" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$(dirname "$out")"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
  --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -C "$layout" -cf "$out.tmp" .
mv "$out.tmp" "$out"
