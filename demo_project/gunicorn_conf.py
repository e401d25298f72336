"""gunicorn's settings for this project.

``gunicorn demo_project.wsgi --config demo_project/gunicorn_conf.py`` (make serve, the Procfile).

Each can be changed from the environment: ``WEB_CONCURRENCY`` (workers),
``WEB_TIMEOUT`` (seconds), and gunicorn's own ``GUNICORN_CMD_ARGS``.
"""

from __future__ import annotations

import os

# Synchronous workers: every view waits on PostgreSQL, none holds a connection open.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Longer than REPORTING_WEB_STATEMENT_TIMEOUT, so a slow query gets its JSON 504
# rather than a killed worker; a CSV export streams, and only idle time counts.
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
graceful_timeout = 30
accesslog = "-"
errorlog = "-"
# Restart workers now and then, so that a leak never grows without bound.
max_requests = 2000
max_requests_jitter = 200


def child_exit(server: object, worker: object) -> None:
    """Let the metrics of a worker that ended go (prometheus-client's multiprocess mode)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    try:
        from prometheus_client import multiprocess
    except ImportError:  # the metrics extra is not installed: no worker kept any
        return
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
