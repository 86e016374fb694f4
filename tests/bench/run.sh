#!/usr/bin/env bash
# make bench: bunker-agent side by side with restic and borg on the same
# deterministic block image (see tests/bench/README.md).
#
#   bash tests/bench/run.sh BUILD_DIR
#
# Environment:
#   SIZES="1 4"                      image sizes in GiB, one full run per size
#   BENCH_TOOLS="bunker restic borg restic-v1"
#                                    tools to measure, in this order (A B C D):
#                                      restic     restic as installed, on its defaults
#                                                 (repository v2, zstd "auto"): the
#                                                 baseline of the "x restic" column
#                                      restic-v1  restic with a v1 repository (no
#                                                 compression): a second reference,
#                                                 its ratios printed under the table
#                                    may also name extra tables, off by default (slower,
#                                    they start servers):
#                                      s3     bunker-agent vs restic, both on s3rver
#                                      nfs    bunker-agent on nfs-ganesha vs nfs-cp of
#                                             the bytes it stored (the transport's limit)
#                                      verify bunker full backup, verify-before-upload
#                                             on vs off (--no-verify-before-upload)
#   REPEAT=3                         runs per (tool, phase), alternating A B C D A B C D;
#                                    the table shows the median
#   BENCH_DIR=DIR                    put the work files in a new dir under DIR
#                                    (default: a new dir under /var/tmp)
#   KEEP=1                           keep the work files (images, repositories, logs)
#   SEED=20240601                    image seed
#   STRICT=1                         also exit non-zero when a target is missed
#   BENCH_NICE=-10                   run each measured command in its own session
#                                    (so its own scheduler autogroup) at this nice
#                                    level -- root, all tools alike -- to lessen a
#                                    shared machine's noise; default: not changed
#   RESTIC_INIT_ARGS=""              extra flags for restic's init, for the "restic" tool
#                                    and the s3 table (default none: restic's defaults,
#                                    as a user runs it); the "restic-v1" tool adds
#                                    --repository-version 1
#   RESTIC_BACKUP_ARGS, RESTIC_RESTORE_ARGS, BORG_CREATE_ARGS, BORG_EXTRACT_ARGS
#                                    extra flags for the other tools (default none)
#
# Exit status: 0 when every selected tool was measured in every phase and every
# restore matched; non-zero otherwise (and, with STRICT=1, on a missed target).
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: bash tests/bench/run.sh BUILD_DIR" >&2
    exit 2
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD_DIR=$(realpath -m "$1")
AGENT=$BUILD_DIR/nodeagent/agent/bunker-agent
SIZES=${SIZES:-"1 4"}
TOOLS=${BENCH_TOOLS:-"bunker restic borg restic-v1"}
REPEAT=${REPEAT:-3}
SEED=${SEED:-20240601}
PY=${PYTHON:-python3}
export RESTIC_INIT_ARGS=${RESTIC_INIT_ARGS:-}
export RESTIC_BACKUP_ARGS=${RESTIC_BACKUP_ARGS:-} RESTIC_RESTORE_ARGS=${RESTIC_RESTORE_ARGS:-}
export BORG_CREATE_ARGS=${BORG_CREATE_ARGS:-} BORG_EXTRACT_ARGS=${BORG_EXTRACT_ARGS:-}
RESULTS_DIR=$BUILD_DIR/bench

MAIN_TOOLS="" EXTRAS=""
for t in $TOOLS; do
    case $t in
    bunker|restic|borg|restic-v1) MAIN_TOOLS+="${MAIN_TOOLS:+ }$t" ;;
    s3|nfs|verify) EXTRAS+="${EXTRAS:+ }$t" ;;
    *) echo "BENCH_TOOLS: unknown tool '$t' (bunker restic borg restic-v1; extra tables: s3 nfs verify)" >&2; exit 2 ;;
    esac
done
SERVE=$BUILD_DIR/tests/harness/bunker-test-serve
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || { echo "REPEAT must be a positive integer" >&2; exit 2; }
for s in $SIZES; do
    [[ $s =~ ^[1-9][0-9]*$ ]] || { echo "SIZES: '$s' is not a whole number of GiB" >&2; exit 2; }
done
[[ -x /usr/bin/time ]] || { echo "/usr/bin/time is missing (apt-get install time)" >&2; exit 2; }

# ---- work directory -------------------------------------------------------
# Not on tmpfs: the images and repositories would eat RAM and the page cache
# the bench relies on.
if [[ -n ${BENCH_DIR:-} ]]; then
    mkdir -p "$BENCH_DIR"
    WORK=$(mktemp -d "$(realpath "$BENCH_DIR")/bunker-bench.XXXX")
else
    WORK=$(mktemp -d /var/tmp/bunker-bench.XXXX)
fi
if [[ $(stat -f -c %T "$WORK") == tmpfs ]]; then
    echo "WARNING: $WORK is on tmpfs; set BENCH_DIR to a disk-backed directory" >&2
fi
SERVER_PID=""
cleanup() { # shellcheck disable=SC2317  # (called by the trap)
    if [[ ${KEEP:-0} == 1 ]]; then
        stop_server
        echo "KEEP=1: work files left in $WORK"
    else
        stop_server
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
LOGS=$WORK/logs
RUNS=$WORK/runs.tsv
mkdir -p "$LOGS" "$RESULTS_DIR"
: >"$RUNS"

export BUNKER_PASSWORD=bench-password-bunker
export RESTIC_PASSWORD=bench-password-restic
export BORG_PASSPHRASE=bench-password-borg
export RESTIC_CACHE_DIR=$WORK/restic-cache      # keep their caches out of $HOME
export BORG_BASE_DIR=$WORK/borg-base
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
unset RESTIC_REPOSITORY BORG_REPO

# ---- which tools can run at all -------------------------------------------
declare -A MISSING=()
for t in $MAIN_TOOLS $EXTRAS; do
    case $t in
    bunker|verify) [[ -x $AGENT ]] || MISSING[$t]="bunker-agent not built: $AGENT does not exist (run make build first)" ;;
    restic|restic-v1) command -v restic >/dev/null || MISSING[$t]="restic not installed (apt-get install restic)" ;;
    borg) command -v borg >/dev/null || MISSING[borg]="borg not installed (apt-get install borgbackup)" ;;
    s3|nfs)
        [[ -x $AGENT ]] || MISSING[$t]="bunker-agent not built: $AGENT does not exist (run make build first)"
        [[ -x $SERVE ]] || MISSING[$t]="${MISSING[$t]:+${MISSING[$t]}; }$SERVE not built (ninja bunker-test-serve)"
        [[ $t == s3 ]] && ! command -v restic >/dev/null && MISSING[s3]="${MISSING[s3]:+${MISSING[s3]}; }restic not installed"
        [[ $t == nfs ]] && ! command -v nfs-cp >/dev/null && MISSING[nfs]="${MISSING[nfs]:+${MISSING[nfs]}; }nfs-cp not installed (apt-get install libnfs-utils)"
        ;;
    esac
done
# A private copy of the agent: a rebuild in the tree during the bench must
# neither break a run nor mix two versions in one table.
if [[ -x $AGENT ]]; then
    cp "$AGENT" "$WORK/bunker-agent"
    echo "bunker-agent: $AGENT ($(stat -c '%y' "$AGENT" | cut -d. -f1)), copied for this run"
    AGENT=$WORK/bunker-agent
fi
for t in "${!MISSING[@]}"; do
    echo "!!! $t rows cannot be measured: ${MISSING[$t]}" >&2
done

# ---- helpers --------------------------------------------------------------
oneline() { tr '\t\n' '  ' | cut -c1-300; }

# record SIZE TOOL PHASE REP STATUS ELAPSED USER SYS RSS_KIB ERRFILE REASON [OTHER_CPU_S OUTFILE REPO_BYTES FLUSH_S BYTES_MOVED]
record() {
    local IFS=$'\t'
    echo "$*" >>"$RUNS"
}

show_err() { # loud failure with the command's stderr
    local what=$1 err=$2
    {
        echo "!!! $what"
        if [[ -s $err ]]; then
            echo "!!! --- stderr (last 20 lines) ---"
            tail -n 20 "$err" | sed 's/^/!!!   /'
        fi
    } >&2
}

# untimed SIZE TOOL PHASE REP WHAT CMD...: a setup step; on failure records it.
untimed() {
    local size=$1 tool=$2 phase=$3 rep=$4 what=$5
    shift 5
    local err="$LOGS/$tool-$what-${size}g-$rep.err" rc=0
    "$@" >"$LOGS/$tool-$what-${size}g-$rep.out" 2>"$err" || rc=$?
    if ((rc != 0)); then
        show_err "$tool: $what failed (exit $rc): $*" "$err"
        record "$size" "$tool" "$phase" "$rep" fail - - - - "$err" "$what failed (exit $rc): $(tail -n 3 "$err" | oneline)"
        return 1
    fi
}

# CPU time (in ticks) every process on the machine has used so far.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
TICK=$(getconf CLK_TCK)
NPROC=$(nproc)

# measure SIZE TOOL PHASE REP CMD...: one timed run; 0 on success.
# Also notes how much CPU *other* processes used meanwhile: this machine may
# be shared (compilers, tests), and a busy machine makes every number noise.
LAST_TIME=""
measure() {
    local size=$1 tool=$2 phase=$3 rep=$4
    shift 4
    local tag="$tool-$phase-${size}g-$rep"
    local tf="$LOGS/$tag.time" err="$LOGS/$tag.err" rc=0 b0 b1
    # Every run starts from the page cache (DESIGN.md's condition): the
    # inputs it reads are read once, untimed. Without this the order of the
    # tools would decide who reads from disk: borg drops what it read from
    # the cache (posix_fadvise DONTNEED), so the tool after it would read the
    # image from disk; bunker-agent writes packs with O_DIRECT (they never
    # enter the cache), so its restores alone would read the repository
    # from disk while restic's and borg's repositories sit in the cache.
    [[ -n ${WARM:-} ]] && warm "$WARM"
    sync # earlier runs' dirty pages are not this run's work
    b0=$(busy_ticks)
    local pre=()
    # With autogroups (sched_autogroup_enabled) plain nice only ranks a
    # process within its session; a session of its own with a reniced
    # autogroup ranks it against everything else. setsid does not fork here.
    # shellcheck disable=SC2016  # (expanded by that sh)
    [[ ${BENCH_NICE:-0} != 0 ]] && pre=(setsid sh -c \
        'n=$1; shift; { [ ! -w /proc/self/autogroup ] || echo "$n" >/proc/self/autogroup; } && exec nice -n "$n" "$@"' \
        bench-nice "$BENCH_NICE")
    /usr/bin/time -f '%e %U %S %M' -o "$tf" ${pre[@]+"${pre[@]}"} "$@" >"$LOGS/$tag.out" 2>"$err" || rc=$?
    b1=$(busy_ticks)
    # Time to make what the run wrote durable (its dirty pages), untimed in
    # the table: bunker-agent fdatasyncs restored images, restic and borg
    # do not, so the restore row alone favours them. Reported beside it.
    local f0 f1 flush
    f0=$(date +%s.%N)
    sync
    f1=$(date +%s.%N)
    flush=$(awk -v a="$f0" -v b="$f1" 'BEGIN { printf "%.2f", b - a }')
    if ((rc != 0)); then
        show_err "$tool: $phase failed (exit $rc): $*" "$err"
        record "$size" "$tool" "$phase" "$rep" fail - - - - "$err" "exit $rc: $(tail -n 3 "$err" | oneline)"
        return 1
    fi
    local e u s m
    read -r e u s m < <(tail -n 1 "$tf")
    local other
    other=$(awk -v b="$((b1 - b0))" -v t="$TICK" -v u="$u" -v s="$s" \
        'BEGIN { o = b / t - u - s; if (o < 0) o = 0; printf "%.2f", o }')
    LAST_TIME="$e $u $s $m $other $LOGS/$tag.out $flush"
    printf '    %-7s %-11s run %d: %7.2f s elapsed, %7.2f s CPU, %6.0f MiB peak RSS%s\n' \
        "$tool" "$phase" "$rep" "$e" "$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')" \
        "$(awk -v m="$m" 'BEGIN { print m / 1024 }')" \
        "$(awk -v o="$other" -v e="$e" -v n="$NPROC" 'BEGIN { if (e > 0 && o > 0.1 * e * n)
            printf " (busy machine: other processes used %.1f CPU s meanwhile)", o }')"
    return 0
}

record_ok() { # SIZE TOOL PHASE REP STATUS [REASON [REPO_DIR [BYTES_MOVED]]]
    local e u s m o out flush repo_bytes=- repo=${7:-$WORK/repo-$2}
    read -r e u s m o out flush <<<"$LAST_TIME"
    if [[ $3 != restore && -d $repo ]]; then
        repo_bytes=$(du -sb "$repo" | cut -f1)
    fi
    record "$1" "$2" "$3" "$4" "$5" "$e" "$u" "$s" "$m" - "${6:--}" "$o" "$out" "$repo_bytes" "$flush" "${8:--}"
}

# warm PATH...: read files (recursively) once so they are in page cache.
warm() {
    find "$@" -type f -print0 2>/dev/null | xargs -0 -r cat >/dev/null 2>&1 || true
}

# ---- tool adapters (repo dir, image, output dir are absolute) -------------
tool_init() { # TOOL SIZE REP REPO
    local tool=$1 size=$2 rep=$3 repo=$4
    rm -rf "$repo"
    # shellcheck disable=SC2086
    case $tool in
    bunker) untimed "$size" bunker full "$rep" init "$AGENT" repo init --repo "$repo" ;;
    restic) untimed "$size" restic full "$rep" init restic init --repo "$repo" ${RESTIC_INIT_ARGS:-} ;;
    restic-v1) untimed "$size" restic-v1 full "$rep" init restic init --repo "$repo" --repository-version 1 ;;
    borg) untimed "$size" borg full "$rep" init borg init --encryption=repokey "$repo" ;;
    esac
}

declare -A BORG_LAST=()
tool_backup() { # TOOL SIZE PHASE REP REPO IMAGE
    local tool=$1 size=$2 phase=$3 rep=$4 repo=$5 img=$6
    local WARM=$img
    # shellcheck disable=SC2086
    case $tool in
    bunker) measure "$size" bunker "$phase" "$rep" "$AGENT" backup --repo "$repo" --volume "$img" \
        --mode block --volume-id bench --json ;;
    restic|restic-v1) measure "$size" "$tool" "$phase" "$rep" restic --repo "$repo" backup --host bench \
        ${RESTIC_BACKUP_ARGS:-} "$img" ;;
    borg)
        local name="$phase-$rep"
        measure "$size" borg "$phase" "$rep" borg create --compression lz4 ${BORG_CREATE_ARGS:-} \
            "$repo::$name" "$img" && BORG_LAST[$size]=$name
        ;;
    esac
}

tool_restore() { # TOOL SIZE REP REPO OUTDIR IMAGE -> prints restored file path on stdout via RESTORED
    local tool=$1 size=$2 rep=$3 repo=$4 out=$5 img=$6
    local WARM=$repo
    mkdir -p "$out"
    # shellcheck disable=SC2086
    case $tool in
    bunker)
        RESTORED=$out/bench.img
        measure "$size" bunker restore "$rep" "$AGENT" restore --repo "$repo" --snapshot latest \
            --volume-id bench --target "$RESTORED"
        ;;
    restic|restic-v1)
        RESTORED=$out$img # restic recreates the absolute path under --target
        measure "$size" "$tool" restore "$rep" restic --repo "$repo" restore latest --target "$out" \
            ${RESTIC_RESTORE_ARGS:-}
        ;;
    borg)
        RESTORED=$out/${img#/} # borg extract recreates the path (without the /) in its cwd
        measure "$size" borg restore "$rep" env -C "$out" borg extract ${BORG_EXTRACT_ARGS:-} \
            "$repo::${BORG_LAST[$size]}"
        ;;
    esac
}

# ---- one size ---------------------------------------------------------------
MISMATCH=0
run_size() {
    # Never report a stale run: a size that stops early (no disk space, a
    # missing tool) must not leave an earlier run's results for the summary.
    rm -f "$RESULTS_DIR/results-${1}GiB.json" "$RESULTS_DIR/results-${1}GiB-extra.json"
    local size=$1
    local img=$WORK/image-${size}g.img
    declare -A BROKEN=()
    local t
    for t in $MAIN_TOOLS; do
        [[ -n ${MISSING[$t]:-} ]] && BROKEN[$t]=${MISSING[$t]}
    done

    # image + four repositories (together ~2.5x the image at 4 GiB: restic's
    # v1 one is uncompressed) + one restored image at a time
    # (the extra tables need less: one or two repositories, a copy of one)
    local need=$((size * 5 + 1)) avail
    avail=$(df -P -BG "$WORK" | awk 'NR==2 {sub("G","",$4); print $4}')
    if ((avail < need)); then
        echo "!!! only ${avail} GiB free in $WORK, the ${size} GiB bench needs ~${need} GiB" >&2
        return 1
    fi

    echo "=== ${size} GiB image ==="
    # (set -e does not act inside a function called with ||: check by hand)
    "$PY" "$HERE/mkimage.py" create "$img" --size-gib "$size" --seed "$SEED" | sed 's/^/  /' ||
        { echo "!!! image generation failed" >&2; return 1; }
    cat "$img" >/dev/null || return 1 # in page cache, like DESIGN.md's numbers
    local bytes
    bytes=$(stat -c %s "$img")

    local rep
    echo "  -- full backup --"
    for ((rep = 1; rep <= REPEAT; rep++)); do
        for t in $MAIN_TOOLS; do
            if [[ -n ${BROKEN[$t]:-} ]]; then
                record "$size" "$t" full "$rep" skip - - - - - "${BROKEN[$t]}"
                continue
            fi
            if ! tool_init "$t" "$size" "$rep" "$WORK/repo-$t"; then
                BROKEN[$t]="repository init failed"
                continue
            fi
            if tool_backup "$t" "$size" full "$rep" "$WORK/repo-$t" "$img"; then
                record_ok "$size" "$t" full "$rep" ok
            else
                BROKEN[$t]="full backup failed"
            fi
        done
    done

    echo "  -- incremental (1% of 1 MiB blocks rewritten) --"
    for ((rep = 1; rep <= REPEAT; rep++)); do
        "$PY" "$HERE/mkimage.py" mutate "$img" --seed $((SEED + 1000 * size + rep)) | sed 's/^/  /' ||
            { echo "!!! image mutation failed" >&2; return 1; }
        for t in $MAIN_TOOLS; do
            if [[ -n ${BROKEN[$t]:-} ]]; then
                record "$size" "$t" incremental "$rep" skip - - - - - "${BROKEN[$t]}"
                continue
            fi
            if tool_backup "$t" "$size" incremental "$rep" "$WORK/repo-$t" "$img"; then
                record_ok "$size" "$t" incremental "$rep" ok
            else
                BROKEN[$t]="incremental backup failed"
            fi
        done
    done

    echo "  -- restore of the latest snapshot, compared with cmp --"
    for ((rep = 1; rep <= REPEAT; rep++)); do
        for t in $MAIN_TOOLS; do
            if [[ -n ${BROKEN[$t]:-} ]]; then
                record "$size" "$t" restore "$rep" skip - - - - - "${BROKEN[$t]}"
                continue
            fi
            local out=$WORK/out-$t
            rm -rf "$out"
            RESTORED=""
            if tool_restore "$t" "$size" "$rep" "$WORK/repo-$t" "$out" "$img"; then
                local cmpout rc=0
                cmpout=$(cmp "$img" "$RESTORED" 2>&1) || rc=$?
                if ((rc == 0)); then
                    record_ok "$size" "$t" restore "$rep" ok
                else
                    MISMATCH=1
                    {
                        echo
                        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
                        echo "!!! RESTORE MISMATCH: $t restored image differs from the source"
                        echo "!!! $cmpout"
                        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
                        echo
                    } >&2
                    record_ok "$size" "$t" restore "$rep" mismatch "$(echo "$cmpout" | oneline)"
                fi
            fi
            rm -rf "$out"
        done
    done

    if [[ -n $EXTRAS ]]; then
        run_extras "$size" "$img" "$bytes" || EXTRA_STATUS=1
    fi
    if [[ -z $MAIN_TOOLS ]]; then
        rm -f "$img"
        return 0
    fi

    # Versions and settings that explain the numbers.
    local meta=$WORK/meta-${size}.json
    "$PY" - "$meta" "$bytes" "$size" "$SEED" "$REPEAT" "$HERE" "$WORK" <<'EOF'
import json, os, subprocess, sys
meta, nbytes, size, seed, repeat, here, work = sys.argv[1:]
def ver(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
    except Exception as e:
        return "unknown (%s)" % e
info = {
    "image_bytes": int(nbytes), "size_gib": int(size), "seed": int(seed), "repeat": int(repeat),
    "image": "1 MiB regions, seeded shuffle: 40% random, 30% text (~2.1x LZ4), 30% zeros",
    "incremental_change": "1% of 1 MiB blocks get a 64 KiB write of new random bytes",
    "nproc": os.cpu_count(),
    "loadavg_at_end": open("/proc/loadavg").read().split()[:3],
    "nice": int(os.environ.get("BENCH_NICE") or 0),
    "git_commit": subprocess.run(["git", "-C", here, "describe", "--always", "--dirty"],
                                 capture_output=True, text=True).stdout.strip() or None,
    "versions": {"restic": ver(["restic", "version"]), "borg": ver(["borg", "--version"])},
    "settings": {
        "bunker": "repo init; backup --mode block --volume-id bench --json; restore --snapshot latest",
        "restic": "; ".join(" ".join((c + " " + os.environ.get(v, "")).split()) for c, v in (
            ("init", "RESTIC_INIT_ARGS"), ("backup", "RESTIC_BACKUP_ARGS"), ("restore", "RESTIC_RESTORE_ARGS"))),
        "restic-v1": "; ".join(" ".join((c + " " + os.environ.get(v, "")).split()) for c, v in (
            ("init --repository-version 1", "-"), ("backup", "RESTIC_BACKUP_ARGS"), ("restore", "RESTIC_RESTORE_ARGS"))),
        "borg": "; ".join(" ".join((c + " " + os.environ.get(v, "")).split()) for c, v in (
            ("init --encryption=repokey", "-"), ("create --compression lz4", "BORG_CREATE_ARGS"),
            ("extract", "BORG_EXTRACT_ARGS"))),
    },
}
for tool, key in (("restic", "restic_repo_version"), ("restic-v1", "restic_v1_repo_version")):
    try:
        cfg = subprocess.run(["restic", "--repo", os.path.join(work, "repo-" + tool), "cat", "config"],
                             capture_output=True, text=True, timeout=60)
        if cfg.returncode == 0:
            info[key] = json.loads(cfg.stdout).get("version")
    except Exception:
        pass
json.dump(info, open(meta, "w"))
EOF
    rm -f "$img"
    rm -rf "$WORK"/repo-* "$WORK"/out-*

    "$PY" "$HERE/report.py" table --runs "$RUNS" --size "$size" --meta "$meta" \
        --tools "$MAIN_TOOLS" --json "$RESULTS_DIR/results-${size}GiB.json"
}

# ---- extra tables: remote locations, verification cost ---------------------
# Each runs after the main phases of a size, on the same image (already
# mutated by the incremental phase when that ran: only its bytes matter here),
# and writes BUILD_DIR/bench/results-<N>GiB-extra.json.

# stop_server: stops the bunker-test-serve started by start_server, if any.
stop_server() { # shellcheck disable=SC2317  # (also called by the trap)
    if [[ -n $SERVER_PID ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}

# start_server nfs|s3: a harness server (as the integration tests start it),
# its files under $WORK; fills SRV from the KEY=VALUE lines it prints.
declare -A SRV=()
start_server() {
    local kind=$1 out=$LOGS/serve-$1.out err=$LOGS/serve-$1.err i
    SRV=()
    : >"$out"
    TMPDIR=$WORK "$SERVE" "$kind" >"$out" 2>"$err" &
    SERVER_PID=$!
    for ((i = 0; i < 1200; i++)); do
        grep -qx ready "$out" && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -qx ready "$out"; then
        show_err "$kind server did not start" "$err"
        stop_server
        return 1
    fi
    local k v
    while IFS='=' read -r k v; do
        [[ $k == ready ]] || SRV[$k]=$v
    done <"$out"
}

# restore_and_cmp SIZE TOOL REP IMG RESTORED CMD...: a measured restore, then cmp.
restore_and_cmp() {
    local size=$1 tool=$2 rep=$3 img=$4 restored=$5
    shift 5
    measure "$size" "$tool" restore "$rep" "$@" || return 1
    local cmpout rc=0
    cmpout=$(cmp "$img" "$restored" 2>&1) || rc=$?
    if ((rc == 0)); then
        record_ok "$size" "$tool" restore "$rep" ok
    else
        MISMATCH=1
        echo "!!! RESTORE MISMATCH: $tool restored image differs from the source: $cmpout" >&2
        record_ok "$size" "$tool" restore "$rep" mismatch "$(echo "$cmpout" | oneline)"
    fi
}

skip_rows() { # SIZE REASON TOOL:PHASE...
    local size=$1 reason=$2 tp
    shift 2
    for tp in "$@"; do
        record "$size" "${tp%%:*}" "${tp#*:}" 1 skip - - - - - "$reason"
    done
}

extra_s3() { # SIZE IMG
    local size=$1 img=$2 rep
    local rows=(bunker-s3:full restic-s3:full bunker-s3:restore restic-s3:restore)
    if [[ -n ${MISSING[s3]:-} ]]; then skip_rows "$size" "${MISSING[s3]}" "${rows[@]}"; return 1; fi
    echo "  -- S3 (s3rver on loopback): bunker-agent vs restic --"
    start_server s3 || { skip_rows "$size" "s3rver did not start (see $LOGS/serve-s3.err)" "${rows[@]}"; return 1; }
    local creds=(env AWS_ACCESS_KEY_ID="${SRV[access_key]}" AWS_SECRET_ACCESS_KEY="${SRV[secret_key]}"
        AWS_DEFAULT_REGION="${SRV[region]}" AWS_SHARED_CREDENTIALS_FILE=/dev/null)
    local bucket_dir=${SRV[data_dir]}/${SRV[bucket]} ok_b=1 ok_r=1
    for ((rep = 1; rep <= REPEAT; rep++)); do
        local s3b=(--repo "s3://${SRV[bucket]}/bunker-$rep" --s3-endpoint "${SRV[endpoint]}" --s3-region "${SRV[region]}")
        local s3r="s3:${SRV[endpoint]}/${SRV[bucket]}/restic-$rep"
        if ((ok_b)) && untimed "$size" bunker-s3 full "$rep" init "${creds[@]}" "$AGENT" repo init "${s3b[@]}" &&
            measure "$size" bunker-s3 full "$rep" "${creds[@]}" "$AGENT" backup "${s3b[@]}" --volume "$img" \
                --mode block --volume-id bench --json; then
            record_ok "$size" bunker-s3 full "$rep" ok - "$bucket_dir/bunker-$rep"
        else ok_b=0; fi
        # shellcheck disable=SC2086
        if ((ok_r)) && untimed "$size" restic-s3 full "$rep" init "${creds[@]}" restic --repo "$s3r" init ${RESTIC_INIT_ARGS:-} &&
            measure "$size" restic-s3 full "$rep" "${creds[@]}" restic --repo "$s3r" backup --host bench \
                ${RESTIC_BACKUP_ARGS:-} "$img"; then
            record_ok "$size" restic-s3 full "$rep" ok - "$bucket_dir/restic-$rep"
        else ok_r=0; fi
    done
    for ((rep = 1; rep <= REPEAT; rep++)); do
        local s3b=(--repo "s3://${SRV[bucket]}/bunker-$rep" --s3-endpoint "${SRV[endpoint]}" --s3-region "${SRV[region]}")
        local s3r="s3:${SRV[endpoint]}/${SRV[bucket]}/restic-$rep" out=$WORK/out-s3
        rm -rf "$out" && mkdir -p "$out"
        if ((ok_b)); then
            restore_and_cmp "$size" bunker-s3 "$rep" "$img" "$out/bench.img" "${creds[@]}" "$AGENT" restore \
                "${s3b[@]}" --snapshot latest --volume-id bench --target "$out/bench.img" || ok_b=0
        else record "$size" bunker-s3 restore "$rep" skip - - - - - "full backup failed"; fi
        rm -rf "$out" && mkdir -p "$out"
        # shellcheck disable=SC2086
        if ((ok_r)); then
            restore_and_cmp "$size" restic-s3 "$rep" "$img" "$out$img" "${creds[@]}" restic --repo "$s3r" \
                restore latest --target "$out" ${RESTIC_RESTORE_ARGS:-} || ok_r=0
        else record "$size" restic-s3 restore "$rep" skip - - - - - "full backup failed"; fi
        rm -rf "$out"
    done
    stop_server
}

extra_nfs() { # SIZE IMG
    local size=$1 img=$2 rep
    local rows=(bunker-nfs:full nfs-cp:full bunker-nfs:restore nfs-cp:restore)
    if [[ -n ${MISSING[nfs]:-} ]]; then skip_rows "$size" "${MISSING[nfs]}" "${rows[@]}"; return 1; fi
    echo "  -- NFS (nfs-ganesha on loopback): bunker-agent vs nfs-cp of the bytes it stored --"
    start_server nfs || { skip_rows "$size" "nfs-ganesha did not start (see $LOGS/serve-nfs.err)" "${rows[@]}"; return 1; }
    # nfs://127.0.0.1/EXPORT?version=3&nfsport=N&mountport=M -> a path in the export
    local url=${SRV[url]}
    local base=${url%%\?*} query=${url#*\?} export_dir=${SRV[export_dir]}
    local stored=$WORK/stored.bin ok=1
    for ((rep = 1; rep <= REPEAT; rep++)); do
        local repo_url="$base/bunker-$rep?$query" repo_dir=$export_dir/bunker-$rep
        if untimed "$size" bunker-nfs full "$rep" init "$AGENT" repo init --repo "$repo_url" &&
            measure "$size" bunker-nfs full "$rep" "$AGENT" backup --repo "$repo_url" --volume "$img" \
                --mode block --volume-id bench --json; then
            record_ok "$size" bunker-nfs full "$rep" ok - "$repo_dir" "$(du -sb "$repo_dir" | cut -f1)"
        else
            ok=0
            break
        fi
        # The same bytes through the transport alone: every object of the
        # repository, concatenated (untimed), written by one nfs-cp.
        # A new name each run: ganesha caches names, so a file removed behind
        # its back (on the exported directory) may still "exist" over NFS.
        (cd "$repo_dir" && find . -type f -print0 | sort -z | xargs -0 cat) >"$stored"
        local copy="$base/stored-$rep.bin?$query"
        rm -f "$WORK/stored-back.bin"
        if measure "$size" nfs-cp full "$rep" nfs-cp "$stored" "$copy"; then
            record_ok "$size" nfs-cp full "$rep" ok - /nonexistent "$(stat -c %s "$stored")"
            if measure "$size" nfs-cp restore "$rep" nfs-cp "$copy" "$WORK/stored-back.bin"; then
                if cmp -s "$stored" "$WORK/stored-back.bin"; then
                    record_ok "$size" nfs-cp restore "$rep" ok - - "$(stat -c %s "$stored")"
                else
                    MISMATCH=1
                    record_ok "$size" nfs-cp restore "$rep" mismatch "nfs-cp read back different bytes" - "$(stat -c %s "$stored")"
                fi
            fi
        else
            record "$size" nfs-cp restore "$rep" skip - - - - - "nfs-cp write failed"
        fi
        rm -f "$stored" "$WORK/stored-back.bin" "$export_dir/stored-$rep.bin"
        local out=$WORK/out-nfs
        rm -rf "$out" && mkdir -p "$out"
        restore_and_cmp "$size" bunker-nfs "$rep" "$img" "$out/bench.img" "$AGENT" restore --repo "$repo_url" \
            --snapshot latest --volume-id bench --target "$out/bench.img" || true
        rm -rf "$out" "$repo_dir"
    done
    ((ok)) || skip_rows "$size" "bunker-agent backup to NFS failed" nfs-cp:full bunker-nfs:restore nfs-cp:restore
    stop_server
}

extra_verify() { # SIZE IMG
    local size=$1 img=$2 rep t
    if [[ -n ${MISSING[verify]:-} ]]; then
        skip_rows "$size" "${MISSING[verify]}" bunker-verify:full bunker-noverify:full
        return 1
    fi
    echo "  -- verify-before-upload: bunker-agent full backup with it on (default) and off --"
    for ((rep = 1; rep <= REPEAT; rep++)); do
        for t in bunker-verify bunker-noverify; do
            local flags=()
            [[ $t == bunker-noverify ]] && flags=(--no-verify-before-upload)
            rm -rf "$WORK/repo-$t"
            untimed "$size" "$t" full "$rep" init "$AGENT" repo init --repo "$WORK/repo-$t" || continue
            if measure "$size" "$t" full "$rep" "$AGENT" backup --repo "$WORK/repo-$t" --volume "$img" \
                --mode block --volume-id bench --json ${flags[@]+"${flags[@]}"}; then
                record_ok "$size" "$t" full "$rep" ok
            fi
            rm -rf "$WORK/repo-$t"
        done
    done
}

EXTRA_STATUS=0
run_extras() { # SIZE IMG BYTES
    local size=$1 img=$2 bytes=$3 x
    local WARM=$img # every extra run reads the image, or a server's files (cached: they wrote them)
    for x in $EXTRAS; do
        case $x in
        s3) extra_s3 "$size" "$img" || true ;;
        nfs) extra_nfs "$size" "$img" || true ;;
        verify) extra_verify "$size" "$img" || true ;;
        esac
    done
    "$PY" "$HERE/report.py" extra --runs "$RUNS" --size "$size" --image-bytes "$bytes" \
        --extras "$EXTRAS" --json "$RESULTS_DIR/results-${size}GiB-extra.json"
}

# ---- main -----------------------------------------------------------------
echo "bunker bench: sizes [$SIZES] GiB, tools [$TOOLS], $REPEAT run(s) each, work dir $WORK"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) on $NPROC cores (the numbers mean something only on an idle machine)${BENCH_NICE:+, measured commands at nice $BENCH_NICE}"
STATUS=0
for s in $SIZES; do
    run_size "$s" || STATUS=1
done

echo
if [[ -n $MAIN_TOOLS ]]; then
    FINAL_ARGS=(final --tools "$MAIN_TOOLS")
    [[ ${STRICT:-0} == 1 ]] && FINAL_ARGS+=(--strict)
    for s in $SIZES; do FINAL_ARGS+=("$RESULTS_DIR/results-${s}GiB.json"); done
    "$PY" "$HERE/report.py" "${FINAL_ARGS[@]}" || STATUS=1
fi
((MISMATCH == 0)) || STATUS=1
((EXTRA_STATUS == 0)) || STATUS=1
if ((STATUS != 0)); then
    echo "bench: FAILED (see the !!! lines above)" >&2
fi
exit $STATUS
