"""``python -m ehr_sandbox --port 8100 [--host H] [--data-dir DIR] [--api-key KEY ...]``.

Environment: ``SANDBOX_ADMIN_TOKEN`` (default ``sandbox-admin``) and ``SANDBOX_API_KEYS``
(comma-separated; default ``sandbox-api-key``) when the options are not given.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from pathlib import Path

import uvicorn

from .app import create_app
from .config import DEFAULT_ADMIN_TOKEN, DEFAULT_API_KEY, RuntimeSettings, ServerConfig
from .runtime import Sandbox


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ehr_sandbox",
        description="EHR sandbox: a stand-in for the NexHealth Synchronizer API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument(
        "--fd",
        type=int,
        default=None,
        help="serve on an already bound and listening socket (used by testing.py)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="persist state to DIR/sandbox-state.json (default: memory only)",
    )
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        default=None,
        help="an accepted API key (repeatable; env SANDBOX_API_KEYS, default sandbox-api-key)",
    )
    parser.add_argument(
        "--admin-token",
        default=None,
        help="token for /_admin (env SANDBOX_ADMIN_TOKEN, default sandbox-admin)",
    )
    parser.add_argument("--token-ttl", type=float, default=3600.0, help="bearer token seconds")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiplies the webhook retry schedule (0.001: 30 s becomes 30 ms)",
    )
    parser.add_argument(
        "--insertion-delay-ms",
        type=int,
        default=150,
        help="how long after POST an appointment/document insertion completes",
    )
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--access-log", action="store_true")
    return parser.parse_args(argv)


def build(args: argparse.Namespace) -> tuple[Sandbox, ServerConfig]:
    env_keys = [k.strip() for k in os.environ.get("SANDBOX_API_KEYS", "").split(",") if k.strip()]
    config = ServerConfig(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        api_keys=args.api_keys or env_keys or [DEFAULT_API_KEY],
        admin_token=args.admin_token
        or os.environ.get("SANDBOX_ADMIN_TOKEN")
        or DEFAULT_ADMIN_TOKEN,
        fd=args.fd,
        log_level=args.log_level,
        access_log=args.access_log,
    )
    settings = RuntimeSettings(
        token_ttl_seconds=args.token_ttl,
        time_scale=args.time_scale,
        insertion_delay_ms=args.insertion_delay_ms,
    )
    return Sandbox(config, settings), config


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sandbox, config = build(args)
    app = create_app(sandbox)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level=config.log_level,
            access_log=config.access_log,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
    )
    storage = config.state_file or "memory only"
    if config.fd is not None:
        sock = socket.socket(fileno=config.fd)
        host, port = sock.getsockname()[:2]
        print(
            f"EHR sandbox on http://{host}:{port} (fd {config.fd}); state: {storage}",
            file=sys.stderr,
        )
        asyncio.run(server.serve(sockets=[sock]))
    else:
        print(
            f"EHR sandbox on http://{config.host}:{config.port}; state: {storage}", file=sys.stderr
        )
        server.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
