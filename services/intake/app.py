"""The intake's Starlette app, assembled from its audiences' routes: sellers (services.intake.sellers:
PING, POST, lead status), buyers (services.intake.buyers: bids, bought leads, returns, outcomes),
operators (services.intake.admin: the admin API) and list auctions (services.intake.lists), plus
health, readiness and the OpenAPI document (services.intake.endpoints). Every audience's handlers are
named methods of one object holding what they need; services.intake.main builds those objects.
docs/integration-spec.md is the sellers' contract.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from leadx.platform.health import Readiness
from services.intake.admin import Admin
from services.intake.buyers import Buyers
from services.intake.endpoints import healthz, method_not_allowed, not_found, open_endpoint, openapi, readyz
from services.intake.lists import Lists
from services.intake.metrics import HttpMetrics
from services.intake.requests import Callers
from services.intake.sellers import Sellers


def build_app(sellers: Sellers, buyers: Buyers, admin: Admin, lists: Lists, readiness: Readiness,
              lifespan=None, callers: Callers | None = None) -> Starlette:
    """`callers` holds the rate limit of the routes that take no key (None: none)."""
    app = Starlette(
        routes=[
            *sellers.routes(),
            *buyers.routes(),
            *admin.routes(),
            *lists.routes(),
            Route("/openapi.json", open_endpoint(openapi, callers), methods=["GET"]),
            Route("/healthz", open_endpoint(healthz, callers), methods=["GET"]),
            Route("/readyz", open_endpoint(readyz, callers), methods=["GET"]),
        ],
        exception_handlers={404: not_found, 405: method_not_allowed},
        middleware=[Middleware(HttpMetrics)],
        lifespan=lifespan,
    )
    app.state.readiness = readiness
    # The lead constraint rules the OpenAPI document states: the sellers' (INTAKE_RULES_DIR).
    app.state.rulebook = getattr(sellers.deps, "rulebook", None)
    return app
