"""A provider is one row of app/provider_table.py; what cannot read the table is checked here.

Adding a provider: add its row, run these tests, and fix what they name.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from agents import OpenAIChatCompletionsModel, OpenAIResponsesModel
from pydantic import SecretStr

from app.config import ConfigError, Settings, load_settings
from app.provider_table import KEY_VARIABLES, PROVIDERS, ROWS, Provider
from app.providers import build_client, build_model, resolve_provider

PROJECT = Path(__file__).resolve().parents[2]
API_NAMES = {"responses": "Responses", "chat_completions": "Chat Completions"}
OWN_URL = "http://127.0.0.1:9/v1"


def settings_for(row: Provider, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "_env_file": None,
        "llm_provider": row.name,
        "llm_base_url": "" if row.base_url else OWN_URL,
        "session_secret": "s" * 40,
        row.key_variable.lower(): "test-key",
    }
    return load_settings(**(values | overrides))


def test_settings_have_one_key_field_per_key_variable() -> None:
    fields = {name: f for name, f in Settings.model_fields.items() if name.endswith("_api_key")}
    expected = {variable.lower() for variable in KEY_VARIABLES}
    assert set(fields) == expected, "app/config.py: one SecretStr | None field per key variable"
    assert all(f.annotation == SecretStr | None and f.default is None for f in fields.values())


def test_env_example_names_every_provider_and_key() -> None:
    text = (PROJECT / ".env.example").read_text()
    choices = re.search(r"^# Which provider: (.*)\.$", text, re.M)
    assert choices is not None
    assert re.findall(r"\w+", choices.group(1)) == list(PROVIDERS), ".env.example: the list"
    keys = re.findall(r"^(\w+_API_KEY)=", text, re.M)
    assert sorted(keys) == sorted(KEY_VARIABLES), ".env.example: one line per key variable"


def test_readme_providers_table_has_each_row() -> None:
    text = (PROJECT / "README.md").read_text()
    section = text.split("### Providers\n", 1)[1].split("\n#", 1)[0]
    listed = re.findall(r"^\| `([a-z]\w*)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", section, re.M)
    expected = [
        (
            row.name,
            API_NAMES[row.api_style],
            f"`{row.base_url}`" if row.base_url else listed_url(listed, row.name),
            f"`{row.key_variable}`" + ("" if row.key_required else " (optional)"),
        )
        for row in ROWS
    ]
    rows = [tuple(cell.strip() for cell in line) for line in listed]
    assert rows == expected, "README.md: the Providers table, one line per row in table order"


KIND_WORDS = {"image": "images", "pdf": "PDFs", "text": "text"}


def test_attachment_kinds_are_known_and_in_the_readme() -> None:
    for row in ROWS:
        assert row.attachment_kinds <= set(KIND_WORDS), f"{row.name}: unknown attachment kinds"
        assert "text" in row.attachment_kinds, f"{row.name}: text files go in as plain text"
    text = (PROJECT / "README.md").read_text()
    section = text.split("## Attachments\n", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([a-z]\w*)` \| ([a-zA-Z, ]+) \|$", section, re.M)
    expected = [
        (row.name, ", ".join(KIND_WORDS[k] for k in KIND_WORDS if k in row.attachment_kinds))
        for row in ROWS
    ]
    assert listed == expected, "README.md: the Attachments table of providers, in table order"


def listed_url(listed: list[tuple[str, str, str, str]], name: str) -> str:
    """A provider without a URL of its own: its row must send the reader to LLM_BASE_URL."""
    cell = next((line[2].strip() for line in listed if line[0] == name), "")
    assert "LLM_BASE_URL" in cell, f"{name}: the README does not say where its URL goes"
    return cell


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_each_row_builds_its_client_and_model(row: Provider) -> None:
    settings = settings_for(row)
    resolved = resolve_provider(settings)
    assert resolved.base_url == (row.base_url or OWN_URL)
    assert resolved.api_key == "test-key"
    assert resolved.exports_traces == (row.name == "openai")
    model = build_model(resolved, build_client(resolved, settings))
    styles = {"responses": OpenAIResponsesModel, "chat_completions": OpenAIChatCompletionsModel}
    assert type(model) is styles[row.api_style]


@pytest.mark.parametrize("row", [row for row in ROWS if row.base_url_example])
def test_the_example_base_url_is_refused_at_start(row: Provider) -> None:
    with pytest.raises(ConfigError, match=f"LLM_BASE_URL is required for LLM_PROVIDER={row.name}"):
        resolve_provider(settings_for(row, llm_base_url=row.base_url_example))


def test_an_unknown_provider_names_the_choices() -> None:
    with pytest.raises(ConfigError) as error:
        settings_for(ROWS[0], llm_provider="cohere")
    assert (
        str(error.value)
        == f"LLM_PROVIDER: 'cohere' is unknown: choose one of {', '.join(PROVIDERS)}"
    )
