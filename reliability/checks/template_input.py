"""9. Template input: invalid answers through cookiecutter's own command line.

Each case runs `cookiecutter <template> --no-input -o <empty dir> key=value ...` in a
subprocess and expects a non-zero exit, the expected message on stderr (the pre-gen
hook's, or cookiecutter's own for an unknown choice), and the output directory still
empty. A valid render is the control: it must succeed and create the project.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from reliability.harness import SKIP_SMOKE_ENV
from reliability.suite import Row, Suite

CHECK = "9. Template input (invalid answers)"
NOTHING_GENERATED = "Nothing was generated"


@dataclass(frozen=True)
class Answers:
    name: str
    answers: dict[str, str]
    message: str  # expected on stderr
    hook: bool = True  # refused by the pre-gen hook (else by cookiecutter itself)


CASES = [
    Answers(
        "slug with a space", {"project_slug": "My Chat"}, "project_slug 'My Chat' is not a valid"
    ),
    Answers("slug starting with a digit", {"project_slug": "9lives"}, "starting with a letter"),
    Answers("slug with a dash", {"project_slug": "chat-app"}, "e.g. chat_app"),
    Answers("slug with a dot", {"project_slug": "chat.app"}, "is not a valid folder"),
    Answers("slug with a slash", {"project_slug": "../escape"}, "is not a valid folder"),
    Answers("slug in upper case", {"project_slug": "Chat"}, "is not a valid folder"),
    Answers("slug naming a package", {"project_slug": "app"}, "clashes with a package name"),
    Answers("slug naming the stdlib", {"project_slug": "json"}, "clashes with a package name"),
    Answers("empty model", {"model_name": ""}, "model_name is empty"),
    Answers("blank model", {"model_name": "   "}, "model_name is empty"),
    Answers("litellm/ prefix", {"model_name": "litellm/gpt-5.1"}, "routing prefix"),
    Answers(
        "openrouter/ prefix",
        {"llm_provider": "openrouter", "model_name": "openrouter/mistralai/devstral-2512:free"},
        "e.g. mistralai/devstral-2512:free",
    ),
    Answers(
        "openai_compatible without a base URL",
        {"llm_provider": "openai_compatible", "llm_base_url": ""},
        "llm_base_url is required for llm_provider=openai_compatible",
    ),
    Answers(
        "azure_openai with the placeholder URL",
        {"llm_provider": "azure_openai"},
        "llm_base_url is required for llm_provider=azure_openai",
    ),
    Answers(
        "base URL without a scheme", {"llm_base_url": "localhost:11434"}, "is not an http(s) URL"
    ),
    Answers("MCP URL not http", {"mcp_server_url": "ftp://x"}, "mcp_server_url 'ftp://x'"),
    Answers(
        "smoke test not a boolean",
        {"run_smoke_test": "maybe"},
        "could not be converted to a boolean",
        hook=False,
    ),
    Answers(
        "two problems at once",
        {"project_slug": "Bad Slug", "model_name": ""},
        "model_name is empty",
    ),
    Answers(
        "unknown provider",
        {"llm_provider": "cohere"},
        "cohere provided for choice variable llm_provider",
        hook=False,
    ),
    Answers(
        "unknown store", {"store_backend": "mongo"}, "provided for choice variable", hook=False
    ),
    Answers(
        "unknown frontend", {"frontend": "angular"}, "provided for choice variable", hook=False
    ),
]


def _cookiecutter(
    template: Path, answers: dict[str, str], output: Path
) -> subprocess.CompletedProcess[str]:
    defaults = {"run_smoke_test": "false", "frontend": "none"}
    pairs = [f"{k}={v}" for k, v in {**defaults, **answers}.items()]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            str(template),
            "--no-input",
            "-o",
            str(output),
            *pairs,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, SKIP_SMOKE_ENV: "1"},
        check=False,
    )


def _try(template: Path, case: Answers) -> str:
    with tempfile.TemporaryDirectory(prefix="reliability-input-") as folder:
        output = Path(folder) / "out"
        output.mkdir()
        result = _cookiecutter(template, case.answers, output)
        left = sorted(p.name for p in output.iterdir())
    if result.returncode == 0:
        return f"{case.name}: accepted"
    if case.message not in result.stderr:
        return f"{case.name}: stderr lacks {case.message!r}: {result.stderr[-300:]!r}"
    if case.hook and NOTHING_GENERATED not in result.stderr:
        return f"{case.name}: no {NOTHING_GENERATED!r} line"
    if "Traceback" in result.stderr and case.hook:
        return f"{case.name}: a stack trace instead of the message"
    if left:
        return f"{case.name}: left {left} behind"
    return ""


def run(suite: Suite) -> list[Row]:
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        problems = list(pool.map(lambda case: _try(suite.template, case), CASES))
    failures = [p for p in problems if p]
    with tempfile.TemporaryDirectory(prefix="reliability-input-") as folder:
        control = _cookiecutter(suite.template, {"project_slug": "valid_answers"}, Path(folder))
        created = (Path(folder) / "valid_answers" / "backend").is_dir()
    if control.returncode != 0 or not created:
        failures.append(f"the valid control render failed: {control.stderr[-500:]}")
    hook_cases = sum(1 for c in CASES if c.hook)
    refused = len(CASES) - sum(1 for p in problems if p.endswith(": accepted"))
    figures = [
        f"{len(CASES)} invalid answer sets through `cookiecutter --no-input`: {hook_cases} for "
        f"the pre-gen hook, {len(CASES) - hook_cases} that cookiecutter refuses itself "
        "(unknown choices, a non-boolean)",
        f"refused: {refused}/{len(CASES)}; with the expected message: "
        f"{len(CASES) - len([p for p in problems if p])}/{len(CASES)}; output left behind: "
        f"{sum(1 for p in problems if 'left' in p)}",
        f"valid control render: {'created' if created else 'FAILED'}",
    ]
    metrics = {
        "cases": len(CASES),
        "refused": refused,
        "with the message": len(CASES) - len([p for p in problems if p]),
        "left behind": sum(1 for p in problems if "left" in p),
        "control created": int(created),
    }
    details = {
        case.name: f"{' '.join(f'{k}={v!r}' for k, v in case.answers.items())} → "
        + (f"refused: {case.message!r}" if not problem else problem)
        for case, problem in zip(CASES, problems, strict=True)
    }
    return [Row(CHECK, "template", figures, failures, time.monotonic() - started, details, metrics)]
