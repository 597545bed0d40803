"""Bad answers are refused before anything is written, with the fix in the message."""

from __future__ import annotations

from pathlib import Path

import pytest
from cookiecutter.exceptions import FailedHookException

from tests.conftest import Render

BAD_ANSWERS = [
    pytest.param(
        {"project_slug": "My Chat"}, "project_slug 'My Chat' is not a valid", id="slug-space"
    ),
    pytest.param({"project_slug": "9lives"}, "starting with a letter", id="slug-digit"),
    pytest.param({"project_slug": "chat-app"}, "e.g. chat_app", id="slug-dash"),
    pytest.param({"model_name": "  "}, "model_name is empty", id="empty-model"),
    pytest.param(
        {"model_name": "litellm/gpt-5.1"},
        "routing prefix the provider rejects",
        id="litellm-prefix",
    ),
    pytest.param(
        {"llm_provider": "openrouter", "model_name": "openrouter/mistralai/devstral-2512:free"},
        "e.g. mistralai/devstral-2512:free",
        id="openrouter-prefix",
    ),
    pytest.param(
        {"llm_provider": "openai_compatible", "llm_base_url": ""},
        "llm_base_url is required for llm_provider=openai_compatible",
        id="compatible-without-url",
    ),
    pytest.param(
        {"llm_provider": "azure_openai"},
        "llm_base_url is required for llm_provider=azure_openai",
        id="azure-placeholder-url",
    ),
    pytest.param({"llm_base_url": "localhost:11434"}, "is not an http(s) URL", id="bad-base-url"),
    pytest.param({"mcp_server_url": "ftp://x"}, "mcp_server_url 'ftp://x'", id="bad-mcp-url"),
]

UNKNOWN_CHOICES = [
    pytest.param("llm_provider", "cohere", id="unknown-provider"),
    pytest.param("store_backend", "mongo", id="unknown-store"),
    pytest.param("frontend", "angular", id="unknown-frontend"),
    pytest.param("auth", "ldap", id="unknown-auth"),
]


@pytest.mark.parametrize(("answers", "message"), BAD_ANSWERS)
def test_bad_answer_is_refused(
    render: Render,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    answers: dict[str, str],
    message: str,
) -> None:
    out = tmp_path / "refused"
    with pytest.raises(FailedHookException):
        render(output_dir=out, **answers)
    err = capfd.readouterr().err
    assert message in err
    assert "Nothing was generated" in err
    assert list(out.iterdir()) == [], "nothing is left behind"


def test_several_problems_are_all_reported(
    render: Render, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(FailedHookException):
        render(output_dir=tmp_path / "x", project_slug="Bad Slug", model_name="")
    err = capfd.readouterr().err
    assert err.count("ERROR: ") == 2


@pytest.mark.parametrize(("variable", "value"), UNKNOWN_CHOICES)
def test_unknown_choice_is_refused(
    render: Render, tmp_path: Path, variable: str, value: str
) -> None:
    # cookiecutter checks --no-input/extra_context choices itself, before any hook runs.
    out = tmp_path / "refused"
    with pytest.raises(
        ValueError, match=f"{value} provided for choice variable {variable}, but the choices are"
    ):
        render(output_dir=out, **{variable: value})
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize(("variable", "value"), UNKNOWN_CHOICES)
def test_unknown_choice_in_a_replay_file_is_refused(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], variable: str, value: str
) -> None:
    # A replay file skips cookiecutter's own choice check: the pre-gen hook catches it.
    import json

    from cookiecutter.main import cookiecutter

    from tests.conftest import TEMPLATE

    defaults = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    answers = {
        k: (v[0] if isinstance(v, list) else v)
        for k, v in defaults.items()
        if not k.startswith("_")
    }
    answers.update(
        project_slug="my_chatkit_app", model_name="gpt-5.1", llm_base_url="", run_smoke_test=False
    )
    answers[variable] = value
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"cookiecutter": answers}))
    out = tmp_path / "refused"
    with pytest.raises(FailedHookException):
        cookiecutter(str(TEMPLATE), replay=str(replay), output_dir=str(out))
    assert f"{variable} '{value}' is unknown" in capfd.readouterr().err
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(("frontend", "prefix"), [("nextjs", "NEXT_PUBLIC_"), ("vite", "VITE_")])
def test_oidc_goes_with_a_frontend(render: Render, frontend: str, prefix: str) -> None:
    """The bundled frontends sign in: auth=oidc renders with either, and the frontend's
    .env.example names its sign-in variables."""
    project = render(auth="oidc", frontend=frontend)
    example = (project / "frontend" / ".env.example").read_text()
    for name in ("OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_AUDIENCE", "OIDC_SCOPE"):
        assert f"# {prefix}{name}=" in example, name
    assert "AUTH_MODE=oidc" in (project / ".env.example").read_text()
