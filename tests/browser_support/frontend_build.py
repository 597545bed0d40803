"""Render the template with one frontend, `npm ci` it and build it, once per test session.

`test_frontends.py` (lint, typecheck, bundle checks) and `test_frontend_browser.py`
(the page in Chromium) share these builds: each frontend is installed and built once.
The build gets a domain key and an API URL in its environment (both must land in the
browser bundle) and backend secrets (which must not).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reliability.harness import free_port
from tests.conftest import render_project

# TEMPLATE_UNDER_TEST: render another checkout (e.g. a clean copy) instead of this one.
TEMPLATE_DIR = Path(os.environ.get("TEMPLATE_UNDER_TEST") or Path(__file__).resolve().parents[2])
FRONTENDS = ("nextjs", "vite")
# The template's frontend folders: one shell per framework, and what they share, which the
# post-generation hook copies into the chosen shell before it becomes frontend/.
TEMPLATE_FRONTENDS = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "frontends"
SHARED = "shared"
# Made by npm and the builds, never part of the template.
LOCAL_ONLY = {"node_modules", ".next", "dist", "next-env.d.ts", "tsconfig.tsbuildinfo"}

# What each frontend calls its build-time variables and where its build goes.
ENV_PREFIX = {"nextjs": "NEXT_PUBLIC_", "vite": "VITE_"}
BUILD_OUTPUT = {"nextjs": ".next", "vite": "dist"}
BROWSER_OUTPUT = {"nextjs": ".next/static", "vite": "dist"}
# `cache` holds compiler caches, not build output.
SKIP_IN_OUTPUT = {"nextjs": {"cache"}, "vite": set()}

NPM_TIMEOUT = 900
# The environment every npm command gets: no telemetry, no update or funding chatter.
NPM_ENV = {
    "NEXT_TELEMETRY_DISABLED": "1",
    "npm_config_audit": "false",
    "npm_config_fund": "false",
    "npm_config_update_notifier": "false",
}


def require_npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        if os.environ.get("SKIP_FRONTEND_TESTS"):
            pytest.skip("SKIP_FRONTEND_TESTS is set and npm is not installed")
        pytest.fail(
            "npm is not on PATH: install Node.js 20.19+ with npm (or set SKIP_FRONTEND_TESTS=1)"
        )
    return npm


@dataclass
class Step:
    command: str
    seconds: float
    output: str


@dataclass
class FrontendBuild:
    kind: str
    project_dir: Path
    frontend_dir: Path
    # The port the built API URL points at: the browser test serves the frontend there.
    port: int
    api_url: str
    domain_key: str
    secrets: dict[str, str]
    lock_digest_before: str
    steps: dict[str, Step] = field(default_factory=dict)

    @property
    def backend_dir(self) -> Path:
        return self.project_dir / "backend"

    @property
    def output_dir(self) -> Path:
        return self.frontend_dir / BUILD_OUTPUT[self.kind]

    @property
    def browser_dir(self) -> Path:
        return self.frontend_dir / BROWSER_OUTPUT[self.kind]

    @property
    def domain_key_var(self) -> str:
        return f"{ENV_PREFIX[self.kind]}CHATKIT_DOMAIN_KEY"

    @property
    def api_url_var(self) -> str:
        return f"{ENV_PREFIX[self.kind]}CHATKIT_API_URL"

    @property
    def unkeyed_dir(self) -> Path:
        """A copy of the frontend (node_modules hard-linked) built without key and API URL."""
        return self.frontend_dir.with_name("frontend-unkeyed")

    def variant(self, name: str, env: dict[str, str]) -> Path:
        """A copy of the frontend (node_modules hard-linked, no build output) built with
        `env`, e.g. with sign-in configured."""
        target = self.frontend_dir.with_name(f"frontend-{name}")
        outputs = {BUILD_OUTPUT[self.kind], "nginx", "next-env.d.ts", "tsconfig.tsbuildinfo"}

        def ignore(directory: str, names: list[str]) -> set[str]:
            # The build would write into the keyed build's files through the links.
            return outputs & set(names) if Path(directory) == self.frontend_dir else set()

        shutil.copytree(
            self.frontend_dir, target, symlinks=True, copy_function=os.link, ignore=ignore
        )
        self.npm("run", "build", env=env, name=f"build-{name}", cwd=target)
        return target

    def npm(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        name: str | None = None,
        cwd: Path | None = None,
    ) -> Step:
        """Run `npm ARGS` in the frontend; fail the test with the output if it fails."""
        command = ["npm", *args]
        started = time.monotonic()
        result = subprocess.run(
            command,
            cwd=cwd or self.frontend_dir,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            env={**os.environ, **NPM_ENV, **(env or {})},
            check=False,
        )
        output = result.stdout + result.stderr
        step = Step(" ".join(command), time.monotonic() - started, output)
        self.steps[name or " ".join(args)] = step
        if result.returncode != 0:
            where = f"`{step.command}` exited {result.returncode} in {self.frontend_dir}"
            raise AssertionError(f"{where}\n{output[-12000:]}")
        return step


def template_files(folder: str) -> dict[str, Path]:
    """Files of `frontends/<folder>` in the template, by their path inside `frontend/`."""
    root = TEMPLATE_FRONTENDS / folder
    return {
        path.relative_to(root).as_posix(): path
        for path in sorted(root.rglob("*"))
        if path.is_file() and not LOCAL_ONLY.intersection(path.relative_to(root).parts)
    }


def frontend_files(kind: str) -> dict[str, Path]:
    """Where each file of the generated `frontend/` for `kind` comes from in the template."""
    return {**template_files(kind), **template_files(SHARED)}


def render(kind: str, output_dir: Path, **answers: object) -> Path:
    """The generated project for `frontend=kind` (no smoke test)."""
    return render_project(output_dir, TEMPLATE_DIR, **{"frontend": kind, **answers})


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _build(kind: str, base: Path) -> FrontendBuild:
    project = render(kind, base / kind)
    frontend = project / "frontend"
    assert frontend.is_dir(), f"the generated project has no frontend/ for frontend={kind}"
    port = free_port()
    token = secrets.token_hex(6)
    build = FrontendBuild(
        kind=kind,
        project_dir=project,
        frontend_dir=frontend,
        port=port,
        api_url=f"http://127.0.0.1:{port}/chatkit",
        domain_key=f"domain_pk_tmpltest_{token}",
        secrets={
            "OPENAI_API_KEY": f"sk-proj-NOT-FOR-BROWSERS-{token}",
            "SESSION_SECRET": f"session-secret-NOT-FOR-BROWSERS-{token}",
            "OPENROUTER_API_KEY": f"sk-or-NOT-FOR-BROWSERS-{token}",
            "LLM_API_KEY": f"llm-key-NOT-FOR-BROWSERS-{token}",
        },
        lock_digest_before=digest(frontend / "package-lock.json"),
    )
    build.npm("ci", "--prefer-offline", "--no-audit", "--no-fund", name="ci")
    # A build without domain key and API URL (it must warn; the browser tests serve it
    # on a public hostname), in a copy that shares node_modules through hard links.
    shutil.copytree(frontend, build.unkeyed_dir, symlinks=True, copy_function=os.link)
    unset = {build.domain_key_var: "", build.api_url_var: "", "CSP_ENFORCE": ""}
    build.npm("run", "build", env=unset, name="build-without-key", cwd=build.unkeyed_dir)
    # The keyed build enforces the full Content-Security-Policy, so every browser test on it
    # proves the policy lets the page work; the unkeyed one keeps the report-only default.
    build.npm(
        "run",
        "build",
        env={
            build.domain_key_var: build.domain_key,
            build.api_url_var: build.api_url,
            "CSP_ENFORCE": "1",
            **build.secrets,
        },
        name="build",
    )
    return build


_builds: dict[str, FrontendBuild | Exception] = {}


def get_build(kind: str, tmp_path_factory: pytest.TempPathFactory) -> FrontendBuild:
    """The session's build of `kind`, made on first use (a failure is reported to every user)."""
    require_npm()
    if kind not in _builds:
        try:
            _builds[kind] = _build(kind, tmp_path_factory.mktemp(f"frontend-{kind}"))
        except Exception as error:
            _builds[kind] = error
    result = _builds[kind]
    if isinstance(result, Exception):
        raise AssertionError(f"building the {kind} frontend failed:\n{result}") from result
    return result


def files_containing(root: Path, needle: str, skip: set[str] = frozenset()) -> list[Path]:
    """Files under `root` (top-level names in `skip` excluded) whose bytes contain `needle`."""
    data = needle.encode()
    hits = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        if path.relative_to(root).parts[0] in skip:
            continue
        if data in path.read_bytes():
            hits.append(path)
    return hits
