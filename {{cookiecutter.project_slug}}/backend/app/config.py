"""Settings, read from the environment and `.env` files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app import defaults
from app.provider_table import PROVIDERS, routing_prefix_fix

# The project root holds the `.env` that docker compose also reads; a `.env` in the
# working directory (backend/) wins over it.
_PROJECT_ENV = Path(__file__).resolve().parents[2] / ".env"


class ConfigError(Exception):
    """A setting is missing or wrong. The message names the variable and the fix."""


def _default_database_url() -> str:
    if defaults.STORE_BACKEND == "memory":
        return "memory://"
    if defaults.STORE_BACKEND == "postgres":
        return f"postgresql+asyncpg://postgres:postgres@127.0.0.1:5432/{defaults.DATABASE_NAME}"
    return f"sqlite+aiosqlite:///./{defaults.DATABASE_NAME}.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=(_PROJECT_ENV, ".env"), env_file_encoding="utf-8", extra="ignore"
    )

    project_name: str = defaults.PROJECT_NAME

    llm_provider: str = defaults.LLM_PROVIDER
    model_name: str = defaults.MODEL_NAME
    llm_base_url: str = defaults.LLM_BASE_URL
    llm_timeout_seconds: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0)

    # One field per provider_table.KEY_VARIABLES entry (tests/test_provider_table.py checks).
    openai_api_key: SecretStr | None = None
    openrouter_api_key: SecretStr | None = None
    gemini_api_key: SecretStr | None = None
    anthropic_api_key: SecretStr | None = None
    deepseek_api_key: SecretStr | None = None
    azure_openai_api_key: SecretStr | None = None
    llm_api_key: SecretStr | None = None

    database_url: str = Field(default_factory=_default_database_url)
    history_limit: int = Field(default=50, ge=1, le=1000)
    max_request_bytes: int = Field(default=1_000_000, ge=1024)

    session_secret: SecretStr | None = None
    session_cookie_name: str = "chatkit_session"
    session_max_age_days: int = Field(default=365, ge=1)

    cors_origins: Annotated[list[str], NoDecode] = [
        "http://localhost:3000",
        "http://localhost:5173",
    ]

    mcp_server_url: str = defaults.MCP_SERVER_URL
    mcp_timeout_seconds: float = Field(default=30.0, gt=0)

    log_level: str = "INFO"

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("llm_provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value not in PROVIDERS:
            raise ValueError(f"{value!r} is unknown: choose one of {', '.join(PROVIDERS)}")
        return value

    @field_validator("model_name")
    @classmethod
    def _plain_model_name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("MODEL_NAME is empty: set it to a model your provider serves")
        plain = routing_prefix_fix(value)
        if plain is not None:
            raise ValueError(
                f"MODEL_NAME={value!r} has a routing prefix; use the provider's own name, "
                f"e.g. MODEL_NAME={plain}"
            )
        return value

    @model_validator(mode="after")
    def _checks(self) -> Settings:
        if "*" in self.cors_origins:
            raise ValueError(
                "CORS_ORIGINS must list origins: '*' cannot be combined with the session "
                "cookie (credentials); e.g. CORS_ORIGINS=https://chat.example.com"
            )
        secret = self.session_secret.get_secret_value() if self.session_secret else ""
        if len(secret) < 32:
            raise ValueError(
                "SESSION_SECRET is missing or shorter than 32 characters; generate one with "
                'python -c "import secrets; print(secrets.token_urlsafe(32))"'
            )
        return self


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning validation errors into one readable ConfigError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = []
        for problem in error.errors(include_url=False, include_input=False):
            field = ".".join(str(part) for part in problem["loc"]).upper()
            message = problem["msg"].removeprefix("Value error, ")
            problems.append(f"{field}: {message}" if field else message)
        raise ConfigError("; ".join(problems)) from None
