"""The ASGI app, built by `create_app(settings)`.

    uvicorn --factory app.main:create_app     # reads the environment and .env
    uvicorn app.main:app                      # the same app, built on first access

Importing this module reads no setting: tests and tools build apps with explicit
`Settings`, and a configuration mistake surfaces when an app is built.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from openai import AsyncOpenAI

from app import extensions
from app.agent import build_agent, build_mcp_server
from app.attachments.policy import AttachmentError
from app.attachments.routes import attachment_refused
from app.attachments.routes import router as attachments_router
from app.attachments.service import AttachmentService
from app.config import ConfigError, Settings, load_settings
from app.deps import Services, attach_services
from app.identity import AUTH_ERROR_HANDLERS, SessionCookies
from app.limits import Limits
from app.model_choice import ModelChoices
from app.observability.logs import configure_logging
from app.observability.metrics import new_app_metrics
from app.observability.request_id import RequestIds
from app.observability.routes import metrics_router
from app.oidc import build_verifier
from app.providers import (
    ResolvedProvider,
    build_client,
    build_model,
    configure_tracing,
    resolve_provider,
)
from app.reasoning import summary_for
from app.routes import router
from app.sdk_fixes import orphaned_steps
from app.sdk_fixes.gc_freeze import freeze_startup_objects
from app.security_headers import SecurityHeaders
from app.server import ChatServer
from app.stores import build_store
from app.titles import TitleMaker

if TYPE_CHECKING:
    from app.observability.tracing import Traces

logger = logging.getLogger("app")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for `settings`; settings problems raise ConfigError before anything starts.

    Without settings (`uvicorn --factory`, the module's `app`) they come from the
    environment, and a configuration error ends the process with one line that names
    the variable, instead of a stack trace.
    """
    if settings is not None:
        return _build(settings)
    try:
        settings = load_settings()
        configure_logging(settings.log_level, settings.log_format)
        return _build(settings)
    except ConfigError as error:
        sys.exit(f"Configuration error: {error}")


def _build(settings: Settings) -> FastAPI:
    resolved = resolve_provider(settings)
    configure_tracing(resolved)
    client = build_client(resolved, settings)
    traces = _start_traces(settings, resolved, client)
    store = build_store(settings.database_url)
    mcp_servers = (
        [build_mcp_server(settings.mcp_server_url, settings.mcp_timeout_seconds)]
        if settings.mcp_server_url
        else []
    )
    agent = build_agent(build_model(resolved, client), mcp_servers)
    models = ModelChoices(
        resolved,
        settings.model_choices,
        lambda name: build_model(resolved, client, name),
        summary_for(settings.reasoning_summary, resolved.provider),
        settings.reasoning_effort,
    )
    limits = Limits(settings, store)
    attachments = AttachmentService.from_settings(store, settings, resolved.provider)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        orphaned_steps.install(asyncio.get_running_loop())
        async with AsyncExitStack() as stack:
            if traces is not None:
                stack.callback(traces.shutdown)  # last: after the spans of the shutdown
            await store.start()
            stack.push_async_callback(store.close)
            stack.push_async_callback(client.close)
            if attachments.objects is not None:
                # A missing bucket or refused key stops the start, instead of surfacing
                # as "not uploaded yet" at the first message with a file.
                await attachments.objects.check_bucket()
            for server in mcp_servers:
                try:
                    await server.connect()  # type: ignore[no-untyped-call]
                except Exception as error:
                    raise RuntimeError(
                        f"Could not connect to the MCP server at MCP_SERVER_URL="
                        f"{settings.mcp_server_url} ({type(error).__name__}). Start it, "
                        "or set MCP_SERVER_URL= to run without it."
                    ) from error
                stack.push_async_callback(server.cleanup)
            logger.info(
                "ready: provider=%s model=%s store=%s",
                resolved.provider.name,
                resolved.model_name,
                type(store).__name__,
            )
            if attachments.policy.enabled:
                sweeper = asyncio.create_task(attachments.run_sweeper(), name="attachment-sweep")
                stack.push_async_callback(_stop, sweeper)  # before the store closes
            freeze_startup_objects()
            yield

    app = FastAPI(
        title=settings.project_name,
        lifespan=lifespan,
        telemetry=traces.server_spans() if traces is not None else None,
    )
    metrics = new_app_metrics()
    secret = settings.session_secret.get_secret_value() if settings.session_secret else ""
    attach_services(
        app,
        Services(
            settings=settings,
            store=store,
            chat_server=ChatServer(
                store,
                agent,
                resolved,
                settings.history_limit,
                attachments,
                history_image_limit=settings.history_image_limit,
                attachment_text_chars=settings.attachment_text_chars,
                limits=limits,
                models=models,
                titles=TitleMaker(store, limits) if settings.title_mode == "model" else None,
            ),
            sessions=SessionCookies(
                secret, settings.session_cookie_name, settings.session_max_age_days * 86_400
            ),
            attachments=attachments,
            oidc=build_verifier(settings),
        ),
    )
    for error, handler in (*AUTH_ERROR_HANDLERS, (AttachmentError, attachment_refused)):
        app.add_exception_handler(error, handler)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["GET", "POST", "PUT", "OPTIONS"],
        allow_headers=["*"],
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestIds, metrics=metrics)  # added last, so outermost
    app.include_router(router)
    app.include_router(attachments_router)
    metrics_token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    if metrics_token:
        app.include_router(metrics_router(metrics, metrics_token))
    for extra in extensions.ROUTERS:
        app.include_router(extra)
    return app


def _start_traces(
    settings: Settings, resolved: ResolvedProvider, client: AsyncOpenAI
) -> Traces | None:
    if not settings.otlp_traces_url:
        return None
    # Imported only here: without traces, a process loads none of OpenTelemetry.
    from app.observability.tracing import start_traces

    return start_traces(settings, resolved, client)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def __getattr__(name: str) -> FastAPI:
    # `app.main:app` for uvicorn, the Dockerfile and the README: built once, on first use.
    if name == "app":
        try:
            app = create_app()
        except AttributeError as error:  # getattr() would report it as "no attribute app"
            raise RuntimeError("building the app failed") from error
        globals()["app"] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
