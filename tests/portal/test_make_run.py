"""`make run` (scripts/run_dev.py under scripts/services.py) on free ports: a signal stops
everything it started, a failing start-up step says why and leaves nothing, a dead worker is
started again. Real processes throughout; survivors are found by the marker every process the
runner starts inherits in its environment (DEV_STATE_DIR, unique per test), and by process group.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

from tests import workers
from tests.workers import ROOT

pytestmark = pytest.mark.django_db(transaction=True)  # the runner's demo data is flushed after


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def processes_with(marker: str) -> dict[int, tuple[int, str]]:
    """pid -> (process group, command line) of every live process whose environment holds
    `marker`: whatever the runner started, however deep, and whoever adopted it."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() not in (entry / "environ").read_bytes():
                continue
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":  # a zombie is dead (its parent has not reaped it yet)
            continue
        found[int(entry.name)] = (int(fields[2]), cmdline)
    return found


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(condition: Callable[[], object], what: str, deadline_s: float = 90) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        threading.Event().wait(0.1)


class Output:
    """A process's output, read as it comes (so it never blocks on a full pipe)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line.decode(errors="replace"))

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def has(self, needle: str) -> bool:
        return needle in self.text


@pytest.fixture
def run_env(tmp_path) -> Iterator[dict[str, str]]:
    """The environment of a `make run` on two free ports, against the test database and a broker
    database of its own; DEV_STATE_DIR is unique per test and marks every process it starts."""
    broker = settings.CELERY_BROKER_URL.rsplit("/", 1)[0] + "/7"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PORTAL_TESTING", "DATABASE_SUPERUSER_URL", "DEBUG")
    }
    env.update(
        DATABASE_URL=workers.test_database_url(),
        CELERY_BROKER_URL=broker,
        CELERY_RESULT_BACKEND=broker,
        REDIS_URL=broker,
        PORT=str(free_port()),
        SANDBOX_PORT=str(free_port()),
        DEV_STATE_DIR=str(tmp_path / "state"),
        PYTHONUNBUFFERED="1",
    )
    services_env = ROOT / ".local" / "env"  # scripts/services.py rewrites it: put it back
    saved = services_env.read_bytes() if services_env.exists() else None
    yield env
    if saved is not None:
        services_env.write_bytes(saved)
    for pid in processes_with(f"DEV_STATE_DIR={env['DEV_STATE_DIR']}"):  # a failed test's
        os.kill(pid, signal.SIGKILL)


@contextmanager
def started(argv: list[str], env: dict[str, str]) -> Iterator[tuple[subprocess.Popen, Output]]:
    """Start the runner in its own session (as a terminal's foreground job), until it is up."""
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    output = Output(proc)
    try:
        wait_until(
            lambda: output.has("Hello Practice Portal is running") or proc.poll() is not None,
            "the runner to start",
            180,
        )
        assert proc.poll() is None, output.text
        yield proc, output
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def healthy(port: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def assert_nothing_survives(marker: str, seen: dict[int, tuple[int, str]]) -> None:
    """Every process gone, and every process group it had (what a service forked) empty,
    within the runner's own stopping deadline (make itself may exit first: it passes SIGTERM
    on and does not wait)."""

    def none_left() -> bool:
        return not processes_with(marker) and not any(group_alive(g) for g, _ in seen.values())

    try:
        wait_until(none_left, "every process to stop", 45)
    except AssertionError:
        live_groups = {pgid for pgid, _ in seen.values() if group_alive(pgid)}
        raise AssertionError(f"survivors: {processes_with(marker)}; groups {live_groups}") from None


@pytest.mark.parametrize(
    "stop",
    [
        pytest.param(lambda proc: os.kill(proc.pid, signal.SIGTERM), id="SIGTERM-to-make"),
        pytest.param(lambda proc: os.killpg(proc.pid, signal.SIGINT), id="Ctrl-C"),
    ],
)
def test_a_signal_to_make_run_stops_everything_it_started(run_env, stop):
    marker = f"DEV_STATE_DIR={run_env['DEV_STATE_DIR']}"
    with started(["make", "run"], run_env) as (proc, output):
        assert healthy(run_env["PORT"])
        # The demo was imported through the sandbox on its port, and the webhooks it
        # registered point at the portal's port.
        request = urllib.request.Request(
            f"http://127.0.0.1:{run_env['SANDBOX_PORT']}/_admin/state",
            headers={"X-Admin-Token": "sandbox-admin"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            state = json.load(response)
        targets = {ep["target_url"] for ep in state["webhook_endpoints"]}
        assert targets and all(
            t.startswith(f"http://127.0.0.1:{run_env['PORT']}/integrations/webhooks/")
            for t in targets
        ), targets
        seen = processes_with(marker)
        commands = " | ".join(cmd for _, cmd in seen.values())
        for part in ("scripts/services.py", "run_dev.py", "ehr_sandbox", "celery"):
            assert part in commands
        assert "runserver" in commands and len({pgid for pgid, _ in seen.values()}) >= 4
        stop(proc)
        proc.wait(timeout=60)
        assert_nothing_survives(marker, seen)
    output._thread.join(timeout=10)
    assert "everything it started has stopped" in output.text, output.text


def test_a_failing_start_up_step_prints_why_and_leaves_nothing_running(run_env):
    """load_demo fails (the sandbox is started with other API keys than the portal's): its
    output is shown, and the sandbox that was already up is stopped."""
    run_env["SANDBOX_API_KEYS"] = "not-the-portals-key"
    marker = f"DEV_STATE_DIR={run_env['DEV_STATE_DIR']}"
    proc = subprocess.Popen(
        [sys.executable, "scripts/run_dev.py"], cwd=ROOT, env=run_env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    output = Output(proc)
    sandboxes: dict[int, tuple[int, str]] = {}

    def sandbox_seen_or_exited() -> bool:
        sandboxes.update({p: v for p, v in processes_with(marker).items() if "ehr_sandbox" in v[1]})
        return bool(sandboxes) or proc.poll() is not None

    wait_until(sandbox_seen_or_exited, "the sandbox to start")
    assert proc.wait(timeout=120) == 1
    output._thread.join(timeout=10)
    text = output.text
    assert "`manage.py load_demo --password-file" in text and "failed (exit 1)" in text
    assert "Traceback" in text or "Error" in text  # the step's own output, not swallowed
    assert sandboxes, text
    assert_nothing_survives(marker, sandboxes)


def test_a_killed_worker_is_started_again_and_the_portal_stays_up(run_env):
    marker = f"DEV_STATE_DIR={run_env['DEV_STATE_DIR']}"
    with started([sys.executable, "scripts/run_dev.py"], run_env) as (proc, output):

        def workers() -> dict[int, int]:
            """The runner's prefork worker (group leader): pid -> group."""
            return {
                pid: pgid
                for pid, (pgid, cmd) in processes_with(marker).items()
                if "celery" in cmd and "default,sync" in cmd and pid == pgid
            }

        (first,) = workers()
        booking = [cmd for _, cmd in processes_with(marker).values() if "-Q bookings" in cmd]
        assert booking and all("--pool threads" in cmd for cmd in booking)  # EHR-bound: threads
        os.killpg(first, signal.SIGKILL)  # the worker, its pool and beat: a crash
        wait_until(lambda: output.has("Celery worker restarted"), "the worker to restart", 60)
        wait_until(lambda: workers() and first not in workers(), "a new worker process")
        assert "Celery worker exited (-9); restarting in 1 s" in output.text
        assert proc.poll() is None and healthy(run_env["PORT"])
        seen = processes_with(marker)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, output.text
    assert_nothing_survives(marker, seen)


def test_the_sandbox_and_webhook_urls_follow_the_two_ports():
    env = {k: v for k, v in os.environ.items() if k not in ("EHR_SANDBOX_URL", "PORTAL_PUBLIC_URL")}
    env.update(PORT="8010", SANDBOX_PORT="8110", DEBUG="true")
    code = (
        "from django.conf import settings as s; "
        "print(s.EHR_SANDBOX_URL, s.PORTAL_PUBLIC_URL, *s.CSRF_TRUSTED_ORIGINS)"
    )
    shown = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout.splitlines()[-1].split()  # fmt: skip
    assert shown == [
        "http://127.0.0.1:8110",
        "http://127.0.0.1:8010",
        "http://127.0.0.1:8010",
        "http://localhost:8010",
    ]
