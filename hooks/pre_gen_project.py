"""Reject bad answers before anything is written: one line per problem, with the fix."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

ANSWERS: dict[str, object] = json.loads({{cookiecutter | jsonify | tojson}})

# The provider table is the generated backend's own module (standard library only).
TABLE_GLOB = "*cookiecutter.project_slug*/backend/app/provider_table.py"
STORES = ("sqlite", "postgres", "memory")
FRONTENDS = ("nextjs", "vite", "none")
AUTH_MODES = ("session", "oidc")
# What a boolean answer may be as a string; app/defaults.py renders the same words as True.
BOOLEAN_WORDS = ("true", "false", "yes", "no", "y", "n", "1", "0", "on", "off")
SLUG = re.compile(r"[a-z][a-z0-9_]*")
# Names that would shadow the standard library or the project's own packages.
RESERVED_SLUGS = {"app", "tests", "chatkit", "agents", "openai", "test", "site", "json"}


def template_dirs(answers: dict[str, object]) -> list[Path]:
    """Where the template may be, most exact first.

    cookiecutter's `_repo_dir` may be relative to where it was started ($PWD), while
    this hook runs in the new project's directory. cruft names no directory, but
    cookiecutter runs hooks from inside the template, so on Linux the parent process's
    working directory is it; cruft's `_template` is a last resort when it is local.
    """
    candidates: list[Path] = []
    repo_dir = answers.get("_repo_dir")
    if isinstance(repo_dir, str) and repo_dir:
        candidates.append(Path(os.environ.get("PWD", ".")) / Path(repo_dir).expanduser())
    candidates.append(Path(f"/proc/{os.getppid()}/cwd"))
    template = answers.get("_template")
    if isinstance(template, str) and template:
        candidates.append(Path(os.environ.get("PWD", ".")) / Path(template).expanduser())
    return [path for path in candidates if path.is_dir()]


def load_provider_table(answers: dict[str, object]) -> ModuleType | None:
    """The template's provider table, or None where none of those places has it.

    Then only cruft can be rendering, from a clone it does not name: its answers were
    checked when first given, and the backend checks the provider settings at start-up.
    """
    # A .pyc left in the template would be copied into the next project it renders.
    sys.dont_write_bytecode = True
    for template in template_dirs(answers):
        for path in sorted(template.glob(TABLE_GLOB)):
            spec = importlib.util.spec_from_file_location("provider_table", path)
            if spec is None or spec.loader is None:
                continue
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module  # dataclasses look their module up there
            spec.loader.exec_module(module)
            return module
    return None


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def problems(answers: dict[str, object], table: ModuleType | None) -> list[str]:
    found: list[str] = []
    slug = str(answers.get("project_slug", ""))
    if not SLUG.fullmatch(slug):
        suggestion = re.sub(r"[^a-z0-9_]+", "_", slug.lower()).strip("_") or "my_chat_app"
        if not suggestion[0].isalpha():
            suggestion = f"app_{suggestion}"
        found.append(
            f"project_slug {slug!r} is not a valid folder and Python package name: use lowercase "
            f"letters, digits and underscores, starting with a letter, e.g. {suggestion}"
        )
    elif slug in RESERVED_SLUGS:
        found.append(f"project_slug {slug!r} clashes with a package name: e.g. {slug}_chat")

    provider = str(answers.get("llm_provider", ""))
    row = table.PROVIDERS.get(provider) if table else None
    if table and row is None:
        names = ", ".join(table.PROVIDERS)
        found.append(f"llm_provider {provider!r} is unknown: choose one of {names}")

    model = str(answers.get("model_name", "")).strip()
    plain = table.routing_prefix_fix(model) if table else None
    if not model:
        found.append("model_name is empty: give the model as your provider names it, e.g. gpt-5.1")
    elif plain is not None:
        found.append(
            f"model_name {model!r} has a routing prefix the provider rejects: "
            f"use the provider's own name, e.g. {plain}"
        )

    base_url = str(answers.get("llm_base_url", "")).strip()
    if row and row.base_url is None and (not base_url or table.PLACEHOLDER in base_url):
        found.append(
            f"llm_base_url is required for llm_provider={provider}: give the endpoint's "
            "OpenAI-compatible base URL, e.g. https://my-gateway.example.com/v1"
        )
    elif base_url and not _is_http_url(base_url):
        found.append(
            f"llm_base_url {base_url!r} is not an http(s) URL, e.g. http://localhost:11434/v1"
        )

    mcp_url = str(answers.get("mcp_server_url", "")).strip()
    if mcp_url and not _is_http_url(mcp_url):
        found.append(
            f"mcp_server_url {mcp_url!r} is not an http(s) URL: give the streamable HTTP "
            "endpoint, e.g. http://localhost:8001/mcp, or leave it empty"
        )

    for name, choices in (("store_backend", STORES), ("frontend", FRONTENDS), ("auth", AUTH_MODES)):
        value = str(answers.get(name, ""))
        if value not in choices:
            found.append(f"{name} {value!r} is unknown: choose one of {', '.join(choices)}")

    for name in ("attachments", "run_smoke_test"):
        flag = answers.get(name)
        if not isinstance(flag, bool) and str(flag).lower() not in BOOLEAN_WORDS:
            found.append(f"{name} {flag!r} is not a boolean: use true or false")
    return found


def main() -> int:
    found = problems(ANSWERS, load_provider_table(ANSWERS))
    for problem in found:
        print(f"ERROR: {problem}", file=sys.stderr)
    if found:
        print(
            "Nothing was generated. Run cookiecutter again with the answers fixed.", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
