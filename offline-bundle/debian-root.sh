#!/usr/bin/env bash
# Makes (once) a clean Debian 12 root with debootstrap and caches it as a
# tarball: what a customer's freshly installed Debian 12 server holds
# (debootstrap's default variant: priority required + important, plus
# ca-certificates and so openssl, which the installer's "standard system
# utilities" bring; install.sh needs openssl to check the bundle's signature
# before anything else, so it cannot come from the bundle). The only
# step of the bundle test that uses the network, and only the Debian mirror
# this machine's apt already uses (or $BUNKER_DEBIAN_MIRROR).
#
# usage: debian-root.sh CACHE_DIR   → CACHE_DIR/debian12-root.tar,
#                                     CACHE_DIR/debian12-root.packages
set -euo pipefail

cache=${1:?usage: debian-root.sh CACHE_DIR}
mkdir -p "$cache"
tarball="$cache/debian12-root.tar"
if [[ -f "$tarball" && -f "$cache/debian12-root.packages" ]]; then
  echo "debian-root: cached $tarball"
  exit 0
fi

mirror=${BUNKER_DEBIAN_MIRROR:-}
if [[ -z "$mirror" ]]; then
  # The first main-archive URI of the machine's apt sources (deb822 or one-line).
  mirror=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
fi
if [[ -z "$mirror" && -f /etc/apt/sources.list ]]; then
  mirror=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list)
fi
if [[ -z "$mirror" ]]; then
  echo "debian-root: no Debian mirror found in apt's sources; set BUNKER_DEBIAN_MIRROR" >&2
  exit 1
fi

work=$(mktemp -d "$cache/root.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "debian-root: debootstrap bookworm from $mirror (a few minutes, once)"
debootstrap --merged-usr --include=ca-certificates bookworm "$work/root" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
  tail -20 "$cache/debootstrap.log" >&2
  exit 1
}
chroot "$work/root" dpkg-query -W -f='${Package}\t${Version}\n' | sort >"$work/packages"
tar --numeric-owner -C "$work/root" -cf "$tarball.tmp" .
mv "$work/packages" "$cache/debian12-root.packages"
mv "$tarball.tmp" "$tarball"
echo "debian-root: $(wc -l <"$cache/debian12-root.packages") packages, $(du -h "$tarball" | cut -f1)"
