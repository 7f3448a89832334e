"""GET /api/v1/tools.json: the MCP tools as function-calling definitions, for any valid token
(every API route but the token endpoint and the schema needs one)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from receptionist_api.views import ReceptionistAPIView
from receptionist_api.voice import tools


class ToolsView(ReceptionistAPIView):
    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        return Response({"tools": tools.function_calling_tools()})
