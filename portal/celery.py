"""The Celery application: Redis broker, JSON only, late acks so a killed worker loses nothing;
its log handlers redact PHI (core.logsafety)."""

import os

from celery import Celery
from celery.app import trace
from celery.signals import after_setup_logger, after_setup_task_logger, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# A task's return value is for its caller, not for the worker's log: outcomes quote EHR records
# and refusals. Celery has no setting for its success line; its module-level format is it.
trace.LOG_SUCCESS = "Task %(name)s[%(id)s] succeeded in %(runtime)ss"


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_worker_logs(logger=None, **kwargs):
    """The worker replaces Django's logging handlers with its own: put the PHI filter on them
    (its task lines carry return values and exception text)."""
    from core.logsafety import install, install_everywhere

    if logger is not None:
        install(logger.handlers)
    install_everywhere()


@worker_process_init.connect
def _redact_child_logs(**kwargs):
    from core.logsafety import install_everywhere

    install_everywhere()
