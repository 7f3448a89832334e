"""``python -m ehr_sandbox.nextech --port 8200 [--host H] [--seed demo] [--token-ttl S]``.

Environment: ``SANDBOX_ADMIN_TOKEN`` (default ``sandbox-admin``), ``NEXTECH_CLIENT_ID`` and
``NEXTECH_CLIENT_SECRET`` (defaults ``sandbox-client`` / ``sandbox-secret``) when the options
are not given.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys

import uvicorn

from .app import (
    DEFAULT_ADMIN_TOKEN,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    NextechSandbox,
    create_app,
)
from .demo import load_demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ehr_sandbox.nextech",
        description="EHR sandbox, Nextech surface: a stand-in for the Select API (FHIR STU3).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8200)
    parser.add_argument("--fd", type=int, default=None, help="serve on an already listening socket")
    parser.add_argument("--admin-token", default=None)
    parser.add_argument("--client-id", default=None)
    parser.add_argument("--client-secret", default=None)
    parser.add_argument("--token-ttl", type=float, default=3600.0, help="access token seconds")
    parser.add_argument("--seed", choices=["demo"], default=None, help="load a demo practice")
    parser.add_argument("--log-level", default="warning")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sandbox = NextechSandbox(
        admin_token=args.admin_token
        or os.environ.get("SANDBOX_ADMIN_TOKEN")
        or DEFAULT_ADMIN_TOKEN,
        client_id=args.client_id or os.environ.get("NEXTECH_CLIENT_ID") or DEFAULT_CLIENT_ID,
        client_secret=args.client_secret
        or os.environ.get("NEXTECH_CLIENT_SECRET")
        or DEFAULT_CLIENT_SECRET,
        token_ttl=args.token_ttl,
    )
    if args.seed == "demo":
        load_demo(sandbox)
    app = create_app(sandbox)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
        host, port = sock.getsockname()[:2]
        print(f"Nextech sandbox on http://{host}:{port} (fd {args.fd})", file=sys.stderr)
        asyncio.run(server.serve(sockets=[sock]))
    else:
        print(f"Nextech sandbox on http://{args.host}:{args.port}", file=sys.stderr)
        server.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
