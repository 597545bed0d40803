"""The template QA (tests/template_qa.py) finds each kind of defect, and only defects.

test_render.py runs it on every render of the matrix; here it runs on a copy of the
template with one defect of each kind planted, and on the planted files' clean twins.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR, render_project
from tests.project_support import template_repo
from tests.template_qa import LEFTOVER, settings_from_env_example, static_checks

DEFECTS = {
    "backend/app/broken.py": "def oops(:\n    pass\n",
    "backend/app/stale.json": '{"trailing": "comma",}\n',
    "backend/app/stale.toml": "[tool]\nname = \n",
    "backend/app/stale.yaml": "steps: [unclosed\n",
    # Rendered, these leave literal template syntax in the output.
    "backend/app/leftover.txt": "{% raw %}Hello {{ cookiecutter.project_name }}{% endraw %}\n",
    "backend/app/leftover_block.md": "Fine.\n{% raw %}{% if cookiecutter.frontend %}{% endraw %}\n",
}
EXPECTED = [
    "backend/app/broken.py:1: does not compile",
    "backend/app/leftover.txt:1: unrendered template syntax",
    "backend/app/leftover_block.md:2: unrendered template syntax",
    "backend/app/stale.json: does not parse",
    "backend/app/stale.toml: does not parse",
    "backend/app/stale.yaml: does not parse",
]
# Under `_copy_without_render` (scripts/*): copied as it is, its own syntax is no defect.
VERBATIM = ("scripts/example.txt", "Hello {{ cookiecutter.project_name }} {% if x %}\n")
# The same kinds of file, well formed: nothing to report.
CLEAN = {
    "backend/app/fine.py": "def fine() -> None:\n    pass\n",
    "backend/app/fine.json": '{"a": [1, 2]}\n',
    "backend/app/fine.toml": "[tool]\nname = 'x'\n",
    "backend/app/fine.yaml": "steps: [one, two]\n",
    "backend/app/fine.txt": "Hello {{ cookiecutter.project_name }}\n",  # rendered
}


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(template, rendered project): the template with every defect planted."""
    template = template_repo(tmp_path_factory.mktemp("qa") / "template")
    root = template / PROJECT_DIR
    for relative, text in {**DEFECTS, **CLEAN, VERBATIM[0]: VERBATIM[1]}.items():
        (root / relative).write_text(text)
    env_example = root / ".env.example"
    lines = env_example.read_text().splitlines()
    env_example.write_text(
        "\n".join(line for line in lines if not line.startswith("HISTORY_LIMIT=")) + "\n"
    )
    project = render_project(tmp_path_factory.mktemp("qa-out"), template=template, frontend="vite")
    return template, project


def test_each_defect_is_named_with_its_file(broken: tuple[Path, Path]) -> None:
    template, project = broken
    report = static_checks(project, template)
    # Each problem as "where: what", without the parser's own words after it.
    found = sorted(re.sub(r"(does not (compile|parse)).*", r"\1", p) for p in report.problems)
    assert found == EXPECTED, report.problems


def test_files_copied_verbatim_keep_their_template_syntax(broken: tuple[Path, Path]) -> None:
    template, project = broken
    copied = project / VERBATIM[0]
    assert copied.read_text() == VERBATIM[1]
    assert LEFTOVER.search(copied.read_text()), "the case is real: it looks like a leftover"
    report = static_checks(project, template)
    assert not [problem for problem in report.problems if VERBATIM[0] in problem]
    # The frontend and the CI workflow are verbatim too and hold their own `{{ }}`.
    assert not [p for p in report.problems if p.startswith(("frontend/", ".github/"))]


def test_a_setting_missing_from_env_example_is_named(broken: tuple[Path, Path]) -> None:
    _, project = broken
    loaded = settings_from_env_example(project)
    assert loaded.missing == ["HISTORY_LIMIT"]
    assert loaded.values["history_limit"] == 50, "the rest still loads; the default fills in"
