#!/usr/bin/env bash
# make bench (and make bench-api): bunkerd's REST API under load. Starts
# bunkerd in a temp dir on a free loopback port, then runs bunker_api_load
# (tests/bench/api_load/api_load.cc): users, tokens and file:// locations,
# then concurrent keep-alive HTTPS clients doing mixed list/get/create.
# Prints a table (requests, errors, p50/p99 latency, throughput); the numbers
# also land in BUILD_DIR/bench/api_load.json. Timings gate nothing; the exit
# status is non-zero when any request failed or bunkerd died.
#
#   bash tests/bench/api_load.sh BUILD_DIR
#
# Environment:
#   API_CLIENTS=200   concurrent connections
#   API_SECONDS=30    duration of the load
#   API_USERS=10      users (one token each)
#   API_CREATE_PERCENT=15  share of creates (0: reads of a fixed data set)
#   KEEP=1            keep the work dir (bunkerd's data and log)
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: bash tests/bench/api_load.sh BUILD_DIR" >&2
    exit 2
fi
BUILD_DIR=$(realpath -m "$1")
BUNKERD=$BUILD_DIR/appliance/bunkerd/bunkerd
LOAD=$BUILD_DIR/tests/bench/api_load/bunker_api_load
for bin in "$BUNKERD" "$LOAD"; do
    if [[ ! -x $bin ]]; then
        echo "api_load.sh: $bin is not built (ninja -C $BUILD_DIR bunkerd bunker_api_load)" >&2
        exit 2
    fi
done

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/bunker-api-load.XXXXXX")
PID=""
cleanup() {
    if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    if [[ ${KEEP:-0} == 1 ]]; then
        echo "api_load.sh: work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'load-admin-password\n' >"$WORK/admin.pw"
mkdir -p "$WORK/locations" "$BUILD_DIR/bench"
"$BUNKERD" init --data-dir "$WORK/data" --admin-password-file "$WORK/admin.pw" >"$WORK/bunkerd.log" 2>&1
# Users who are not admins may create file:// locations only under these roots.
printf 'file_location_roots: ["%s"]\n' "$WORK/locations" >"$WORK/bunkerd.yaml"
"$BUNKERD" serve --config "$WORK/bunkerd.yaml" --data-dir "$WORK/data" \
    --listen "127.0.0.1:$PORT" >>"$WORK/bunkerd.log" 2>&1 &
PID=$!
for _ in $(seq 1 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        break
    fi
    if ! kill -0 "$PID" 2>/dev/null; then
        echo "api_load.sh: bunkerd exited at start:" >&2
        cat "$WORK/bunkerd.log" >&2
        exit 1
    fi
    sleep 0.1
done

status=0
"$LOAD" --server "https://127.0.0.1:$PORT" --ca-file "$WORK/data/tls/cert.pem" \
    --admin-password-file "$WORK/admin.pw" --location-dir "$WORK/locations" \
    --clients "${API_CLIENTS:-200}" --seconds "${API_SECONDS:-30}" --users "${API_USERS:-10}" \
    --create-percent "${API_CREATE_PERCENT:-15}" \
    --json "$BUILD_DIR/bench/api_load.json" || status=$?

if ! kill -0 "$PID" 2>/dev/null; then
    echo "api_load.sh: bunkerd died under load; its log:" >&2
    tail -50 "$WORK/bunkerd.log" >&2
    exit 1
fi
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
echo "bunkerd peak RSS: $((rss_kib / 1024)) MiB; log lines: $(wc -l <"$WORK/bunkerd.log")"
if [[ $status -ne 0 ]]; then
    echo "api_load.sh: the load run failed (exit $status); last bunkerd log lines:" >&2
    grep -v ' 20[01] ' "$WORK/bunkerd.log" | tail -20 >&2 || true
fi
exit $status
