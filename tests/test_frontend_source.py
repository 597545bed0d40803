"""One frontend source: what both frontends share is written once, in `frontends/shared/`.

The post-generation hook copies `frontends/shared/` into the chosen shell
(`frontends/nextjs/` or `frontends/vite/`) before the shell becomes `frontend/`. A shell
holds only what its framework does differently: how the build-time variables are read
(`src/lib/public-env.ts`), how the ChatKit script is loaded, the page shell, the
`/chatkit` proxy and the build config. These tests keep the shells in step without npm;
`tests/test_frontends.py` checks that each rendered frontend holds every shared file
byte for byte, and builds it.
"""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path

import pytest

from tests.browser_support.frontend_build import (
    FRONTENDS,
    SHARED,
    TEMPLATE_FRONTENDS,
    render,
)
from tests.browser_support.frontend_build import template_files as files

PROJECT_TEMPLATE = TEMPLATE_FRONTENDS.parent
FRONTENDS_DIR = TEMPLATE_FRONTENDS
CODE_SUFFIXES = (".ts", ".tsx")
# Framework APIs: each belongs in a shell, never in the shared code.
FRAMEWORK_ONLY = re.compile(r"process\.env|import\.meta\.env|from \"(next|vite)[/\"]")
# The packages a shell must have at the shared code's version even if no shared file
# imports them: the toolchain both builds run.
SHARED_TOOLCHAIN = {"typescript", "eslint", "@types/react", "@types/react-dom", "@types/node"}

IMPORT = re.compile(
    r"^import\s+(?:type\s+)?(?P<default>\w+)?\s*,?\s*(?:\{(?P<names>[^}]*)\})?\s*"
    r"(?:from\s+)?\"(?P<source>[^\"]+)\"",
    re.MULTILINE,
)
EXPORT = re.compile(
    r"^export\s+(?:default\s+)?(?:async\s+)?(?:const|let|function|class|type|interface)\s+(\w+)",
    re.MULTILINE,
)


def imports(text: str) -> list[tuple[str, set[str]]]:
    """(module, the names it imports) for each import statement."""
    found = []
    for match in IMPORT.finditer(text):
        names = {
            name.strip().removeprefix("type ").split(" as ")[0].strip()
            for name in (match["names"] or "").split(",")
        } - {""}
        found.append((match["source"], names))
    return found


def exports(text: str) -> set[str]:
    return set(EXPORT.findall(text))


def resolve(importer: str, source: str, available: set[str]) -> str | None:
    """The path a relative import in `importer` names, if it is in `available`."""
    target = posixpath.normpath(posixpath.join(posixpath.dirname(importer), source))
    for candidate in (target, target + ".ts", target + ".tsx"):
        if candidate in available:
            return candidate
    return None


def shell_modules() -> dict[str, set[str]]:
    """Modules the shared code imports from the shells -> the names it imports from them."""
    shared = files(SHARED)
    wanted: dict[str, set[str]] = {}
    for name, path in shared.items():
        if not name.endswith(CODE_SUFFIXES):
            continue
        for source, names in imports(path.read_text()):
            if not source.startswith("."):
                continue
            if resolve(name, source, set(shared)) is not None:
                continue
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), source))
            wanted.setdefault(target + ".ts", set()).update(names)
    return wanted


def package_name(specifier: str) -> str:
    """`react-dom/client` -> `react-dom`; `@openai/chatkit-react` stays whole."""
    parts = specifier.split("/")
    return "/".join(parts[:2]) if specifier.startswith("@") else parts[0]


def package(kind: str) -> dict[str, dict[str, str]]:
    data = json.loads((FRONTENDS_DIR / kind / "package.json").read_text())
    return {"dependencies": data["dependencies"], "devDependencies": data["devDependencies"]}


def versions(kind: str) -> dict[str, str]:
    sections = package(kind)
    return {**sections["dependencies"], **sections["devDependencies"]}


def test_the_shells_are_the_only_frontends() -> None:
    assert sorted(p.name for p in FRONTENDS_DIR.iterdir()) == sorted([*FRONTENDS, SHARED])


@pytest.mark.parametrize("kind", FRONTENDS)
def test_no_shell_file_shadows_a_shared_one(kind: str) -> None:
    """A shared file is written once; a shell's copy would be overwritten, or drift."""
    assert set(files(kind)) & set(files(SHARED)) == set()


@pytest.mark.parametrize("kind", FRONTENDS)
def test_shell_holds_only_what_its_framework_does_differently(kind: str) -> None:
    """Same-named sources in both shells are per-framework modules with one interface."""
    sources = {name for name in files(kind) if name.startswith("src/")}
    other = next(k for k in FRONTENDS if k != kind)
    in_both = sources & set(files(other))
    assert in_both == set(shell_modules()), (
        "both shells have these sources but the shared code does not import them from a "
        f"shell: write them once in frontends/shared/ ({sorted(in_both - set(shell_modules()))})"
    )


def test_shared_code_imports_nothing_missing() -> None:
    """Every relative import in shared code names a shared file and names it exports."""
    shared = files(SHARED)
    for name, path in shared.items():
        if not name.endswith(CODE_SUFFIXES):
            continue
        for source, names in imports(path.read_text()):
            target = resolve(name, source, set(shared)) if source.startswith(".") else None
            if target and target.endswith(CODE_SUFFIXES):
                missing = names - exports(shared[target].read_text())
                assert missing == set(), f"{name} imports {missing} that {target} lacks"


def test_each_shell_provides_the_modules_the_shared_code_imports() -> None:
    wanted = shell_modules()
    assert "src/lib/public-env.ts" in wanted, "the build-time variables come from the shell"
    for module, names in wanted.items():
        exported = {}
        for kind in FRONTENDS:
            path = FRONTENDS_DIR / kind / module
            assert path.is_file(), f"the shared code imports {module}; {kind} has none"
            exported[kind] = exports(path.read_text())
            missing = names - exported[kind]
            assert missing == set(), f"{kind}/{module} does not export {missing}"
        assert len({frozenset(names) for names in exported.values()}) == 1, (
            f"{module} exports differ between the shells: {exported}"
        )


def test_shared_code_uses_no_framework_api() -> None:
    """Reading the environment and the framework's own modules stay in the shells."""
    for name, path in files(SHARED).items():
        if name.endswith(CODE_SUFFIXES):
            match = FRAMEWORK_ONLY.search(path.read_text())
            assert match is None, f"{name} uses {match.group(0) if match else ''}"


def test_shared_dependencies_have_one_version() -> None:
    """What the shared code imports, and the common toolchain, at one version in both."""
    imported = {
        package_name(source)
        for name, path in files(SHARED).items()
        if name.endswith(CODE_SUFFIXES)
        for source, _ in imports(path.read_text())
        if not source.startswith(".")
    }
    assert {"react", "@openai/chatkit-react"} <= imported
    every = {kind: versions(kind) for kind in FRONTENDS}
    for name in sorted(imported | SHARED_TOOLCHAIN):
        specs = {kind: every[kind].get(name) for kind in FRONTENDS}
        assert None not in specs.values(), f"{name} is missing from a package.json: {specs}"
        assert len(set(specs.values())) == 1, f"{name} has different versions: {specs}"
    for name in set(every["nextjs"]) & set(every["vite"]):
        specs = {kind: every[kind][name] for kind in FRONTENDS}
        assert len(set(specs.values())) == 1, f"{name} has different versions: {specs}"
        sections = {
            kind: next(s for s, deps in package(kind).items() if name in deps) for kind in FRONTENDS
        }
        assert len(set(sections.values())) == 1, f"{name} is in different sections: {sections}"


def test_locks_resolve_shared_packages_alike() -> None:
    """The lock files install the same version of every package both frontends have."""
    locked = {
        kind: json.loads((FRONTENDS_DIR / kind / "package-lock.json").read_text())["packages"]
        for kind in FRONTENDS
    }
    common = set(versions("nextjs")) & set(versions("vite"))
    assert common
    for name in sorted(common):
        resolved = {kind: locked[kind][f"node_modules/{name}"]["version"] for kind in FRONTENDS}
        assert len(set(resolved.values())) == 1, f"{name} resolves differently: {resolved}"


@pytest.mark.parametrize("kind", FRONTENDS)
def test_shell_readme_lists_every_source_file(kind: str) -> None:
    """frontend/README.md's file table names every source file, and only existing ones."""
    readme = (FRONTENDS_DIR / kind / "README.md").read_text()
    table = readme.split("| File | Its one job |", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r"^\| `([^`]+)` \|", table, re.MULTILINE))
    present = set(files(kind)) | set(files(SHARED))
    sources = {name for name in present if name.startswith("src/")}
    assert sources - listed == set(), "not in the README's file table"
    assert listed - present == set(), "in the README's file table, but no such file"


def test_project_readme_has_no_per_frontend_alternatives() -> None:
    """Each frontend's README text lives with it; the project README links to it."""
    text = (PROJECT_TEMPLATE / "README.md").read_text()
    # Short facts that differ (a port, an image) may stay inline; no section per frontend.
    per_frontend = re.findall(
        r"\{%-?\s*(?:el)?if cookiecutter\.frontend == \"(?!none)\w+\"\s*-?%\}(.*?)\{%",
        text,
        re.DOTALL,
    )
    assert per_frontend, "the pattern no longer matches the README's conditionals"
    assert [body for body in per_frontend if body.count("\n") > 1] == []
    assert "(frontend/README.md)" in text


@pytest.mark.parametrize("kind", FRONTENDS)
def test_rendered_project_links_the_frontend_readme(kind: str, tmp_path: Path) -> None:
    project = render(kind, tmp_path)
    readme = (project / "README.md").read_text()
    assert "(frontend/README.md)" in readme
    assert (project / "frontend" / "README.md").read_bytes() == (
        FRONTENDS_DIR / kind / "README.md"
    ).read_bytes()


def test_no_frontend_leaves_no_frontend_folders(tmp_path: Path) -> None:
    project = render("none", tmp_path)
    assert not (project / "frontend").exists()
    assert not (project / "frontends").exists()
    assert "frontend/README.md" not in (project / "README.md").read_text()


def test_nextjs_route_handlers_share_one_proxy() -> None:
    """/chatkit, /chatkit/attachments/** and /chatkit/models pass requests on through
    src/lib/backend-proxy.ts: one proxy (headers, cookies, forwarded origin, streaming), no
    copy per route."""
    nextjs = files("nextjs")
    routes = sorted(name for name in nextjs if re.fullmatch(r"src/app/.*route\.ts", name))
    assert routes == [
        "src/app/chatkit/attachments/[...path]/route.ts",
        "src/app/chatkit/models/route.ts",
        "src/app/chatkit/route.ts",
    ]
    for name in routes:
        text = nextjs[name].read_text()
        targets = {resolve(name, source, set(nextjs)) for source, _ in imports(text)}
        assert "src/lib/backend-proxy.ts" in targets, f"{name} does not use the shared proxy"
        assert "fetch(" not in text and "new Headers" not in text, f"{name} proxies on its own"


def test_attachment_limits_come_only_from_the_backend() -> None:
    """No frontend source sets a limit: composer.attachments is what the backend's policy
    endpoint sends, so page and server cannot disagree."""
    for kind in FRONTENDS:
        for name, path in {**files(kind), **files(SHARED)}.items():
            if name.endswith(CODE_SUFFIXES):
                text = path.read_text()
                limit = re.search(r"\b(maxSize|maxCount)\s*:\s*\d|\baccept\s*:\s*\{", text)
                assert limit is None, f"{kind}/{name} sets {limit.group(0) if limit else ''}"
