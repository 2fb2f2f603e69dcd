"""The fleet section of BENCHMARKS.md, from bench/scale.sh's exports.

bench/report.py includes it in a full run; run alone
(`python3 bench/scale_report.py bench/results BENCHMARKS.md`) it
replaces that section of an existing BENCHMARKS.md in place.
"""
import json
import sys
from pathlib import Path

TITLE = "### A fleet on one host"


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] + xs[(n - 1) // 2]) / 2


def times(out, name, index=0):
    return json.loads((out / name).read_text())["results"][index]["times"]


def section(out):
    lines = ["", TITLE, "",
             "`bench/scale.sh` (section 11 of `bench/run`): one busybox service per workspace,",
             "Docker's default daemon settings, no `AETHER_NETWORK_POOL`.", ""]
    par = out / "scale_parallel.txt"
    if par.exists():
        t = dict(l.split() for l in par.read_text().split("\n") if l.strip())
        seq, dflt = float(t["parallel"]), float(t["default"])
        lines += ["| new environments in one pass | `AETHER_PARALLEL=1` | default (8) | ratio | target | met |",
                  "|---|---:|---:|---:|---|---|",
                  f"| cold `ajj reconcile` | {seq:.1f} s | {dflt:.1f} s | {dflt / seq:.2f} | ≤ 0.33 | {'yes' if dflt / seq <= 0.33 else '**no**'} |", "",
                  "The engine's own CPU bounds the ratio: on this machine's 2 cores, about 0.5",
                  "(\"The fleet section\" below).", ""]
    cold = {}
    if (out / "scale_cold.txt").exists():
        for l in (out / "scale_cold.txt").read_text().split("\n"):
            if l.strip():
                n, _, s = l.split()
                cold[n] = float(s)
    watch = {}
    if (out / "scale_watch.txt").exists():
        for l in (out / "scale_watch.txt").read_text().split("\n"):
            if l.strip():
                n, rss, *lat = l.split()
                watch[n] = (int(rss) / 1024, median([float(x) for x in lat]))
    lines += ["| workspaces | cold reconcile | no-op reconcile | `docker ps` | `status --all` | ratio | add | forget | watcher RSS | plain add → `.env` |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n in sorted(cold, key=int):
        noop = median(times(out, f"scale_noop_{n}.json")) * 1000
        ps = median(times(out, f"scale_status_{n}.json", 0)) * 1000
        st = median(times(out, f"scale_status_{n}.json", 1)) * 1000
        add = median(times(out, f"scale_add_{n}.json")) * 1000
        forget = median(times(out, f"scale_forget_{n}.json")) * 1000
        rss, lat = watch.get(n, (0, 0))
        lines.append(f"| {n} | {cold[n]:.1f} s | {noop:.1f} ms | {ps:.1f} ms | {st:.1f} ms | {st / ps:.2f} | "
                     f"{add:.0f} ms | {forget:.0f} ms | {rss:.1f} MiB | {lat * 1000:.0f} ms |")
    return lines


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    from compose_report import splice

    out, target = Path(sys.argv[1]), Path(sys.argv[2])
    splice(target, TITLE, section(out))
    print(f"wrote the fleet section of {target}")
