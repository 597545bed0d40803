"""Start the generated backend, the loopback fake LLM provider and a frontend server."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.browser_support.frontend_build import FrontendBuild, free_port
from tests.browser_support.nginx import nginx_command

# A stream long enough to tell "incremental" from "all at the end": the fake's default
# reply is ~50 characters, so ~12 deltas 0.15 s apart.
FAKE_CHUNK_SIZE = 4
FAKE_DELAY_SECONDS = 0.15
# The second model the backend offers (MODEL_CHOICES); the fake answers any name.
OTHER_MODEL = "fake-model-mini"


def load_fake_provider(backend: Path) -> ModuleType:
    """The generated project's tests/fake_provider.py, imported under its own name (this
    side has a `tests` package of its own)."""
    name = f"generated_fake_provider_{hashlib.sha256(str(backend).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, backend / "tests" / "fake_provider.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def image_summary(data: bytes) -> str:
    """How the fake's reply names an image it received: size and the start of its SHA-256."""
    return f"[image {len(data)} B sha256:{hashlib.sha256(data).hexdigest()[:16]}]"


def reply_naming_images(fake_module: ModuleType) -> Any:
    """The fake's default reply, followed by each image of the request (the reply then shows
    that the model received the bytes)."""

    def reply(record: Any) -> str:
        text: str = fake_module.default_reply(record)
        images = [image_summary(data) for _, data in record.images()]
        return " ".join([text, *images])

    return reply


class Server:
    """A subprocess in its own process group, with its output in a log file."""

    def __init__(self, name: str, command: list[str], cwd: Path, env: dict[str, str], log: Path):
        self.name = name
        self.command = command
        self.log_path = log
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, chars: int = 4000) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace")
        return f"--- {self.name} ({' '.join(self.command)}) ---\n{text[-chars:]}"

    def wait_until_up(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.process.returncode}\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status < 500:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise AssertionError(
            f"{self.name} did not answer {url} within {timeout}s\n{self.log_tail()}"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=10)
        self._log.close()


class Stack:
    """Fake provider -> generated backend -> frontend server, all on 127.0.0.1."""

    # The OpenID issuer the frontend and backend sign in with, when they do.
    issuer_url = ""

    def __init__(
        self,
        build: FrontendBuild,
        workdir: Path,
        *,
        frontend_dir: Path | None = None,
        backend_env: dict[str, str] | None = None,
        frontend_env: dict[str, str] | None = None,
    ):
        """The keyed build by default; else the build in `frontend_dir`, served on a port of
        its own with `frontend_env` for its build-time variables, and the backend's settings
        with `backend_env` over the defaults."""
        self.build = build
        self.servers: list[Server] = []
        self.workdir = workdir
        self._unkeyed_url: str | None = None
        backend = build.backend_dir
        backend_port = free_port()
        self.backend_url = f"http://127.0.0.1:{backend_port}"
        frontend_port = build.port if frontend_dir is None else free_port()
        self.frontend_url = f"http://127.0.0.1:{frontend_port}"
        if frontend_env is None:
            frontend_env = {
                build.domain_key_var: build.domain_key,
                build.api_url_var: build.api_url,
                "CSP_ENFORCE": "1",  # as the build (servers that read it at start)
            }
        # In this process, so the tests can read what the model was sent (`fake.requests`)
        # and script what it does (`fake.script(steps.call(...), steps.say(...))`).
        fake_module = load_fake_provider(backend)
        self.steps = fake_module
        self.fake = fake_module.FakeProvider(
            chunk_size=FAKE_CHUNK_SIZE,
            delay_seconds=FAKE_DELAY_SECONDS,
            reply=reply_naming_images(fake_module),
        )
        self.fake_url: str = self.fake.start().base_url
        try:
            api = self._start(
                "backend",
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "app.main:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(backend_port),
                ],
                backend,
                {
                    "LLM_PROVIDER": "openai",
                    "MODEL_NAME": "fake-model",
                    "LLM_BASE_URL": self.fake_url,
                    "OPENAI_API_KEY": "sk-fake-browser-test",
                    "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'chat.db'}",
                    "SESSION_SECRET": "browser-test-session-secret-0123456789abcdef",
                    "CORS_ORIGINS": self.frontend_url,
                    "MCP_SERVER_URL": "",
                    # The composer's model picker offers these (MODEL_NAME is the default).
                    "MODEL_CHOICES": f"fake-model,{OTHER_MODEL}",
                    **(backend_env or {}),
                },
                workdir,
            )
            api.wait_until_up(f"{self.backend_url}/health")
            # FRONTEND_SERVER_MODE=dev runs `next dev` / `vite` instead of the production
            # servers, server.mjs and nginx (the build-time variables then come from this
            # environment).
            dev = os.environ.get("FRONTEND_SERVER_MODE") == "dev"
            served = frontend_dir or build.frontend_dir
            command = self._server_command(served, frontend_port, dev)
            web = self._start(
                f"{build.kind} server",
                command,
                served,
                {"BACKEND_URL": self.backend_url, "NEXT_TELEMETRY_DISABLED": "1", **frontend_env},
                workdir,
            )
            web.wait_until_up(self.frontend_url + "/")
        except BaseException:
            self.stop()
            raise

    def unkeyed_server(self) -> str:
        """The same frontend built without domain key and API URL, served on another port."""
        if self._unkeyed_url is None:
            port = free_port()
            server = self._start(
                f"{self.build.kind} server, built without a domain key",
                self._server_command(self.build.unkeyed_dir, port),
                self.build.unkeyed_dir,
                {
                    "BACKEND_URL": self.backend_url,
                    "NEXT_TELEMETRY_DISABLED": "1",
                    "CSP_ENFORCE": "",
                },
                self.workdir,
            )
            url = f"http://127.0.0.1:{port}"
            server.wait_until_up(url + "/")
            self._unkeyed_url = url
        return self._unkeyed_url

    def _server_command(self, frontend: Path, port: int, dev: bool = False) -> list[str]:
        bin_dir = frontend / "node_modules" / ".bin"
        if self.build.kind == "nextjs":
            if dev:
                return ["node", str(bin_dir / "next"), "dev", "-H", "127.0.0.1", "-p", str(port)]
            # The production server as the image runs it (`npm start`).
            server = str(frontend / "server.mjs")
            return ["node", server, "--hostname", "127.0.0.1", "--port", str(port)]
        if dev:
            host_args = ["--host", "127.0.0.1", "--port", str(port), "--strictPort"]
            return ["node", str(bin_dir / "vite"), *host_args]
        # The production build as the image serves it: its nginx config, in Debian's nginx.
        return nginx_command(frontend, self.backend_url, port, self.workdir / f"nginx-{port}")

    def _start(
        self, name: str, command: list[str], cwd: Path, env: dict[str, str], workdir: Path
    ) -> Server:
        server = Server(name, command, cwd, env, workdir / f"{name.replace(' ', '-')}.log")
        self.servers.append(server)
        return server

    def logs(self) -> str:
        calls = [f"{r.method} {r.path} #{r.number}" for r in self.fake.requests[-10:]]
        fake = f"--- fake provider (in this process): last calls {calls} ---"
        return "\n".join([*(server.log_tail() for server in self.servers), fake])

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        self.fake.stop()


def serving(server: Server, url: str) -> tuple[Server, str]:
    """`server` once `url` answers; stopped (and the error raised) if it never does."""
    try:
        server.wait_until_up(url + "/")
    except BaseException:
        server.stop()
        raise
    return server, url
