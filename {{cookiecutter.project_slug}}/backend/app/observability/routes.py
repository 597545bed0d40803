"""GET /metrics: mounted only when METRICS_TOKEN is set, and then it needs that token."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.observability.metrics import Metrics


def metrics_router(metrics: Metrics, token: str) -> APIRouter:
    router = APIRouter()
    expected = f"Bearer {token}".encode()

    @router.get("/metrics", include_in_schema=False)
    async def serve_metrics(request: Request) -> Response:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return JSONResponse(
                {"error": {"code": "unauthorized", "message": "/metrics needs its bearer token."}},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
