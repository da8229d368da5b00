#!/usr/bin/env python3
"""The benchmark report (Python 3 stdlib only), used by scripts/bench.sh.

  report.py machine SCRATCH_DIR   prints the machine's description as JSON
  report.py report RESULTS_DIR    reads RESULTS_DIR/{latest,machine,timings}.json,
                                  writes RESULTS_DIR/latest.md, the plot data
                                  (*.dat) and, when gnuplot is installed, the
                                  plots (*.png)

latest.json holds one JSON object per line, as bench/bench_util.h prints them.
"""

import datetime
import json
import os
import platform
import shutil
import subprocess
import sys

AREAS = ["storage", "vfs", "checkpoints", "server", "postgres", "object_storage"]


def run(cmd, cwd=None):
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                              timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine(scratch):
    """Cores, memory, disk (device, model, filesystem) of scratch, kernel, date, commit."""
    info = {"cores": os.cpu_count(), "date": datetime.datetime.now(
        datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kernel": platform.release(), "scratch_dir": scratch,
        "mode": "quick (BRANCHDB_BENCH_QUICK=1)" if os.environ.get("BRANCHDB_BENCH_QUICK") == "1"
        else "full"}
    try:
        with open("/proc/cpuinfo") as f:
            models = [l.split(":", 1)[1].strip() for l in f if l.startswith("model name")]
        info["cpu"] = models[0] if models else platform.machine()
        with open("/proc/meminfo") as f:
            kb = int(next(l for l in f if l.startswith("MemTotal")).split()[1])
        info["memory_gib"] = round(kb / 1024 / 1024, 1)
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except (OSError, StopIteration, ValueError):
        pass
    df = run(["df", "--output=source,fstype,size", scratch]).splitlines()
    if len(df) == 2:
        source, fstype, size = df[1].split()
        info["filesystem"] = fstype
        info["device"] = source
        info["device_size_gb"] = round(int(size) / 1e6) if size.isdigit() else size
        dev = os.path.basename(os.path.realpath(source))
        parent = run(["lsblk", "-no", "PKNAME", "/dev/" + dev]) or dev
        model = run(["lsblk", "-dno", "MODEL", "/dev/" + parent.splitlines()[0]])
        driver = os.path.basename(os.path.realpath(f"/sys/block/{parent}/device/driver"))
        desc = model or (driver if driver not in ("", "driver") else "")
        if dev.startswith("vd"):
            desc = (desc + " " if desc else "") + "(virtio block device)"
        info["disk_model"] = desc.strip() or "unknown"
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit = run(["git", "rev-parse", "--short", "HEAD"], cwd=repo)
    if commit:
        dirty = run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo)
        info["git_commit"] = commit + (" (with uncommitted changes)" if dirty else "")
    return info


def load_lines(path):
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return out


def num(v):
    if v is None:
        return ""
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 0.01:
        return f"{v:.3g}" if a < 1 else f"{v:.2f}"
    return f"{v:.2g}"


def row(m):
    value = f"{num(m['value'])} {m['unit']}"
    base = ""
    if m.get("baseline") is not None:
        base = f"{num(m['baseline'])} ({m['baseline_name']})"
    ratio = f"{num(m['ratio'])}x" if m.get("ratio") is not None else ""
    target = m.get("target") or "— (context)"
    met = {True: "met", False: "**not met**", None: ""}[m.get("met")]
    arrow = "↓" if m.get("direction") == "lower" else "↑"
    load = f" (load {m['load1']:.2f})" if m.get("load1") is not None else ""
    return f"| {m['metric']} {arrow}{load} | {value} | {base} | {ratio} | {target} | {met} |"


def by_metric(lines, prefix, key):
    """{x: line} for lines whose metric starts with prefix and that carry key."""
    return {m[key]: m for m in lines if m["metric"].startswith(prefix) and key in m}


def write_plots(lines, out):
    """Writes the .dat files; draws the PNGs with gnuplot. Returns notes for the report."""
    notes = []
    p50 = by_metric(lines, "branch_create_p50_", "db_mb")
    p99 = by_metric(lines, "branch_create_p99_", "db_mb")
    writers = by_metric(lines, "commit_rate_", "writers")
    raw = by_metric(lines, "raw_fdatasync_rate_", "writers")
    plots = []
    if p50:
        dat = os.path.join(out, "branch_create.dat")
        with open(dat, "w") as f:
            f.write("# db_mb branchdb_p50_ms branchdb_p99_ms copy_ms (cp+fsync)\n")
            for x in sorted(p50):
                f.write(f"{x:g} {p50[x]['value']:g} {p99.get(x, p50[x])['value']:g} "
                        f"{p50[x]['baseline']:g}\n")
        plots.append(("branch_create", f"""
set title "Branch creation time vs database size"
set xlabel "database size (MB)"; set ylabel "time (ms)"
set logscale xy; set grid; set key top left; set xrange [0.7:1500]
plot "{dat}" using 1:2 with linespoints lw 2 title "branchdb create branch (p50)", \\
     "{dat}" using 1:3 with linespoints dt 2 title "branchdb create branch (p99)", \\
     "{dat}" using 1:4 with linespoints lw 2 title "copy the file (cp + fsync)"
"""))
    if writers:
        dat = os.path.join(out, "commit_writers.dat")
        with open(dat, "w") as f:
            f.write("# writers branchdb_txn_s native_sqlite_txn_s raw_fdatasync_s\n")
            for x in sorted(writers):
                r = raw[x]["value"] if x in raw else float("nan")
                f.write(f"{x:g} {writers[x]['value']:g} {writers[x]['baseline']:g} {r:g}\n")
        plots.append(("commit_writers", f"""
set title "Durable commits/s vs concurrent writers (single-row INSERT transactions)"
set xlabel "concurrent writers"; set ylabel "commits per second"
set logscale x 2; set logscale y; set grid; set key bottom right
set xrange [0.8:20]; set xtics (1, 2, 4, 8, 16)
plot "{dat}" using 1:2 with linespoints lw 2 title "branchdb (a branch per writer)", \\
     "{dat}" using 1:3 with linespoints lw 2 title "native SQLite WAL, sync=FULL (a file per writer)", \\
     "{dat}" using 1:4 with linespoints dt 2 title "raw disk: 4 KiB append + fdatasync (a file per writer)"
"""))
    rates = [m for m in lines if m["bench"] == "postgres" and m["metric"].endswith("_rate")]
    select = by_metric(rates, "point_select_", "clients")
    insert = by_metric(rates, "insert_one_db_", "clients")
    if select or insert:
        dat = os.path.join(out, "requests_clients.dat")
        with open(dat, "w") as f:
            f.write("# clients branchdb_select postgres_select branchdb_insert postgres_insert "
                    "(requests/s)\n")
            nan = {"value": float("nan"), "baseline": float("nan")}
            for x in sorted(set(select) | set(insert)):
                s, i = select.get(x, nan), insert.get(x, nan)
                f.write(f"{x:g} {s['value']:g} {s['baseline']:g} {i['value']:g} "
                        f"{i['baseline']:g}\n")
        plots.append(("requests_clients", f"""
set title "Requests/s vs clients: branchdb (HTTP) and PostgreSQL 15 (libpq), same run"
set xlabel "concurrent clients (keep-alive connections)"; set ylabel "requests per second"
set logscale x 2; set logscale y; set grid; set key outside bottom center horizontal
set xrange [0.8:10]; set xtics (1, 2, 4, 8)
plot "{dat}" using 1:2 with linespoints lw 2 title "branchdb point SELECT", \\
     "{dat}" using 1:3 with linespoints lw 2 dt 2 title "Postgres point SELECT", \\
     "{dat}" using 1:4 with linespoints lw 2 title "branchdb durable INSERT", \\
     "{dat}" using 1:5 with linespoints lw 2 dt 2 title "Postgres durable INSERT"
"""))
    gnuplot = shutil.which("gnuplot")
    for name, script in plots:
        png = os.path.join(out, name + ".png")
        if gnuplot is None:
            notes.append(f"gnuplot is not installed: no {name}.png (data in {name}.dat)")
            continue
        ok = False
        for term in ("pngcairo size 900,600", "png size 900,600"):
            full = f'set terminal {term}\nset output "{png}"\n{script}'
            r = subprocess.run([gnuplot], input=full, text=True, capture_output=True)
            if r.returncode == 0 and os.path.exists(png) and os.path.getsize(png) > 0:
                ok = True
                break
        notes.append(f"{name}.png" if ok else f"gnuplot failed on {name}: {r.stderr.strip()}")
    return notes


def report(out):
    lines = load_lines(os.path.join(out, "latest.json"))
    mach = {}
    if os.path.exists(os.path.join(out, "machine.json")):
        with open(os.path.join(out, "machine.json")) as f:
            mach = json.load(f)
    timings = load_lines(os.path.join(out, "timings.json"))
    notes = write_plots(lines, out)
    with_target = [m for m in lines if m.get("met") is not None]
    met = sum(1 for m in with_target if m["met"])
    md = ["# branchdb benchmark report", ""]
    md.append(f"Targets met: **{met} of {len(with_target)}** "
              f"({len(lines) - len(with_target)} context metrics without a target).")
    md.append("")
    md.append("## Machine")
    md.append("")
    for key, label in [("date", "date"), ("git_commit", "git commit"), ("cpu", "cpu"),
                       ("cores", "cores"), ("memory_gib", "memory (GiB)"),
                       ("disk_model", "disk"), ("filesystem", "filesystem"),
                       ("device", "device"), ("device_size_gb", "device size (GB)"),
                       ("scratch_dir", "scratch directory"),
                       ("kernel", "kernel"), ("load_average", "load average at start"),
                       ("mode", "mode")]:
        if key in mach:
            md.append(f"- {label}: {mach[key]}")
    if timings:
        total = sum(t["seconds"] for t in timings)
        parts = ", ".join(f"{t['program']} {t['seconds']:.0f} s"
                          + ("" if t.get("exit", 0) == 0 else f" (exit {t['exit']})")
                          for t in timings)
        md.append(f"- run time: {total:.0f} s ({parts})")
    md.append("")
    md.append("↑: higher is better, ↓: lower is better. ratio > 1 means branchdb beats "
              "the baseline. Every baseline is measured in this run, except where its "
              "name says otherwise. See docs/benchmarks.md for what each metric means.")
    areas = AREAS + sorted({m["bench"] for m in lines} - set(AREAS))
    for area in areas:
        rows = [m for m in lines if m["bench"] == area]
        if not rows:
            continue
        md += ["", f"## {area}", "",
               "| metric | branchdb | baseline | ratio | target | met? |",
               "| --- | --- | --- | --- | --- | --- |"]
        md += [row(m) for m in rows]
    md += ["", "## Plots", ""]
    for n in notes:
        md.append(f"![{n}]({n})" if n.endswith(".png") else f"- {n}")
    with open(os.path.join(out, "latest.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print(f"report: {os.path.join(out, 'latest.md')}: {met} of {len(with_target)} targets met; "
          + "; ".join(notes), file=sys.stderr)


def main(argv):
    if len(argv) == 3 and argv[1] == "machine":
        print(json.dumps(machine(argv[2])))
        return 0
    if len(argv) == 3 and argv[1] == "report":
        report(argv[2])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
