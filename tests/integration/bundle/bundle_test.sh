#!/usr/bin/env bash
# make bundle-test: the whole offline install, end to end.
#
#  1. a clean Debian 12 root (debootstrap, cached under build/bundle-cache;
#     the only step that uses the network, and only the Debian mirror); its
#     package list must equal offline-bundle/debian12-base.packages, the base
#     the bundle's dependency list was computed against
#  2. the bundle is copied in and unpacked
#  3. in a new network namespace with nothing but loopback (unshare -n): a
#     docker-registry on 127.0.0.1:5000, then install.sh inside the root
#     (chroot) with --registry 127.0.0.1:5000
#  4. checks: the packages are installed, both images are in the registry
#     with the bundle's digests, bunkerd started the way bunkerd.service
#     starts it (no systemd as PID 1 in a chroot: as user bunker,
#     bunkerd serve --config /etc/bunker/bunkerd.yaml) answers /readyz over
#     TLS with the certificate install.sh made, `bunkerctl login` works,
#     every unit passes systemd-analyze verify inside the root, and
#     uninstall.sh keeps the data while uninstall.sh --purge deletes it
#
# usage: bundle_test.sh BUNDLE_TAR|BUNDLE_DIR CACHE_DIR WORK_DIR
set -euo pipefail

bundle_tar=$1 cache=$2 work=$3
if [[ -d "$bundle_tar" ]]; then
  bundle_tar=$(ls -t "$bundle_tar"/bunker-offline-*.tar | head -1)
fi
bundle_tar=$(readlink -f "$bundle_tar")
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
top="$(cd "$here/../../.." && pwd)"
[[ $(id -u) -eq 0 ]] || { echo "bundle-test: needs root (chroot, unshare)" >&2; exit 1; }
for tool in debootstrap unshare chroot docker-registry skopeo curl ip; do
  command -v "$tool" >/dev/null || { echo "bundle-test: $tool is missing (make deps)" >&2; exit 1; }
done

log() { printf '\nbundle-test: %s\n' "$*"; }

# 1. Clean root.
bash "$top/offline-bundle/debian-root.sh" "$cache"
if ! diff <(grep -v '^#' "$top/offline-bundle/debian12-base.packages" | cut -f1) \
    <(cut -f1 "$cache/debian12-root.packages"); then
  echo "bundle-test: a fresh Debian 12 root no longer holds the packages listed in" >&2
  echo "offline-bundle/debian12-base.packages (diff above): update the list and rebuild" >&2
  exit 1
fi
rm -rf "$work"
mkdir -p "$work/registry"
root="$work/root"
mkdir "$root"
tar --numeric-owner -xf "$cache/debian12-root.tar" -C "$root"
log "clean root: $(wc -l <"$cache/debian12-root.packages") packages"

# 2. The bundle inside.
name=$(basename "$bundle_tar" .tar)
tar -xf "$bundle_tar" -C "$root/root"
version=$(sed -n 's/^version //p' "$root/root/$name/MANIFEST")

cat >"$work/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry/storage
http:
  addr: 127.0.0.1:5000
EOF

# 3 and 4 run in a network namespace of their own: loopback only.
cat >"$work/inside.sh" <<'INSIDE'
set -euo pipefail
root=$1 name=$2 version=$3 work=$4
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
log() { printf '\nbundle-test: %s\n' "$*"; }
ip link set lo up
echo "bundle-test: network interfaces in this namespace: $(ip -o link | awk -F': ' '{print $2}' | tr '\n' ' ')"
if curl -s --max-time 5 -o /dev/null http://deb.debian.org/; then
  echo "bundle-test: FAIL: the network is reachable from the test namespace" >&2
  exit 1
fi
echo "bundle-test: no route out (curl to the Debian mirror fails): good"

mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp"

docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  curl -s -o /dev/null http://127.0.0.1:5000/v2/ && break
  sleep 0.1
done
curl -sf -o /dev/null http://127.0.0.1:5000/v2/ || { cat "$work/registry/log"; exit 1; }

log "install.sh in the clean root"
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  bash -c "cd /root/$name && ./install.sh --registry 127.0.0.1:5000 --registry-insecure" \
  2>&1 | tee "$work/install.log"
[[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "bundle-test: FAIL: install.sh failed" >&2; exit 1; }

log "packages"
chroot "$root" dpkg-query -W -f='${Package} ${Version} ${Status}\n' bunkerd bunker-agent bunkerctl skopeo |
  tee "$work/packages"
[[ $(grep -c 'install ok installed' "$work/packages") -eq 4 ]] || { echo "FAIL: packages" >&2; exit 1; }
chroot "$root" getent passwd bunker
chroot "$root" stat -c '%n %U:%G %a' /var/lib/bunker /etc/bunker /etc/bunker/tls.key

log "images in the registry"
for image in bunkerd bunker-agent; do
  want=$(awk -v n="$image" '$1 == "image" && $2 == n {print $4}' "$root/root/$name/MANIFEST")
  got=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://127.0.0.1:5000/bunker/$image:$version")
  echo "  $image: bundle $want, registry $got"
  [[ -n "$want" && "$want" == "$got" ]] || { echo "FAIL: digest of $image" >&2; exit 1; }
done
grep -F "kubectl apply -f /etc/bunker/kubernetes/bunker-agent.yaml" "$work/install.log"
grep -F "image: \"127.0.0.1:5000/bunker/bunker-agent:$version@sha256:" \
  "$root/etc/bunker/kubernetes/bunker-agent.yaml"

log "bunkerd, started as bunkerd.service starts it"
# setpriv execs (no fork, like User=bunker), so $! is bunkerd itself.
chroot "$root" setpriv --reuid=bunker --regid=bunker --init-groups \
  /usr/bin/bunkerd serve --config /etc/bunker/bunkerd.yaml >"$work/bunkerd.log" 2>&1 &
pids+=($!)
ready=0
for _ in $(seq 150); do
  if curl -sf --cacert "$root/etc/bunker/tls.crt" https://127.0.0.1:8443/readyz -o "$work/readyz"; then
    ready=1
    break
  fi
  sleep 0.2
done
((ready)) || { cat "$work/bunkerd.log"; echo "FAIL: /readyz" >&2; exit 1; }
echo "  /readyz over TLS, verified with /etc/bunker/tls.crt: $(cat "$work/readyz")"
chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root bash -c \
  "bunkerctl --server https://127.0.0.1:8443 --ca-file /etc/bunker/tls.crt login -u admin \
     --password-file /etc/bunker/admin-password && bunkerctl user list"

log "systemd-analyze verify inside the root"
chroot "$root" systemd-analyze verify /usr/lib/systemd/system/bunkerd.service \
  /usr/lib/systemd/system/bunker-agent.service /usr/lib/systemd/system/bunker-agent.timer \
  /usr/lib/systemd/system/bunker-maintenance.service /usr/lib/systemd/system/bunker-maintenance.timer
echo "  all units verified"
chroot "$root" sh -c 'ls -l /etc/systemd/system/multi-user.target.wants/bunkerd.service /etc/systemd/system/timers.target.wants/'

log "uninstall.sh keeps data, --purge deletes it"
kill "${pids[1]}"
wait "${pids[1]}" 2>/dev/null || true
chroot "$root" bash -c "cd /root/$name && ./uninstall.sh"
[[ -f "$root/var/lib/bunker/bunker.db" ]] || { echo "FAIL: remove deleted the datastore" >&2; exit 1; }
echo "  after remove: /var/lib/bunker/bunker.db kept"
chroot "$root" bash -c "cd /root/$name && ./uninstall.sh --purge"
[[ ! -e "$root/var/lib/bunker" ]] || { echo "FAIL: purge kept /var/lib/bunker" >&2; exit 1; }
echo "  after purge: /var/lib/bunker deleted"

umount -l "$root/tmp" "$root/run" "$root/dev" "$root/proc" 2>/dev/null || true
log "PASS"
INSIDE

unshare --net --mount --fork bash "$work/inside.sh" "$root" "$name" "$version" "$work"

log "bundle $(basename "$bundle_tar"): $(du -h "$bundle_tar" | cut -f1)"
(cd "$root/root/$name" && du -ch debs/*.deb debs/debian images/*.tar | sort -h | sed 's/^/  /')
