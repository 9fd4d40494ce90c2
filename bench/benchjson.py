#!/usr/bin/env python3
"""Read fltport-bench --json files: chart data for bench/chart.gp, Markdown for docs/BENCHMARKS.md.

  benchjson.py chart-data RUN.json...   one line per measured port row: name, then the median
                                        in µs of each run (NaN where a run lacks it); gnuplot
                                        input (`make bench-chart`)
  benchjson.py table RUN.json           the run's rows as a Markdown table, then its targets
  benchjson.py spread RUN.json...       per row, the lowest and highest median, median ratio
                                        and mallocs/op over several runs (Markdown)
  benchjson.py targets RUN.json...      per target, the lowest and highest value over several
                                        runs and how many runs met it (Markdown)
"""
import json
import math
import sys


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def run_title(run):
    how = "pinned, taskset -c " + run["affinity"] if run["pinned"] else "unpinned"
    return "%s (%s, load %.1f)" % (run["date"][:16].replace("T", " "), how, run["load"])


def measured(row):
    return row["skipped"] is None and row["median_us"] is not None


def none_last(x):
    return (x is None, x or 0)


def fmt(x, digits=2):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return "%.*f" % (digits, x)


def chart_data(paths):
    runs = [load(p) for p in paths]
    names = []
    for run in runs:
        for row in run["rows"]:
            if row["name"].startswith(("e2e-", "clamav-")) or not measured(row):
                continue
            if row["name"] not in names:
                names.append(row["name"])
    print("row\t" + "\t".join('"%s"' % run_title(r) for r in runs))
    for name in names:
        values = []
        for run in runs:
            row = next((r for r in run["rows"] if r["name"] == name), None)
            values.append("%.3f" % row["median_us"] if row and measured(row) else "NaN")
        print(name + "\t" + "\t".join(values))


def table(path):
    run = load(path)
    print("| row | ops/s | median µs | p99 µs | ratio | median ratio | CPU µs/op | csw/op "
          "| mallocs/op | baseline |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in run["rows"]:
        if not measured(row):
            print("| `%s` | skipped: %s | | | | | | | | %s |"
                  % (row["name"], row["skipped"] or "not run", row["baseline"] or ""))
            continue
        print("| `%s` | %.0f | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            row["name"], row["ops_per_s"], fmt(row["median_us"]), fmt(row["p99_us"]),
            fmt(row["ratio"]), fmt(row["median_ratio"]), fmt(row["cpu_us_per_op"]),
            fmt(row["csw_per_op"]), fmt(row["mallocs_per_op"]), row["baseline"] or "—"))
    print()
    for goal in run["targets"]:
        pair = goal["row"] + (" / " + goal["other"] if goal["other"] else "")
        print("- %s (`%s`): %s: **%s**" % (goal["what"], pair, goal["target"], goal["verdict"]))


def spread(paths):
    runs = [load(p) for p in paths]
    print("| row | median µs, lowest–highest | median ratio, lowest–highest | mallocs/op |")
    print("|---|---:|---:|---:|")
    for row0 in runs[0]["rows"]:
        rows = [next((r for r in run["rows"] if r["name"] == row0["name"]), None) for run in runs]
        rows = [r for r in rows if r and measured(r)]
        if not rows:
            continue
        med = [r["median_us"] for r in rows]
        # null: the baseline was skipped (ClamAV's rows without ClamAV)
        rat = [r["median_ratio"] for r in rows if r["median_ratio"] is not None] or [None]
        mal = sorted({fmt(r["mallocs_per_op"]) for r in rows})
        print("| `%s` | %s–%s | %s–%s | %s |" % (
            row0["name"], fmt(min(med)), fmt(max(med)), fmt(min(rat, key=none_last)),
            fmt(max(rat, key=none_last)), ", ".join(mal)))


def targets(paths):
    runs = [load(p) for p in paths]
    print("| target | rows | value, lowest–highest | met in |")
    print("|---|---|---:|---:|")
    for goal in runs[0]["targets"]:
        same = [g for run in runs for g in run["targets"]
                if (g["what"], g["row"], g["other"]) == (goal["what"], goal["row"], goal["other"])]
        values = [g["value"] for g in same if g["met"] is not None]
        pair = goal["row"] + (" / " + goal["other"] if goal["other"] else "")
        if not values:
            print("| %s: %s | `%s` | not measured | — |" % (goal["what"], goal["target"], pair))
            continue
        met = sum(1 for g in same if g["met"])
        print("| %s: %s | `%s` | %s–%s | %d of %d |" % (goal["what"], goal["target"], pair,
                                                      fmt(min(values)), fmt(max(values)), met,
                                                      len(values)))


def main(argv):
    commands = ("chart-data", "table", "spread", "targets")
    if len(argv) < 3 or argv[1] not in commands:
        sys.stderr.write(__doc__)
        return 2
    if argv[1] == "chart-data":
        chart_data(argv[2:])
    elif argv[1] == "table":
        table(argv[2])
    elif argv[1] == "spread":
        spread(argv[2:])
    else:
        targets(argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
