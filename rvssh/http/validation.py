"""Validate request bodies and queries against the models a resource declares.

A resource sets ``body_models = {"POST": SomeModel}`` and/or
``query_models = {"GET": SomeModel}``; the middleware passes the parsed
model to the responder as ``body=`` / ``query=``. (Falcon's msgspec recipe,
with pydantic.)
"""

from __future__ import annotations

import json
from typing import Any

import falcon
import pydantic

from rvssh.http.errors import RequestValidationError


def _read_json(req: falcon.Request) -> Any:
    raw = req.bounded_stream.read()
    if not raw.strip():
        raise RequestValidationError(
            "body", [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
        )
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as ex:
        position = getattr(ex, "pos", 0)
        reason = getattr(ex, "msg", "invalid encoding")
        raise RequestValidationError(
            "body",
            [
                {
                    "type": "json_invalid",
                    "loc": ["body", position],
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": reason},
                }
            ],
        ) from ex


def _query_values(req: falcon.Request) -> dict[str, Any]:
    values = {}
    for name, value in req.params.items():
        values[name] = value[-1] if isinstance(value, list) else value
    return values


class ValidationMiddleware:
    """Turn the raw request into the declared pydantic models."""

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict) -> None:
        for location, models, read in (("body", "body_models", _read_json), ("query", "query_models", _query_values)):
            model = getattr(resource, models, {}).get(req.method)
            if model is None:
                continue
            try:
                params[location] = model.model_validate(read(req))
            except pydantic.ValidationError as ex:
                raise RequestValidationError.from_pydantic(location, ex) from ex
