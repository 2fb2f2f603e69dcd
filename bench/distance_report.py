"""The distance section of BENCHMARKS.md, from bench/distance.sh's exports.

bench/report.py includes it in a full run; run alone
(`python3 bench/distance_report.py bench/results BENCHMARKS.md`) it
replaces that section of an existing BENCHMARKS.md in place.
"""
import json
import sys
from pathlib import Path

from compose_report import splice

TITLE = "### The remote backend at a distance"

ROWS = [
    # (label, export prefix, result index)
    ("`ajj run -- true`", "distance_ajj", 0),
    ("`ajj status --json`", "distance_ajj", 1),
    ("no-op `ajj reconcile`", "distance_ajj", 2),
    ("`ajj workspace add` (2 services)", "distance_add", 0),
    ("`docker -H ssh://… ps -q`, a new connection", "distance_docker", 0),
    ("`docker -H ssh://… ps -q` over a ControlMaster", "distance_docker", 1),
    ("`docker --context … ps -q` over a ControlMaster", "distance_docker", 2),
    ("`ajj watch`: a container removed → its replacement created", "distance_watch", None),
]


def times(out, prefix, d, index):
    """The samples of one cell, in seconds; None when it was not measured."""
    if index is None:
        f = out / f"{prefix}_{d}.txt"
        if not f.exists():
            return None
        xs = [float(x) / 1000 for x in f.read_text().split()]
        return xs or None
    f = out / f"{prefix}_{d}.json"
    if not f.exists():
        return None
    results = json.loads(f.read_text())["results"]
    return results[index]["times"] if index < len(results) else None


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] + xs[(n - 1) // 2]) / 2


def section(out):
    delays = sorted({int(p.stem.split("_")[-1]) for p in out.glob("distance_ajj_*.json")})
    if not delays:
        return []
    lines = ["", TITLE, "",
             "`bench/distance.sh` (section 12 of `bench/run`): a real sshd on loopback behind",
             "`bench/delay_relay.py`, which delays every chunk by the one-way time shown; a warm",
             "master. Each cell: the median, and (after the first column) the round trips it",
             "costs over loopback: (time − loopback time) ÷ RTT, RTT = 2 × one way.", ""]
    head = "| command | " + " | ".join(f"{d} ms one way" for d in delays) + " |"
    lines += [head, "|---|" + "---:|" * len(delays)]
    for label, prefix, index in ROWS:
        cells, base = [], None
        for d in delays:
            xs = times(out, prefix, d, index)
            if xs is None:
                cells.append("–")
                continue
            t = median(xs) * 1000
            if base is None:
                base = t
            cell = f"{t:.0f} ms" if t >= 100 else f"{t:.1f} ms"
            if d and base is not None:
                rtt = (t - base) / (2 * d)
                cell += f" ({0.0 if abs(rtt) < 0.05 else rtt:.1f} RTT)"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


if __name__ == "__main__":
    out, target = Path(sys.argv[1]), Path(sys.argv[2])
    splice(target, TITLE, section(out))
    print(f"wrote the distance section of {target}")
