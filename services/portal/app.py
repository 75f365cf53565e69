"""The portal's routes, bound to its dependencies, behind the security headers."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp
from starlette.templating import Jinja2Templates

from services.portal import admin, live, markets, operations, pages, partners, profiles
from services.portal.dashboard import DashboardUnavailable
from services.portal.web import PortalDeps, SecurityHeaders

HERE = Path(__file__).parent


def templates() -> Jinja2Templates:
    # auto_reload off: the templates ship with the code and do not change while it runs, so no page
    # needs to stat its template files before rendering.
    environment = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                              auto_reload=False)
    environment.filters["money"] = pages.money
    environment.filters["utc_time"] = pages.utc_time
    return Jinja2Templates(env=environment)


def build_app(deps: PortalDeps, lifespan=None) -> ASGIApp:
    routes = [
        Route("/", partial(pages.home, deps), methods=["GET"]),
        Route("/login", partial(pages.login_page, deps), methods=["GET"]),
        Route("/login", partial(pages.login, deps), methods=["POST"]),
        Route("/logout", partial(pages.logout, deps), methods=["POST"]),
        Route("/buyer", partial(pages.buyer_home, deps), methods=["GET"]),
        Route("/buyer/live", partial(live.purchases, deps), methods=["GET"]),
        Route("/seller", partial(pages.seller_home, deps), methods=["GET"]),
        Route("/seller/live", partial(live.seller_home, deps), methods=["GET"]),
        Route("/operator", partial(pages.operator_home, deps), methods=["GET"]),
        Route("/operator/live", partial(live.operator_home, deps), methods=["GET"]),
        Route("/search", partial(pages.search, deps), methods=["GET"]),
        Route("/transactions", partial(pages.transactions, deps), methods=["GET"]),
        Route("/leads/{lead_id}", partial(pages.lead_page, deps), methods=["GET"]),
        Route("/leads/{lead_id}/return", partial(pages.return_page, deps), methods=["GET"]),
        Route("/leads/{lead_id}/return", partial(pages.return_lead, deps), methods=["POST"]),
        Route("/transactions.csv", partial(pages.transactions_csv, deps), methods=["GET"]),
        Route("/partners", partial(partners.partners_page, deps), methods=["GET"]),
        Route("/partners/sells-to", partial(partners.sells_to, deps), methods=["POST"]),
        Route("/partners/{account_id}/partnership", partial(partners.opt, deps), methods=["POST"]),
        Route("/partners/{account_id}/choice", partial(partners.choose, deps), methods=["POST"]),
        Route("/partners/{account_id}/rating", partial(partners.rate, deps), methods=["POST"]),
        Route("/profiles", partial(profiles.profiles_page, deps), methods=["GET"]),
        Route("/profiles/new", partial(profiles.new_profile_page, deps), methods=["GET"]),
        Route("/profiles/new", partial(profiles.save, deps), methods=["POST"]),
        Route("/profiles/{profile_id}", partial(profiles.profile_page, deps), methods=["GET"]),
        Route("/profiles/{profile_id}", partial(profiles.save, deps), methods=["POST"]),
        Route("/profiles/{profile_id}/pause", partial(profiles.pause, deps), methods=["POST"]),
        Route("/profiles/{profile_id}/delete", partial(profiles.delete, deps), methods=["POST"]),
        Route("/markets", partial(markets.markets_page, deps), methods=["GET"]),
        Route("/markets/{state:str}", partial(markets.state_page, deps), methods=["GET"]),
        Route("/admin", partial(admin.admin_page, deps), methods=["GET"]),
        Route("/admin/accounts", partial(admin.create_account, deps), methods=["POST"]),
        Route("/admin/accounts/{account_id}", partial(admin.account_page, deps), methods=["GET"]),
        Route("/admin/accounts/{account_id}/rotate-key", partial(admin.rotate_key, deps), methods=["POST"]),
        Route("/admin/accounts/{account_id}/fee", partial(admin.set_fee, deps), methods=["POST"]),
        Route("/admin/accounts/{account_id}/contracts", partial(admin.add_contract, deps), methods=["POST"]),
        Route("/admin/accounts/{account_id}/contracts/{buyer_id}/end", partial(admin.end_contract, deps),
              methods=["POST"]),
        Route("/admin/accounts/{account_id}/active", partial(admin.set_active, deps), methods=["POST"]),
        Route("/admin/services", partial(operations.services_page, deps), methods=["GET"]),
        Route("/admin/people", partial(admin.invite, deps), methods=["POST"]),
        Route("/admin/people/{person_id}/password-link", partial(admin.password_link, deps), methods=["POST"]),
        Route("/password/{token}", partial(admin.password_page, deps), methods=["GET"], name="password"),
        Route("/password/{token}", partial(admin.choose_password, deps), methods=["POST"]),
        Route("/favicon.ico", pages.favicon, methods=["GET"]),
        Route("/healthz", partial(pages.healthz, deps), methods=["GET"]),
        Route("/readyz", partial(pages.readyz, deps), methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: partial(pages.http_error, deps),
                                        DashboardUnavailable: partial(pages.dashboard_unavailable, deps),
                                        SQLAlchemyError: partial(pages.store_unavailable, deps),
                                        RedisError: partial(pages.store_unavailable, deps),
                                        Exception: partial(pages.unexpected_error, deps)})
    # Around the whole application, not as one of its middleware: Starlette answers an unexpected
    # error from its outermost layer, outside every middleware it is given, and that answer must
    # carry the headers too.
    return SecurityHeaders(app)
