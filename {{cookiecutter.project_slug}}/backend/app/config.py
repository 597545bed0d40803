"""Settings, read from the environment and `.env` files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app import defaults
from app.attachments.sniff import KNOWN_TYPES
from app.oidc import ALLOWED_ALGORITHMS
from app.provider_table import PROVIDERS, ReasoningSummary, routing_prefix_fix

# The project root holds the `.env` that docker compose also reads; a `.env` in the
# working directory (backend/) wins over it.
_PROJECT_ENV = Path(__file__).resolve().parents[2] / ".env"


DEFAULT_ATTACHMENT_TYPES = tuple(KNOWN_TYPES)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")  # S3's bucket naming rules


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

    # --- Turn options (README, "Models, reasoning and titles") ---
    # The composer's model picker: model names, comma-separated, MODEL_NAME among them
    # (the default). Empty: no picker, every message uses MODEL_NAME.
    model_choices: Annotated[list[str], NoDecode] = []
    # Reasoning summaries shown as a "thought" (Responses API, reasoning models only);
    # None: the provider's reasoning_summary in app/provider_table.py.
    reasoning_summary: ReasoningSummary | None = None
    # How hard those models think; None: the model's own default (gpt-5.1's is none,
    # which writes no summaries). Not every model takes every value.
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    # first_message: the thread's title is its first message; model: the model writes
    # one after the first reply (the first message's stays if that fails).
    title_mode: Literal["first_message", "model"] = "first_message"

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

    # --- Sign-in (README, "Users and sessions"): session = the anonymous cookie above; oidc =
    # bearer JWTs from an OpenID provider, checked by app/oidc.py.
    auth_mode: str = defaults.AUTH_MODE
    oidc_issuer: str = ""
    oidc_audience: str = ""
    oidc_jwks_url: str = ""  # empty: the jwks_uri of the issuer's discovery document
    oidc_algorithms: Annotated[list[str], NoDecode] = ["RS256", "ES256"]
    oidc_leeway_seconds: int = Field(default=30, ge=0, le=300)
    oidc_jwks_refresh_seconds: float = Field(default=60, ge=0)

    @field_validator("oidc_algorithms")
    @classmethod
    def _asymmetric_algorithms(cls, value: list[str]) -> list[str]:
        refused = [name for name in value if name not in ALLOWED_ALGORITHMS]
        if refused:
            raise ValueError(
                f"{', '.join(refused)} never accepted (none and HMAC would let anyone sign "
                f"tokens): choose among {', '.join(ALLOWED_ALGORITHMS)}"
            )
        if not value:
            raise ValueError("empty: e.g. OIDC_ALGORITHMS=RS256,ES256")
        return value

    @model_validator(mode="after")
    def _sign_in(self) -> Settings:
        if self.auth_mode not in ("session", "oidc"):
            raise ValueError(f"AUTH_MODE={self.auth_mode!r} is unknown: use session or oidc")
        if self.auth_mode != "oidc":
            return self
        for name, value in (
            ("OIDC_ISSUER", self.oidc_issuer),
            ("OIDC_JWKS_URL", self.oidc_jwks_url),
        ):
            host = urlsplit(value).hostname or ""
            loopback = host in ("localhost", "127.0.0.1", "::1")
            if value and not (
                value.startswith("https://") or (value.startswith("http://") and loopback)
            ):
                raise ValueError(f"{name}={value!r} must be an https URL (http only on localhost)")
        if not self.oidc_issuer:
            raise ValueError(
                "AUTH_MODE=oidc needs OIDC_ISSUER, your provider's issuer URL, e.g. "
                "https://YOUR-TENANT.auth0.com/"
            )
        if not self.oidc_audience:
            raise ValueError(
                "AUTH_MODE=oidc needs OIDC_AUDIENCE, the `aud` your provider puts in access "
                "tokens for this API (its API identifier or client id)"
            )
        return self

    cors_origins: Annotated[list[str], NoDecode] = [
        "http://localhost:3000",
        "http://localhost:5173",
    ]

    mcp_server_url: str = defaults.MCP_SERVER_URL
    mcp_timeout_seconds: float = Field(default=30.0, gt=0)

    log_level: str = "INFO"

    # --- Observability (app/observability/; README, "Observability") ---
    log_format: Literal["json", "text"] = "text"
    # /metrics is served only when this is set, to callers sending it as a bearer token.
    metrics_token: SecretStr | None = None
    # OpenTelemetry traces (app/observability/tracing.py; README, "Traces"): off while both
    # endpoints are empty. The TRACES_ ones, as OpenTelemetry defines them, come first.
    otel_exporter_otlp_endpoint: str = ""  # the collector's base URL: spans to /v1/traces
    otel_exporter_otlp_traces_endpoint: str = ""  # the traces URL itself, used as it is
    otel_exporter_otlp_headers: SecretStr | None = None  # "name=value,name2=value2"
    otel_exporter_otlp_traces_headers: SecretStr | None = None
    otel_service_name: str = ""  # empty: PROJECT_NAME

    # Attachments (README, "Attachments").
    attachments_enabled: bool = defaults.ATTACHMENTS
    attachment_storage: str = "database"  # or s3://BUCKET/PREFIX
    s3_endpoint_url: str = ""  # MinIO, R2, GCS interop...; credentials from AWS_* variables
    attachment_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1, le=5 * 1024**3)
    attachment_types: Annotated[list[str], NoDecode] = list(DEFAULT_ATTACHMENT_TYPES)
    attachment_max_per_message: int = Field(default=4, ge=1, le=100)
    history_image_limit: int = Field(default=4, ge=0, le=100)
    attachment_text_chars: int = Field(default=20_000, ge=100, le=2_000_000)
    attachment_orphan_hours: float = Field(default=24, gt=0)
    # The API's public origin for upload and preview URLs (https://chat.example.com);
    # empty: from X-Forwarded-Proto/X-Forwarded-Host, else from the request.
    public_url: str = ""

    # --- Abuse and cost limits (app/limits/; README, "Limits") ---
    # Characters of one message; longer is refused (HTTP 413) before it is stored.
    max_message_chars: int = Field(default=50_000, ge=1)
    # Characters of history sent per turn, beside HISTORY_LIMIT: oldest items go first.
    history_max_chars: int = Field(default=200_000, ge=1)
    # The model's output cap per turn (max_tokens / max_output_tokens); None: the model's.
    max_output_tokens: int | None = Field(default=None, ge=1)
    # Turns (model runs) per window; 0 switches a limit off.
    rate_limit_user_turns_per_minute: int = Field(default=20, ge=0)
    rate_limit_ip_turns_per_minute: int = Field(default=60, ge=0)
    rate_limit_user_turns_per_day: int = Field(default=1_000, ge=0)
    # New threads per client IP per hour, so fresh cookies cannot flood the database.
    rate_limit_ip_threads_per_hour: int = Field(default=100, ge=0)
    # Attachments (attachments.create) per user per minute, and their declared bytes per
    # user per UTC day.
    rate_limit_user_uploads_per_minute: int = Field(default=20, ge=0)
    rate_limit_user_upload_bytes_per_day: int = Field(default=500 * 1024 * 1024, ge=0)
    # Input + output tokens per user per UTC day; None: no budget (usage is still counted).
    token_budget_user_per_day: int | None = Field(default=None, ge=1)

    @field_validator(
        "max_output_tokens",
        "token_budget_user_per_day",
        "reasoning_summary",
        "reasoning_effort",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "cors_origins", "attachment_types", "oidc_algorithms", "model_choices", mode="before"
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        """The list settings are comma-separated in .env (NoDecode: not JSON)."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("attachment_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        value = [t.lower() for t in value]
        unknown = [t for t in value if t not in KNOWN_TYPES]
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)} unknown: list types of {', '.join(KNOWN_TYPES)}"
            )
        if not value:
            raise ValueError("empty: list at least one type, or set ATTACHMENTS_ENABLED=false")
        return list(dict.fromkeys(value))

    @field_validator("attachment_storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        value = value.strip()
        if value == "database":
            return value
        bucket = value.removeprefix("s3://").split("/", 1)[0]
        if not value.startswith("s3://") or not _BUCKET.fullmatch(bucket):
            raise ValueError(
                f"{value!r} is neither 'database' nor s3://BUCKET/PREFIX "
                "(e.g. s3://my-bucket/chat-uploads)"
            )
        return value

    @field_validator(
        "public_url",
        "s3_endpoint_url",
        "otel_exporter_otlp_endpoint",
        "otel_exporter_otlp_traces_endpoint",
    )
    @classmethod
    def _origin(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", value):
            raise ValueError(f"{value!r} is not an http(s) URL, e.g. https://chat.example.com")
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

    @field_validator("model_choices")
    @classmethod
    def _plain_model_choices(cls, value: list[str]) -> list[str]:
        for name in value:
            plain = routing_prefix_fix(name)
            if plain is not None:
                raise ValueError(
                    f"{name!r} has a routing prefix; list the provider's own name, e.g. {plain}"
                )
            if any(character.isspace() for character in name):
                raise ValueError(f"{name!r} is not a model name: separate names with commas")
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} listed more than once: list each model once")
        return value

    @property
    def otlp_traces_url(self) -> str:
        """Where the spans go; empty: no traces."""
        if self.otel_exporter_otlp_traces_endpoint:
            return self.otel_exporter_otlp_traces_endpoint
        base = self.otel_exporter_otlp_endpoint
        return f"{base}/v1/traces" if base else ""

    @property
    def otlp_traces_headers(self) -> SecretStr | None:
        return self.otel_exporter_otlp_traces_headers or self.otel_exporter_otlp_headers

    @model_validator(mode="after")
    def _default_model_is_a_choice(self) -> Settings:
        if self.model_choices and self.model_name not in self.model_choices:
            example = ",".join([self.model_name, *self.model_choices])
            raise ValueError(
                f"MODEL_CHOICES does not list MODEL_NAME={self.model_name}, the default "
                f"model: add it, e.g. MODEL_CHOICES={example}"
            )
        return self

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
