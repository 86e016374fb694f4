#!/usr/bin/env python3
"""Tables and JSON for tests/bench/run.sh.

  report.py table --runs RUNS.tsv --size N --meta META.json --tools "..." --json OUT.json
      One markdown table for one image size, the targets line, and OUT.json.
  report.py final [--strict] --tools "..." RESULTS.json...
      The memory flatness line across sizes; exit 1 when a selected tool was
      not measured somewhere or a restore did not match (--strict: or a
      target was missed).

Numbers come only from measured runs: a (tool, phase) without a successful
run shows no number, only why.
"""
import argparse
import json
import os
import statistics
import sys

PHASES = ["full", "incremental", "restore"]
# (phase, minimum ratio of bunker MB/s to restic MB/s) -- DESIGN.md "Performance targets"
RATIO_TARGETS = [("full", 4.0), ("incremental", 5.0), ("restore", 3.5)]
RSS_TARGET_MIB = 128.0
FLAT_TOLERANCE = 0.10  # 4 GiB peak RSS may exceed the 1 GiB one by at most 10%
TOOL_NAMES = {"bunker": "bunker-agent", "restic": "restic", "borg": "borg"}


def read_runs(path, size):
    runs = []
    with open(path) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) < 11 or p[0] != str(size):
                continue
            r = {"tool": p[1], "phase": p[2], "rep": int(p[3]), "status": p[4], "reason": p[10]}
            if p[4] in ("ok", "mismatch"):
                r.update(elapsed_s=float(p[5]), user_s=float(p[6]), sys_s=float(p[7]), max_rss_kib=int(p[8]))
                if len(p) > 11 and p[11] not in ("", "-"):
                    # CPU seconds other processes used during this run.
                    r["other_cpu_s"] = float(p[11])
                if len(p) > 14 and p[14] not in ("", "-"):
                    r["flush_s"] = float(p[14])  # `sync` right after the run
                if len(p) > 13 and p[13] not in ("", "-"):
                    r["repo_bytes_after"] = int(p[13])
                if r["tool"] == "bunker" and len(p) > 12 and os.path.exists(p[12]):
                    # bunker-agent --json: keep what it says about the run.
                    with open(p[12], errors="replace") as o:
                        text = o.read()
                    try:
                        r["tool_output"] = json.loads(text)
                    except ValueError:
                        if text.strip():
                            r["tool_output"] = text[-4000:]
            if p[9] != "-" and os.path.exists(p[9]):
                with open(p[9], errors="replace") as e:
                    r["stderr_tail"] = e.read().splitlines()[-20:]
            runs.append(r)
    return runs


BUSY_WARN = 0.10  # other processes used > 10% of the machine's CPU during a run


def busy_fraction(r, nproc):
    if r.get("other_cpu_s") is None or not r.get("elapsed_s"):
        return None
    return r["other_cpu_s"] / (r["elapsed_s"] * nproc)


def summarize(runs, tools, nbytes, nproc):
    rows = []
    for tool in tools:
        for phase in PHASES:
            rs = [r for r in runs if r["tool"] == tool and r["phase"] == phase]
            measured = [r for r in rs if r["status"] in ("ok", "mismatch")]
            bad = [r for r in rs if r["status"] not in ("ok",)]
            row = {"tool": tool, "phase": phase, "runs": len(rs), "runs_measured": len(measured)}
            if measured and not [r for r in bad if r["status"] != "mismatch"]:
                el = statistics.median(r["elapsed_s"] for r in measured)
                row["elapsed_s"] = el
                row["mb_per_s"] = nbytes / 1e6 / el if el > 0 else None
                row["cpu_s"] = statistics.median(r["user_s"] + r["sys_s"] for r in measured)
                row["peak_rss_mib"] = max(r["max_rss_kib"] for r in measured) / 1024.0
                fl = [r["elapsed_s"] + r["flush_s"] for r in measured if "flush_s" in r]
                if len(fl) == len(measured):
                    row["mb_per_s_incl_flush"] = nbytes / 1e6 / statistics.median(fl)
                sizes = [r["repo_bytes_after"] for r in measured if "repo_bytes_after" in r]
                if sizes:
                    row["repo_bytes_after"] = sizes[-1]
                busy = [b for b in (busy_fraction(r, nproc) for r in measured) if b is not None]
                if busy:
                    row["max_other_cpu_fraction"] = max(busy)
                mism = [r for r in measured if r["status"] == "mismatch"]
                row["status"] = "mismatch" if mism else "ok"
                if mism:
                    row["reason"] = mism[0]["reason"]
            else:
                row["status"] = "not measured"
                reasons = []
                for r in bad:
                    if r["reason"] not in reasons:
                        reasons.append(r["reason"])
                row["reason"] = "; ".join(reasons) or "no run recorded"
                for r in bad:
                    if "stderr_tail" in r:
                        row["stderr_tail"] = r["stderr_tail"]
                        break
            rows.append(row)
    by = {(r["tool"], r["phase"]): r for r in rows}
    for row in rows:
        ref = by.get(("restic", row["phase"]))
        if row.get("mb_per_s") and ref and ref.get("status") == "ok" and ref.get("mb_per_s"):
            row["ratio_to_restic"] = row["mb_per_s"] / ref["mb_per_s"]
    return rows


def targets(rows, tools):
    by = {(r["tool"], r["phase"]): r for r in rows}
    out = []
    for phase, need in RATIO_TARGETS:
        t = {"name": "%s >= %gx restic" % (phase, need), "threshold": need}
        b, r = by.get(("bunker", phase)), by.get(("restic", phase))
        if "bunker" not in tools or b is None:
            t["verdict"] = "n/a (bunker not selected)"
        elif b["status"] == "not measured":
            t["verdict"] = "NOT MEASURED"
        elif b["status"] == "mismatch":
            t["verdict"] = "FAIL (restored image differs)"
        elif "restic" not in tools or r is None or r["status"] != "ok":
            t["verdict"] = "n/a (restic not measured)"
        else:
            t["value"] = b["ratio_to_restic"]
            t["verdict"] = "PASS" if b["ratio_to_restic"] >= need else "MISS"
        out.append(t)
    t = {"name": "bunker peak RSS <= %g MiB" % RSS_TARGET_MIB, "threshold": RSS_TARGET_MIB}
    bs = [r for r in rows if r["tool"] == "bunker" and "peak_rss_mib" in r]
    if "bunker" not in tools:
        t["verdict"] = "n/a (bunker not selected)"
    elif not bs:
        t["verdict"] = "NOT MEASURED"
    else:
        t["value"] = max(r["peak_rss_mib"] for r in bs)
        t["verdict"] = "PASS" if t["value"] <= RSS_TARGET_MIB else "MISS"
        if len(bs) < len(PHASES):
            t["verdict"] += " (only %d of %d phases measured)" % (len(bs), len(PHASES))
    out.append(t)
    return out


def fmt(v, spec):
    return "—" if v is None else format(v, spec)


def table_markdown(rows, meta, repeat):
    size = meta["size_gib"]
    lines = [
        "### %d GiB image (%d bytes), %d run(s) per row, median shown" % (size, meta["image_bytes"], repeat),
        "",
        "MB/s = image bytes / elapsed s, decimal MB (10^6 bytes); CPU s = user + sys (median);"
        " peak RSS = max over runs; × restic = MB/s ÷ restic MB/s in the same phase.",
        "",
        "| tool | phase | runs | MB/s | CPU s | peak RSS MiB | × restic | notes |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        note = ""
        if r["status"] == "not measured":
            note = "NOT MEASURED: " + r["reason"]
        elif r["status"] == "mismatch":
            note = "RESTORED IMAGE DIFFERS: " + r["reason"]
        if r.get("max_other_cpu_fraction", 0) > BUSY_WARN:
            note = ("busy machine: other processes used up to %.0f%% of the CPU; " % (
                100 * r["max_other_cpu_fraction"]) + note).rstrip("; ")
        lines.append("| %s | %s | %d/%d | %s | %s | %s | %s | %s |" % (
            TOOL_NAMES[r["tool"]], r["phase"], r["runs_measured"], r["runs"],
            fmt(r.get("mb_per_s"), ".0f"), fmt(r.get("cpu_s"), ".2f"),
            fmt(r.get("peak_rss_mib"), ".0f"),
            fmt(r.get("ratio_to_restic"), ".2f") + ("×" if "ratio_to_restic" in r else ""),
            note.replace("|", "\\|")))
    return "\n".join(lines)


def targets_line(ts):
    parts = []
    for t in ts:
        if "value" in t and "RSS" in t["name"]:
            parts.append("%s: %.0f MiB %s" % (t["name"], t["value"], t["verdict"]))
        elif "value" in t:
            parts.append("%s: %.2fx %s" % (t["name"], t["value"], t["verdict"]))
        else:
            parts.append("%s: %s" % (t["name"], t["verdict"]))
    return "targets: " + " | ".join(parts)


def cmd_table(a):
    meta = json.load(open(a.meta))
    tools = a.tools.split()
    runs = read_runs(a.runs, a.size)
    rows = summarize(runs, tools, meta["image_bytes"], meta.get("nproc") or 1)
    ts = targets(rows, tools)
    md = table_markdown(rows, meta, meta["repeat"])
    tl = targets_line(ts)
    print()
    print(md)
    print()
    print(tl)
    st = meta.get("settings", {})
    print("settings: " + " | ".join("%s: %s" % (TOOL_NAMES[t], " ".join(st[t].split()))
                                    for t in tools if t in st)
          + (" (restic repository v%s)" % meta["restic_repo_version"] if "restic_repo_version" in meta else ""))
    repo = ["%s %s" % (TOOL_NAMES[r["tool"]], " -> ".join(
                "%.0f MiB" % (x["repo_bytes_after"] / 2**20) for x in rows
                if x["tool"] == r["tool"] and "repo_bytes_after" in x))
            for r in rows if r["phase"] == "full" and "repo_bytes_after" in r]
    if repo:
        print("repository size after full -> incremental: " + "; ".join(repo))
    dur = ["%s %.0f MB/s" % (TOOL_NAMES[r["tool"]], r["mb_per_s_incl_flush"]) for r in rows
           if r["phase"] == "restore" and r["status"] == "ok" and "mb_per_s_incl_flush" in r]
    if dur:
        print("restore incl. flush to disk (a `sync` after it; bunker-agent fdatasyncs its target, "
              "restic and borg do not): " + "; ".join(dur))
    busy = [r for r in rows if r.get("max_other_cpu_fraction", 0) > BUSY_WARN]
    if busy:
        print("WARNING: %d of %d rows ran while other processes used > %d%% of the CPU: "
              "those numbers are noisy, rerun on an idle machine (REPEAT=3 helps)."
              % (len(busy), len([r for r in rows if "mb_per_s" in r]), round(100 * BUSY_WARN)))
    for r in rows:
        if r["status"] == "not measured" and r.get("stderr_tail"):
            print("\n%s %s could not be measured: %s\n  stderr:\n    %s" % (
                TOOL_NAMES[r["tool"]], r["phase"], r["reason"], "\n    ".join(r["stderr_tail"])))
    print()
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump({"meta": meta, "tools": tools, "rows": rows, "targets": ts,
                   "table_markdown": md, "targets_line": tl, "runs": runs}, f, indent=2)
    print("results written to %s" % a.json)
    return 0


def cmd_final(a):
    tools = a.tools.split()
    res = []
    rc = 0
    for p in a.results:
        if not os.path.exists(p):
            print("!!! %s missing: that size did not complete" % p)
            rc = 1
            continue
        res.append(json.load(open(p)))
    res.sort(key=lambda d: d["meta"]["size_gib"])

    def peak(d, tool):
        v = [r["peak_rss_mib"] for r in d["rows"] if r["tool"] == tool and "peak_rss_mib" in r]
        return max(v) if v else None

    if len(res) >= 2:
        lo, hi = res[0], res[-1]
        sl, sh = lo["meta"]["size_gib"], hi["meta"]["size_gib"]
        parts = []
        for tool in tools:
            pl, ph = peak(lo, tool), peak(hi, tool)
            if pl is None or ph is None:
                parts.append("%s: not measured at both sizes" % TOOL_NAMES[tool])
                continue
            grow = ph / pl - 1
            s = "%s %.0f MiB at %d GiB -> %.0f MiB at %d GiB (%+.0f%%)" % (
                TOOL_NAMES[tool], pl, sl, ph, sh, 100 * grow)
            if tool == "bunker":
                s += " %s" % ("FLAT" if grow <= FLAT_TOLERANCE else "NOT FLAT")
                s += " (flat = at most +%d%%)" % round(100 * FLAT_TOLERANCE)
            parts.append(s)
        print("memory flatness: " + "; ".join(parts))
    else:
        print("memory flatness: needs two sizes (SIZES=\"1 4\"); only %s GiB ran"
              % ", ".join(str(d["meta"]["size_gib"]) for d in res))

    for d in res:
        size = d["meta"]["size_gib"]
        for r in d["rows"]:
            if r["status"] == "not measured":
                print("!!! %d GiB: %s %s NOT MEASURED: %s" % (size, TOOL_NAMES[r["tool"]], r["phase"], r["reason"]))
                rc = 1
            elif r["status"] == "mismatch":
                print("!!! %d GiB: %s restore produced a DIFFERENT image" % (size, TOOL_NAMES[r["tool"]]))
                rc = 1
        print("%d GiB %s" % (size, d["targets_line"]))
        if a.strict and any(t["verdict"].startswith(("MISS", "FAIL", "NOT MEASURED")) for t in d["targets"]):
            rc = 1
    return rc


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("table")
    t.add_argument("--runs", required=True)
    t.add_argument("--size", type=int, required=True)
    t.add_argument("--meta", required=True)
    t.add_argument("--tools", required=True)
    t.add_argument("--json", required=True)
    f = sub.add_parser("final")
    f.add_argument("--tools", required=True)
    f.add_argument("--strict", action="store_true")
    f.add_argument("results", nargs="*")
    a = ap.parse_args()
    return cmd_table(a) if a.cmd == "table" else cmd_final(a)


if __name__ == "__main__":
    sys.exit(main())
