"""Turns hyperfine's JSON exports from bench/run into BENCHMARKS.md."""
import json
import platform
import subprocess
import sys
from pathlib import Path

out, target = Path(sys.argv[1]), Path(sys.argv[2])


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] + xs[(n - 1) // 2]) / 2


def load(name):
    """(command, median ms, samples) for the baseline and for ajj, pooling interleaved rounds."""
    files = sorted(out.glob(f"{name}.r*.json")) or [out / f"{name}.json"]
    times = {}
    order = []
    for f in files:
        for r in json.loads(f.read_text())["results"]:
            if r["command"] not in times:
                order.append(r["command"])
            times.setdefault(r["command"], []).extend(r["times"])
    base, ajj = sorted(order, key=lambda c: "ajj" in c)
    return [(c, median(times[c]) * 1000, len(times[c])) for c in (base, ajj)]


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


rows = []


def compare(title, name, target_text, check):
    (base_cmd, base, n_base), (ajj_cmd, ajj, n_ajj) = load(name)
    ratio = ajj / base
    rows.append((title, base_cmd, base, ajj_cmd, ajj, ratio, ajj - base, n_ajj, target_text, check(ratio, ajj - base)))


compare("pass-through `log`", "log", "ratio ≤ 1.05", lambda r, d: r <= 1.05)
compare("pass-through `st`", "st", "ratio ≤ 1.05", lambda r, d: r <= 1.05)
compare("`workspace add`, no services (Aether's overhead)", "add_empty", "≤ 100 ms added (MVP); requirement 1 s", lambda r, d: d <= 100)
compare("`workspace add`, 2 services, vs hand-written script", "add_two", "ratio ≤ 0.8", lambda r, d: r <= 0.8)
compare("`ajj run -- true` vs `true`", "run", "≤ 5 ms added", lambda r, d: d <= 5)
if (out / "noop_50.json").exists():
    compare("no-op: `ajj reconcile`, 50 workspaces × 2 services, vs `docker-compose up -d` over 50 projects", "noop_50",
            "ratio ≤ 0.05 (≥ 20× faster) and ≤ 150 ms", lambda r, d: r <= 0.05)
    row = list(rows[-1])
    row[9] = row[9] and row[4] <= 150
    rows[-1] = tuple(row)

if (out / "remote_warm.json").exists():
    compare("remote backend: `ajj run -- true` (forwards up and down, warm master) vs a fresh `ssh -fN -L …; true; ssh -O exit`",
            "remote_fresh", "ajj ≤ 150 ms", lambda r, d: True)
    compare("remote backend: `ajj run -- true` vs `ssh -O forward -L …; true; ssh -O cancel …` over a warm master",
            "remote_warm", "ajj ≤ 150 ms", lambda r, d: True)
    # The target is absolute: ajj's own median.
    for i in (-2, -1):
        row = list(rows[i])
        row[9] = row[4] <= 150
        rows[i] = tuple(row)

if (out / "logs.r1.json").exists():
    compare("`ajj logs --tail 100` vs `docker logs --tail 100` on the same container", "logs", "ratio ≤ 1.1", lambda r, d: r <= 1.1)
    compare("`ajj exec SERVICE -- true` vs `docker exec CONTAINER true`", "exec", "ratio ≤ 1.1", lambda r, d: r <= 1.1)

cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
mem = sh("free -g | awk '/Mem:/{print $2}'")
docker = sh("docker version -f '{{.Server.Version}}'")
machine = (
    f"Machine: {sh('nproc')} cores ({cpu}), {mem} GiB, {platform.system()} {platform.release()}; "
    f"Docker Engine {docker}; {sh('jj --version')}."
)
lines = [
    "# Benchmarks",
    "",
    "Written by `bench/run` (hyperfine, one run, one machine). Medians in milliseconds;",
    "the ratio is Aether's median over the baseline's, the difference is Aether's added time.",
    "",
    machine,
    "",
    "| comparison | baseline | median | ajj | median | ratio | added | runs | target | met |",
    "|---|---|---:|---|---:|---:|---:|---:|---|---|",
]
for title, bc, b, ac, a, r, d, n, t, ok in rows:
    def short(c):
        if c.startswith("bash "):
            return "`" + Path(c.split()[1]).name + "`"
        return "`" + c.replace(str(Path(sys.argv[2]).resolve().parent) + "/target/release/", "").replace(" --no-pager", "")[:60] + "`"

    lines.append(f"| {title} | {short(bc)} | {b:.1f} | {short(ac)} | {a:.1f} | {r:.3f} | {d:+.1f} ms | {n} | {t} | {'yes' if ok else '**no**'} |")
calls_file = out / "api_calls.txt"
if calls_file.exists():
    lines += ["", "### Scale: a no-op `ajj reconcile`", "",
              "| workspaces × 2 services | median | Docker API calls per pass |", "|---:|---:|---:|"]
    for row in calls_file.read_text().split("\n"):
        if row.strip():
            n, calls = row.split()
            ms = median(json.loads((out / f"scale_{n}.json").read_text())["results"][0]["times"]) * 1000
            lines.append(f"| {n} | {ms:.1f} ms | {calls} |")
watch_file = out / "watch.json"
if watch_file.exists():
    w = json.loads(watch_file.read_text())
    yes = lambda ok: "yes" if ok else "**no**"
    lines += ["", "### `ajj watch`", "",
              "| measure | median | worst | target | met |", "|---|---:|---:|---|---|",
              f"| jj operation (`jj describe`) → pass started, from jj's exit, 15 runs | {w['op_to_pass_ms']:.0f} ms | {w['op_to_pass_max_ms']:.0f} ms | ≤ 300 ms | {yes(w['op_to_pass_max_ms'] <= 300)} |",
              f"| plain `jj workspace forget` → every container, volume and network gone, 5 runs | {w['forget_to_gone_ms']:.0f} ms | {w['forget_to_gone_max_ms']:.0f} ms | ≤ 1 s + stop time | {yes(w['forget_to_gone_max_ms'] <= 1000)} |",
              f"| idle watcher: CPU time over 30 s / passes run | {w['idle_cpu_seconds_per_30s']:.2f} s / {w['idle_passes_per_30s']} | | ≈ 0; no polling | {yes(w['idle_cpu_seconds_per_30s'] < 0.1)} |"]
mcp_file = out / "mcp.json"
if mcp_file.exists():
    m = json.loads(mcp_file.read_text())
    yes = lambda ok: "yes" if ok else "**no**"
    lines += ["", "### `ajj mcp`", "",
              "| measure | median | p90 | runs | target | met |", "|---|---:|---:|---:|---|---|",
              f"| `status` tool call → result, after initialize (JSON-RPC over the server's pipes) | {m['median_ms']:.1f} ms | {m['p90_ms']:.1f} ms | {m['runs']} | ≤ 20 ms median | {yes(m['median_ms'] <= 20)} |",
              f"| for scale: `ajj status --json` run directly | {m['cli_median_ms']:.1f} ms | | {m['runs']} | | |"]
engines_file = out / "engines.txt"
if engines_file.exists():
    docker_v, podman_v = engines_file.read_text().split()
    lines += ["", "### Engines: Docker and Podman", "",
              f"The same `ajj` commands against Docker Engine {docker_v} and against Podman {podman_v}",
              "(`podman system service`, rootful, on a private socket), one workspace of two busybox",
              "services; `forget` returns once every container, volume and network is gone.", "",
              "| command | Docker | Podman | Podman / Docker | runs |", "|---|---:|---:|---:|---:|"]
    for kind, title in [("add", "`ajj workspace add`, 2 services, until ready"),
                        ("noop", "no-op `ajj reconcile`"),
                        ("forget", "`ajj workspace forget` → all gone"),
                        ("run", "`ajj run -- true`")]:
        d = json.loads((out / f"engine_{kind}_docker.json").read_text())["results"][0]["times"]
        p = json.loads((out / f"engine_{kind}_podman.json").read_text())["results"][0]["times"]
        dm, pm = median(d) * 1000, median(p) * 1000
        lines.append(f"| {title} | {dm:.1f} ms | {pm:.1f} ms | {pm / dm:.2f} | {len(p)} |")
sys.path.insert(0, str(Path(__file__).parent))
import compose_report  # noqa: E402

lines += compose_report.section(out)
import scale_report  # noqa: E402

lines += scale_report.section(out)
import distance_report  # noqa: E402

lines += distance_report.section(out)
lines += ["", "Raw hyperfine exports: `bench/results/*.json` after a run.", ""]
notes = Path(__file__).with_name("NOTES.md")
if notes.exists():
    lines += [notes.read_text()]
target.write_text("\n".join(lines))
