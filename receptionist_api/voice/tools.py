"""The voice agent's tools, each one REST route of the receptionist API called in-process.

A tool call becomes a request to the same DRF view the REST client reaches, carrying the
caller's bearer token: authentication, scopes, the practice's tenant, the BAA gate, validation,
the services and the audit trail are the route's own, and so are the error `type`s. A tool only
adds a sentence the agent can speak (`say`), in the practice's zone. Input and output schemas
are the routes' OpenAPI schemas (drf-spectacular), so they cannot drift from the serializers.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

from core.tenancy import tenant_context
from receptionist_api.middleware import refuse

# booking_status waits at most this long for a change: the agent keeps talking meanwhile.
MAX_WAIT_SECONDS = 15
_POLL_SECONDS = 0.25
FIND_SLOTS_DEFAULT_LIMIT = 10
FIND_SLOTS_MAX_LIMIT = 50


@dataclass(frozen=True)
class Tool:
    """One tool: which route it calls and how its arguments map onto the request."""

    name: str
    description: str
    operation_id: str
    method: str
    path: str  # with {placeholders} filled from the arguments of the same name
    say: Callable[[dict[str, Any], dict[str, Any]], str]  # (arguments, answer) -> sentence
    extra_inputs: dict[str, Any] = field(default_factory=dict)  # tool-only arguments
    answers_as: str = ""  # the operation whose answer the tool returns, if not its own
    required_extra: tuple[str, ...] = ()

    def path_names(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]


# --- sentences ------------------------------------------------------------------------------


def when(text: str) -> str:
    """An ISO instant as the API gave it (in the location's zone) -> "Thursday, December 10 at
    2 PM"."""
    moment = datetime.fromisoformat(text)
    hour = moment.strftime("%I").lstrip("0")
    minutes = f":{moment.minute:02d}" if moment.minute else ""
    return f"{moment:%A}, {moment:%B} {moment.day} at {hour}{minutes} {moment:%p}"


def _or_list(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def _say_resolve(_: dict[str, Any], answer: dict[str, Any]) -> str:
    names = [m["name"] for m in answer.get("matches", [])][:3]
    if not names:
        return "I'm not sure which kind of visit that is; could you tell me a bit more?"
    if len(names) == 1:
        return f"That sounds like a {names[0]} appointment."
    return f"That could be {_or_list(names)}. Which one fits best?"


def _say_slots(_: dict[str, Any], answer: dict[str, Any]) -> str:
    slots = answer.get("slots", [])
    if not slots:
        return "I don't see any openings for that in those days."
    names: dict[str, str] = answer.get("provider_names", {})
    by_provider: dict[int, list[str]] = {}
    for slot in slots[:3]:
        by_provider.setdefault(slot["provider_id"], []).append(when(slot["start"]))
    parts = []
    for pid, times in by_provider.items():
        name = names.get(str(pid))
        parts.append(f"{name} has {_or_list(times)}" if name else f"We have {_or_list(times)}")
    return "; ".join(parts) + "."


def _say_hold(_: dict[str, Any], answer: dict[str, Any]) -> str:
    if answer.get("booking_mode") == "request":
        return f"I'm holding {when(answer['start'])} for you while I take your request."
    return f"I'm holding {when(answer['start'])} for you while we finish booking."


def _say_release(_: dict[str, Any], __: dict[str, Any]) -> str:
    return "All right, I've let that time go."


def _say_booking(_: dict[str, Any], answer: dict[str, Any]) -> str:
    state = answer.get("status")
    start = answer.get("start")
    if state == "confirmed":
        return f"You're all set for {when(start)}." if start else "You're all set."
    if state == "failed":
        return "I'm sorry, I couldn't complete that booking. Let me find another time."
    if state == "cancelled":
        return "That appointment is cancelled."
    if state == "requested":
        at = f" for {when(start)}" if start else ""
        return f"I've requested that appointment{at}; the office will confirm it with you."
    if state == "declined":
        return "I'm sorry, the office couldn't take that request. Let me find another time."
    if state == "cancel_requested":
        return "I've asked the office to cancel that appointment; they'll take care of it."
    if answer.get("booking_mode") == "request":
        return "I'm sending that request to the office now."
    return answer.get("pending_message") or "I'm booking that for you now."


def _say_call(_: dict[str, Any], __: dict[str, Any]) -> str:
    return "Call noted."


def _say_transcript(_: dict[str, Any], __: dict[str, Any]) -> str:
    return "The call's notes are saved."


def _say_screen(_: dict[str, Any], answer: dict[str, Any]) -> str:
    if not answer.get("escalate"):
        return "Thank you; that doesn't need urgent attention, so let's continue."
    if answer.get("instructions"):
        return str(answer["instructions"])
    route_to = answer.get("route_to") or {}
    if route_to.get("name"):
        return f"That needs attention now; I'm connecting you with {route_to['name']}."
    return "That needs attention now; please stay on the line."


# What the agent says when a call is refused, by problem type.
ERROR_SAY = {
    "slot_unavailable": "That time was just taken. Let me look for another one.",
    "hold_expired": "That hold ran out. Let me hold the time again.",
    "hold_booked": "That time is already booked.",
    "validation_error": "Some of those details don't look right; let me check them.",
    "not_found": "I can't find that.",
    "baa_required": "I can't take booking details for this practice right now.",
    "insufficient_scope": "I'm not allowed to do that here.",
    "not_authenticated": "I can't reach the practice's schedule right now.",
    "transcript_purged": "That call's notes can no longer be changed.",
}
FALLBACK_ERROR_SAY = "Something went wrong on our side; let me try that another way."


TOOLS: tuple[Tool, ...] = (
    Tool(
        "resolve_appointment_type",
        "Match what the caller wants (their words) to the practice's appointment types, best "
        "first; empty when nothing fits.",
        "intents_resolve",
        "POST",
        "/api/v1/intents/resolve",
        _say_resolve,
    ),
    Tool(
        "find_slots",
        "Bookable times for an appointment type over 1 to 31 days from a date, earliest first.",
        "availability",
        "GET",
        "/api/v1/availability",
        _say_slots,
        extra_inputs={
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": FIND_SLOTS_MAX_LIMIT,
                "description": f"At most this many slots (default {FIND_SLOTS_DEFAULT_LIMIT})",
            }
        },
    ),
    Tool(
        "hold_slot",
        "Hold one offered slot for a few minutes while the caller's details are taken. "
        "booking_mode says whether booking it books it (book) or requests it (request).",
        "holds_create",
        "POST",
        "/api/v1/holds",
        _say_hold,
    ),
    Tool(
        "release_hold",
        "Let a held slot go (the caller chose another time or hung up).",
        "holds_release",
        "DELETE",
        "/api/v1/holds/{hold_id}",
        _say_release,
    ),
    Tool(
        "book",
        "Book a held slot for the patient. Returns at once with the booking's state (pending "
        "while the EHR writes it); follow with booking_status. When booking_mode is request, "
        "the result is a request staff confirm (status requested): tell the caller it is "
        "requested, never booked.",
        "bookings_create",
        "POST",
        "/api/v1/bookings",
        _say_booking,
        answers_as="bookings_retrieve",  # the booking's state, not only its id
        extra_inputs={
            "idempotency_key": {
                "type": "string",
                "minLength": 1,
                "maxLength": 200,
                "description": "Retries with the same key make one booking (default: per hold)",
            }
        },
    ),
    Tool(
        "booking_status",
        "A booking's state; waits up to wait_seconds for it to change from known_status. "
        "confirmed: booked; requested: waiting for staff to confirm (say requested, not "
        "booked); declined: staff turned the request down.",
        "bookings_retrieve",
        "GET",
        "/api/v1/bookings/{booking_id}",
        _say_booking,
        extra_inputs={
            "wait_seconds": {
                "type": "number",
                "minimum": 0,
                "maximum": MAX_WAIT_SECONDS,
                "description": "Wait this long at most for a change (default 0)",
            },
            "known_status": {
                "type": "string",
                "description": "The status the agent last saw (default: pending)",
            },
        },
    ),
    Tool(
        "cancel_booking",
        "Cancel a booking here and in the EHR. Status cancel_requested: the EHR's staff still "
        "have to act on the cancel (say it is requested, not done).",
        "bookings_cancel",
        "POST",
        "/api/v1/bookings/{booking_id}/cancel",
        _say_booking,
    ),
    Tool(
        "start_call",
        "Record the call this conversation is (the same external_id answers the same call).",
        "calls_create",
        "POST",
        "/api/v1/calls",
        _say_call,
    ),
    Tool(
        "save_transcript",
        "Store the call's turns and its outcome.",
        "calls_transcript",
        "PUT",
        "/api/v1/calls/{call_id}/transcript",
        _say_transcript,
    ),
    Tool(
        "screen_symptoms",
        "Whether what the caller describes must be escalated, how and to whom now.",
        "calls_screen",
        "POST",
        "/api/v1/calls/{call_id}/screen",
        _say_screen,
    ),
)
BY_NAME = {tool.name: tool for tool in TOOLS}


# --- schemas --------------------------------------------------------------------------------

_schema_lock = threading.Lock()
_schemas: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}


def _json_schema(node: Any, components: dict[str, Any]) -> Any:
    """An OpenAPI 3.0 schema as plain JSON Schema: references inlined, `nullable` as a null
    type, OpenAPI-only keywords dropped."""
    if isinstance(node, list):
        return [_json_schema(v, components) for v in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _json_schema(components[node["$ref"].rsplit("/", 1)[1]], components)
    out = {
        k: _json_schema(v, components)
        for k, v in node.items()
        if k not in ("nullable", "readOnly", "writeOnly")
    }
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        if "allOf" in out or "oneOf" in out:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _build_schemas() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    from drf_spectacular.generators import SchemaGenerator

    document = SchemaGenerator().get_schema(request=None, public=True)
    components = document["components"]["schemas"]
    operations = {
        op["operationId"]: op
        for methods in document["paths"].values()
        for op in methods.values()
        if isinstance(op, dict) and "operationId" in op
    }
    built = {}
    for tool in TOOLS:
        op = operations[tool.operation_id]
        properties: dict[str, Any] = {}
        required: list[str] = []
        for parameter in op.get("parameters", []):
            if parameter["in"] not in ("path", "query"):
                continue
            schema = _json_schema(parameter.get("schema", {}), components)
            if parameter.get("description"):
                schema["description"] = parameter["description"]
            properties[parameter["name"]] = schema
            if parameter.get("required"):
                required.append(parameter["name"])
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            schema = _json_schema(body["schema"], components)
            properties.update(schema.get("properties", {}))
            required.extend(schema.get("required", []))
        properties.update(tool.extra_inputs)
        required.extend(tool.required_extra)
        inputs = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            inputs["required"] = sorted(set(required))
        answer: dict[str, Any] = {"type": "object", "properties": {}}
        answering = operations[tool.answers_as] if tool.answers_as else op
        for code, response in answering.get("responses", {}).items():
            if code.startswith("2") and "content" in response:
                answer = _json_schema(response["content"]["application/json"]["schema"], components)
        outputs = {
            **answer,
            "properties": {
                **answer.get("properties", {}),
                "say": {"type": "string", "description": "A sentence the agent can speak"},
            },
            "required": sorted({*answer.get("required", []), "say"}),
        }
        if tool.name == "find_slots":
            outputs["properties"]["provider_names"] = {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Provider id -> name, for the slots listed",
            }
            outputs["properties"]["total"] = {"type": "integer", "description": "Slots found"}
        built[tool.name] = (inputs, outputs)
    return built


def schemas(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(input schema, output schema) of a tool, built once per process from the OpenAPI
    document (drf-spectacular generates one document at a time: see SchemaView)."""
    if not _schemas:
        with _schema_lock:
            if not _schemas:
                _schemas.update(_build_schemas())
    return _schemas[name]


def function_calling_tools() -> list[dict[str, Any]]:
    """The tools as OpenAI-style function definitions, for platforms without MCP."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": schemas(tool.name)[0],
            },
        }
        for tool in TOOLS
    ]


# --- calling --------------------------------------------------------------------------------


class ToolError(Exception):
    """A refused call: the route's problem+json body (its `type` is the REST API's)."""

    def __init__(self, problem: dict[str, Any]) -> None:
        super().__init__(problem.get("type"))
        self.problem = problem


def _route(outer: HttpRequest, tool: Tool, arguments: dict[str, Any]) -> tuple[int, Any]:
    """Call the tool's REST view in-process with the outer request's credentials."""
    path = tool.path
    for name in tool.path_names():
        path = path.replace("{" + name + "}", str(arguments.pop(name)))
    environ = {
        key: value
        for key, value in outer.META.items()
        if key
        in (
            "REMOTE_ADDR",
            "SERVER_NAME",
            "SERVER_PORT",
            "SERVER_PROTOCOL",
            "HTTP_HOST",
            "HTTP_AUTHORIZATION",
            "HTTP_X_FORWARDED_FOR",
            "HTTP_USER_AGENT",
            "wsgi.url_scheme",
        )
    }
    body = b""
    query = ""
    headers = arguments.pop("_headers", {})
    if tool.method == "GET":
        query = urlencode({k: v for k, v in arguments.items() if v is not None})
    elif tool.method in ("POST", "PUT"):
        body = json.dumps(arguments).encode()
    environ.update(
        {
            "REQUEST_METHOD": tool.method,
            "PATH_INFO": path,
            "SCRIPT_NAME": "",
            "QUERY_STRING": query,
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()},
        }
    )
    inner = WSGIRequest(environ)
    response = refuse(inner)
    if response is None:
        try:
            match = resolve(path)
        except Resolver404:  # an id beyond the API's range: not there, as on REST
            return 404, {
                "type": "not_found",
                "title": "Not Found",
                "status": 404,
                "detail": "There is nothing at this address.",
            }
        response = match.func(inner, *match.args, **match.kwargs)
        if hasattr(response, "render"):
            response.render()
    assert isinstance(response, HttpResponse)
    data = json.loads(response.content) if response.content else {}
    return response.status_code, data


def _call_route(outer: HttpRequest, tool: Tool, arguments: dict[str, Any]) -> dict[str, Any]:
    status, data = _route(outer, tool, dict(arguments))
    if status >= 400:
        raise ToolError(data)
    return data


def _bad_input(detail: str, errors: dict[str, list[str]]) -> ToolError:
    return ToolError(
        {
            "type": "validation_error",
            "title": "Invalid request",
            "status": 400,
            "detail": detail,
            "errors": errors,
        }
    )


def _check_extras(tool: Tool, arguments: dict[str, Any]) -> None:
    """The tool-only arguments (the route checks the rest)."""
    known = set(schemas(tool.name)[0]["properties"])
    unknown = sorted(set(arguments) - known)
    if unknown:
        raise _bad_input(
            "The request is invalid; see errors.", {k: ["Unknown argument."] for k in unknown}
        )
    for name in tool.path_names():
        value = arguments.get(name)
        if type(value) is not int or value < 1:
            raise _bad_input(
                "The request is invalid; see errors.", {name: ["A positive integer is required."]}
            )
    for name, spec in tool.extra_inputs.items():
        if name not in arguments:
            continue
        value = arguments[name]
        number = spec["type"] in ("integer", "number")
        ok = (
            (type(value) is int or (spec["type"] == "number" and type(value) is float))
            and spec.get("minimum", value) <= value <= spec.get("maximum", value)
            if number
            else isinstance(value, str) and 0 < len(value) <= spec.get("maxLength", 200)
        )
        if not ok:
            raise _bad_input("The request is invalid; see errors.", {name: ["Out of range."]})


def _find_slots(outer: HttpRequest, tool: Tool, args: dict[str, Any]) -> dict[str, Any]:
    limit = args.pop("limit", FIND_SLOTS_DEFAULT_LIMIT)
    answer = _call_route(outer, tool, args)
    slots = answer["slots"][:limit]
    return {"slots": slots, "total": len(answer["slots"]), "provider_names": _names(outer, slots)}


def _names(outer: HttpRequest, slots: list[dict[str, Any]]) -> dict[str, str]:
    """The providers' names for the sentence, read in the practice's tenant (the route has
    just admitted this token for it)."""
    from scheduling.models import Provider

    ids = {slot["provider_id"] for slot in slots}
    practice = getattr(outer, "voice_practice_id", None)
    if not ids or practice is None:
        return {}
    with tenant_context(practice):
        rows = Provider.objects.filter(pk__in=ids).values_list("pk", "name")
        return {str(pk): name for pk, name in rows}


def _book(outer: HttpRequest, tool: Tool, args: dict[str, Any]) -> dict[str, Any]:
    key = args.pop("idempotency_key", None) or f"voice-hold-{args.get('hold_id')}"
    accepted = _call_route(outer, tool, {**args, "_headers": {"Idempotency-Key": key}})
    return _call_route(outer, BY_NAME["booking_status"], {"booking_id": accepted["id"]})


def _booking_status(outer: HttpRequest, tool: Tool, args: dict[str, Any]) -> dict[str, Any]:
    wait = float(args.pop("wait_seconds", 0))
    known = args.pop("known_status", "pending")
    answer = _call_route(outer, tool, dict(args))
    deadline = time.monotonic() + min(wait, MAX_WAIT_SECONDS)
    practice = getattr(outer, "voice_practice_id", None)
    if answer["status"] != known or practice is None or time.monotonic() >= deadline:
        return answer
    from scheduling.models import Booking

    # Waiting reads only the status (the route has just admitted this token for the booking);
    # the answer is the route's again once it changes, or at the deadline.
    while time.monotonic() < deadline:
        time.sleep(min(_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        with tenant_context(practice):
            now = (
                Booking.objects.filter(pk=args["booking_id"])
                .values_list("status", flat=True)
                .first()
            )
        if now != known:
            break
    return _call_route(outer, tool, dict(args))


_SPECIAL = {"find_slots": _find_slots, "book": _book, "booking_status": _booking_status}


def call(outer: HttpRequest, name: str, arguments: dict[str, Any] | None) -> dict[str, Any]:
    """Run a tool: its structured answer with `say`, or ToolError with the route's problem
    (and a `say` too)."""
    tool = BY_NAME[name]
    args = dict(arguments or {})
    try:
        _check_extras(tool, args)
        run = _SPECIAL.get(name)
        answer = run(outer, tool, args) if run else _call_route(outer, tool, args)
    except ToolError as exc:
        exc.problem["say"] = ERROR_SAY.get(str(exc.problem.get("type")), FALLBACK_ERROR_SAY)
        raise
    return {**answer, "say": tool.say(arguments or {}, answer)}


def markdown_table() -> str:
    """The tool list of docs/voice-platforms.md: name, the REST route it calls, the scope that
    route needs (read from the view), and what it does."""
    lines = ["| tool | calls | scope | what it does |", "| --- | --- | --- | --- |"]
    for tool in TOOLS:
        path = tool.path
        for name in tool.path_names():
            path = path.replace("{" + name + "}", "1")
        view = resolve(path).func
        scope = getattr(getattr(view, "view_class", None), "required_scope", "") or "-"
        lines.append(
            f"| `{tool.name}` | `{tool.method} {tool.path}` | `{scope}` | {tool.description} |"
        )
    return "\n".join(lines)
