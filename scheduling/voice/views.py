"""GET /api/v1/tools.json: the MCP tools as function-calling definitions (public, like the
OpenAPI document: it describes the API, it holds no data)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scheduling.voice import tools


class ToolsView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        return Response({"tools": tools.function_calling_tools()})
