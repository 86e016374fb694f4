#!/usr/bin/env bash
# Removes Bunker's packages (bunkerd, bunker-agent, bunkerctl). Data stays:
# the datastore in /var/lib/bunker, /etc/bunker (configuration, TLS material,
# admin password) and the images in the registry are kept, so a reinstall
# finds everything again.
#
#   ./uninstall.sh [--purge] [--dry-run]
#
#   --purge    also delete /var/lib/bunker and bunkerd's configuration and TLS
#              material (dpkg --purge). Backups in backup locations are never
#              touched, and neither are the Debian packages the bundle
#              brought (other software may use them) nor the mirrored images.
#   --dry-run  print what would be done
set -euo pipefail

purge=0 dry_run=0
while (($#)); do
  case "$1" in
    --purge) purge=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "uninstall: unknown argument $1" >&2; exit 2 ;;
  esac
done
run() {
  printf '+ %s\n' "$*"
  if ((!dry_run)); then "$@"; fi
}
if ((!dry_run)) && [[ $(id -u) -ne 0 ]]; then
  echo "uninstall: run as root (or with --dry-run)" >&2
  exit 1
fi

pkgs=()
for p in bunkerd bunker-agent bunkerctl; do
  # Anything but "not-installed" (installed, config-files, half-installed…).
  state=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  if [[ -n "$state" && "$state" != not-installed ]]; then
    pkgs+=("$p")
  fi
done
if ((${#pkgs[@]} == 0)); then
  echo "uninstall: no Bunker package is installed"
  exit 0
fi
if ((purge)); then
  run dpkg --purge "${pkgs[@]}"
  echo "uninstall: purged ${pkgs[*]}; /var/lib/bunker and bunkerd's configuration are deleted"
else
  run dpkg --remove "${pkgs[@]}"
  echo "uninstall: removed ${pkgs[*]}; data kept in /var/lib/bunker and /etc/bunker (--purge deletes them)"
fi
