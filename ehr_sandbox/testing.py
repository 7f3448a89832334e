"""Helpers for tests: run the sandbox as a real subprocess, and receive its webhooks.

``SandboxServer`` binds a listening socket on a free port in the test process and hands it to the
child (``--fd``), so there is no window in which another process can take the port, and start-up
waits on ``/_admin/health`` answering with the child's pid, with a deadline. ``WebhookReceiver``
is a tiny threaded HTTP server that records every POST it gets (raw body and headers) so a test can
verify signatures and wait for deliveries without sleeping.

Nothing here imports Django; it is safe to use from any test.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_API_KEY = "test-api-key"
TEST_ADMIN_TOKEN = "test-admin-token"
T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "condition",
) -> T:
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {message}")
        time.sleep(interval)


class SandboxServer:
    """The sandbox in its own process on a free port. Use as a context manager."""

    def __init__(
        self,
        *,
        data_dir: Path | str | None = None,
        api_keys: Sequence[str] = (TEST_API_KEY,),
        admin_token: str = TEST_ADMIN_TOKEN,
        host: str = "127.0.0.1",
        extra_args: Sequence[str] = (),
        startup_timeout: float = 20.0,
    ) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.api_keys = list(api_keys)
        self.admin_token = admin_token
        self.host = host
        self.port: int | None = None
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="sandbox-", suffix=".log", delete=False)  # noqa: SIM115

    # -- life cycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("sandbox not started")
        return f"http://{self.host}:{self.port}"

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port or 0))
        sock.listen(128)
        sock.set_inheritable(True)
        self.port = sock.getsockname()[1]
        return sock

    module = "ehr_sandbox"  # the surface's program (``python -m``)

    def surface_args(self) -> list[str]:
        """The arguments only this surface takes (after host, port, socket and admin token)."""
        args: list[str] = []
        for key in self.api_keys:
            args += ["--api-key", key]
        if self.data_dir is not None:
            args += ["--data-dir", str(self.data_dir)]
        return args

    def start(self) -> Self:
        """Spawn the process (same port on a restart) and wait until it is healthy."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("sandbox already running")
        sock = self._bind()
        args = [sys.executable, "-m", self.module, "--host", self.host]
        args += ["--port", str(self.port), "--fd", str(sock.fileno())]
        args += ["--admin-token", self.admin_token]
        args += self.surface_args()
        args += self.extra_args
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                args,
                cwd=REPO_ROOT,
                env=env,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                pass_fds=(sock.fileno(),),
            )
        finally:
            sock.close()  # the child holds its own copy
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        assert self.process is not None
        process = self.process

        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError(
                    f"sandbox exited with {process.returncode} during start-up:\n{self.logs()}"
                )
            try:
                response = httpx.get(f"{self.base_url}/_admin/health", timeout=1.0)
            except httpx.HTTPError:
                return False
            return response.status_code == 200 and response.json().get("pid") == process.pid

        try:
            wait_until(healthy, timeout=self.startup_timeout, interval=0.05, message="health")
        except TimeoutError:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (graceful: state is flushed), then SIGKILL if it does not go."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def logs(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_text(encoding="utf-8", errors="replace")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the process and remove its log file (``stop`` alone keeps the log readable)."""
        self.stop()
        self._log.close()
        with contextlib.suppress(OSError):
            os.unlink(self._log.name)

    # -- conveniences for tests -------------------------------------------------------------

    def admin(self, method: str, path: str, json_body: Any = None) -> httpx.Response:
        """Call ``/_admin/...``; raises on a non-2xx answer so set-up mistakes surface."""
        response = httpx.request(
            method,
            f"{self.base_url}{path}",
            json=json_body,
            headers={"X-Admin-Token": self.admin_token},
            timeout=10.0,
        )
        response.raise_for_status()
        return response

    def token(self, api_key: str | None = None) -> str:
        response = httpx.post(
            f"{self.base_url}/authenticates",
            headers={"Authorization": api_key or self.api_keys[0]},
            timeout=10.0,
        )
        response.raise_for_status()
        return str(response.json()["data"]["token"])

    def client(self, api_key: str | None = None, **kwargs: Any) -> httpx.Client:
        """An httpx client with a fresh bearer token for ``api_key``."""
        headers = {
            "Authorization": f"Bearer {self.token(api_key)}",
            "Accept": "application/vnd.Nexhealth+json;version=2",
        }
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10.0, **kwargs)

    def reset(self) -> None:
        self.admin("POST", "/_admin/reset")


@dataclass
class ReceivedWebhook:
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float = field(default_factory=time.time)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """Records POSTs on ``url``; answers ``status`` (settable, e.g. 500 to force retries)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.received: list[ReceivedWebhook] = []
        self.status = 200
        self._cond = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                item = ReceivedWebhook(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                with receiver._cond:
                    receiver.received.append(item)
                    status = receiver.status
                    receiver._cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(
        self,
        predicate: Callable[[ReceivedWebhook], bool] = lambda _: True,
        *,
        count: int = 1,
        timeout: float = 10.0,
    ) -> list[ReceivedWebhook]:
        """Block until ``count`` received messages satisfy ``predicate``; return them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                matching = [m for m in self.received if predicate(m)]
                if len(matching) >= count:
                    return matching
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    events = [m.json.get("event_name") for m in self.received]
                    raise TimeoutError(
                        f"expected {count} matching webhook(s) within {timeout}s; got {events}"
                    )
                self._cond.wait(remaining)

    def events(self) -> list[str]:
        with self._cond:
            return [m.json.get("event_name") for m in self.received]


@contextlib.contextmanager
def running_sandbox(**kwargs: Any) -> Iterator[SandboxServer]:
    """``with running_sandbox(data_dir=...) as sandbox:`` - start, yield, stop."""
    with SandboxServer(**kwargs) as server:
        yield server
