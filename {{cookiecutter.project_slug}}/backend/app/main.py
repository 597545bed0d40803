"""The ASGI app: `uvicorn app.main:app`, run from backend/."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.agent import build_agent, build_mcp_server
from app.config import ConfigError, Settings, load_settings
from app.identity import SessionCookies
from app.providers import (
    build_client,
    build_model,
    configure_tracing,
    resolve_provider,
)
from app.routes import router
from app.security_headers import SecurityHeaders
from app.server import ChatServer
from app.stores import build_store
from app.streaming import quiet_orphaned_stream_steps

logger = logging.getLogger("app")


@functools.cache  # once per process: later apps (tests) would only pin their garbage
def freeze_startup_objects() -> None:
    """Take what startup built out of the garbage collector's full collections.

    Imports, pydantic schemas and the agent are some 250,000 objects that live as long as
    the process. A full collection walked them all, about 140 ms with the event loop
    stopped: a stall in every stream in flight (the template repository's
    docs/BENCHMARKS.md shows it in p99 time to first token).
    """
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; settings problems raise ConfigError before anything starts."""
    settings = settings or load_settings()
    resolved = resolve_provider(settings)
    configure_tracing(resolved)
    client = build_client(resolved, settings)
    store = build_store(settings.database_url)
    mcp_servers = (
        [build_mcp_server(settings.mcp_server_url, settings.mcp_timeout_seconds)]
        if settings.mcp_server_url
        else []
    )
    agent = build_agent(build_model(resolved, client), mcp_servers)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        asyncio.get_running_loop().set_exception_handler(quiet_orphaned_stream_steps)
        async with AsyncExitStack() as stack:
            await store.start()
            stack.push_async_callback(store.close)
            stack.push_async_callback(client.close)
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
            freeze_startup_objects()
            yield

    app = FastAPI(title=settings.project_name, lifespan=lifespan)
    app.state.settings = settings
    app.state.store = store
    app.state.sessions = SessionCookies(
        settings.session_secret.get_secret_value() if settings.session_secret else "",
        settings.session_cookie_name,
        settings.session_max_age_days * 86_400,
    )
    app.state.chat_server = ChatServer(store, agent, resolved, settings.history_limit)

    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],
    )

    app.add_middleware(SecurityHeaders)
    app.include_router(router)
    return app


def _app_or_exit() -> FastAPI:
    try:
        settings = load_settings()
        logging.basicConfig(
            level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
        )
        return create_app(settings)
    except ConfigError as error:
        # One line that names the variable, instead of a stack trace at the first message.
        sys.exit(f"Configuration error: {error}")


app = _app_or_exit()
