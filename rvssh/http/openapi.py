"""``GET /api/openapi.json``: the contract as OpenAPI 3.1, generated from the pydantic models.

One source of truth: a resource declares ``body_models``, ``query_models``
and ``response_models`` per method (the first two are what the
ValidationMiddleware enforces), and this module turns the routes of the
app's router and those declarations into the document. It describes the API
under ``/api/``; the page's files (``/``) are not part of it.
"""

from __future__ import annotations

import re
from typing import Any

import falcon
from falcon.inspect import inspect_compiled_router
from falcon.routing import CompiledRouter
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from rvssh import __version__
from rvssh.http.security import OPEN_PATHS
from rvssh.models import ErrorResponse

API_PREFIX = "/api/"
REF_TEMPLATE = "#/components/schemas/{model}"
PATH_PARAMETER = re.compile(r"{(\w+)}")
Operation = tuple[str, str, Any]
AUTH_DESCRIPTION = (
    "Every operation but /api/health and /api/openapi.json needs the bearer token, except for callers "
    "of the account that runs rvssh over loopback on Linux (see docs/security.md)."
)


def list_operations(router: CompiledRouter) -> list[Operation]:
    """Return (path, METHOD, resource) for every responder the router holds under /api/."""
    operations = []
    for route in inspect_compiled_router(router):
        if not route.path.startswith(API_PREFIX):
            continue
        found = router.find(route.path)
        if found is None:
            continue
        resource = found[0]
        operations.extend((route.path, info.method, resource) for info in route.methods if not info.internal)
    return operations


def _declared(resource: Any, attribute: str, method: str) -> type[BaseModel] | None:
    return getattr(resource, attribute, {}).get(method)


def _schemas(operations: list[Operation]) -> tuple[dict[tuple[type[BaseModel], JsonSchemaMode], Any], dict[str, Any]]:
    wanted: set[tuple[type[BaseModel], JsonSchemaMode]] = {(ErrorResponse, "serialization")}
    for _, method, resource in operations:
        body = _declared(resource, "body_models", method)
        answer = _declared(resource, "response_models", method)
        if body is not None:
            wanted.add((body, "validation"))
        if answer is not None:
            wanted.add((answer, "serialization"))
    ordered = sorted(wanted, key=lambda item: (item[0].__name__, item[1]))
    refs, definitions = models_json_schema(ordered, ref_template=REF_TEMPLATE)
    return refs, definitions.get("$defs", {})


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(mode="validation")
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": field}
        for name, field in schema.get("properties", {}).items()
    ]


def _json(schema: Any) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(path: str, method: str, resource: Any, refs: dict[Any, Any]) -> dict[str, Any]:
    body = _declared(resource, "body_models", method)
    query = _declared(resource, "query_models", method)
    answer = _declared(resource, "response_models", method)
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in PATH_PARAMETER.findall(path)
    ]
    if query is not None:
        parameters += _query_parameters(query)
    ok: dict[str, Any] = {"description": "Success"}
    if answer is not None:
        ok["content"] = _json(refs[(answer, "serialization")])
    operation: dict[str, Any] = {
        "operationId": f"{method.lower()}_{re.sub(r'[^a-z0-9]+', '_', path.lower()).strip('_')}",
        "parameters": parameters,
        "responses": {
            "200": ok,
            "default": {"description": "Error: {\"detail\": ...}", "content": _json(refs[(ErrorResponse, "serialization")])},
        },
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": _json(refs[(body, "validation")])}
    if path not in OPEN_PATHS:
        operation["security"] = [{"bearer": []}]
    return operation


def build_openapi(router: CompiledRouter) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of every /api/ route of ``router``."""
    operations = list_operations(router)
    refs, definitions = _schemas(operations)
    paths: dict[str, dict[str, Any]] = {}
    for path, method, resource in operations:
        paths.setdefault(path, {})[method.lower()] = _operation(path, method, resource, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "rvssh: Runicorn Remote Viewer API over OpenSSH",
            "version": __version__,
            "description": AUTH_DESCRIPTION,
        },
        "paths": paths,
        "components": {
            "schemas": definitions,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


class OpenApiResource:
    """Serve the document, built once on first use (routes are fixed by then)."""

    def __init__(self, router: CompiledRouter) -> None:
        self._router = router
        self._document: dict[str, Any] | None = None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self._document is None:
            self._document = build_openapi(self._router)
        resp.media = self._document
