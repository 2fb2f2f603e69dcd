"""The Compose section of BENCHMARKS.md, from bench/compose.sh's exports.

bench/report.py includes it in a full run; run alone
(`python3 bench/compose_report.py bench/results BENCHMARKS.md`) it
replaces that section of an existing BENCHMARKS.md in place.
"""
import json
import sys
from pathlib import Path

TITLE = "### Compose files"


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] + xs[(n - 1) // 2]) / 2


def pooled(out, name):
    """Command → all samples (seconds), pooling interleaved rounds."""
    files = sorted(out.glob(f"{name}.r*.json")) or [out / f"{name}.json"]
    times = {}
    for f in files:
        for r in json.loads(f.read_text())["results"]:
            times.setdefault(r["command"], []).extend(r["times"])
    return times


def pick(times, needle):
    return next(v for c, v in times.items() if needle in c)


def section(out):
    out = Path(out)
    if not (out / "stack_up.json").exists():
        return []
    yes = lambda ok: "yes" if ok else "**no**"
    rows = []
    load = pooled(out, "load20")
    t, y = median(pick(load, "/toml ")) * 1000, median(pick(load, "/yaml ")) * 1000
    rows.append(("`ajj services --json`, 20 services (the load alone): Compose file vs aether.toml",
                 t, y, f"{y - t:+.1f} ms", "≤ 5 ms added", yes(y - t <= 5), len(pick(load, "/yaml "))))
    run = pooled(out, "run20")
    t, y = median(pick(run, "/tw ")) * 1000, median(pick(run, "/yw ")) * 1000
    rows.append(("`ajj run -- true` in a workspace of 20 services (run reads no config)",
                 t, y, f"{y - t:+.1f} ms", "≤ 5 ms added", yes(y - t <= 5), len(pick(run, "/yw "))))
    add = pooled(out, "add20")
    ta, ya = pick(add, "/toml "), pick(add, "/yaml ")
    t, y = median(ta) * 1000, median(ya) * 1000
    # 20 containers on 2 cores vary by seconds; the load's own cost is the
    # first row. Here: no difference beyond the spread of the samples.
    spread = max(max(ta) - min(ta), max(ya) - min(ya)) * 1000
    rows.append(("`ajj workspace add`, 20 services until ready: Compose file vs aether.toml (the engine dominates)",
                 t, y, f"{y - t:+.1f} ms", f"within the samples' spread ({spread:.0f} ms)", yes(abs(y - t) <= spread), len(ya)))
    b = pooled(out, "build_noop")
    p, n = median(pick(b, "/image ")) * 1000, median(pick(b, "/build ")) * 1000
    rows.append(("no-op `ajj workspace add` of a `build:` service, 50 MB context (hashed, not built) vs the prebuilt image",
                 p, n, f"{n / p:.3f}×", "≤ 1.2×", yes(n / p <= 1.2), len(pick(b, "/build "))))
    s = pooled(out, "stack_up")
    c, a = median(pick(s, "compose-up")) * 1000, median(pick(s, "workspace add")) * 1000
    rows.append(("a stack of 3 (`service_healthy`, `service_started`) until web answers: `ajj workspace add` vs `docker-compose up -d` (1.29)",
                 c, a, f"{a / c:.3f}×", "≤ 1.0×", yes(a / c <= 1.0), len(pick(s, "workspace add"))))
    lines = ["", TITLE, "",
             "`bench/compose.sh` (section 10 of `bench/run`). Medians in milliseconds.", "",
             "| comparison | baseline | ajj | added / ratio | target | met | runs |",
             "|---|---:|---:|---:|---|---|---:|"]
    for title, base, ajj, diff, target, met, runs in rows:
        lines.append(f"| {title} | {base:.1f} | {ajj:.1f} | {diff} | {target} | {met} | {runs} |")
    return lines


def splice(target, title, new):
    """Replaces the section `title` of `target` with `new`, or inserts it
    before the raw-exports line."""
    text = target.read_text() if target.exists() else "# Benchmarks\n"
    lines = text.split("\n")
    if title in lines:
        start = lines.index(title) - 1
        end = next((i for i in range(start + 2, len(lines)) if lines[i].startswith("### ") or lines[i].startswith("Raw hyperfine")), len(lines))
        lines[start:end] = new + [""]
    else:
        at = next((i for i, l in enumerate(lines) if l.startswith("Raw hyperfine")), len(lines))
        lines[at:at] = new + [""]
    target.write_text("\n".join(lines))


if __name__ == "__main__":
    out, target = Path(sys.argv[1]), Path(sys.argv[2])
    splice(target, TITLE, section(out))
    print(f"wrote the Compose section of {target}")
