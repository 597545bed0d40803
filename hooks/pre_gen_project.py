"""Reject bad answers before anything is written: one line per problem, with the fix."""

from __future__ import annotations

import json
import re
import sys
from urllib.parse import urlsplit

ANSWERS: dict[str, object] = json.loads({{cookiecutter | jsonify | tojson}})

PROVIDERS = (
    "openai",
    "openrouter",
    "gemini",
    "anthropic",
    "ollama",
    "azure_openai",
    "openai_compatible",
)
NEEDS_BASE_URL = ("azure_openai", "openai_compatible")
STORES = ("sqlite", "postgres", "memory")
FRONTENDS = ("nextjs", "vite", "none")
ROUTING_PREFIXES = ("litellm/", "openrouter/")
PREFIXED_MODELS_ALLOWED = ("openrouter/auto",)
SLUG = re.compile(r"[a-z][a-z0-9_]*")
# Names that would shadow the standard library or the project's own packages.
RESERVED_SLUGS = {"app", "tests", "chatkit", "agents", "openai", "test", "site", "json"}


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def problems(answers: dict[str, object]) -> list[str]:
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
    if provider not in PROVIDERS:
        found.append(f"llm_provider {provider!r} is unknown: choose one of {', '.join(PROVIDERS)}")

    model = str(answers.get("model_name", "")).strip()
    if not model:
        found.append("model_name is empty: give the model as your provider names it, e.g. gpt-5.1")
    elif model.startswith(ROUTING_PREFIXES) and model not in PREFIXED_MODELS_ALLOWED:
        plain = model.split("/", 1)[1]
        found.append(
            f"model_name {model!r} has a routing prefix the provider rejects: "
            f"use the provider's own name, e.g. {plain}"
        )

    base_url = str(answers.get("llm_base_url", "")).strip()
    if provider in NEEDS_BASE_URL and (not base_url or "YOUR-RESOURCE" in base_url):
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

    for name, choices in (("store_backend", STORES), ("frontend", FRONTENDS)):
        value = str(answers.get(name, ""))
        if value not in choices:
            found.append(f"{name} {value!r} is unknown: choose one of {', '.join(choices)}")

    smoke = answers.get("run_smoke_test")
    if not isinstance(smoke, bool) and str(smoke).lower() not in ("true", "false", "yes", "no"):
        found.append(f"run_smoke_test {smoke!r} is not a boolean: use true or false")
    return found


def main() -> int:
    found = problems(ANSWERS)
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
