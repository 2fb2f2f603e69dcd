"""Times the MCP `status` tool: initialize once, then N `tools/call status`
round trips over the server's own pipes (no SDK in the figure), and the
same status from the CLI directly. Usage: mcp.py AJJ WORKSPACE OUT.json"""
import json
import subprocess
import sys
import time

ajj, ws, out = sys.argv[1], sys.argv[2], sys.argv[3]
RUNS = 50
p = subprocess.Popen([ajj, "mcp"], cwd=ws, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)


def call(i, method, params):
    p.stdin.write(json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}) + "\n")
    p.stdin.flush()
    while True:
        msg = json.loads(p.stdout.readline())
        if msg.get("id") == i:
            return msg


call(0, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}})
p.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
times = []
for i in range(1, RUNS + 6):
    t = time.perf_counter()
    r = call(i, "tools/call", {"name": "status", "arguments": {}})
    dt = (time.perf_counter() - t) * 1000
    assert not r["result"].get("isError"), r
    if i > 5:  # warm-up
        times.append(dt)
p.stdin.close()
p.wait()
cli = []
for _ in range(RUNS):
    t = time.perf_counter()
    subprocess.run([ajj, "status", "--json"], cwd=ws, check=True, capture_output=True)
    cli.append((time.perf_counter() - t) * 1000)
times.sort()
cli.sort()
json.dump({"runs": RUNS, "median_ms": times[RUNS // 2], "p90_ms": times[int(RUNS * 0.9)], "cli_median_ms": cli[RUNS // 2]}, open(out, "w"))
