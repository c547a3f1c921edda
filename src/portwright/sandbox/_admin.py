"""The world's admin endpoint: list services, read ledgers, flip chaos knobs at runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from portwright.sandbox._world import SandboxWorld

__all__ = ["build_admin_app"]


def build_admin_app(world: SandboxWorld) -> Starlette:
    def _service(request: Request) -> str:
        name = str(request.path_params["name"])
        if name not in world.names():
            raise KeyError(name)
        return name

    def _not_found(name: str) -> JSONResponse:
        return JSONResponse(
            {"detail": f"no sandbox service {name!r}", "known": sorted(world.names())},
            status_code=404,
        )

    async def services(_: Request) -> JSONResponse:
        return JSONResponse(
            {
                "seed": world.seed,
                "services": [{"name": n, "url": u} for n, u in world.urls().items()],
            }
        )

    async def chaos(request: Request) -> JSONResponse:
        try:
            name = _service(request)
        except KeyError as exc:
            return _not_found(str(exc))
        state = world.chaos(name)
        if request.method == "PATCH":
            try:
                changes: Any = await request.json()
            except ValueError:
                return JSONResponse({"detail": "body must be a JSON object"}, status_code=400)
            if not isinstance(changes, dict):
                return JSONResponse({"detail": "body must be a JSON object"}, status_code=400)
            try:
                state.update(changes)
            except ValidationError as exc:
                errors = [
                    {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]}
                    for e in exc.errors()
                ]
                return JSONResponse({"detail": errors}, status_code=422)
        return JSONResponse(state.knobs.model_dump(mode="json") | {"banned": state.banned()})

    async def options(request: Request) -> JSONResponse:
        try:
            name = _service(request)
        except KeyError as exc:
            return _not_found(str(exc))
        opts = world.context(name).options
        if request.method == "PATCH":
            changes = await request.json()
            if not isinstance(changes, dict):
                return JSONResponse({"detail": "body must be a JSON object"}, status_code=400)
            opts.update(changes)
        return JSONResponse(opts)

    async def ledger(request: Request) -> JSONResponse:
        try:
            name = _service(request)
        except KeyError as exc:
            return _not_found(str(exc))
        kind = request.query_params.get("kind")
        entries = world.ledger(name).entries(kind)
        return JSONResponse({"entries": [e.as_dict() for e in entries]})

    async def duplicates(request: Request) -> JSONResponse:
        try:
            name = _service(request)
        except KeyError as exc:
            return _not_found(str(exc))
        kind = request.query_params.get("kind", "")
        return JSONResponse({"kind": kind, "duplicates": world.ledger(name).duplicates(kind)})

    return Starlette(
        routes=[
            Route("/services", services),
            Route("/services/{name}/chaos", chaos, methods=["GET", "PATCH"]),
            Route("/services/{name}/options", options, methods=["GET", "PATCH"]),
            Route("/services/{name}/ledger", ledger),
            Route("/services/{name}/ledger/duplicates", duplicates),
        ]
    )
