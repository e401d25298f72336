"""Health probes for load balancers and orchestrators: ``/healthz`` and ``/readyz``.

No login and no order data: they say whether the process answers, and whether
the database answers with views populated, fresh enough, logged and audited exact.
"""

from __future__ import annotations

__all__ = ["healthz", "readyz"]

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from reporting import conf, selectors


@csrf_exempt
def healthz(request: HttpRequest) -> JsonResponse:
    """``GET /healthz``: the process answers. Touches nothing else."""
    return JsonResponse({"status": "ok"})


@csrf_exempt
def readyz(request: HttpRequest) -> JsonResponse:
    """``GET /readyz``: the database answers, the views are populated and fresh enough; else 503."""
    state = selectors.readiness(max_age=conf.ready_max_age())
    body = {
        "status": "ready" if state.ready else "not ready",
        "checks": {
            "database": state.database,
            "views_populated": state.views_populated,
            "fresh": state.fresh,
            "change_log": state.change_log,
            "audit": state.audit,
        },
        "age_seconds": round(state.age.total_seconds(), 3) if state.age is not None else None,
        "problems": state.problems,
    }
    return JsonResponse(body, status=200 if state.ready else 503)
