#!/usr/bin/env python3
"""Tables and JSON for tests/bench/run.sh.

  report.py table --runs RUNS.tsv --size N --meta META.json --tools "..." --json OUT.json
      One markdown table for one image size, the targets line, and OUT.json.
  report.py extra --runs RUNS.tsv --size N --image-bytes B --extras "s3 nfs verify" --json OUT.json
      The extra tables (remote locations, verification cost) for one size;
      exit 1 when a selected row was not measured or a restore did not match.
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
TOOL_NAMES = {"bunker": "bunker-agent", "restic": "restic", "borg": "borg", "restic-v1": "restic v1 repo"}
# The targets compare with "restic": restic on its defaults. "restic-v1" (a v1
# repository, no compression) is a second reference, reported but not a
# target: which of the two is faster depends on the image size and the run.
V1_REF = "restic-v1"


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
                if len(p) > 15 and p[15] not in ("", "-"):
                    r["bytes_moved"] = int(p[15])  # extra tables: bytes the run stored/copied
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


def v1_comparison(rows):
    """bunker-agent MB/s over restic-v1's, per phase, where both were measured."""
    by = {(r["tool"], r["phase"]): r for r in rows}
    out = {}
    for phase in PHASES:
        b, r = by.get(("bunker", phase)), by.get((V1_REF, phase))
        if b and r and b.get("status") == "ok" and r.get("status") == "ok" and r.get("mb_per_s"):
            out[phase] = b["mb_per_s"] / r["mb_per_s"]
    return out


def v1_line(ratios):
    if not ratios:
        return None
    return ("also vs restic with a v1 repository (no compression; not a target): " +
            ", ".join("%s %.2fx" % (p, ratios[p]) for p in PHASES if p in ratios))


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
    vs_v1 = v1_comparison(rows)
    sl = v1_line(vs_v1)
    print()
    print(md)
    print()
    print(tl)
    if sl:
        print(sl)
    st = meta.get("settings", {})
    print("settings: " + " | ".join("%s: %s" % (TOOL_NAMES[t], " ".join(st[t].split()))
                                    for t in tools if t in st)
          + (" (restic repository v%s)" % meta["restic_repo_version"] if "restic_repo_version" in meta else "")
          + (" (restic-v1 repository v%s)" % meta["restic_v1_repo_version"]
             if "restic_v1_repo_version" in meta else ""))
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
                   "table_markdown": md, "targets_line": tl, "vs_restic_v1": vs_v1,
                   "vs_restic_v1_line": sl, "runs": runs}, f, indent=2)
    print("results written to %s" % a.json)
    return 0


# ---- extra tables -------------------------------------------------------------

EXTRA_ROWS = {
    "s3": [("bunker-s3", "full"), ("restic-s3", "full"), ("bunker-s3", "restore"), ("restic-s3", "restore")],
    "nfs": [("bunker-nfs", "full"), ("nfs-cp", "full"), ("bunker-nfs", "restore"), ("nfs-cp", "restore")],
    "verify": [("bunker-verify", "full"), ("bunker-noverify", "full")],
}
EXTRA_NAMES = {
    ("bunker-s3", "full"): "bunker-agent backup -> s3rver",
    ("restic-s3", "full"): "restic backup -> s3rver",
    ("bunker-s3", "restore"): "bunker-agent restore <- s3rver",
    ("restic-s3", "restore"): "restic restore <- s3rver",
    ("bunker-nfs", "full"): "bunker-agent backup -> NFS",
    ("nfs-cp", "full"): "nfs-cp write of the same bytes",
    ("bunker-nfs", "restore"): "bunker-agent restore <- NFS",
    ("nfs-cp", "restore"): "nfs-cp read of the same bytes",
    ("bunker-verify", "full"): "bunker-agent full, verify on (default)",
    ("bunker-noverify", "full"): "bunker-agent full, --no-verify-before-upload",
}
NFS_TARGET = 0.80  # bunker-agent's stored-bytes throughput >= 80% of nfs-cp's (issue 4)


def summarize_extra(runs, extras, image_bytes, nproc):
    rows = []
    for x in extras:
        for tool, phase in EXTRA_ROWS[x]:
            rs = [r for r in runs if r["tool"] == tool and r["phase"] == phase]
            measured = [r for r in rs if r["status"] in ("ok", "mismatch")]
            bad = [r for r in rs if r["status"] not in ("ok", "mismatch")]
            row = {"table": x, "tool": tool, "phase": phase, "name": EXTRA_NAMES[(tool, phase)],
                   "runs": len(rs), "runs_measured": len(measured)}
            if measured:
                el = statistics.median(r["elapsed_s"] for r in measured)
                row["elapsed_s"] = el
                row["cpu_s"] = statistics.median(r["user_s"] + r["sys_s"] for r in measured)
                row["peak_rss_mib"] = max(r["max_rss_kib"] for r in measured) / 1024.0
                if tool != "nfs-cp":
                    row["mb_per_s"] = image_bytes / 1e6 / el if el > 0 else None
                moved = [r["bytes_moved"] for r in measured if "bytes_moved" in r]
                if moved:
                    row["bytes_moved"] = int(statistics.median(moved))
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
    # NFS: the bytes bunker stored, read back on restore, through the same transport.
    nb = by.get(("bunker-nfs", "full"))
    if nb and "bytes_moved" in nb:
        r = by.get(("bunker-nfs", "restore"))
        if r and "elapsed_s" in r:
            r["bytes_moved"] = nb["bytes_moved"]
    for row in rows:
        if row.get("bytes_moved") and row.get("elapsed_s"):
            row["stored_mb_per_s"] = row["bytes_moved"] / 1e6 / row["elapsed_s"]
    ok = lambda r: r is not None and r.get("status") == "ok"
    for phase in ("full", "restore"):
        b, r = by.get(("bunker-s3", phase)), by.get(("restic-s3", phase))
        if ok(b) and ok(r) and b.get("mb_per_s") and r.get("mb_per_s"):
            b["vs"] = b["mb_per_s"] / r["mb_per_s"]
            b["vs_text"] = "%.2f× restic" % b["vs"]
        b, c = by.get(("bunker-nfs", phase)), by.get(("nfs-cp", phase))
        if ok(b) and ok(c) and b.get("stored_mb_per_s") and c.get("stored_mb_per_s"):
            b["vs"] = b["stored_mb_per_s"] / c["stored_mb_per_s"]
            b["vs_text"] = "%.0f%% of nfs-cp %s" % (100 * b["vs"], "write" if phase == "full" else "read")
    on, off = by.get(("bunker-verify", "full")), by.get(("bunker-noverify", "full"))
    if ok(on) and ok(off) and on.get("mb_per_s") and off.get("mb_per_s"):
        on["vs"] = on["mb_per_s"] / off["mb_per_s"]
        on["vs_text"] = "%.0f%% of verify-off (verification costs %.0f%%)" % (100 * on["vs"], 100 * (1 - on["vs"]))
    return rows


def extra_markdown(rows, size, image_bytes):
    lines = [
        "### extra tables, %d GiB image (%d bytes), median of runs" % (size, image_bytes),
        "",
        "MB/s = image bytes / elapsed s; stored MB/s = bytes written to (or read from) the"
        " location / elapsed s (nfs-cp rows: the same bytes bunker-agent stored).",
        "",
        "| row | runs | MB/s | stored MB/s | CPU s | peak RSS MiB | compared | notes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        note = ""
        if r["status"] == "not measured":
            note = "NOT MEASURED: " + r["reason"]
        elif r["status"] == "mismatch":
            note = "RESTORED DATA DIFFERS: " + r["reason"]
        if r.get("max_other_cpu_fraction", 0) > BUSY_WARN:
            note = ("busy machine: other processes used up to %.0f%% of the CPU; " % (
                100 * r["max_other_cpu_fraction"]) + note).rstrip("; ")
        lines.append("| %s | %d/%d | %s | %s | %s | %s | %s | %s |" % (
            r["name"], r["runs_measured"], r["runs"], fmt(r.get("mb_per_s"), ".0f"),
            fmt(r.get("stored_mb_per_s"), ".0f"), fmt(r.get("cpu_s"), ".2f"),
            fmt(r.get("peak_rss_mib"), ".0f"), r.get("vs_text", ""), note.replace("|", "\\|")))
    return "\n".join(lines)


def cmd_extra(a):
    extras = a.extras.split()
    runs = read_runs(a.runs, a.size)
    rows = summarize_extra(runs, extras, a.image_bytes, os.cpu_count() or 1)
    md = extra_markdown(rows, a.size, a.image_bytes)
    print()
    print(md)
    print()
    verdicts = []
    if "nfs" in extras:
        b = next((r for r in rows if (r["tool"], r["phase"]) == ("bunker-nfs", "full")), None)
        if b is None or "vs" not in b:
            verdicts.append("NFS stored bytes >= %d%% of nfs-cp: NOT MEASURED" % (100 * NFS_TARGET))
        else:
            verdicts.append("NFS stored bytes >= %d%% of nfs-cp: %.0f%% %s" % (
                100 * NFS_TARGET, 100 * b["vs"], "PASS" if b["vs"] >= NFS_TARGET else "MISS"))
    if verdicts:
        print("targets: " + " | ".join(verdicts))
    busy = [r for r in rows if r.get("max_other_cpu_fraction", 0) > BUSY_WARN]
    if busy:
        print("WARNING: %d rows ran while other processes used > %d%% of the CPU: those numbers are noisy."
              % (len(busy), round(100 * BUSY_WARN)))
    rc = 0
    for r in rows:
        if r["status"] != "ok":
            rc = 1
            if r.get("stderr_tail"):
                print("\n%s could not be measured: %s\n  stderr:\n    %s" % (
                    r["name"], r["reason"], "\n    ".join(r["stderr_tail"])))
    print()
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump({"size_gib": a.size, "image_bytes": a.image_bytes, "extras": extras, "rows": rows,
                   "table_markdown": md, "targets": verdicts, "runs": runs}, f, indent=2)
    print("results written to %s" % a.json)
    return rc


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
    elif res:
        print("memory flatness: needs two sizes (SIZES=\"1 4\"); only %s GiB ran"
              % ", ".join(str(d["meta"]["size_gib"]) for d in res))
    else:
        print("memory flatness: not measured (no size completed)")

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
        if d.get("vs_restic_v1_line"):
            print("%d GiB %s" % (size, d["vs_restic_v1_line"]))
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
    x = sub.add_parser("extra")
    x.add_argument("--runs", required=True)
    x.add_argument("--size", type=int, required=True)
    x.add_argument("--image-bytes", type=int, required=True)
    x.add_argument("--extras", required=True)
    x.add_argument("--json", required=True)
    f = sub.add_parser("final")
    f.add_argument("--tools", required=True)
    f.add_argument("--strict", action="store_true")
    f.add_argument("results", nargs="*")
    a = ap.parse_args()
    return {"table": cmd_table, "extra": cmd_extra, "final": cmd_final}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
