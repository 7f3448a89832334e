"""gunicorn.conf.py as deployed: each checkout keeps gunicorn's control socket to itself."""

from __future__ import annotations

import os
import runpy
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from gunicorn.ctl.client import ControlClient, ControlClientError

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "gunicorn.conf.py"


def ask(socket_path: Path, command: str, deadline: float) -> dict:
    """A command's answer over a control socket, retried until the server is up."""
    while True:
        try:
            with ControlClient(str(socket_path), timeout=5) as client:
                return client.send_command(command)
        except (ControlClientError, OSError):
            if time.monotonic() > deadline:
                raise
        threading.Event().wait(0.1)


@contextmanager
def deployment(checkout: Path, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """gunicorn serving the portal with `checkout`'s copy of gunicorn.conf.py, as a second
    deployment on the host would (one worker, one thread: only the arbiter matters here)."""
    checkout.mkdir(parents=True, exist_ok=True)
    shutil.copy(CONFIG, checkout / "gunicorn.conf.py")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi:application",
            "--config",
            str(checkout / "gunicorn.conf.py"),
            "--bind",
            "127.0.0.1:0",
            "--log-level",
            "error",
        ],
        cwd=ROOT,
        env={**env, "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_control_socket_is_under_the_checkouts_own_directory(monkeypatch):
    monkeypatch.delenv("RUN_STATE_DIR", raising=False)
    config = runpy.run_path(str(CONFIG))
    assert Path(config["control_socket"]) == ROOT / ".local" / "run" / "gunicorn.ctl"

    monkeypatch.setenv("RUN_STATE_DIR", "/srv/portal-a/run")
    assert runpy.run_path(str(CONFIG))["control_socket"] == "/srv/portal-a/run/gunicorn.ctl"


def test_two_deployments_on_one_host_each_answer_on_their_own_control_socket(tmp_path):
    """Same account, same HOME: gunicorn's default would give both one socket, the second
    taking it over from the first."""
    env = {k: v for k, v in os.environ.items() if k not in ("RUN_STATE_DIR", "XDG_RUNTIME_DIR")}
    env["HOME"] = str(tmp_path / "home")
    a, b = tmp_path / "portal-a", tmp_path / "portal-b"
    with ExitStack() as stack:
        first = stack.enter_context(deployment(a, env))
        deadline = time.monotonic() + 60
        sock_a = a / ".local" / "run" / "gunicorn.ctl"
        assert ask(sock_a, "show stats", deadline)["pid"] == first.pid
        second = stack.enter_context(deployment(b, env))
        sock_b = b / ".local" / "run" / "gunicorn.ctl"
        assert ask(sock_b, "show stats", deadline)["pid"] == second.pid
        # The first deployment still answers on its own socket once the second is up.
        assert ask(sock_a, "show stats", deadline)["pid"] == first.pid
        assert not (tmp_path / "home" / ".gunicorn").exists()
