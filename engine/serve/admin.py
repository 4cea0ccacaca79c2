"""Admin endpoints: promote and roll back a served model (the registry's live history + an immediate swap).

    POST /v1/models/{name}/promote   {"version": 3}
    POST /v1/models/{name}/rollback
    GET  /v1/models                  what is served now (public)

They take `Authorization: Bearer <token>` (the token from $TIDEGATE_ADMIN_TOKEN or the config): 401 without
one, 403 with a wrong one, 403 for everyone when no token is configured (disabled, never open).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac

import msgspec
from litestar import get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import (
    ClientException,
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, JSONBody

from engine.registry import HistoryEntry, HistoryError, RegistryError, UnknownModelError
from engine.serve.config import ServeConfig
from engine.serve.logging import emit
from engine.serve.models import ModelHost
from engine.serve.services import Services


class Conflict(HTTPException):
    status_code = 409


class PromoteRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: int


class SwapResponse(msgspec.Struct, frozen=True):
    model: str
    action: str
    version: int  # live in the registry now
    previous: int | None
    serving: int | None  # the version this server serves after the swap


class ServedModel(msgspec.Struct, frozen=True):
    name: str
    version: int
    kind: str
    task: str


def admin_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    cfg: ServeConfig = connection.app.state.cfg
    if not cfg.admin_enabled:
        raise PermissionDeniedException(detail="admin endpoints are disabled: no admin token is configured")
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthorizedException(
            detail="admin endpoints need 'Authorization: Bearer <token>'", headers={"WWW-Authenticate": "Bearer"}
        )
    if not hmac.compare_digest(token.strip().encode(), cfg.admin_token.encode()):
        raise PermissionDeniedException(detail="wrong admin token")


async def _swap(host: ModelHost, name: str, action: str, change: object) -> SwapResponse:
    if name not in host.wanted:
        msg = f"model {name!r} is not served here (served: {', '.join(host.wanted) or 'none'})"
        raise NotFoundException(detail=msg)
    loop = asyncio.get_running_loop()
    try:
        entry: HistoryEntry = await loop.run_in_executor(None, change)  # type: ignore[arg-type]
    except UnknownModelError as exc:
        raise NotFoundException(detail=str(exc)) from None
    except HistoryError as exc:
        raise Conflict(detail=str(exc)) from None
    except RegistryError as exc:
        raise ClientException(detail=str(exc)) from None
    loaded = await host.sync(name, force=True)
    emit(host.log, f"model_{action}", model=name, version=entry.version, previous=entry.previous)
    return SwapResponse(name, action, entry.version, entry.previous, loaded.version if loaded else None)


@post("/v1/models/{name:str}/promote", guards=[admin_guard], status_code=200, tags=["admin"])
async def promote(name: FromPath[str], data: JSONBody[PromoteRequest], svc: NamedDependency[Services]) -> SwapResponse:
    """Make `version` of `name` live (registry history) and serve it now."""
    now, host = dt.datetime.now(dt.UTC), svc.host
    return await _swap(host, name, "promote", lambda: host.registry.promote(name, data.version, now))


@post("/v1/models/{name:str}/rollback", guards=[admin_guard], status_code=200, tags=["admin"])
async def rollback(name: FromPath[str], svc: NamedDependency[Services]) -> SwapResponse:
    """Make the previously live version of `name` live again and serve it now."""
    now, host = dt.datetime.now(dt.UTC), svc.host
    return await _swap(host, name, "rollback", lambda: host.registry.rollback(name, now))


@get("/v1/models", sync_to_thread=False, tags=["admin"])
def served(svc: NamedDependency[Services]) -> list[ServedModel]:
    """The models this server serves and their live versions."""
    host = svc.host
    out = []
    for name in host.wanted:
        m = host.loaded(name)
        if m is not None:
            man = m.manifest
            out.append(ServedModel(name, man.version, man.kind, man.task))
    return out


ROUTES = [promote, rollback, served]
