"""No PHI in any log line: the redacting filter, where it is installed (Django's handlers, the
Celery worker's, gunicorn's access and error logs), and a run that books through the API and a
real worker, records a call, screens it and searches for it, then reads every log it wrote for
the PHI it used."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from core.logsafety import RedactingFilter, redact
from ehr_sandbox.testing import wait_until
from tests import workers
from tests.workers import ROOT

# One patient's PHI as the run uses it, and every way it could be written into a line.
FIRST, LAST = "Marisol", "Quenneville"
DOB = "1979-08-23"
PHONE = "+14155550142"
EMAIL = "marisol.q@example.org"
NEEDLES = [
    FIRST,
    LAST,
    DOB,
    "08/23/1979",
    "19790823",
    "23/08/1979",
    PHONE,
    "%2B14155550142",
    "4155550142",
    "415-555-0142",
    "415.555.0142",
    "(415) 555-0142",
    "415 555 0142",
    "555-0142",
    "5550142",
    EMAIL,
    "marisol.q%40example.org",
]


def phi_in(text: str) -> list[str]:
    lowered = text.lower()
    return [needle for needle in NEEDLES if needle.lower() in lowered]


def record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("t", logging.INFO, __file__, 1, message, args, exc_info)


def formatted(rec: logging.LogRecord) -> str:
    RedactingFilter().filter(rec)
    return logging.Formatter("%(message)s").format(rec)


# --- the filter --------------------------------------------------------------------------------


def test_the_filter_withholds_query_strings_contacts_dates_and_demographic_fields():
    lines = [
        f"HTTP Request: GET https://ehr.example/patients?location_id=7&name={FIRST}+{LAST}"
        f"&date_of_birth={DOB} 200 OK",
        "GET /p/alpha/calls/?phone=%2B14155550142 HTTP/1.1",
        f'posting {{"first_name": "{FIRST}", "last_name": "{LAST}", "email": "{EMAIL}"}}',
        "caller +1 415 555 0142, (415) 555-0142, 415.555.0142, 4155550142, 415-555-0142",
        f"born 08/23/1979 (dob={DOB}) first_name={FIRST} last_name='{LAST}'",
        f"write to {EMAIL}",
    ]
    for line in lines:
        clean = formatted(record("%s", line))
        assert phi_in(clean) == [], clean
        assert "[withheld]" in clean
    # What is not PHI is left alone: ids, routes, durations, statuses, task ids.
    keep = "booking 42 confirmed; POST /appointments [HTTP 500] in 0.0123456789s task 9f1c2e"
    assert redact(keep) == keep


def test_a_traceback_keeps_its_frames_but_not_the_ehr_text():
    from ehr.errors import EHRValidationError

    try:
        raise EHRValidationError(
            f"date_of_birth Invalid isoformat string for {FIRST} {LAST}",
            status=400,
            method="POST",
            path="/patients",
        )
    except EHRValidationError as exc:
        rec = record("booking %s failed", 42, exc=exc)
        caught = exc
    text = formatted(rec)
    assert (
        "booking 42 failed" in text and "Traceback" in text and "raise EHRValidationError" in text
    )
    assert "EHRValidationError: [withheld]" in text and phi_in(text) == []
    # The repr (how Celery logs a retried or failed task's exception) names kind and route only.
    assert repr(caught) == "<EHRValidationError [HTTP 400] (POST /patients)>"


def test_every_handler_django_configures_redacts_and_http_clients_stay_below_warning():
    handlers = logging.getLogger().handlers + logging.getLogger("django.server").handlers
    configured = [h for h in handlers if type(h).__module__.startswith("logging")]
    assert configured, "no handler from settings.LOGGING"
    for handler in configured:
        assert any(isinstance(f, RedactingFilter) for f in handler.filters), handler
    for name in ("httpx", "httpcore"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING


_WORKER_LOGGING = """
import logging
from portal.celery import app
app.log.setup(loglevel="INFO", colorize=False)  # what `celery worker` does at start-up
logging.getLogger("booking.services").warning("retrying %s", "name=Marisol+Quenneville")
logging.getLogger("httpx").info("HTTP Request: GET /patients?date_of_birth=1979-08-23")
app.log.get_default_logger().warning("caller %s", "+1 415 555 0142")
print("done")
"""


def test_the_worker_logging_set_up_installs_the_filter():
    """Celery replaces the handlers Django configured; its set-up signals put the filter back."""
    done = subprocess.run(
        [sys.executable, "-c", _WORKER_LOGGING],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "done" in done.stdout, done.stderr[-2000:]
    assert "retrying name=[withheld]" in done.stderr and "caller [withheld]" in done.stderr
    assert "HTTP Request" not in done.stderr and phi_in(done.stderr) == [], done.stderr


# --- gunicorn ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_gunicorn_access_and_error_logs_carry_no_phi(transactional_db, tmp_path: Path):
    """The deployment's gunicorn.conf.py serving the portal: requests with PHI in their query
    strings and referers are logged by route, with the query withheld."""
    from django.conf import settings

    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": workers.test_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "PORTAL_TESTING": "1",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "2",
    }
    command = [sys.executable, "-m", "gunicorn", "portal.wsgi:application", "-c"]
    command += ["gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"]
    command += ["--access-logfile", str(access), "--error-logfile", str(errors)]
    command += ["--log-level", "debug"]
    proc = subprocess.Popen(command, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert proc.poll() is None, "gunicorn exited during start-up"
        try:
            return httpx.get(f"{base}/accounts/login/", timeout=5).status_code < 500
        except httpx.TransportError:
            return False

    try:
        wait_until(answers, timeout=60, interval=0.1, message="gunicorn to answer")
        referer = f"{base}/p/alpha/calls/?phone=4155550142&email={EMAIL}"
        httpx.get(
            f"{base}/p/alpha/calls/",
            params={"phone": PHONE, "name": f"{FIRST} {LAST}"},
            headers={"Referer": referer},
        )
        httpx.get(f"{base}/api/v1/availability", params={"date_of_birth": DOB, "q": "415.555.0142"})
        httpx.post(f"{base}/integrations/webhooks/nexhealth/1?email={EMAIL}", content=b"{}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    lines = access.read_text()
    assert lines.count("\n") >= 3 and "/p/alpha/calls/?[withheld]" in lines, lines
    assert "/api/v1/availability?[withheld]" in lines
    assert phi_in(lines) == [], lines
    assert "Booting worker" in errors.read_text()
    assert phi_in(errors.read_text()) == []


# --- a whole run: book, call, screen, search; then every log ------------------------------------


def _scan_the_run(live_server, settings, caplog, client) -> tuple[str, str]:
    from tests.booking.test_bookings import desk
    from tests.calls.test_pages import staff
    from tests.workers import log_path

    caplog.set_level(logging.DEBUG)
    with desk(live_server, settings, keep_log=True) as d:
        worker_log = log_path(d.queue)
        auth = {"Authorization": f"Bearer {d.token}"}
        api = f"{d.portal_url}/api/v1"
        # The EHR fails patient searches until the worker has logged a retry of one.
        d.world.admin(
            "PATCH", "/_admin/faults", {"error_share": 1.0, "only_endpoints": ["GET /patients"]}
        )
        call = httpx.post(
            f"{api}/calls",
            json={
                "external_id": "call-phi-1",
                "started_at": "2026-05-04T10:00:00-07:00",
                "caller_phone": "(415) 555-0142",
            },
            headers=auth,
            timeout=30,
        )
        assert call.status_code == 201, call.text
        call_id = call.json()["id"]
        patient = {
            "first_name": FIRST,
            "last_name": LAST,
            "date_of_birth": DOB,
            "phone": "415.555.0142",
            "email": EMAIL,
        }
        from tests.booking.test_bookings import booking_body

        body = {**booking_body(d.hold(), **patient), "call_id": "call-phi-1"}
        accepted = d.post(body, "phi-1")
        assert accepted.status_code == 202, accepted.text
        wait_until(
            lambda: "GET /patients failed" in worker_log.read_text(errors="replace"),
            timeout=30,
            message="the worker to retry a failed patient search",
        )
        d.world.admin("DELETE", "/_admin/faults")
        bad = d.post({**body, "patient": {**patient, "date_of_birth": "08/23/1979"}}, "phi-2")
        assert bad.status_code == 400  # the refusal quotes nothing into a log
        turns = [
            {
                "speaker": "caller",
                "text": f"Hi, this is {FIRST} {LAST}, born August 23 1979.",
                "at": "2026-05-04T10:00:06-07:00",
            },
            {
                "speaker": "agent",
                "text": "You're booked. We'll text 415-555-0142.",
                "at": "2026-05-04T10:00:09-07:00",
            },
        ]
        transcript = httpx.put(
            f"{api}/calls/{call_id}/transcript",
            json={"turns": turns},
            headers=auth,
            timeout=30,
        )
        assert transcript.status_code == 200, transcript.text
        screened = httpx.post(
            f"{api}/calls/{call_id}/screen",
            json={"text": f"{FIRST} says her gums bleed; call her on {PHONE}"},
            headers=auth,
            timeout=30,
        )
        assert screened.status_code == 200, screened.text
        d.wait_status(accepted.json()["id"], "confirmed", timeout=90)

        from accounts.models import Role

        staff(client, d.world.practice, Role.FRONT_DESK)
        slug = d.world.practice.slug
        found = client.post(f"/p/{slug}/calls/", {"phone": "(415) 555-0142"})
        assert found.status_code == 200 and "0142" in found.content.decode()
        assert client.get(f"/p/{slug}/calls/?phone=4155550142").status_code == 200
        assert client.get(f"/p/{slug}/bookings/").status_code == 200
        revealed = client.get(f"/p/{slug}/bookings/{accepted.json()['id']}/patient/")
        assert LAST in revealed.content.decode()  # the page shows it; no log line does
    text = worker_log.read_text(errors="replace")
    worker_log.unlink()
    fmt = logging.Formatter("%(levelname)s %(name)s %(message)s")
    captured = "\n".join(fmt.format(r) for r in caplog.records)
    return text, captured


@pytest.mark.worker
def test_a_booking_call_screening_and_search_leave_no_phi_in_any_log(
    transactional_db, live_server, settings, caplog, client
):
    worker, captured = _scan_the_run(live_server, settings, caplog, client)
    # The logs are real: the worker logged its tasks at INFO, this process its requests.
    assert re.search(r"scheduling\.process_booking\[[^\]]+\] succeeded", worker), worker[-3000:]
    assert captured.count("\n") > 10, captured
    assert phi_in(worker) == [], [line for line in worker.splitlines() if phi_in(line)][:10]
    assert phi_in(captured) == [], [line for line in captured.splitlines() if phi_in(line)][:10]
