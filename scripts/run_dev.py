"""`make run`: migrate, load the demo practices, start the EHR sandbox, a worker and the portal.

Runs inside scripts/services.py, so DATABASE_URL and CELERY_BROKER_URL are set. Ports: PORT (the
portal, default 8000), SANDBOX_PORT (the EHR sandbox, default 8100) and NEXTECH_SANDBOX_PORT (its
Nextech surface, default SANDBOX_PORT + 100); the settings derive the sandbox URLs and the webhook
URL from the same variables.

What it starts, it stops: each service runs in its own process group (a worker's pool and beat
included), and SIGINT (Ctrl-C), SIGTERM or SIGHUP stop every group, then the runner exits. A
start-up step that fails prints its output and stops whatever had started. A worker or sandbox
that dies is started again, after 1, 2, 4 ... 30 s; one that keeps dying at once stops the stack.
DEV_STATE_DIR (default .local) holds the sandbox's data, beat's schedule and the demo password.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HOST = "127.0.0.1"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
BACKOFF_FIRST_S, BACKOFF_CAP_S = 1.0, 30.0
STABLE_AFTER_S = 60.0  # a process that ran this long starts its backoff afresh when it dies
GIVE_UP_AFTER = 5  # consecutive deaths within STABLE_AFTER_S each


class Stop(Exception):
    """A stop signal arrived, or start-up cannot go on: stop everything and exit."""

    def __init__(self, reason: str, code: int) -> None:
        super().__init__(reason)
        self.code = code


@dataclass
class Service:
    name: str
    argv: list[str]
    restart: bool
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    deaths: int = 0
    restart_at: float | None = None
    # Run after a restart (the Nextech sandbox keeps no state: its practice is loaded again).
    after_restart: Callable[[], None] | None = None

    def start(self, env: dict[str, str]) -> None:
        # Its own session and process group: a terminal's Ctrl-C reaches the runner only, and
        # stopping the group stops what the service forked (celery's pool, beat).
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=env, start_new_session=True)
        self.started_at = time.monotonic()
        self.restart_at = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Runner:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.services: list[Service] = []
        self.stop_signal: int | None = None
        self.step_proc: subprocess.Popen[bytes] | None = None

    # --- signals and stopping ---

    def on_signal(self, signum: int, _frame: object) -> None:
        self.stop_signal = signum
        if self.step_proc is not None:  # a step (migrate, load_demo) stops now, not when done
            _signal_group(self.step_proc.pid, signal.SIGTERM)

    def check_stop(self) -> None:
        if self.stop_signal is not None:
            name = signal.Signals(self.stop_signal).name
            raise Stop(f"{name} received: stopping", 128 + self.stop_signal)

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake for a stop signal (checked every 0.1 s)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check_stop()
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        self.check_stop()

    def stop_all(self) -> None:
        """SIGTERM every service's process group, wait up to 20 s, then SIGKILL what is left."""
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        groups = [s.proc.pid for s in self.services if s.proc is not None]
        for pgid in groups:
            _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_group_alive(g) for g in groups):
            for service in self.services:
                if service.proc is not None:
                    service.proc.poll()  # reap
            time.sleep(0.1)
        for pgid in groups:
            _signal_group(pgid, signal.SIGKILL)
        for service in self.services:
            if service.proc is not None:
                try:
                    service.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    print(f"[run] {service.name} (pid {service.proc.pid}) did not exit", flush=True)

    # --- steps and services ---

    def step(self, *args: str) -> str:
        """One start-up step (a management command), its output shown; a failure stops here."""
        self.check_stop()
        proc = subprocess.Popen(
            [PY, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.step_proc = proc
        try:
            out, _ = proc.communicate()
        finally:
            self.step_proc = None
            _signal_group(proc.pid, signal.SIGKILL)  # anything the step left behind
        text = out.decode(errors="replace")
        self.check_stop()
        if proc.returncode != 0:
            print(text, end="" if text.endswith("\n") else "\n", file=sys.stderr, flush=True)
            raise Stop(
                f"`manage.py {' '.join(args)}` failed (exit {proc.returncode}): see above", 1
            )
        print(text, end="", flush=True)
        return text

    def start(self, service: Service) -> Service:
        self.check_stop()
        self.services.append(service)
        service.start(self.env)
        return service

    def wait_http(self, url: str, service: Service, deadline_s: float = 60) -> None:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            self.check_stop()
            if not service.running:
                raise Stop(f"{service.name} exited at start (see its output above)", 1)
            try:
                with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - local URL
                    return
            except Exception:
                time.sleep(0.2)
        raise Stop(f"{service.name} did not answer {url} within {deadline_s:.0f} s", 1)

    def supervise(self) -> None:
        """Until a stop signal: restart a dead worker or sandbox after its backoff; the portal
        dying stops the stack (its output says why, and a restart would hide it)."""
        while True:
            self.sleep(0.2)
            now = time.monotonic()
            for service in self.services:
                if service.running or service.proc is None:
                    continue
                if not service.restart:
                    raise Stop(f"{service.name} exited ({service.proc.returncode}): stopping", 1)
                if service.restart_at is None:
                    _signal_group(service.proc.pid, signal.SIGKILL)  # what it forked goes too
                    lived = now - service.started_at
                    service.deaths = 1 if lived >= STABLE_AFTER_S else service.deaths + 1
                    if service.deaths > GIVE_UP_AFTER:
                        raise Stop(f"{service.name} keeps dying: stopping", 1)
                    delay = min(BACKOFF_CAP_S, BACKOFF_FIRST_S * 2 ** (service.deaths - 1))
                    service.restart_at = now + delay
                    print(
                        f"[run] {service.name} exited ({service.proc.returncode}); "
                        f"restarting in {delay:.0f} s",
                        flush=True,
                    )
                elif now >= service.restart_at:
                    service.start(self.env)
                    print(f"[run] {service.name} restarted (pid {service.proc.pid})", flush=True)
                    if service.after_restart is not None:
                        service.after_restart()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def booking_pool(env: dict[str, str]) -> tuple[str, str]:
    """The booking worker's pool and concurrency, as the settings name them."""
    return env.get("BOOKING_WORKER_POOL", "threads"), env.get("BOOKING_WORKER_CONCURRENCY", "16")


def start_stack(run: Runner, port: int, sandbox_port: int, nextech_port: int, state: Path) -> None:
    ports = (("PORT", port), ("SANDBOX_PORT", sandbox_port), ("NEXTECH_SANDBOX_PORT", nextech_port))
    if len({value for _, value in ports}) < len(ports):
        raise Stop(f"the ports must differ: {', '.join(f'{n}={v}' for n, v in ports)}", 1)
    for name, value in ports:
        if not port_free(value):
            raise Stop(f"{name}={value} is in use: stop what holds it, or choose another", 1)
    run.step("migrate", "--no-input")
    if run.env.get("DATABASE_SUPERUSER_URL"):  # the embedded server's; a given URL may have one
        run.step("protect_audit_tables")
    else:
        print(
            "DATABASE_SUPERUSER_URL is unset: the audit tables stay the application role's "
            "(run `manage.py protect_audit_tables` with a superuser URL; check --deploy warns).",
            file=sys.stderr,
        )
    sandbox = run.start(
        Service(
            "EHR sandbox",
            [
                PY,
                "-m",
                "ehr_sandbox",
                "--port",
                str(sandbox_port),
                "--data-dir",
                str(state / "sandbox"),
            ],
            restart=True,
        )
    )
    # The sandbox's Nextech surface: the third demo practice's EHR (in memory only).
    nextech = run.start(
        Service(
            "Nextech sandbox",
            [PY, "-m", "ehr_sandbox.nextech", "--host", HOST, "--port", str(nextech_port)],
            restart=True,
        )
    )
    load_demo = ("load_demo", "--password-file", str(state / "demo-password"))
    nextech_health = f"http://{HOST}:{nextech_port}/_admin/health"

    def reload_nextech() -> None:
        run.wait_http(nextech_health, nextech)
        run.step(*load_demo)

    nextech.after_restart = reload_nextech
    # The demo practices are imported through the EHR sandboxes: they must answer first.
    run.wait_http(f"http://{HOST}:{sandbox_port}/_admin/health", sandbox)
    run.wait_http(nextech_health, nextech)
    demo = run.step(*load_demo)
    celery = [PY, "-m", "celery", "-A", "portal", "worker", "--loglevel", "INFO"]
    # EHR-bound work (bookings, notes) waits on the EHR: a thread pool, so a few hung calls hold
    # back nobody else. Everything else, prefork; beat inside it (dev only).
    pool, threads = booking_pool(run.env)
    booking_argv = [*celery, "-Q", "bookings", "--pool", pool, "--concurrency", threads]
    booking_argv += ["--hostname", f"bookings-{port}@%h"]
    run.start(Service("Celery booking worker", booking_argv, restart=True))
    worker_argv = [*celery, "--concurrency", "2", "-Q", "default,sync"]
    worker_argv += ["--hostname", f"default-{port}@%h"]
    worker_argv += ["--beat", "--schedule", str(state / "celerybeat-schedule")]
    run.start(Service("Celery worker", worker_argv, restart=True))
    portal = run.start(
        Service(
            "portal",
            [PY, "manage.py", "runserver", f"{HOST}:{port}", "--noreload"],
            restart=False,
        )
    )
    run.wait_http(f"http://{HOST}:{port}/healthz", portal)
    print(
        f"""
==========================================================================
 Hello Practice Portal is running:  http://{HOST}:{port}/
 (EHR sandbox: http://{HOST}:{sandbox_port}/, its Nextech surface:
  http://{HOST}:{nextech_port}/ for Lakeside Eye & Skin)

{demo}
 Each demo account has an authenticator already enrolled; get its current
 6-digit code (while this runs, from another terminal) with:
     make manage CMD="totp_code manager@happy-smiles.demo"
 Stop with Ctrl-C.
==========================================================================
""",
        flush=True,
    )


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    sandbox_port = int(os.environ.get("SANDBOX_PORT", "8100"))
    nextech_port = int(os.environ.get("NEXTECH_SANDBOX_PORT", str(sandbox_port + 100)))
    state = Path(os.environ.get("DEV_STATE_DIR", str(ROOT / ".local")))
    state.mkdir(parents=True, exist_ok=True)
    ports = {"PORT": port, "SANDBOX_PORT": sandbox_port, "NEXTECH_SANDBOX_PORT": nextech_port}
    env = {**os.environ, "DEBUG": "true", **{k: str(v) for k, v in ports.items()}}
    # `make manage` runs its commands with the same ports (the sandbox URLs follow them).
    (state / "run.env").write_text("".join(f"export {k}={v}\n" for k, v in ports.items()))
    run = Runner(env)
    for signum in STOP_SIGNALS:
        signal.signal(signum, run.on_signal)
    code = 0
    try:
        start_stack(run, port, sandbox_port, nextech_port, state)
        run.supervise()
    except Stop as stop:
        print(f"[run] {stop}", file=sys.stderr, flush=True)
        code = 0 if run.stop_signal is not None else stop.code
    finally:
        run.stop_all()
        print("[run] everything it started has stopped", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
