"""Celery through a real worker process and the real broker."""

from __future__ import annotations

import pytest

from accounts.tasks import count_locations
from tests.factories import LocationFactory, PracticeFactory
from tests.workers import ROOT, celery_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_a_task_runs_in_a_real_worker_scoped_to_its_practice():
    a, b = PracticeFactory(), PracticeFactory()
    LocationFactory.create_batch(3, practice=a)
    LocationFactory.create_batch(5, practice=b)
    with celery_worker() as (_proc, queue):
        first = count_locations.apply_async(args=[a.pk], queue=queue)
        second = count_locations.apply_async(args=[b.pk], queue=queue)
        assert first.get(timeout=60) == 3
        assert second.get(timeout=60) == 5
    assert not (ROOT / ".local" / f"worker-{queue}.log").exists()  # nothing piles up


def test_a_failed_test_keeps_its_workers_log():
    class Boom(Exception):
        pass

    with pytest.raises(Boom), celery_worker() as (_proc, queue):
        raise Boom
    log = ROOT / ".local" / f"worker-{queue}.log"
    assert b"ready" in log.read_bytes()
    log.unlink()
