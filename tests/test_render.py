"""Render the defaults, then each provider and each store; lint and test each render."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import PYTHON, TEMPLATE, Render, run

DEFAULTS = json.loads((TEMPLATE / "cookiecutter.json").read_text())
PROVIDERS: list[str] = DEFAULTS["llm_provider"]
STORES: list[str] = DEFAULTS["store_backend"]
BASE_URL_REQUIRED = {"azure_openai", "openai_compatible"}

CASES = [pytest.param({}, id="defaults")]
CASES += [
    pytest.param(
        {"llm_provider": provider}
        | ({"llm_base_url": "http://127.0.0.1:9/v1"} if provider in BASE_URL_REQUIRED else {}),
        id=f"provider-{provider}",
    )
    for provider in PROVIDERS[1:]
]
CASES += [pytest.param({"store_backend": store}, id=f"store-{store}") for store in STORES[1:]]

PROVIDER_TESTS = [
    "tests/test_startup.py",
    "tests/test_conversation.py",
    "tests/test_provider_errors.py",
    "tests/test_workarounds.py",
]

JINJA_LEFTOVER = re.compile(r"\{\{\s*cookiecutter|\{%-?\s")
SKIP_DIRS = {"node_modules", ".venv", ".git", ".next", "dist"}


def jinja_leftovers(project: Path) -> list[str]:
    """Files outside the JSX/TS frontends that still hold template syntax."""
    found = []
    for path in project.rglob("*"):
        if not path.is_file() or SKIP_DIRS & set(path.parts):
            continue
        if path.suffix in {".ts", ".tsx", ".mjs", ".js", ".yml", ".yaml"}:
            continue  # Their own `{{ }}` is JSX or GitHub Actions, copied unrendered on purpose.
        if JINJA_LEFTOVER.search(path.read_text(errors="ignore")):
            found.append(str(path.relative_to(project)))
    return found


@pytest.mark.parametrize("answers", CASES)
def test_render_lint_and_test(render: Render, answers: dict[str, str]) -> None:
    project = render(**answers)
    assert jinja_leftovers(project) == []

    env_example = (project / ".env.example").read_text()
    provider = answers.get("llm_provider", PROVIDERS[0])
    assert f"LLM_PROVIDER={provider}\n" in env_example
    store = answers.get("store_backend", STORES[0])
    assert "SESSION_SECRET=\n" in env_example, "tracked files hold no secret"
    assert re.search(r"^SESSION_SECRET=\S{32,}$", (project / ".env").read_text(), re.M)
    database_url = re.search(r"^DATABASE_URL=(.*)$", env_example, re.M)
    assert database_url is not None
    assert database_url.group(1).startswith(
        {
            "sqlite": "sqlite+aiosqlite:///",
            "postgres": "postgresql+asyncpg://",
            "memory": "memory://",
        }[store]
    )

    ruff = shutil.which("ruff") or "ruff"
    backend = project / "backend"
    run([ruff, "check", "."], cwd=backend)
    run([ruff, "format", "--check", "."], cwd=backend)
    # The generated tests set provider and store per test, so every render runs the same
    # code: the whole suite runs on the defaults and each store; a provider render runs
    # the tests about providers, which are the ones its answers can change.
    scope = PROVIDER_TESTS if "llm_provider" in answers else []
    run(
        [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *scope],
        cwd=backend,
        timeout=900,
    )
