#!/usr/bin/env bash
# Builds the offline bundle (make bundle): one tar a customer carries across
# the air gap.
#
#   bunker-offline-VERSION/
#     debs/                 bunkerd, bunker-agent, bunkerctl (CPack)
#     debs/debian/          Debian packages they (and install.sh's skopeo)
#                           need beyond a Debian 12 base system
#     images/*.tar          OCI image archives (oci-archive) of bunkerd and
#                           bunker-agent
#     kubernetes/*.yaml.in  manifests, rendered by install.sh with the
#                           customer's registry
#     install.sh uninstall.sh MANIFEST SBOM.tsv signing-key.pub
#     SHA256SUMS            every file above
#     SHA256SUMS.sig        OpenSSL Ed25519 signature over SHA256SUMS
#
# The signing key is $BUNKER_SIGNING_KEY (PEM private key) when set; else a
# development key generated once in the output directory. Its public half is
# shipped and its fingerprint printed; customers should compare it with one
# obtained out of band (install.sh --pubkey).
#
# usage: build-bundle.sh --build-dir DIR [--out-dir DIR] [--no-debian-debs]
#   --build-dir       configured and built CMake build directory
#   --out-dir         where the bundle goes (default: build/bundle)
#   --no-debian-debs  skip debs/debian/ (tests: no network, no apt)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
top="$(cd "$here/.." && pwd)"
build='' out="$top/build/bundle" debian_debs=1
while (($#)); do
  case "$1" in
    --build-dir) build=$(cd "$2" && pwd); shift 2 ;;
    --out-dir) out=$2; shift 2 ;;
    --no-debian-debs) debian_debs=0; shift ;;
    *) echo "build-bundle: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$build" ]] || { echo "usage: build-bundle.sh --build-dir DIR [--out-dir DIR]" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)

version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
revision=$(git -C "$top" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
  SOURCE_DATE_EPOCH=$(git -C "$top" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH
name="bunker-offline-$version"
stage="$out/stage"
dir="$stage/$name"
rm -rf "$stage"
mkdir -p "$dir"/{debs,images,kubernetes}
echo "bundle: $name (revision $revision)"

# 1. .deb packages.
rm -rf "$out/cpack"
(cd "$build" && cpack -G DEB -B "$out/cpack" >"$out/cpack.log" 2>&1) ||
  { tail -30 "$out/cpack.log" >&2; exit 1; }
cp "$out"/cpack/*.deb "$dir/debs/"
own_debs=("$dir"/debs/*.deb)

# 2. Debian packages the bundle must carry (nothing else reaches the target).
if ((debian_debs)); then
  mkdir -p "$dir/debs/debian" "$out/deb-cache"
  deb_args=()
  for d in "${own_debs[@]}"; do deb_args+=(--deb "$d"); done
  mapfile -t needed < <(python3 "$here/deb_closure.py" "$here/debian12-base.packages" \
    "${deb_args[@]}" skopeo)
  echo "bundle: ${#needed[@]} Debian packages beyond the base system: ${needed[*]}"
  (cd "$out/deb-cache" && for p in "${needed[@]}"; do
    v=$(apt-cache policy "$p" | sed -n 's/^ *Candidate: //p')
    ls "${p}_"*.deb >/dev/null 2>&1 && dpkg-deb -f "$(ls "${p}_"*.deb | head -1)" Version | grep -qxF "$v" ||
      { rm -f "${p}_"*.deb; apt-get download -qq -o APT::Sandbox::User=root "$p=$v"; }
  done)
  for p in "${needed[@]}"; do cp "$out/deb-cache/${p}_"*.deb "$dir/debs/debian/"; done
fi

# 3. Images, from the stripped installed binaries.
inst="$out/install"
rm -rf "$inst"
for c in bunkerd agent bunkerctl; do
  cmake --install "$build" --component "$c" --prefix "$inst" --strip >/dev/null
done
"$top/images/build-image.sh" --name bunkerd --binary "$inst/bin/bunkerd" \
  --out "$dir/images/bunkerd.tar" --user 10001:10001 --home /var/lib/bunker \
  --cmd serve --cmd --data-dir --cmd /var/lib/bunker --cmd --listen --cmd 0.0.0.0:8443 \
  --version "$version" --revision "$revision" --sbom "$out/bunkerd.sbom" \
  --description "Bunker appliance (bunkerd)"
"$top/images/build-image.sh" --name bunker-agent --binary "$inst/bin/bunker-agent" \
  --out "$dir/images/bunker-agent.tar" --user 0:0 --extra /usr/bin/sleep \
  --version "$version" --revision "$revision" --sbom "$out/bunker-agent.sbom" \
  --description "Bunker node agent (bunker-agent)"

# 4. Manifests and scripts.
cp "$top"/packaging/kubernetes/*.yaml.in "$dir/kubernetes/"
install -m 0755 "$here/install.sh" "$here/uninstall.sh" "$dir/"

# 5. MANIFEST (versions) and SBOM.tsv (every package and image library).
image_digest() {  # the manifest digest an oci-archive's index.json names
  tar -xOf "$1" ./index.json | sed -n 's/.*"digest":"\(sha256:[0-9a-f]*\)".*/\1/p'
}
{
  echo "bundle $name"
  echo "version $version"
  echo "revision $revision"
  echo "built $(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
  echo "target Debian 12 (bookworm) amd64"
  for deb in "$dir"/debs/*.deb; do
    echo "deb $(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version) debs/$(basename "$deb")"
  done
  for img in "$dir"/images/*.tar; do
    echo "image $(basename "$img" .tar) $version $(image_digest "$img") images/$(basename "$img")"
  done
} >"$dir/MANIFEST"
{
  printf '# kind\twhere\tfile\tdebian-package\tversion\n'
  for deb in "$dir"/debs/*.deb "$dir"/debs/debian/*.deb; do
    [[ -f "$deb" ]] || continue
    rel=${deb#"$dir"/}
    printf 'deb\t%s\t-\t%s\t%s\n' "$rel" "$(dpkg-deb -f "$deb" Package)" "$(dpkg-deb -f "$deb" Version)"
  done
  for img in bunkerd bunker-agent; do
    printf 'image-file\timages/%s.tar\t/usr/bin/%s\t(this bundle)\t%s\n' "$img" "$img" "$version"
    while IFS=$'\t' read -r path pkg ver; do
      printf 'image-file\timages/%s.tar\t%s\t%s\t%s\n' "$img" "$path" "$pkg" "$ver"
    done <"$out/$img.sbom"
  done
} >"$dir/SBOM.tsv"

# 6. Signature.
key=${BUNKER_SIGNING_KEY:-$out/dev-signing-key.pem}
if [[ ! -f "$key" ]]; then
  echo "bundle: generating a development signing key $key (once per build directory)"
  (umask 077 && openssl genpkey -algorithm ed25519 -out "$key")
fi
openssl pkey -in "$key" -pubout -out "$dir/signing-key.pub"
fingerprint=$(openssl pkey -pubin -in "$dir/signing-key.pub" -outform DER | sha256sum | cut -d' ' -f1)
(cd "$dir" && find . -type f ! -name SHA256SUMS ! -name SHA256SUMS.sig -printf '%P\n' | LC_ALL=C sort |
  xargs -d '\n' sha256sum >SHA256SUMS)
openssl pkeyutl -sign -rawin -inkey "$key" -in "$dir/SHA256SUMS" -out "$dir/SHA256SUMS.sig"

# 7. The tar, with fixed headers.
find "$dir" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
  -C "$stage" -cf "$out/$name.tar.tmp" "$name"
mv "$out/$name.tar.tmp" "$out/$name.tar"
echo "bundle: $out/$name.tar ($(du -h "$out/$name.tar" | cut -f1))"
echo "bundle: signing key fingerprint sha256:$fingerprint"
(cd "$dir" && du -sh debs/*.deb debs/debian images/*.tar 2>/dev/null || true) | sed 's/^/bundle:   /'
