"""The template's own QA, run on a rendered project by the tests (never on users' machines):
every `.py` compiles, every JSON/TOML/YAML file parses, no template syntax is left outside
the `_copy_without_render` paths, and `.env.example` names every field of
`app.config.Settings` and loads as its env file.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import PROJECT_DIR, TEMPLATE

# The one pattern for template syntax that rendering should have consumed.
LEFTOVER = re.compile(r"\{\{\s*cookiecutter|\{%-?\s")
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".next", "dist", ".mypy_cache"}
DATA_SUFFIXES = {".json", ".toml", ".yml", ".yaml"}


@dataclass
class QAReport:
    python_files: int = 0
    data_files: int = 0
    rendered_files: int = 0
    problems: list[str] = field(default_factory=list)


def copy_without_render_patterns(template: Path = TEMPLATE) -> list[str]:
    return list(json.loads((template / "cookiecutter.json").read_text())["_copy_without_render"])


def verbatim_digests(template: Path = TEMPLATE) -> set[str]:
    """Digests of the template files cookiecutter copies unrendered.

    Matched as cookiecutter does (paths relative to the project template directory, a
    matching directory is copied whole). Known by content, not by path, so the hook may
    move them (frontends/<kind> -> frontend, ci-backend.yml -> ci.yml) without this
    list knowing how.
    """
    patterns = copy_without_render_patterns(template)
    root = template / PROJECT_DIR
    digests = set()
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if not path.is_file() or SKIP_DIRS & set(relative.parts):
            continue
        prefixes = ["/".join(relative.parts[: n + 1]) for n in range(len(relative.parts))]
        if any(fnmatch.fnmatch(p, pattern) for p in prefixes for pattern in patterns):
            digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    return digests


def project_files(project: Path) -> list[Path]:
    return [
        path
        for path in sorted(project.rglob("*"))
        if path.is_file() and not SKIP_DIRS & set(path.relative_to(project).parts)
    ]


def static_checks(project: Path, template: Path = TEMPLATE) -> QAReport:
    """Compile, parse and look for template leftovers in every file of a rendered project."""
    report = QAReport()
    verbatim = verbatim_digests(template)
    for path in project_files(project):
        relative = path.relative_to(project).as_posix()
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue  # binary
        try:
            if path.suffix == ".py":
                compile(text, relative, "exec", dont_inherit=True)
                report.python_files += 1
            elif path.suffix == ".json":
                json.loads(text)
            elif path.suffix == ".toml":
                tomllib.loads(text)
            elif path.suffix in (".yml", ".yaml"):
                list(yaml.safe_load_all(text))
            if path.suffix in DATA_SUFFIXES:
                report.data_files += 1
        except SyntaxError as error:
            report.problems.append(f"{relative}:{error.lineno}: does not compile: {error.msg}")
        except Exception as error:
            report.problems.append(f"{relative}: does not parse: {' '.join(str(error).split())}")
        if hashlib.sha256(data).hexdigest() in verbatim:
            continue
        report.rendered_files += 1
        match = LEFTOVER.search(text)
        if match:
            line = text.count("\n", 0, match.start()) + 1
            report.problems.append(f"{relative}:{line}: unrendered template syntax")
    return report


# Run in the rendered backend (its `app` package), in an environment holding nothing but
# the session secret (and, for auth=oidc, the provider the user must name): the settings
# come from .env.example alone.
_LOAD_SETTINGS = """
import json, sys
from app.config import Settings
settings = Settings(_env_file=sys.argv[1])
print(json.dumps({
    "fields": sorted(Settings.model_fields),
    "values": json.loads(settings.model_dump_json()),
}))
"""


def env_example_names(text: str) -> set[str]:
    """Variables `.env.example` names, set (`NAME=`) or shown commented out (`# NAME=`)."""
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))


@dataclass
class LoadedSettings:
    fields: list[str]
    values: dict[str, Any]
    missing: list[str]  # fields .env.example does not name


def settings_from_env_example(project: Path) -> LoadedSettings:
    """`app.config.Settings` loaded with the rendered `.env.example` as its env file."""
    env_example = project / ".env.example"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SESSION_SECRET": "qa-session-secret-" + "x" * 32,
        "OIDC_ISSUER": "https://issuer.example.com/",
        "OIDC_AUDIENCE": "qa-api",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_SETTINGS, str(env_example)],
        cwd=project / "backend",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (
        f"Settings do not load from the rendered .env.example:\n{result.stderr[-4000:]}"
    )
    loaded = json.loads(result.stdout)
    names = env_example_names(env_example.read_text(encoding="utf-8"))
    missing = [name.upper() for name in loaded["fields"] if name.upper() not in names]
    return LoadedSettings(loaded["fields"], loaded["values"], missing)
