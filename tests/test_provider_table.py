"""The template's side of the provider table: what cannot import it is checked against it.

A provider is one row in the generated backend's `app/provider_table.py`. The prompt's
choices, labels and defaults, the pre-generation hook and the READMEs must agree with
it; the generated backend's own tests/test_provider_table.py checks the settings,
`.env.example` and the project README's providers table.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cookiecutter.environment import StrictEnvironment
from cookiecutter.generate import generate_context
from cookiecutter.prompt import prompt_for_config
from jinja2 import FileSystemLoader

from tests.conftest import TEMPLATE
from tests.provider_table import ROWS, TABLE, TABLE_FILE

COOKIECUTTER_JSON = TEMPLATE / "cookiecutter.json"
PROJECT_TEMPLATE = TEMPLATE / "{{cookiecutter.project_slug}}"
NAMES = [row.name for row in ROWS]
NEEDS_URL = [row.name for row in ROWS if row.base_url is None]
ROW_IDS = {"argvalues": ROWS, "ids": NAMES}


def mentioned(text: str) -> list[str]:
    """The provider names in `text`, in order (`openai` is not inside `azure_openai`)."""
    return [word for word in re.findall(r"\w+", text) if word in NAMES]


def answers_for(**extra: object) -> dict[str, Any]:
    """The answers cookiecutter renders for `extra` with --no-input, as the hooks see them."""
    context = generate_context(context_file=str(COOKIECUTTER_JSON), extra_context=extra)
    answers = dict(prompt_for_config(context, no_input=True))
    answers["_repo_dir"] = str(TEMPLATE)
    return answers


def render_text(path: Path, answers: dict[str, Any]) -> str:
    env = StrictEnvironment(context={"cookiecutter": answers}, keep_trailing_newline=True)
    env.loader = FileSystemLoader(str(PROJECT_TEMPLATE))
    return env.from_string(path.read_text()).render(cookiecutter=answers)


def pre_gen_hook(answers: dict[str, Any]) -> ModuleType:
    """hooks/pre_gen_project.py rendered for `answers`, imported without running main()."""
    module = ModuleType("rendered_pre_gen_project")
    code = render_text(TEMPLATE / "hooks" / "pre_gen_project.py", answers)
    exec(compile(code, "pre_gen_project.py", "exec"), module.__dict__)
    return module


def test_rows_are_well_formed() -> None:
    assert len(set(NAMES)) == len(NAMES)
    for row in ROWS:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", row.name), row.name
        assert row.label and row.default_model
        assert row.api_style in ("responses", "chat_completions")
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*_API_KEY", row.key_variable), row.key_variable
        assert TABLE.routing_prefix_fix(row.default_model) is None
        if row.base_url is None:
            assert not row.base_url_example or TABLE.PLACEHOLDER in row.base_url_example
        else:
            assert re.fullmatch(r"https?://[^/\s]+(/\S*)?", row.base_url), row.base_url
            assert not row.base_url_example, "a provider with its own URL needs no example"


def test_the_optional_key_is_llm_api_key() -> None:
    # The project README's quick start says "(optional)" exactly for LLM_API_KEY.
    for row in ROWS:
        assert row.key_required == (row.key_variable != "LLM_API_KEY"), row.name


def test_prompt_choices_and_labels_follow_the_table() -> None:
    config = json.loads(COOKIECUTTER_JSON.read_text())
    assert config["llm_provider"] == NAMES, "cookiecutter.json: llm_provider, in table order"
    labels = dict(config["__prompts__"]["llm_provider"])
    labels.pop("__prompt__")
    assert labels == {row.name: row.label for row in ROWS}, "cookiecutter.json: __prompts__"
    assert mentioned(config["__prompts__"]["llm_base_url"]) == NEEDS_URL, "llm_base_url prompt"


@pytest.mark.parametrize("row", **ROW_IDS)
def test_prompt_defaults_follow_the_row(row: Any) -> None:
    answers = answers_for(llm_provider=row.name)
    assert answers["model_name"] == row.default_model, "cookiecutter.json: model_name's dict"
    assert answers["llm_base_url"] == row.base_url_example, "cookiecutter.json: llm_base_url"


@pytest.mark.parametrize("row", **ROW_IDS)
def test_the_hook_checks_each_row(row: Any) -> None:
    answers = answers_for(llm_provider=row.name, llm_base_url="")
    hook = pre_gen_hook(answers)
    table = hook.load_provider_table(answers)
    assert table is not None, "the hook did not find the provider table"
    assert [r.name for r in table.ROWS] == NAMES
    found = hook.problems(answers, table)
    needs_url = f"llm_base_url is required for llm_provider={row.name}"
    assert any(needs_url in problem for problem in found) == (row.base_url is None), found
    if row.base_url_example:
        defaults = answers_for(llm_provider=row.name)
        assert any(needs_url in p for p in hook.problems(defaults, table)), "example accepted"


@pytest.mark.parametrize("prefix", TABLE.ROUTING_PREFIXES)
def test_the_hook_refuses_every_routing_prefix(prefix: str) -> None:
    answers = answers_for(model_name=f"{prefix}some-model")
    hook = pre_gen_hook(answers)
    found = hook.problems(answers, hook.load_provider_table(answers))
    assert found == [
        f"model_name '{prefix}some-model' has a routing prefix the provider rejects: "
        "use the provider's own name, e.g. some-model"
    ]


def test_the_hook_without_the_table_still_checks_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # cruft renders a clone it does not name; then the backend checks providers at start.
    answers = {k: v for k, v in answers_for(project_slug="Bad Slug").items() if k[0] != "_"}
    hook = pre_gen_hook(answers)
    monkeypatch.setattr(hook.os, "getppid", lambda: 2**22 + 1)  # no such process
    monkeypatch.setenv("PWD", "/nonexistent")
    assert hook.load_provider_table(answers) is None
    found = hook.problems(answers, None)
    assert len(found) == 1 and found[0].startswith("project_slug 'Bad Slug'"), found


def test_routing_prefixes_are_defined_once() -> None:
    sources = [
        path
        for path in TEMPLATE.rglob("*.py")
        if not {".venv", "node_modules"} & set(path.parts)
        and re.search(r"^\s*ROUTING_PREFIXES\s*=", path.read_text(), re.M)
    ]
    assert sources == [TABLE_FILE]


@pytest.mark.parametrize("row", **ROW_IDS)
def test_the_project_readme_names_the_rows_key(row: Any) -> None:
    answers = answers_for(llm_provider=row.name)
    readme = render_text(PROJECT_TEMPLATE / "README.md", answers)
    # The quick start's key_variable dict in the project README.md.
    optional = "" if row.key_required else " (optional)"
    assert f"# put your key in ../.env, e.g. {row.key_variable}=...{optional}\n" in readme
    assert f"LLM_BASE_URL=http://127.0.0.1:8089/v1 {row.key_variable}=fake " in readme


def test_the_template_readme_lists_the_providers() -> None:
    readme = (TEMPLATE / "README.md").read_text()
    choices = re.search(r"^\| `llm_provider` \| (.*?) \|", readme, re.M)
    base_url = re.search(r"^\| `llm_base_url` \| (.*?) \|", readme, re.M)
    assert choices and base_url
    assert mentioned(choices.group(1)) == NAMES, "README.md: the llm_provider prompt row"
    assert mentioned(base_url.group(1)) == NEEDS_URL, "README.md: the llm_base_url prompt row"


def test_loading_the_table_leaves_no_bytecode_in_the_template(tmp_path: Path) -> None:
    # A __pycache__ beside the table would be copied into every project rendered after.
    copy = tmp_path / "template"
    ignore = shutil.ignore_patterns(".git", ".venv", "node_modules", "__pycache__", ".*_cache")
    shutil.copytree(TEMPLATE, copy, ignore=ignore)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    load = [sys.executable, "-c", "import tests.provider_table"]
    subprocess.run(load, cwd=copy, env=env, check=True, timeout=60)
    answers = ["--no-input", "run_smoke_test=false", "model_name=litellm/x"]
    refused = subprocess.run(
        [sys.executable, "-m", "cookiecutter", str(copy), "-o", str(tmp_path / "o"), *answers],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "has a routing prefix" in refused.stderr, "the hook did not load the table"
    assert list((copy / PROJECT_TEMPLATE.name).rglob("__pycache__")) == []
