"""Benchmarks `ajj watch` (issue 3): jj operation → pass started, forget →
everything gone, and the idle watcher's CPU. Usage: watch.py AJJ REPO OUT.

Runs in the repo bench/run prepared (busybox services in aether.toml)."""
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ajj, repo, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
events = []
cond = threading.Condition()


def reader(proc):
    for line in proc.stdout:
        e = json.loads(line)
        e["_seen"] = time.time()
        with cond:
            events.append(e)
            cond.notify_all()


def wait(pred, start, timeout=30):
    deadline = time.time() + timeout
    with cond:
        while True:
            for e in events[start:]:
                if pred(e):
                    return e
            left = deadline - time.time()
            if left <= 0:
                raise SystemExit(f"watch.py: timed out; events: {events[-5:]}")
            cond.wait(left)


def jj(*args):
    subprocess.run(["jj", *args], cwd=repo, check=True, capture_output=True)


def objects(root):
    n = 0
    for kind in (["ps", "-aq"], ["volume", "ls", "-q"], ["network", "ls", "-q"]):
        r = subprocess.run(["docker", *kind, "--filter", f"label=dev.aether.root={root}"],
                           capture_output=True, text=True)
        n += len(r.stdout.split())
    return n


proc = subprocess.Popen([ajj, "watch", "--json"], cwd=repo, stdout=subprocess.PIPE, text=True)
threading.Thread(target=reader, args=(proc,), daemon=True).start()
wait(lambda e: e["event"] == "pass_finished", 0)
time.sleep(1)

# 1. jj operation → pass started. A cheap operation (describe), 15 times.
op_to_pass = []
for i in range(15):
    start = len(events)
    t0 = time.time()
    jj("describe", "-m", f"bench {i}")
    t1 = time.time()
    e = wait(lambda e: e["event"] == "pass_started" and "jj_operation" in e.get("causes", [e["cause"]]), start)
    op_to_pass.append((e["_seen"] - t1) * 1000)
    wait(lambda e: e["event"] == "pass_finished", start)
    time.sleep(0.3)

# 2. forget → every container, volume and network gone, 5 times.
forget_to_gone = []
for i in range(5):
    root = (repo.parent / f"wf{i}").resolve()
    start = len(events)
    jj("workspace", "add", str(root))
    wait(lambda e: e["event"] == "env_written" and e.get("workspace") == f"wf{i}", start, 60)
    time.sleep(0.5)
    t0 = time.time()
    jj("workspace", "forget", f"wf{i}")
    while objects(root) > 0:
        time.sleep(0.01)
        if time.time() - t0 > 30:
            raise SystemExit("forget did not finish")
    forget_to_gone.append((time.time() - t0) * 1000)
    subprocess.run(["rm", "-rf", str(root)])
    time.sleep(0.5)

# 3. Idle: CPU time used over 30 s with nothing happening.
time.sleep(2)
def cpu_ticks(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime
start = len(events)
c0 = cpu_ticks(proc.pid)
time.sleep(30)
idle_cpu_s = (cpu_ticks(proc.pid) - c0) / os.sysconf("SC_CLK_TCK")
idle_passes = sum(1 for e in events[start:] if e["event"] == "pass_started")

proc.terminate()
proc.wait(10)
result = {
    "op_to_pass_ms": statistics.median(op_to_pass),
    "op_to_pass_max_ms": max(op_to_pass),
    "forget_to_gone_ms": statistics.median(forget_to_gone),
    "forget_to_gone_max_ms": max(forget_to_gone),
    "idle_cpu_seconds_per_30s": idle_cpu_s,
    "idle_passes_per_30s": idle_passes,
    "exit_code": proc.returncode,
}
(out / "watch.json").write_text(json.dumps(result, indent=2))
print(json.dumps(result, indent=2))
