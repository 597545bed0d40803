"""`make dev`: the backend with reload and, when there is one, the frontend dev server.

One Ctrl-C stops both; when either exits on its own, the other is stopped too.
Standard library only. Environment: BACKEND_PORT (default 8000); the frontend reaches
the backend through BACKEND_URL, which this script sets to match.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKEND = ROOT / "backend"
FRONTEND = ROOT / "frontend"
POSIX = os.name == "posix"
STOP_GRACE_SECONDS = 8


def backend_python() -> str:
    venv = BACKEND / ".venv" / ("bin/python" if POSIX else "Scripts/python.exe")
    if not venv.exists():
        sys.exit("backend/.venv is missing: run `make install` first.")
    return str(venv)


def start(name: str, command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    print(f"[dev] {name}: {' '.join(command)}  (in {cwd.relative_to(ROOT)})", flush=True)
    # Each child leads its own process group, so stopping it reaches everything it started
    # (uvicorn's reloader and worker, npm and node). The terminal's Ctrl-C reaches this
    # script only, which then stops both groups; stdin is closed so that no child in a
    # background group ever stops on a terminal read.
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=POSIX,
        creationflags=0 if POSIX else subprocess.CREATE_NEW_PROCESS_GROUP,  # type: ignore[attr-defined]
    )


def signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    if process.poll() is not None:
        return
    try:
        if POSIX:
            os.killpg(process.pid, sig)
        else:
            process.terminate()
    except ProcessLookupError:
        pass


def stop(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in children.values():
        signal_group(process, signal.SIGINT if POSIX else signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in children.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            signal_group(process, signal.SIGKILL if POSIX else signal.SIGTERM)
            process.wait()
    if POSIX:  # grandchildren that outlived their group leader
        for process in children.values():
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    port = os.environ.get("BACKEND_PORT", "8000")
    env = {**os.environ, "BACKEND_URL": f"http://127.0.0.1:{port}", "PYTHONUNBUFFERED": "1"}
    children: dict[str, subprocess.Popen[bytes]] = {}
    signal.signal(signal.SIGTERM, interrupt)  # a process manager's stop works like Ctrl-C
    # Also when started from a script's background job, which inherits SIGINT ignored
    # (as uvicorn does for itself): one Ctrl-C stops both, however make was started.
    signal.signal(signal.SIGINT, interrupt)
    try:
        children["backend"] = start(
            "backend",
            [
                backend_python(),
                "-m",
                "uvicorn",
                "app.main:app",
                "--reload",
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--no-server-header",
            ],
            BACKEND,
            env,
        )
        if (FRONTEND / "package.json").exists():
            npm = shutil.which("npm")
            if npm is None:
                print("[dev] npm is not installed: starting the backend only.", flush=True)
            else:
                if not (FRONTEND / "node_modules").exists():
                    print("[dev] frontend/node_modules is missing: run `make install`.", flush=True)
                children["frontend"] = start("frontend", [npm, "run", "dev"], FRONTEND, env)
        while True:
            for name, process in children.items():
                if process.poll() is not None:
                    print(f"[dev] {name} exited ({process.returncode}); stopping.", flush=True)
                    stop(children)
                    return process.returncode or 1
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("\n[dev] stopping...", flush=True)
        stop(children)
        return 0


if __name__ == "__main__":
    sys.exit(main())
