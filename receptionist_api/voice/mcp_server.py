"""The receptionist as an MCP server (Streamable HTTP, stateless, JSON responses) at /mcp/.

The portal is WSGI; the SDK's transport is ASGI. Each POST runs the SDK's own session manager
for that one request (`async_to_sync` in the request's thread), and the SDK calls the tools
back on that same thread (`sync_to_async(thread_sensitive=True)`), so a tool runs with the
request's database connection, tenant and audit context like any Django view. Stateless: no
session outlives the request, so any worker process can answer any call.
"""

from __future__ import annotations

import contextvars
import logging
from contextlib import ExitStack
from typing import Any

import mcp_types as types
from asgiref.sync import async_to_sync, sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from mcp.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from rest_framework import exceptions
from rest_framework.request import Request

from receptionist_api.authentication import TENANT_STACK, ApiClientAuthentication
from receptionist_api.voice import tools

# The SDK logs every request's session manager start and stop at INFO: noise, one pair a call.
logging.getLogger("mcp").setLevel(logging.WARNING)

_request: contextvars.ContextVar[HttpRequest] = contextvars.ContextVar("voice_request")


async def _list_tools(
    ctx: Any, params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    listed = []
    for tool in tools.TOOLS:
        inputs, outputs = await sync_to_async(tools.schemas, thread_sensitive=True)(tool.name)
        listed.append(
            types.Tool(
                name=tool.name,
                description=tool.description,
                input_schema=inputs,
                output_schema=outputs,
            )
        )
    return types.ListToolsResult(tools=listed)


async def _call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    if params.name not in tools.BY_NAME:
        error = {"type": "not_found", "title": "Not Found", "status": 404}
        error |= {"detail": f"No tool named {params.name}.", "say": tools.FALLBACK_ERROR_SAY}
        return _result(error, is_error=True)
    run = sync_to_async(tools.call, thread_sensitive=True)
    try:
        answer = await run(_request.get(), params.name, params.arguments)
    except tools.ToolError as exc:
        return _result(exc.problem, is_error=True)
    return _result(answer, is_error=False)


def _result(data: dict[str, Any], *, is_error: bool) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=str(data.get("say", "")))],
        structured_content=data,
        is_error=is_error,
    )


SERVER: Server[Any] = Server(
    "hello-receptionist",
    instructions=(
        "Book appointments for callers of a specialty practice: resolve_appointment_type, "
        "find_slots, hold_slot, book, then booking_status until it is confirmed. Every "
        "result has a `say` sentence you may speak."
    ),
    on_list_tools=_list_tools,
    on_call_tool=_call_tool,
)


def _practice_id(request: HttpRequest) -> int | None:
    """The token's practice, checked as the REST routes check it; None when not admitted."""
    with ExitStack() as stack:
        setattr(request, TENANT_STACK, stack)
        try:
            found = ApiClientAuthentication().authenticate(Request(request))
        except exceptions.AuthenticationFailed:
            return None
        finally:
            delattr(request, TENANT_STACK)
        return found[0].practice.pk if found else None


def _unauthorized() -> HttpResponse:
    response = JsonResponse(
        {
            "type": "not_authenticated",
            "title": "Unauthorized",
            "status": 401,
            "detail": "A valid bearer token from /api/v1/oauth/token is required.",
        },
        status=401,
        content_type="application/problem+json",
    )
    response["WWW-Authenticate"] = f'Bearer realm="{ApiClientAuthentication.realm}"'
    return response


async def _serve(request: HttpRequest, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """One HTTP exchange through the SDK's stateless JSON-response transport."""
    headers = [
        (key.lower().encode("latin-1"), value.encode("latin-1"))
        for key, value in request.headers.items()
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.path.encode(),
        "query_string": request.META.get("QUERY_STRING", "").encode("latin-1"),
        "root_path": "",
        "headers": headers,
        "server": (request.get_host(), int(request.get_port() or 80)),
        "client": (request.META.get("REMOTE_ADDR", ""), 0),
    }
    sent_body = False

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    status = 500
    out_headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, out_headers
        if message["type"] == "http.response.start":
            status = message["status"]
            out_headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    manager = StreamableHTTPSessionManager(app=SERVER, json_response=True, stateless=True)
    async with manager.run():
        await manager.handle_request(scope, receive, send)  # type: ignore[arg-type]
    return status, out_headers, b"".join(chunks)


@csrf_exempt
def mcp_endpoint(request: HttpRequest) -> HttpResponse:
    """POST /mcp/: one JSON-RPC exchange, for a valid bearer token only."""
    practice_id = _practice_id(request)
    if practice_id is None:
        return _unauthorized()
    request.voice_practice_id = practice_id  # type: ignore[attr-defined]
    token = _request.set(request)
    try:
        status, headers, body = async_to_sync(_serve)(request, request.body)
    finally:
        _request.reset(token)
    response = HttpResponse(body, status=status)
    for key, value in headers:
        name = key.decode("latin-1")
        if name.lower() != "content-length":
            response[name] = value.decode("latin-1")
    return response
