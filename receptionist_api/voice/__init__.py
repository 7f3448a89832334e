"""The receptionist for voice platforms: the REST routes as MCP tools and function-calling
schemas (tools.py), served over MCP's Streamable HTTP transport (mcp_server.py)."""
