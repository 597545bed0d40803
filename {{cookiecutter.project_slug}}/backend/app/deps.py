"""What routes receive: typed FastAPI dependencies over the objects `create_app` built.

    async def endpoint(server: ChatServerDep, settings: SettingsDep) -> Response: ...

Each app keeps its own `Services` (tests build several apps in one process); a route
never reads `request.app.state` itself. Who is asking is `IdentityDep`, in identity.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from starlette.applications import Starlette

from app.attachments.service import AttachmentService
from app.config import Settings
from app.context import RequestContext, client_ip, public_origin
from app.identity import Identity, IdentityDep, SessionCookies
from app.oidc import OidcVerifier
from app.server import ChatServer
from app.stores import AppStore


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    store: AppStore
    chat_server: ChatServer
    sessions: SessionCookies
    attachments: AttachmentService
    # AUTH_MODE=oidc's bearer-token check; None with the session cookie.
    oidc: OidcVerifier | None = None


def attach_services(app: FastAPI, services: Services) -> None:
    app.state.services = services


def services_of(app: Starlette) -> Services:
    services: Services = app.state.services
    return services


def get_services(request: Request) -> Services:
    return services_of(request.app)


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings(services: ServicesDep) -> Settings:
    return services.settings


def get_store(services: ServicesDep) -> AppStore:
    return services.store


def get_chat_server(services: ServicesDep) -> ChatServer:
    return services.chat_server


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[AppStore, Depends(get_store)]
ChatServerDep = Annotated[ChatServer, Depends(get_chat_server)]


def get_attachments(services: ServicesDep) -> AttachmentService:
    return services.attachments


AttachmentsDep = Annotated[AttachmentService, Depends(get_attachments)]


def request_context(request: Request, identity: Identity, settings: Settings) -> RequestContext:
    """The context of this request's store and server calls: the user, the origin and
    the client's address."""
    return RequestContext(
        identity.user_id,
        origin=public_origin(request, settings.public_url),
        client_ip=client_ip(request),
    )


def get_request_context(
    request: Request, identity: IdentityDep, settings: SettingsDep
) -> RequestContext:
    return request_context(request, identity, settings)


RequestContextDep = Annotated[RequestContext, Depends(get_request_context)]
