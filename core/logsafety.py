"""Keeps PHI out of log lines: a redacting filter installed on every handler this system logs
through (Django's LOGGING, the Celery worker's handlers, gunicorn's access and error logs).

It is a safety net, not the policy: log calls name records by id and errors by kind, never by
content. What it catches is what slips through anyway: query strings (EHR searches carry names
and birth dates in them, a page search a phone number), email addresses, phone numbers,
calendar dates (a birth date looks like any other date), `key=value` / `"key": "value"` pairs
whose key names a demographic field, and the text of EHR errors in tracebacks (an EHR echoes
what it refused, patient fields included).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

WITHHELD = "[withheld]"

# Demographic fields, however an EHR, our API or a form spells them.
_PHI_KEYS = (
    r"(?:first_|last_|middle_|full_|patient_|preferred_|caller_)?name|name_?(?:first|last)"
    r"|date_?of_?birth|dob|birth_?date|birthday|e_?mail(?:_address)?"
    r"|(?:caller_|home_|cell_|mobile_|work_)?phone(?:_number)?|phone_?e164|ssn"
    r"|(?:street_|home_)?address(?:_line)?\d?|street|zip(?:_?code)?|postal_code|insurance\w*"
)
_KEY_VALUE = re.compile(
    rf"""(?P<key>["']?\b(?:{_PHI_KEYS})\b["']?)(?P<sep>\s*[=:]\s*)"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,&;)}\]]+)""",
    re.IGNORECASE,
)
# A query string: '?' then at least one name=value, up to whitespace or a quote.
_QUERY = re.compile(r"""\?[^\s"'<>?#]*=[^\s"'<>#]*""")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# North American and E.164 numbers as people write them: +1 555 555 0101, (555) 555-0101,
# 555.555.0101, 5555550101, +15555550101, %2B15555550101; not inside longer runs of digits
# or words (ids, hashes, durations).
_PHONE = re.compile(
    r"(?<![\w.%/-])(?:(?:\+|%2B)?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?![\w])"
    r"|(?<![\w.%/-])(?:\+|%2B)\d{8,15}(?!\w)",
    re.IGNORECASE,
)
_DATE = re.compile(r"(?<![\w-])(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4})(?![\w-])")
# The last line of a traceback for one of our EHR errors: "ehr.errors.EHRX: text".
_EHR_ERROR_LINE = re.compile(
    r"^((?:[\w.]+\.)?EHR\w*(?:Error|Limited|Unavailable|Uncertain|Found)):.*$", re.M
)


def redact(text: str) -> str:
    """`text` with everything that may identify a patient replaced by `[withheld]`."""
    if not text:
        return text
    text = _EHR_ERROR_LINE.sub(rf"\1: {WITHHELD} (EHR text)", text)
    text = _QUERY.sub("?" + WITHHELD, text)
    text = _KEY_VALUE.sub(lambda m: f"{m['key']}{m['sep']}{WITHHELD}", text)
    text = _EMAIL.sub(WITHHELD, text)
    text = _PHONE.sub(WITHHELD, text)
    return _DATE.sub(WITHHELD, text)


def without_query(url: str) -> str:
    """A URL or request path with its query string withheld (kept: that there was one)."""
    path, mark, _ = url.partition("?")
    return f"{path}?{WITHHELD}" if mark else path


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, traceback and stack in place; never drops a record.

    Installed on handlers (a logger's filters do not see records propagated from children)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the template only
            message = str(record.msg)
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


QUIET_LOGGERS = ("httpx", "httpcore")  # their INFO lines are full EHR URLs, query included


def install(handlers: Iterable[logging.Handler]) -> None:
    """Put the filter on `handlers` (once each) and keep the HTTP client libraries quiet;
    for the processes that configure logging themselves (the Celery worker, gunicorn)."""
    for handler in handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


def install_everywhere() -> None:
    """`install` on every handler of the root logger and of every logger created so far."""
    loggers: list[logging.Logger] = [logging.getLogger()]
    for candidate in list(logging.root.manager.loggerDict.values()):
        if isinstance(candidate, logging.Logger):
            loggers.append(candidate)
    install(handler for logger in loggers for handler in logger.handlers)
