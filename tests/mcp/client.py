"""Drives `ajj mcp` with the official Python MCP SDK (PyPI `mcp`), as an
agent would, and checks each answer. Run by tests/mcp.rs:

    client.py AJJ MAIN_WORKSPACE IDLE_WORKSPACE_NAME

Prints one line per step; exits non-zero at the first failed check.
"""

import os
import sys

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

AJJ, MAIN, IDLE = sys.argv[1], sys.argv[2], sys.argv[3]
TOOLS = {
    "workspace_add", "workspace_forget", "workspace_list", "status", "env",
    "run", "logs", "exec", "wait", "reconcile",
}


def check(cond, what, value=None):
    if not cond:
        print(f"FAILED: {what}: {value!r}", flush=True)
        sys.exit(1)
    print(f"ok: {what}", flush=True)


def ajj_processes(word):
    """Command lines of live `ajj … word …` processes."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].decode(errors="replace") == AJJ and word.encode() in argv:
            found.append(argv)
    return found


async def main():
    params = StdioServerParameters(command=AJJ, args=["mcp"], cwd=MAIN, env=dict(os.environ))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            check(init.server_info.name == "aether", "initialize names the server", init.server_info)
            check(init.instructions and "workspace" in init.instructions, "instructions")

            listed = await session.list_tools()
            names = {t.name for t in listed.tools}
            check(names == TOOLS, "list_tools gives the ten tools", names)
            schemas = {t.name: t.input_schema for t in listed.tools}
            check(schemas["workspace_add"]["required"] == ["destination"],
                  "workspace_add requires destination", schemas["workspace_add"])
            for name in ("status", "env", "run", "logs", "exec", "wait"):
                check("workspace" in schemas[name]["properties"], f"{name} takes workspace")
            check(set(schemas["exec"]["required"]) == {"service", "argv"}, "exec requires service and argv")

            progress = []

            async def on_progress(value, total, message):
                progress.append(message)

            added = await session.call_tool(
                "workspace_add", {"destination": "../agent"}, progress_callback=on_progress
            )
            check(not added.is_error, "workspace_add succeeds", added.content)
            ws = added.structured_content
            check(ws["name"] == "agent" and ws["resources"]["web"]["state"] == "running",
                  "workspace_add returns the CLI's JSON", ws)
            port = ws["resources"]["web"]["external_port"]
            check(any(m and "agent/web" in m for m in progress),
                  "workspace_add reports progress", progress)

            status = await session.call_tool("status", {"workspace": "agent"})
            check(status.structured_content["resources"]["web"]["state"] == "running",
                  "status by name", status.structured_content)
            by_path = await session.call_tool("status", {"workspace": "../agent"})
            check(by_path.structured_content["name"] == "agent", "status by path", by_path.structured_content)

            listing = await session.call_tool("workspace_list", {})
            check(not listing.is_error, "workspace_list", listing.content)

            env = await session.call_tool("env", {"workspace": "agent"})
            check(not env.is_error, "env", env.content)

            ran = await session.call_tool(
                "run", {"workspace": "agent", "argv": ["sh", "-c", "echo $WEB_PORT; echo oops >&2; exit 3"]}
            )
            out = ran.structured_content
            check(not ran.is_error and out["exit_code"] == 3, "run passes the exit code", out)
            check(out["stdout"].strip() == str(port) and out["stderr"] == "oops\n",
                  "run has the workspace's variables and captures both streams", out)
            check(out["stdout_truncated"] is False and out["limit_bytes"] == 1 << 20, "run states its limit", out)
            timed = await session.call_tool("run", {"workspace": "agent", "argv": ["sleep", "30"], "timeout": 1})
            check(timed.structured_content["timed_out"] is True, "run honours timeout", timed.structured_content)

            logs = await session.call_tool("logs", {"workspace": "agent", "service": "talk", "tail": 5})
            lines = logs.structured_content["lines"]
            check(any(l["line"] == "hello agent" and l["stream"] == "stdout" for l in lines), "logs", lines)

            ex = await session.call_tool("exec", {"workspace": "agent", "service": "web", "argv": ["cat", "/etc/hostname"]})
            check(ex.structured_content["exit_code"] == 0 and ex.structured_content["stdout"].strip(), "exec", ex.structured_content)

            # A tool error carries Aether's code, message, hint and details.
            bad = await session.call_tool("exec", {"workspace": "agent", "service": "nope", "argv": ["true"]})
            err = bad.structured_content["error"]
            check(bad.is_error and err["code"] == "SERVICE_NOT_FOUND" and err["hint"] and err["details"]["service"] == "nope",
                  "a tool error has code, message, hint and details", bad.structured_content)
            gone = await session.call_tool("status", {"workspace": "no-such-workspace"})
            check(gone.is_error and gone.structured_content["error"]["code"] == "WORKSPACE_NOT_FOUND",
                  "an unknown workspace", gone.structured_content)

            # Bad arguments and an unknown tool: an error each, and the server lives on.
            wrong = await session.call_tool("exec", {"service": 5, "argv": "true"})
            check(wrong.is_error and wrong.structured_content["error"]["code"] == "USAGE", "bad arguments are USAGE", wrong.structured_content)
            try:
                unknown = await session.call_tool("no_such_tool", {})
                check(unknown.is_error, "an unknown tool is an error", unknown)
            except Exception as e:  # a JSON-RPC error is an answer too
                check("not found" in str(e).lower(), "an unknown tool is an error", str(e))
            again = await session.call_tool("status", {"workspace": "agent"})
            check(not again.is_error, "the server still answers", again.content)

            # Cancelling a long wait interrupts the `ajj wait` behind it.
            with anyio.move_on_after(2) as scope:
                await session.call_tool("wait", {"workspace": IDLE, "timeout": 120})
            check(scope.cancelled_caught, "the wait was still running when cancelled")
            check(len(ajj_processes("wait")) <= 1, "one ajj wait at most while it stops")
            with anyio.fail_after(10):
                while ajj_processes("wait"):
                    await anyio.sleep(0.1)
            check(True, "cancelling ended the ajj wait")
            after = await session.call_tool("status", {"workspace": "agent"})
            check(not after.is_error, "the server answers after a cancellation", after.content)

            forgot = await session.call_tool("workspace_forget", {"workspace": "agent"})
            check(not forgot.is_error, "workspace_forget", forgot.structured_content)
    print("done", flush=True)


anyio.run(main)
