"""The Next.js and Vite frontends: rendered verbatim (each framework's shell plus the
shared files), installed with `npm ci`, linted, typechecked and built; the build carries
the public settings and no backend secret. tests/test_frontend_source.py keeps the
shells and the shared files in step.

npm downloads come from npm's own cache (~/.npm) after the first run. Each frontend is
installed and built once per session (tests/browser_support/frontend_build.py) and the
browser tests reuse the build.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pytest

from tests.browser_support.frontend_build import (
    FRONTENDS,
    SHARED,
    SKIP_IN_OUTPUT,
    TEMPLATE_DIR,
    TEMPLATE_FRONTENDS,
    FrontendBuild,
    digest,
    files_containing,
    frontend_files,
    get_build,
    render,
)

RENDERED_FILE = "site.config.json"  # the one file per frontend that carries the answers
SOURCE_SUFFIXES = {".ts", ".tsx", ".mjs", ".js", ".css", ".html", ".json"}
ALLOWED_REMOTE_URLS = {
    "https://cdn.platform.openai.com/deployments/chatkit/chatkit.js",
    # Named by the Content-Security-Policy and the preconnect, never loaded by the build.
    "https://cdn.platform.openai.com",
    "https://api.openai.com",
    "https://platform.openai.com/settings/organization/security/domain-allowlist",
}
REQUIRED_SCRIPTS = {
    "nextjs": {"dev", "build", "start", "lint", "typecheck"},
    "vite": {"dev", "build", "preview", "lint", "typecheck"},
}

pytestmark = pytest.mark.parametrize("kind", FRONTENDS)


@pytest.fixture
def build(kind: str, tmp_path_factory: pytest.TempPathFactory) -> FrontendBuild:
    return get_build(kind, tmp_path_factory)


# --- the template itself (no npm) ---------------------------------------------------------


def test_only_the_config_file_is_rendered(kind: str) -> None:
    """Every frontend file, shell or shared, but site.config.json is in `_copy_without_render`.

    JSX and TS may hold `{{` at any time; they must never go through Jinja. Paths are
    matched the way cookiecutter does: relative to the project template directory.
    """
    patterns = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())["_copy_without_render"]
    project_template = TEMPLATE_FRONTENDS.parent
    paths = [str(path.relative_to(project_template)) for path in frontend_files(kind).values()]
    rendered = [p for p in paths if not any(fnmatch.fnmatch(p, pattern) for pattern in patterns)]
    assert rendered == [f"frontends/{SHARED}/{RENDERED_FILE}"]


def test_rendered_frontend_is_the_template_verbatim(kind: str, tmp_path: Path) -> None:
    """The shell and every shared file, byte for byte, in frontend/; only site.config.json
    carries answers. No frontends/ folder is left behind."""
    frontend = render(kind, tmp_path) / "frontend"
    assert frontend.is_dir()
    assert not (frontend.parent / "frontends").exists()
    expected = frontend_files(kind)
    rendered = {
        path.relative_to(frontend).as_posix(): path
        for path in frontend.rglob("*")
        if path.is_file()
    }
    assert set(rendered) == set(expected)
    changed = [
        name
        for name, path in expected.items()
        if name != RENDERED_FILE and path.read_bytes() != rendered[name].read_bytes()
    ]
    assert changed == [], f"rendered by Jinja, should be in _copy_without_render: {changed}"
    assert "{{" in (expected[RENDERED_FILE]).read_text()
    assert "{{" not in rendered[RENDERED_FILE].read_text()


def test_answers_reach_the_frontend_as_json(kind: str, tmp_path: Path) -> None:
    name = 'Zoë\'s "Chat" <App> & {co}'
    description = 'Says "hi" \\ and </script>'
    project = render(
        kind, tmp_path, project_name=name, project_slug="quoted_app", description=description
    )
    config = json.loads((project / "frontend" / RENDERED_FILE).read_text())
    assert config["projectName"] == name
    assert config["description"] == description
    assert config["greeting"] and len(config["prompts"]) >= 2


def test_lockfile_is_reproducible_and_registry_neutral(kind: str) -> None:
    files = frontend_files(kind)
    package = json.loads(files["package.json"].read_text())
    lock = json.loads(files["package-lock.json"].read_text())
    assert lock["lockfileVersion"] == 3
    assert lock["packages"][""]["dependencies"] == package["dependencies"]
    assert lock["packages"][""]["devDependencies"] == package["devDependencies"]
    assert '"resolved"' not in files["package-lock.json"].read_text()
    assert "omit-lockfile-registry-resolved=true" in files[".npmrc"].read_text()
    assert REQUIRED_SCRIPTS[kind] <= set(package["scripts"])
    assert "next lint" not in json.dumps(package["scripts"])
    assert "eslint.config.mjs" in files


def test_sources_load_nothing_remote_but_the_chatkit_script(kind: str) -> None:
    """Builds offline from the npm registry: no Google fonts, no remote images."""
    urls: set[str] = set()
    for name, path in frontend_files(kind).items():
        if path.suffix not in SOURCE_SUFFIXES or name == "package-lock.json":
            continue
        text = path.read_text()
        assert "next/font/google" not in text, name
        assert "fonts.googleapis" not in text, name
        urls |= set(re.findall(r"https?://[^\s\"'`)<>]+", text))
    remote = {url for url in urls if not re.match(r"https?://(127\.0\.0\.1|localhost)[:/]", url)}
    assert remote <= ALLOWED_REMOTE_URLS


# --- installed and built ------------------------------------------------------------------


def test_npm_ci_leaves_the_lockfile_alone(build: FrontendBuild) -> None:
    lockfile = build.frontend_dir / "package-lock.json"
    assert digest(lockfile) == build.lock_digest_before
    assert (build.frontend_dir / "node_modules" / "@openai" / "chatkit-react").is_dir()


def test_lint(build: FrontendBuild) -> None:
    build.npm("run", "lint")


def test_typecheck(build: FrontendBuild) -> None:
    build.npm("run", "typecheck")


def test_build_carries_domain_key_and_api_url(build: FrontendBuild) -> None:
    assert files_containing(build.browser_dir, build.domain_key), (
        f"{build.domain_key_var} from the build environment is not in the browser bundle"
    )
    assert files_containing(build.browser_dir, build.api_url), (
        f"{build.api_url_var} from the build environment is not in the browser bundle"
    )


def test_build_keeps_backend_secrets_out(build: FrontendBuild) -> None:
    skip = SKIP_IN_OUTPUT[build.kind]
    for name, value in build.secrets.items():
        leaked = files_containing(build.output_dir, value, skip)
        assert leaked == [], f"{name} from the build environment leaked into {leaked}"


def test_build_without_domain_key_warns(build: FrontendBuild) -> None:
    unkeyed = build.steps["build-without-key"].output
    keyed = build.steps["build"].output
    warning = f"WARNING: {build.domain_key_var} is not set"
    assert warning in unkeyed
    assert "https://platform.openai.com/settings/organization/security/domain-allowlist" in unkeyed
    assert warning not in keyed


# An error message of oidc-client-ts's own, so in its code wherever the bundler puts it.
OIDC_CLIENT_MARKER = "No matching state found in storage"
# Where the page's HTML is, and where its /... script URLs are, in each build.
PAGE_HTML = {"nextjs": ".next/server/app/index.html", "vite": "dist/index.html"}
SCRIPT_ROOT = {"nextjs": ("/_next/", ".next/"), "vite": ("/", "dist/")}


def test_sign_in_code_is_not_in_the_cookie_pages_scripts(build: FrontendBuild) -> None:
    """Built without OIDC settings, the page's own scripts hold no oidc-client-ts: it is a
    chunk of its own (src/lib/auth.ts imports it dynamically), loaded only with sign-in."""
    html = (build.frontend_dir / PAGE_HTML[build.kind]).read_text()
    url_prefix, folder = SCRIPT_ROOT[build.kind]
    scripts = set(re.findall(rf'(?:src|href)="({re.escape(url_prefix)}[^"]+\.js)"', html))
    assert scripts, html[:2000]
    marker = OIDC_CLIENT_MARKER.encode()
    loaded = [build.frontend_dir / folder / url[len(url_prefix) :] for url in sorted(scripts)]
    assert [path.name for path in loaded if marker in path.read_bytes()] == []
    chunks = files_containing(build.browser_dir, OIDC_CLIENT_MARKER)
    assert len(chunks) == 1, f"expected oidc-client-ts in one chunk of its own: {chunks}"
