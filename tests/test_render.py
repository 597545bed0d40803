"""The answer matrix: each combination of answers is rendered and checked for what it
changes, and the generated project's own suite runs where running it again tells more.

Renders differ only in `backend/app/defaults.py`, `.env.example`, the README, the compose
file, the frontend folder and the CI workflow; the generated tests set provider and store
per test, over every store and API style. So the full generated suite runs once (in shards), on the
defaults; the renders of the other stores (one on a Chat Completions provider, with MCP)
run the generated tests that read rendered files; and every render gets the checks of
what its answers change: the template QA (compile, parse, leftovers), ruff, mypy, the
settings loaded from its `.env.example`, and the rendered provider's own row tests.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PYTHON, TEMPLATE, render_project, run
from tests.provider_table import NEEDS_BASE_URL, ROWS
from tests.template_qa import settings_from_env_example, static_checks

DEFAULTS = json.loads((TEMPLATE / "cookiecutter.json").read_text())
PROVIDERS: list[str] = DEFAULTS["llm_provider"]
STORES: list[str] = DEFAULTS["store_backend"]
FRONTENDS: list[str] = DEFAULTS["frontend"]
MCP_URL = "http://localhost:8001/mcp"
PROVIDER_ROW_TESTS = ["tests/test_provider_table.py"]
# The generated suite with the plugins its own environment has: the template's test tools
# (parallel workers, hypothesis) stay out of it, and their start-up time with them.
GENERATED_PYTEST = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider"] + [
    arg
    for plugin in ("xdist", "xdist.looponfail", "hypothesispytest")
    for arg in ("-p", f"no:{plugin}")
]


CHAT_COMPLETIONS = next(row.name for row in ROWS if row.api_style == "chat_completions")
# What a provider without an endpoint of its own is rendered with.
BASE_URLS = {"azure_openai": "https://example-resource.openai.azure.com/openai/v1/"}
LOCAL_BASE_URL = "http://127.0.0.1:9/v1"


def provider_answers(provider: str) -> dict[str, str]:
    answers = {"llm_provider": provider}
    if provider in NEEDS_BASE_URL:
        answers["llm_base_url"] = BASE_URLS.get(provider, LOCAL_BASE_URL)
    return answers


# The generated suite runs on these: whole on the defaults, the answer-dependent part on
# the other stores and a Chat Completions provider.
FULL_SUITE: dict[str, dict[str, str]] = {
    "defaults": {},  # the first provider, store and frontend
    f"{CHAT_COMPLETIONS}-postgres-vite": {
        **provider_answers(CHAT_COMPLETIONS),
        "store_backend": "postgres",
        "frontend": "vite",
        "mcp_server_url": MCP_URL,
    },
    "memory-none": {"store_backend": "memory", "frontend": "none", "auth": "oidc"},
}


ATTACHMENTS_OFF: dict[str, Any] = {
    "attachments": False,
    "store_backend": "memory",
    "frontend": "none",
}


def other_renders() -> dict[str, dict[str, Any]]:
    """Every other provider once, and every store with every frontend: each render takes
    the next store and frontend pair the renders above have not had."""
    covered = {
        (a.get("store_backend", STORES[0]), a.get("frontend", FRONTENDS[0]))
        for a in FULL_SUITE.values()
    }
    pairs = [(s, f) for s in STORES for f in FRONTENDS if (s, f) not in covered]
    rendered = {a.get("llm_provider", PROVIDERS[0]) for a in FULL_SUITE.values()}
    providers = [p for p in PROVIDERS if p not in rendered]
    # More pairs than providers left: the first provider takes the rest.
    providers += [PROVIDERS[0]] * (len(pairs) - len(providers))
    renders: dict[str, dict[str, Any]] = {}
    for index, provider in enumerate(providers):
        store, frontend = pairs[index % len(pairs)]
        answers = {**provider_answers(provider), "store_backend": store, "frontend": frontend}
        renders[f"{provider}-{store}-{frontend}"] = answers
    # The free-text answers, with characters a careless template would mangle.
    # Attachments off: only defaults.py and .env.example change; its own check below.
    renders["attachments-off"] = ATTACHMENTS_OFF
    renders["named-openrouter-memory-vite"] = {
        "project_name": "Zoë's Chat-Bot",
        "project_slug": "zoes_bot",
        "description": "Answers questions about Zoë's shop & more.",
        "llm_provider": "openrouter",
        "model_name": "meta-llama/llama-3.3-70b-instruct",
        "store_backend": "memory",
        "frontend": "vite",
        "mcp_server_url": MCP_URL,
        "auth": "oidc",  # sign-in with a bundled frontend
    }
    return renders


OTHERS = other_renders()


def params(cases: dict[str, dict[str, Any]]) -> list[pytest.ParameterSet]:
    return [pytest.param(answers, id=name) for name, answers in cases.items()]


DATABASE_URL_PREFIX = {
    "sqlite": "sqlite+aiosqlite:///",
    "postgres": "postgresql+asyncpg://",
    "memory": "memory://",
}


def test_the_matrix_covers_every_choice() -> None:
    """Each provider, and each store with each frontend, is rendered at least once."""
    renders = [*FULL_SUITE.values(), *OTHERS.values()]
    providers = {r.get("llm_provider", PROVIDERS[0]) for r in renders}
    pairs = {(r.get("store_backend", STORES[0]), r.get("frontend", FRONTENDS[0])) for r in renders}
    assert providers == set(PROVIDERS)
    assert pairs == {(store, frontend) for store in STORES for frontend in FRONTENDS}
    assert {r.get("store_backend", STORES[0]) for r in FULL_SUITE.values()} == set(STORES)
    auth_modes: list[str] = DEFAULTS["auth"]
    assert {r.get("auth", auth_modes[0]) for r in FULL_SUITE.values()} == set(auth_modes)
    api_styles = {row.name: row.api_style for row in ROWS}
    assert "chat_completions" in {
        api_styles[r.get("llm_provider", PROVIDERS[0])] for r in FULL_SUITE.values()
    }


# The generated tests that read what the answers render (app/defaults.py, .env.example,
# the README). Every other generated test builds its own settings and runs over every
# store and API style itself, so it runs once, on the defaults render.
ANSWER_DEPENDENT_TESTS = ["tests/test_startup.py", "tests/test_provider_table.py"]
RENDERED_MARKERS = re.compile(r"\bdefaults\b|\.env\.example|README|load_settings\(\)")


# The defaults' whole suite in shards of one to two minutes each (measured on an idle
# machine), so that parallel workers share it; "rest" is every generated test file the
# other shards do not name, so a new file always runs. A named file that is gone fails.
DEFAULTS_SHARDS: dict[str, list[str]] = {
    "stores": ["tests/test_store_contract.py", "tests/test_migrations.py"],
    "processes": [
        "tests/test_startup.py",
        "tests/test_sdk_fixes.py",
        "tests/test_http.py",
        "tests/test_s3.py",
    ],
    "production": [
        "tests/test_limits.py",
        "tests/test_observability.py",
        "tests/test_oidc.py",
        "tests/test_tracing.py",
    ],
    "features": [
        "tests/test_time_story.py",
        "tests/test_turn_options.py",
        "tests/test_feedback.py",
    ],
    "rest": [],
}


def suite_runs() -> list[pytest.ParameterSet]:
    runs = [
        pytest.param(FULL_SUITE["defaults"], shard, id=f"defaults-{shard}")
        for shard in DEFAULTS_SHARDS
    ]
    others = {name: answers for name, answers in FULL_SUITE.items() if name != "defaults"}
    return runs + [pytest.param(answers, None, id=name) for name, answers in others.items()]


def selected_tests(backend: Path, shard: str | None) -> list[str]:
    if shard is None:
        return ANSWER_DEPENDENT_TESTS
    if DEFAULTS_SHARDS[shard]:
        return DEFAULTS_SHARDS[shard]
    named = {path for paths in DEFAULTS_SHARDS.values() for path in paths}
    every = sorted(str(p.relative_to(backend)) for p in (backend / "tests").glob("test_*.py"))
    return [path for path in every if path not in named]


@pytest.mark.parametrize(("answers", "shard"), suite_runs())
def test_generated_suite(answers: dict[str, str], shard: str | None, tmp_path: Path) -> None:
    backend = render_project(tmp_path / "out", **answers) / "backend"
    selection = selected_tests(backend, shard)
    run([*GENERATED_PYTEST, "-x", *selection], cwd=backend, timeout=900)


def test_answer_dependent_tests_are_the_ones_reading_rendered_files() -> None:
    tests = TEMPLATE / "{{cookiecutter.project_slug}}" / "backend" / "tests"
    readers = {
        f"tests/{path.name}"
        for path in tests.glob("test_*.py")
        if RENDERED_MARKERS.search(path.read_text())
    }
    assert readers == set(ANSWER_DEPENDENT_TESTS)


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for the matrix (its renders share a worker): the SDKs are analysed
    once, then each render's own modules (about 1 s of CPU a render instead of 30)."""
    return tmp_path_factory.mktemp("mypy-cache")


def recorded_answers(project: Path) -> dict[str, Any]:
    return dict(json.loads((project / ".cookiecutter.json").read_text())["cookiecutter"])


def check_render(
    project: Path, answers: dict[str, Any], mypy_cache: Path, full_suite: bool
) -> None:
    """What an answer can change: the rendered files, the settings, the linters' verdict."""
    qa = static_checks(project)
    assert qa.problems == []
    assert qa.python_files > 30 and qa.data_files >= 4 and qa.rendered_files > 10

    recorded = recorded_answers(project)
    for key, value in answers.items():
        assert recorded[key] == value, key
    provider, store = recorded["llm_provider"], recorded["store_backend"]
    env_example = (project / ".env.example").read_text()
    assert f"LLM_PROVIDER={provider}\n" in env_example
    assert "SESSION_SECRET=\n" in env_example, "tracked files hold no secret"
    assert re.search(r"^SESSION_SECRET=\S{32,}$", (project / ".env").read_text(), re.M)

    loaded = settings_from_env_example(project)
    assert loaded.missing == [], f".env.example does not name {loaded.missing}"
    values = loaded.values
    assert values["llm_provider"] == provider
    assert values["model_name"] == recorded["model_name"]
    assert values["llm_base_url"] == recorded["llm_base_url"]
    assert values["mcp_server_url"] == recorded["mcp_server_url"]
    assert values["project_name"] == recorded["project_name"]
    assert values["database_url"].startswith(DATABASE_URL_PREFIX[store])
    # The answer is a boolean, recorded as one, and the setting's default follows it.
    assert recorded["attachments"] is answers.get("attachments", True)
    assert values["attachments_enabled"] is recorded["attachments"]
    assert values["auth_mode"] == recorded["auth"]

    backend = project / "backend"
    run([PYTHON, "-m", "ruff", "check", "."], cwd=backend)
    run([PYTHON, "-m", "ruff", "format", "--check", "."], cwd=backend)
    run(
        [PYTHON, "-m", "mypy", "--cache-dir", str(mypy_cache), "app", "tests"],
        cwd=backend,
        timeout=300,
    )
    if full_suite:
        return  # test_generated_suite runs them, with everything else
    # The provider table's own tests: its rows against the rendered .env.example and
    # README, and each row's client and model.
    run([*GENERATED_PYTEST, *PROVIDER_ROW_TESTS], cwd=backend)


@pytest.mark.parametrize("answers", params(FULL_SUITE | OTHERS))
def test_render(answers: dict[str, Any], tmp_path: Path, mypy_cache: Path) -> None:
    project = render_project(tmp_path / "out", **answers)
    check_render(project, answers, mypy_cache, full_suite=answers in FULL_SUITE.values())


# What the attachments-off render's backend answers with its own defaults: the policy
# the widget reads, and attachments.create (the paperclip's first request).
_ATTACHMENTS_PROBE = """
import json
from fastapi.testclient import TestClient
from app.main import create_app
with TestClient(create_app()) as client:
    policy = client.get("/chatkit/attachments/policy")
    created = client.post("/chatkit", json={"type": "attachments.create", "params": {
        "name": "photo.png", "size": 1000, "mime_type": "image/png"}})
    print(json.dumps({"policy": policy.json(), "status": created.status_code,
                      "body": created.json()}))
"""


def test_attachments_off_render_refuses_attachments(tmp_path: Path) -> None:
    """The render's defaults, not a test's settings: with the answer false, the backend
    started from its own .env says the composer has no paperclip and refuses a create."""
    project = render_project(tmp_path / "out", **ATTACHMENTS_OFF)
    assert "ATTACHMENTS = False\n" in (project / "backend/app/defaults.py").read_text()
    result = subprocess.run(
        [PYTHON, "-c", _ATTACHMENTS_PROBE],
        cwd=project / "backend",
        env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "OPENAI_API_KEY": "sk-x"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer["policy"]["enabled"] is False
    assert answer["status"] == 400
    assert answer["body"]["error"]["code"] == "attachments_disabled"
    assert "ATTACHMENTS_ENABLED=true" in answer["body"]["error"]["message"]


def test_a_string_answer_in_a_replay_file_renders_a_boolean(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A replay file (or cruft's context) may hold the answer as a string."""
    from cookiecutter.exceptions import FailedHookException
    from cookiecutter.main import cookiecutter

    project = render_project(tmp_path / "first", attachments=False, frontend="none")
    replay = json.loads((project / ".cookiecutter.json").read_text())
    for text, expected in (("no", "False"), ("yes", "True")):
        replay["cookiecutter"]["attachments"] = text
        path = tmp_path / f"replay-{text}.json"
        path.write_text(json.dumps(replay))
        out = tmp_path / f"replayed-{text}"
        root = Path(cookiecutter(str(TEMPLATE), replay=str(path), output_dir=str(out)))
        defaults = (root / "backend/app/defaults.py").read_text()
        assert f"ATTACHMENTS = {expected}\n" in defaults
    # A word that is no boolean is refused before anything is written.
    replay["cookiecutter"]["attachments"] = "maybe"
    path = tmp_path / "replay-maybe.json"
    path.write_text(json.dumps(replay))
    with pytest.raises(FailedHookException):
        cookiecutter(str(TEMPLATE), replay=str(path), output_dir=str(tmp_path / "refused"))
    assert "attachments 'maybe' is not a boolean: use true or false" in capfd.readouterr().err
    assert list((tmp_path / "refused").iterdir()) == []
