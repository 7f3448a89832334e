"""`make run`: migrate, load the demo practices, start the EHR sandbox, a worker and the portal.

Runs inside scripts/services.py, so DATABASE_URL and CELERY_BROKER_URL are set. Ctrl-C stops
everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HOST, PORT = "127.0.0.1", int(os.environ.get("PORT", "8000"))
SANDBOX_PORT = int(os.environ.get("SANDBOX_PORT", "8100"))


def manage(*args: str) -> str:
    done = subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, check=True, capture_output=True, text=True
    )
    print(done.stdout, end="", flush=True)
    return done.stdout


def wait_http(url: str, deadline_s: float = 60) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - local URL
                return True
        except Exception:
            time.sleep(0.2)
    return False


def main() -> int:
    env = {**os.environ, "DEBUG": "true"}
    os.environ.update(env)
    manage("migrate", "--no-input")
    if env.get("DATABASE_SUPERUSER_URL"):  # the embedded server's; a given URL may come with one
        manage("protect_audit_tables")
    else:
        print(
            "DATABASE_SUPERUSER_URL is unset: the audit tables stay the application role's "
            "(run `manage.py protect_audit_tables` with a superuser URL; check --deploy warns).",
            file=sys.stderr,
        )
    procs: list[subprocess.Popen[bytes]] = []
    if (ROOT / "integrations" / "sandbox" / "__main__.py").exists():
        procs.append(
            subprocess.Popen(
                [
                    PY,
                    "-m",
                    "integrations.sandbox",
                    "--port",
                    str(SANDBOX_PORT),
                    "--data-dir",
                    str(ROOT / ".local" / "sandbox"),
                ],
                cwd=ROOT,
                env=env,
            )
        )
    # The demo practices are imported through the EHR sandbox: it must answer first.
    if procs and not wait_http(f"http://{HOST}:{SANDBOX_PORT}/_admin/health"):
        print("The EHR sandbox did not start; see the output above.", file=sys.stderr)
        return 1
    demo = manage("load_demo")
    procs.append(
        subprocess.Popen(
            [
                PY,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
                "-Q",
                "bookings,default,sync",
                # Beat inside the worker: reconcile, health figures, outbox relay (dev only).
                "--beat",
                "--schedule",
                str(ROOT / ".local" / "celerybeat-schedule"),
            ],
            cwd=ROOT,
            env=env,
        )
    )
    procs.append(
        subprocess.Popen(
            [PY, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload"], cwd=ROOT, env=env
        )
    )

    stopping: list[int] = []

    def request_stop(signum: int, _frame: object) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    if wait_http(f"http://{HOST}:{PORT}/healthz"):
        print(
            f"""
==========================================================================
 Hello Practice Portal is running:  http://{HOST}:{PORT}/

{demo}
 Each demo account has an authenticator already enrolled; get its current
 6-digit code (while this runs, from another terminal) with:
     make manage CMD="totp_code manager@happy-smiles.demo"
 Stop with Ctrl-C.
==========================================================================
""",
            flush=True,
        )
    while not stopping and all(p.poll() is None for p in procs):
        time.sleep(0.5)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
