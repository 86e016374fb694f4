#!/usr/bin/env bash
# Installs Bunker from this offline bundle on a Debian 12 machine that
# reaches nothing. Run as root from the unpacked bundle:
#
#   ./install.sh [--pubkey FILE] --registry HOST[:PORT] [registry options]
#
# Order, and what each step touches:
#   1. verify   SHA256SUMS.sig against the signing key, then every file
#               against SHA256SUMS; any mismatch stops here, before anything
#               on this machine has been changed
#   2. packages dpkg -i: the Debian packages in debs/debian/ that are not
#               already installed at the same or a newer version, then
#               bunkerd, bunker-agent and bunkerctl
#   3. config   /etc/bunker/bunkerd.yaml (kept when present), TLS certificate
#               and key /etc/bunker/tls.{crt,key} (kept when present)
#   4. init     bunkerd init (skipped when the datastore exists); the admin
#               password comes from --admin-password-file or is generated
#               into /etc/bunker/admin-password (root only)
#   5. start    systemctl enable --now bunkerd.service (needs systemd running)
#   6. images   skopeo copy of each images/*.tar to
#               docker://REGISTRY/bunker/NAME:VERSION, digest checked
#   7. kube     kubernetes/*.yaml rendered with the mirrored image references
#               into /etc/bunker/kubernetes/, and the kubectl line printed
#
# Options:
#   --pubkey FILE            verify with this public key (obtained out of band)
#                            instead of the bundle's own signing-key.pub
#   --verify-only            stop after step 1
#   --images-only            steps 1, 6 and 7 only: mirror the images into a
#                            (further) registry and render the manifests; needs
#                            skopeo, not root
#   --dry-run                verify, then print every later step, change nothing
#   --registry HOST[:PORT]   registry to mirror the images into (no registry:
#                            steps 6 and 7 are skipped)
#   --registry-ca FILE       PEM CA that signed the registry's certificate
#   --registry-creds USER:PASS | --registry-authfile FILE
#   --registry-insecure      plain HTTP / unverified TLS (only when asked)
#   --admin-password-file F  the first admin's password (at least 8 characters)
#   --no-start               do not start bunkerd.service
#   --kube-dir DIR           where rendered manifests go (/etc/bunker/kubernetes)
set -euo pipefail
umask 022

bundle="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pubkey='' verify_only=0 dry_run=0 registry='' registry_ca='' registry_creds='' registry_authfile=''
registry_insecure=0 admin_password_file='' start=1 images_only=0 kube_dir=/etc/bunker/kubernetes

die() { echo "install: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while (($#)); do
  case "$1" in
    --pubkey) pubkey=$2; shift 2 ;;
    --verify-only) verify_only=1; shift ;;
    --images-only) images_only=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    --registry) registry=$2; shift 2 ;;
    --registry-ca) registry_ca=$2; shift 2 ;;
    --registry-creds) registry_creds=$2; shift 2 ;;
    --registry-authfile) registry_authfile=$2; shift 2 ;;
    --registry-insecure) registry_insecure=1; shift ;;
    --admin-password-file) admin_password_file=$2; shift 2 ;;
    --no-start) start=0; shift ;;
    --kube-dir) kube_dir=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "install: unknown argument $1" >&2; usage 2 ;;
  esac
done
if [[ -n "$registry_creds" && -n "$registry_authfile" ]]; then
  die "--registry-creds and --registry-authfile are exclusive"
fi
if [[ -n "$registry_creds" && "$registry_creds" != *:* ]]; then
  die "--registry-creds must be USER:PASS"
fi
if [[ -n "$registry" && ! "$registry" =~ ^[A-Za-z0-9.-]+(:[0-9]+)?$|^\[[0-9a-fA-F:]+\](:[0-9]+)?$ ]]; then
  die "--registry must be HOST or HOST:PORT, got \"$registry\""
fi

set -E
trap 'echo "install: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

# Runs (or, with --dry-run, only prints) one step's command.
run() {
  printf '+ %s\n' "$*"
  if ((!dry_run)); then "$@"; fi
}
step() { printf '\n== %s\n' "$*"; }

# ---------------------------------------------------------------- 1. verify
# Nothing above this point reads the bundle's payload; nothing below it runs
# unless every check passes.
refuse() {
  echo "install: REFUSED: $*" >&2
  echo "install: nothing was installed or changed." >&2
  exit 3
}
step "1. verify the bundle"
command -v openssl >/dev/null ||
  refuse "openssl is needed to check the bundle's signature (Debian package openssl, on the Debian 12 installation media)"
command -v sha256sum >/dev/null || refuse "sha256sum (coreutils) is missing"
cd "$bundle"
[[ -f SHA256SUMS && -f SHA256SUMS.sig ]] || refuse "SHA256SUMS or SHA256SUMS.sig is missing from $bundle"
if [[ -n "$pubkey" ]]; then
  [[ -f "$pubkey" ]] || refuse "public key $pubkey does not exist"
  key_source="$pubkey (given with --pubkey)"
else
  pubkey="$bundle/signing-key.pub"
  [[ -f "$pubkey" ]] || refuse "signing-key.pub is missing and no --pubkey was given"
  key_source="signing-key.pub shipped inside this bundle (it proves integrity, not origin: pass --pubkey with a key obtained out of band)"
fi
fingerprint=$(openssl pkey -pubin -in "$pubkey" -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1) ||
  refuse "$pubkey is not a PEM public key"
[[ -n "$fingerprint" && "$fingerprint" != e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 ]] ||
  refuse "$pubkey is not a PEM public key"
echo "trusting key sha256:$fingerprint from $key_source"
if ! openssl pkeyutl -verify -pubin -inkey "$pubkey" -rawin -in SHA256SUMS \
    -sigfile SHA256SUMS.sig >/dev/null 2>&1; then
  refuse "SHA256SUMS.sig is not a valid signature of SHA256SUMS by key sha256:$fingerprint (the bundle was altered, or was signed by another key)"
fi
echo "signature of SHA256SUMS: good"
# Only plain relative names may be listed: no absolute paths, no "..".
if awk '{ $1 = ""; sub(/^ [ *]?/, ""); print }' SHA256SUMS | grep -qE '^/|(^|/)\.\.(/|$)'; then
  refuse "SHA256SUMS names a file outside the bundle"
fi
if ! bad=$(sha256sum --check --strict --quiet SHA256SUMS 2>&1); then
  refuse "files do not match their signed checksums (corrupted or tampered):
$bad"
fi
listed=$(awk '{ $1 = ""; sub(/^ [ *]?/, ""); print }' SHA256SUMS | LC_ALL=C sort)
present=$(find . -type f ! -name SHA256SUMS ! -name SHA256SUMS.sig -printf '%P\n' | LC_ALL=C sort)
extra=$(comm -13 <(echo "$listed") <(echo "$present"))
if [[ -n "$extra" ]]; then
  refuse "files not covered by SHA256SUMS were added to the bundle:
$extra"
fi
echo "every file matches SHA256SUMS ($(wc -l <SHA256SUMS) files)"
version=$(sed -n 's/^version //p' MANIFEST)
echo "bundle: $(sed -n 's/^bundle //p' MANIFEST), revision $(sed -n 's/^revision //p' MANIFEST)"
if ((verify_only)); then
  echo "verified; --verify-only: stopping here"
  exit 0
fi
if ((images_only)); then
  [[ -n "$registry" ]] || die "--images-only needs --registry"
  command -v skopeo >/dev/null || ((dry_run)) || die "--images-only needs skopeo (Debian package skopeo, in debs/debian/)"
fi
if ((dry_run)); then
  echo "--dry-run: the steps below are printed, not run"
elif [[ $(id -u) -ne 0 ]] && ((!images_only)); then
  die "run as root (or with --dry-run)"
fi

# Steps 2 to 5 change this machine (skipped with --images-only).
install_here() {
# ---------------------------------------------------------------- 2. packages
step "2. install packages (dpkg, no network)"
debs=()
for deb in debs/debian/*.deb; do
  [[ -f "$deb" ]] || continue
  pkg=$(dpkg-deb -f "$deb" Package)
  ver=$(dpkg-deb -f "$deb" Version)
  have=$( (dpkg-query -W -f='${Status} ${Version}' "$pkg" 2>/dev/null || true) |
    sed -n 's/^install ok installed //p')
  if [[ -n "$have" ]] && dpkg --compare-versions "$have" ge "$ver"; then
    echo "  $pkg $have already installed (bundle has $ver): kept"
    continue
  fi
  debs+=("$deb")
done
debs+=(debs/*.deb)
run dpkg -i "${debs[@]}"

# ---------------------------------------------------------------- 3. config
step "3. configuration and TLS material"
if [[ -f /etc/bunker/bunkerd.yaml ]]; then
  echo "  /etc/bunker/bunkerd.yaml exists: kept"
else
  run install -m 0640 -o root -g bunker /usr/share/bunker/bunkerd.yaml /etc/bunker/bunkerd.yaml
fi
host=$(hostname -f 2>/dev/null || hostname)
if [[ -f /etc/bunker/tls.crt && -f /etc/bunker/tls.key ]]; then
  echo "  /etc/bunker/tls.crt and tls.key exist: kept"
else
  san="DNS:$host,DNS:localhost,IP:127.0.0.1"
  for ip in $(hostname -I 2>/dev/null || true); do
    [[ "$ip" == *:* ]] || san="$san,IP:$ip"
  done
  run openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
    -subj "/CN=$host" -addext "subjectAltName=$san" \
    -keyout /etc/bunker/tls.key -out /etc/bunker/tls.crt
  run chown root:bunker /etc/bunker/tls.key /etc/bunker/tls.crt
  run chmod 0640 /etc/bunker/tls.key
  run chmod 0644 /etc/bunker/tls.crt
fi
if ((!dry_run)); then
  echo "  TLS certificate $(openssl x509 -in /etc/bunker/tls.crt -noout -fingerprint -sha256)"
fi

# ---------------------------------------------------------------- 4. init
step "4. bunkerd init"
if [[ -f /var/lib/bunker/bunker.db ]]; then
  echo "  /var/lib/bunker/bunker.db exists: not initialised again"
else
  if [[ -z "$admin_password_file" ]]; then
    admin_password_file=/etc/bunker/admin-password
    if [[ ! -f "$admin_password_file" ]]; then
      echo "+ generate an admin password into $admin_password_file (mode 0600)"
      if ((!dry_run)); then
        (umask 077 && openssl rand -base64 18 >"$admin_password_file")
      fi
    fi
  fi
  # bunkerd init runs as bunker: it reads a private copy owned by bunker
  # (mode 0600, deleted at once), so the password file stays root's.
  printf '+ %s\n' "runuser -u bunker -- bunkerd init --data-dir /var/lib/bunker --admin-password-file <copy of $admin_password_file>"
  if ((!dry_run)); then
    pwcopy=$(mktemp)
    cat "$admin_password_file" >"$pwcopy"
    chown bunker:bunker "$pwcopy"
    if ! runuser -u bunker -- /usr/bin/bunkerd init --data-dir /var/lib/bunker \
        --admin-password-file "$pwcopy"; then
      rm -f "$pwcopy"
      die "bunkerd init failed"
    fi
    rm -f "$pwcopy"
  fi
  echo "  admin user: admin, password in $admin_password_file"
fi

# ---------------------------------------------------------------- 5. start
step "5. start bunkerd.service"
if ((!start)); then
  echo "  --no-start: not started"
elif [[ -d /run/systemd/system ]]; then
  run systemctl daemon-reload
  run systemctl enable bunkerd.service
  run systemctl restart bunkerd.service
  if ((!dry_run)); then
    systemctl is-active --quiet bunkerd.service || die "bunkerd.service did not start: journalctl -u bunkerd"
    echo "  bunkerd.service is active (Type=notify: it reported ready)"
  fi
else
  echo "  systemd is not running here (container or chroot): bunkerd.service is enabled but"
  echo "  not started. Start it the way the unit does:"
  echo "    runuser -u bunker -- /usr/bin/bunkerd serve --config /etc/bunker/bunkerd.yaml"
fi
}
if ((!images_only)); then
  install_here
fi

# ---------------------------------------------------------------- 6. images
image_digest() {  # manifest digest named by an oci-archive's index.json
  tar -xOf "$1" ./index.json | sed -n 's/.*"digest":"\(sha256:[0-9a-f]*\)".*/\1/p'
}
declare -A refs=()
if [[ -z "$registry" ]]; then
  step "6. mirror images: skipped (no --registry)"
  echo "  re-run with --registry HOST[:PORT] to mirror the images and render the manifests"
else
  step "6. mirror images into $registry"
  skopeo_args=()
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if ((registry_insecure)); then
    skopeo_args+=(--dest-tls-verify=false)
    inspect_args=(--tls-verify=false)
  else
    inspect_args=()
  fi
  if [[ -n "$registry_ca" ]]; then
    [[ -f "$registry_ca" ]] || die "--registry-ca $registry_ca does not exist"
    # skopeo takes a directory of CA certificates named *.crt.
    cp "$registry_ca" "$tmp/ca.crt"
    skopeo_args+=(--dest-cert-dir "$tmp")
    inspect_args+=(--cert-dir "$tmp")
  fi
  if [[ -n "$registry_creds" ]]; then
    # An authfile, so the password never shows in the process list.
    (umask 077 && printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$registry" \
      "$(printf '%s' "$registry_creds" | base64 -w0)" >"$tmp/auth.json")
    registry_authfile="$tmp/auth.json"
  fi
  if [[ -n "$registry_authfile" ]]; then
    skopeo_args+=(--dest-authfile "$registry_authfile")
    inspect_args+=(--authfile "$registry_authfile")
  fi
  for archive in images/*.tar; do
    name=$(basename "$archive" .tar)
    digest=$(image_digest "$archive")
    ref="$registry/bunker/$name:$version"
    run skopeo copy --quiet --preserve-digests "${skopeo_args[@]}" "oci-archive:$archive" "docker://$ref"
    if ((!dry_run)); then
      got=$(skopeo inspect "${inspect_args[@]}" --format '{{.Digest}}' "docker://$ref") ||
        die "skopeo inspect docker://$ref failed after the copy"
      [[ "$got" == "$digest" ]] || die "$ref has digest $got in the registry, the bundle has $digest"
      echo "  $ref@$digest (digest matches the bundle)"
    fi
    refs[$name]="$ref@$digest"
  done
fi

# ---------------------------------------------------------------- 7. kube
if [[ -n "$registry" ]]; then
  step "7. Kubernetes manifests"
  run mkdir -p "$kube_dir"
  for tmpl in kubernetes/*.yaml.in; do
    out="$kube_dir/$(basename "$tmpl" .in)"
    printf '+ render %s → %s\n' "$tmpl" "$out"
    if ((!dry_run)); then
      sed -e "s|@BUNKER_AGENT_IMAGE@|${refs[bunker-agent]}|g" \
          -e "s|@BUNKERD_IMAGE@|${refs[bunkerd]}|g" \
          -e "s|@BUNKER_VERSION@|$version|g" "$tmpl" >"$out"
    fi
  done
  echo
  echo "Images: ${refs[bunkerd]}"
  echo "        ${refs[bunker-agent]}"
  echo "Deploy the agents to a cluster (any machine with kubectl and the cluster's kubeconfig):"
  echo "  kubectl apply -f $kube_dir/bunker-agent.yaml"
fi
echo
echo "install: done"
