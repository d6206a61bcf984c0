"""The API's contract as ``/openapi.json`` states it: every error each operation may answer, with the one
error schema (``ErrorOut``), the answer of a prepared write, and the links between operations (an id one
answer gives, another takes), so that a client, or schemathesis's stateful tests, can follow them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route

from deconflict.api.schemas import ErrorOut, PreparedOut

__all__ = ["ERROR_ANSWERS", "LINKS", "document", "install_openapi"]


ERROR_ANSWERS: dict[int, str] = {
    400: "The request is malformed (a Content-Length that is not a number, a body cut short).",
    401: "No bearer token, or one that is unknown or revoked.",
    403: "The token's member may not do this (another mechanism's token, or not this member's role).",
    404: "No such object that the caller may see (the same answer whether it does not exist or is hidden).",
    409: "The object changed or is in a state where this does not apply (a stale version, an id taken).",
    413: "The body is larger than the service accepts.",
    415: "The body is not declared as JSON (Content-Type: application/json).",
    422: "The request breaks a rule of the format or the domain; `field` names what, `detail` says why.",
    408: "The request did not arrive whole within the service's time for it (10 s by default); the connection "
    "is closed.",
    429: "Too many requests of this kind for now; `Retry-After` says when to try again.",
    503: "The database cannot take the request now (unreachable during a failover, or out of space for a write): "
    "nothing was written; `Retry-After` says when to try again. (A server already holding the most connections "
    "it serves at once answers 503 itself, in plain text, before the service sees the request.)",
}
"""Every error status an API operation may answer, each with the one error schema (``ErrorOut``)."""

_WRITES = {"post", "put", "patch", "delete"}
_PREPARED_REF = {"$ref": "#/components/schemas/PreparedOut"}
_PREPARED: dict[str, Any] = {
    "description": "Prepared (`Deconflict-Prepare: true`): nothing was appended; `prepared` is the entry to sign, "
    "`canonical_payload` its payload's canonical JSON text (SHA-256: `prepared.payload_hash`).",
    "content": {"application/json": {"schema": _PREPARED_REF}},
}


_RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer", "minimum": 1}}
}
"""The header of a 429 and a 503."""


def _answers(path: str, method: str, op: dict[str, Any]) -> list[int]:
    """The error statuses ``method path`` may answer."""
    codes = [401, 408, 429, 503]
    if "{mechanism_id}" in path:
        codes.append(403)
    if "{" in path:
        codes.append(404)
    if op.get("parameters") or op.get("requestBody"):
        codes.append(422)
    if method in _WRITES:
        codes += [400, 409, 413, 415, 422]
    return sorted(set(codes))


_M = "/mechanisms/{mechanism_id}"
_ACTIVITY = f"{_M}/activities/{{activity_id}}"
_CONFLICT = f"{_M}/conflicts/{{conflict_id}}"
LINKS: list[tuple[str, str, str, str, str, dict[str, str]]] = [
    # (from path, method, status, to path, method, {parameter: where the answer gives it})
    *[
        (f"{_M}/activities", "post", "201", to, how, {"activity_id": "$response.body#/activity/id"})
        for to, how in ((_ACTIVITY, "get"), (_ACTIVITY, "put"), (f"{_ACTIVITY}/cancel", "post"))
    ],
    *[
        (f"{_M}/activities", "post", "201", to, how, {"conflict_id": "$response.body#/raised/0/id"})
        for to, how in ((_CONFLICT, "get"), (f"{_CONFLICT}/acknowledge", "post"), (f"{_CONFLICT}/resolve", "post"))
    ],
    *[
        (_ACTIVITY, "put", "200", to, how, {"activity_id": "$response.body#/activity/id"})
        for to, how in ((_ACTIVITY, "get"), (f"{_ACTIVITY}/cancel", "post"))
    ],
    (f"{_M}/zones", "post", "201", f"{_M}/zones/{{zone_id}}", "delete", {"zone_id": "$response.body#/zone/id"}),
    (
        f"{_M}/messages",
        "post",
        "201",
        f"{_M}/messages/{{message_id}}/acknowledge",
        "post",
        {"message_id": "$response.body#/id"},
    ),
]
"""Links between operations: the id an answer carries, and the operations that take it (paths after the
API's prefix; the mechanism id goes along as it came)."""


def _link(schema: dict[str, Any], prefix: str, link: tuple[str, str, str, str, str, dict[str, str]]) -> None:
    source, method, status, target, target_method, parameters = link
    paths = schema.get("paths", {})
    op = paths.get(prefix + source, {}).get(method)
    to = paths.get(prefix + target, {}).get(target_method)
    if op is None or to is None or "operationId" not in to:
        return
    answer = op.setdefault("responses", {}).setdefault(status, {"description": "Done."})
    name = to["operationId"]
    answer.setdefault("links", {})[name] = {
        "operationId": name,
        "parameters": {"mechanism_id": "$request.path.mechanism_id", **parameters},
    }


def document(schema: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The OpenAPI document with every error an operation may answer documented with ``ErrorOut`` (the
    framework's own validation-error schema, which no answer has, removed), and the 200 of a prepared write.

    >>> doc = {"paths": {"/api/v1/x/{mechanism_id}": {"get": {"responses": {"422": {"description": "v",
    ...        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}}},
    ...        "parameters": [{"name": "mechanism_id"}]}}}, "components": {"schemas": {"HTTPValidationError": {},
    ...        "ValidationError": {}}}}
    >>> out = document(doc, "/api/v1")
    >>> sorted(out["paths"]["/api/v1/x/{mechanism_id}"]["get"]["responses"]), sorted(out["components"]["schemas"])
    (['401', '403', '404', '408', '422', '429', '503'], ['EntryOut', 'ErrorOut', 'PreparedOut'])
    """
    ref = {"$ref": "#/components/schemas/ErrorOut"}
    for path, methods in schema.get("paths", {}).items():
        if not path.startswith(prefix):
            continue
        for method, op in methods.items():
            responses = op.setdefault("responses", {})
            declared = {int(k) for k in responses if k.isdigit() and int(k) in ERROR_ANSWERS}
            # every error, those the route declares too: always JSON, whatever the route's own answer is (a
            # NOTAM's 409 was documented as text/plain, its route's media type)
            for code in sorted(set(_answers(path, method, op)) | declared):
                known = responses.get(str(code), {})
                description = known.get("description") if code != 422 else None
                responses[str(code)] = {
                    "description": description or ERROR_ANSWERS[code],
                    "content": {"application/json": {"schema": ref}},
                    **({"headers": known["headers"]} if "headers" in known else {}),
                    **({"headers": _RETRY_AFTER} if code in (429, 503) and "headers" not in known else {}),
                }
            names = {p.get("name") for p in op.get("parameters", [])}
            if "Deconflict-Prepare" in names:
                _prepared_too(responses)
    for link in LINKS:
        _link(schema, prefix, link)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components.setdefault("ErrorOut", ErrorOut.model_json_schema())
    prepared = PreparedOut.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(prepared.pop("$defs", {}))
    components.setdefault("PreparedOut", prepared)
    return schema


def _prepared_too(responses: dict[str, Any]) -> None:
    """A write's 200: the prepared answer (:data:`_PREPARED`), or either it or the write's own 200 answer."""
    done = responses.get("200")
    schema = (done or {}).get("content", {}).get("application/json", {}).get("schema")
    if done is None or schema is None:
        responses["200"] = _PREPARED
        return
    done["content"]["application/json"]["schema"] = {"anyOf": [schema, _PREPARED_REF]}
    done["description"] = f"{done.get('description', 'Done.')} Or: {_PREPARED['description']}"


def install_openapi(app: FastAPI, prefix: str) -> None:
    """Serve the OpenAPI document with every error documented (:func:`document`), built once, by the first
    request for it, in a worker thread: it takes 0.2-0.5 s of CPU, which FastAPI's own route would spend on the
    event loop, every other request waiting meanwhile (the route then answers as FastAPI's does)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(build(), prefix)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    routes = app.router.routes
    for i, route in enumerate(routes):
        if isinstance(route, Route) and route.path == app.openapi_url:
            routes[i] = _built_off_the_loop(app, route)


def _built_off_the_loop(app: FastAPI, route: Route) -> Route:
    """FastAPI's route for the OpenAPI document, the document built in a worker thread first when it is not yet."""
    answer = route.endpoint

    async def built_first(request: Request) -> Response:
        if app.openapi_schema is None:
            await run_in_threadpool(app.openapi)
        answered: Response = await answer(request)
        return answered

    return Route(route.path, built_first, methods=route.methods, name=route.name, include_in_schema=False)
