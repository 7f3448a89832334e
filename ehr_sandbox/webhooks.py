"""Signed webhook delivery from a background thread, with NexHealth's retry schedule and faults.

Message: ``POST target_url`` with a JSON body::

    {"delivery_id": "...", "event_id": "...", "event": "appointment_insertion",
     "event_name": "appointment_insertion.complete", "resource_type": "Appointment",
     "subdomain": "happy-smiles", "location_id": 21241, "created_at": "...Z",
     "data": {"appointment": {...}}}

Headers: ``X-Timestamp`` (Unix seconds), ``X-Signature`` = hex HMAC-SHA256 with the endpoint's
``secret_key`` over ``"{timestamp}.{raw body}"``, plus ``X-Delivery-Id``, ``X-Delivery-Attempt``
and ``X-Event``. The body of a delivery never changes between retries or injected duplicates
(same ``delivery_id``), so receivers can deduplicate on it.

Retries when the receiver does not answer 2xx: 30 s, 1.5 min, 3.5 min, 10 min, 30 min, 2 h, 5 h,
10 h, 24 h and 48 h after the first attempt, multiplied by the run-time ``time_scale``. When the
last one fails the endpoint is set ``active: false`` (re-activate with PATCH) as NexHealth does.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from .config import RuntimeSettings
from .faults import Faults, Stats
from .timeutil import iso_utc, utc_now

log = logging.getLogger("ehr_sandbox.webhooks")

RETRY_SCHEDULE_SECONDS = (30, 90, 210, 600, 1800, 7200, 18000, 36000, 86400, 172800)
SIGNATURE_TOLERANCE_SECONDS = 300
DELIVERY_LOG_SIZE = 5000

# event -> resource_type it is subscribed under. working_hours_updated is the sandbox's own name
# for "a provider's synced working hours were replaced in the EHR".
EVENTS: dict[str, str] = {
    "appointment_insertion": "Appointment",
    "appointment_created": "Appointment",
    "appointment_updated": "Appointment",
    "patient_created": "Patient",
    "patient_updated": "Patient",
    "document_insertion": "Document",
    "working_hours_updated": "WorkingHour",
}


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """Hex HMAC-SHA256 over ``"{timestamp}.{body}"``."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    timestamp: str | None,
    body: bytes,
    signature: str | None,
    *,
    now: float | None = None,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver should do: check the signature and refuse stale messages."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass
class Delivery:
    delivery_id: str
    endpoint_id: int
    event: str
    body: bytes
    first_attempt_at: float | None = None
    attempts: int = 0


@dataclass(order=True)
class _Queued:
    due: float
    seq: int
    delivery: Delivery = field(compare=False)


# Returns (target_url, secret_key) when the endpoint exists and is active, else None.
EndpointResolver = Callable[[int], tuple[str, str] | None]


class WebhookDispatcher:
    """Queues deliveries and sends them from one worker thread, in order unless a fault says so."""

    def __init__(
        self,
        resolve_endpoint: EndpointResolver,
        deactivate_endpoint: Callable[[int], None],
        settings: RuntimeSettings,
        faults: Faults,
        stats: Stats,
    ) -> None:
        self._resolve = resolve_endpoint
        self._deactivate = deactivate_endpoint
        self._settings = settings
        self._faults = faults
        self._stats = stats
        self._cond = threading.Condition()
        self._heap: list[_Queued] = []
        self._seq = itertools.count()
        self._held: list[Delivery] = []
        self._held_until = 0.0
        self._in_flight = 0
        self._log: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)

    # -- public -----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout)

    def emit(
        self,
        endpoint_ids: list[int],
        event: str,
        payload: dict[str, Any],
    ) -> None:
        """Queue one delivery per endpoint, applying the drop/duplicate/delay/reorder faults."""
        faults = self._faults.settings
        event_id = str(uuid.uuid4())
        now = time.monotonic()
        for endpoint_id in endpoint_ids:
            delivery_id = str(uuid.uuid4())
            body = json.dumps(
                {"delivery_id": delivery_id, "event_id": event_id, **payload},
                separators=(",", ":"),
            ).encode()
            self._stats.add("webhooks", "emitted")
            self._remember(delivery_id, endpoint_id, event, "queued")
            if self._faults.roll(faults.webhook_drop_share):
                self._stats.add("webhooks", "dropped")
                self._remember(delivery_id, endpoint_id, event, "dropped")
                continue
            copies = 2 if self._faults.roll(faults.webhook_duplicate_share) else 1
            if copies == 2:
                self._stats.add("webhooks", "duplicated")
            due = now + faults.webhook_delay_ms / 1000.0
            with self._cond:
                for _ in range(copies):
                    delivery = Delivery(delivery_id, endpoint_id, event, body)
                    if faults.webhook_reorder_window_ms > 0:
                        if not self._held:
                            self._held_until = due + faults.webhook_reorder_window_ms / 1000.0
                        self._held.append(delivery)
                    else:
                        heapq.heappush(self._heap, _Queued(due, next(self._seq), delivery))
                self._cond.notify_all()

    def pending(self) -> int:
        """Deliveries queued, held for reordering, waiting for a retry, or being sent."""
        with self._cond:
            return len(self._heap) + len(self._held) + self._in_flight

    def deliveries(self, limit: int = 500) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(item) for item in list(self._log.values())[-limit:]]

    def clear(self) -> None:
        with self._cond:
            self._heap.clear()
            self._held.clear()
            self._log.clear()

    # -- worker -----------------------------------------------------------------------------

    def _remember(self, delivery_id: str, endpoint_id: int, event: str, status: str) -> None:
        with self._cond:
            entry = self._log.get(delivery_id)
            if entry is None:
                entry = {
                    "delivery_id": delivery_id,
                    "endpoint_id": endpoint_id,
                    "event": event,
                    "status": status,
                    "attempts": 0,
                    "last_status_code": None,
                    "last_error": None,
                    "created_at": iso_utc(utc_now()),
                }
                self._log[delivery_id] = entry
                while len(self._log) > DELIVERY_LOG_SIZE:
                    self._log.popitem(last=False)
            entry["status"] = status

    def _release_held(self, now: float) -> None:
        """Reorder fault: the held batch goes out newest first."""
        if self._held and now >= self._held_until:
            if len(self._held) > 1:
                self._stats.add("webhooks", "reordered", len(self._held))
            for delivery in reversed(self._held):
                heapq.heappush(self._heap, _Queued(now, next(self._seq), delivery))
            self._held.clear()

    def _next(self) -> Delivery | None:
        with self._cond:
            while not self._stop.is_set():
                now = time.monotonic()
                self._release_held(now)
                if self._heap and self._heap[0].due <= now:
                    self._in_flight += 1
                    return heapq.heappop(self._heap).delivery
                waits = [q.due - now for q in self._heap[:1]]
                if self._held:
                    waits.append(self._held_until - now)
                self._cond.wait(timeout=min(waits) if waits else 1.0)
        return None

    def _run(self) -> None:
        with httpx.Client(headers={"User-Agent": "nexhealth-sandbox-webhooks/1"}) as client:
            while True:
                delivery = self._next()
                if delivery is None:
                    return
                try:
                    self._attempt(client, delivery)
                except Exception:  # the worker must survive anything a receiver does
                    log.exception("webhook delivery %s crashed", delivery.delivery_id)
                finally:
                    with self._cond:
                        self._in_flight -= 1
                        self._cond.notify_all()

    def _attempt(self, client: httpx.Client, delivery: Delivery) -> None:
        target = self._resolve(delivery.endpoint_id)
        if target is None:
            self._stats.add("webhooks", "skipped_inactive")
            self._remember(delivery.delivery_id, delivery.endpoint_id, delivery.event, "skipped")
            return
        url, secret = target
        now = time.monotonic()
        if delivery.first_attempt_at is None:
            delivery.first_attempt_at = now
        delivery.attempts += 1
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Timestamp": timestamp,
            "X-Signature": sign(secret, timestamp, delivery.body),
            "X-Delivery-Id": delivery.delivery_id,
            "X-Delivery-Attempt": str(delivery.attempts),
            "X-Event": delivery.event,
        }
        self._stats.add("webhooks", "attempts")
        status_code: int | None = None
        error: str | None = None
        try:
            response = client.post(
                url,
                content=delivery.body,
                headers=headers,
                timeout=self._settings.webhook_timeout_seconds,
            )
            status_code = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self._cond:
            entry = self._log.get(delivery.delivery_id)
            if entry is not None:
                entry["attempts"] += 1
                entry["last_status_code"] = status_code
                entry["last_error"] = error
        if status_code is not None and 200 <= status_code < 300:
            self._stats.add("webhooks", "delivered")
            self._remember(delivery.delivery_id, delivery.endpoint_id, delivery.event, "delivered")
            return
        self._stats.add("webhooks", "failed_attempts")
        if delivery.attempts > len(RETRY_SCHEDULE_SECONDS):
            self._stats.add("webhooks", "gave_up")
            self._remember(delivery.delivery_id, delivery.endpoint_id, delivery.event, "failed")
            self._deactivate(delivery.endpoint_id)
            return
        offset = RETRY_SCHEDULE_SECONDS[delivery.attempts - 1] * self._settings.time_scale
        due = delivery.first_attempt_at + offset
        self._remember(delivery.delivery_id, delivery.endpoint_id, delivery.event, "retrying")
        with self._cond:
            heapq.heappush(self._heap, _Queued(due, next(self._seq), delivery))
            self._cond.notify_all()
