"""Screenshots of the web portal's main pages, for docs/images (shown in the README and docs/portal.md):
`make screenshots` beside a running `make run`.

They are taken in Debian's Chromium (`/usr/bin/chromium`, or LEADX_CHROMIUM), driven by Playwright,
from the exchange `make run` started (its `.leadx/exchange.env`): its demo buyer's and demo seller's
business as it stands, after a minute or two of the demo's trading. The tool logs in as people of
its own on the demo's accounts (`screenshots-buyer@example.com`, `screenshots-seller@example.com`,
`screenshots-autobid@example.com` on the AutoBid buyer) and as an operator of its own
(`screenshots-operator@example.com`), a new random password each run, so the logins `make run` printed
keep working. They stay in that database: point it at a development exchange only.
"""

from __future__ import annotations

import os
import secrets
import struct
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = os.environ.get("LEADX_CHROMIUM", "/usr/bin/chromium")
# Headless, and nothing reaching out to the network on its own (updates, sync, safe browsing).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1280, "height": 860}
OUT_DIR = Path("docs/images")


@dataclass(frozen=True)
class Login:
    email: str
    password: str


@dataclass(frozen=True)
class Shot:
    name: str  # the file's name without .png
    path: str  # the page's path on the portal


@contextmanager
def chromium_browser(chromium: str = CHROMIUM) -> Iterator:
    """A headless Chromium to shoot pages in, closed after."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def take(browser, portal_url: str, buyer: Login, seller: Login, out_dir: Path,
         profiles_buyer: Login | None = None, operator: Login | None = None) -> list[Shot]:
    """Log in as the buyer's person, then the seller's, and save each main page as `<name>.png` in
    out_dir: the login page, the buyer's home, the newest lead it bought (the whole page), its
    search for the leads it bought, its week of transactions, its partnerships, its buy profiles and
    the first one's form (or a new one's), the seller's home, this month's market map and the page
    of its highest-priced state (the whole page). With `profiles_buyer`, the buy profiles are that
    person's buyer's (make run's demo buyer bids itself; its AutoBid buyer has profiles); with
    `operator`, the operators' home, administration and the first account's page follow. The pages
    shot, in that order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shots: list[Shot] = []
    rounds = [(buyer, _buyer_pages if profiles_buyer else _buyer_and_profile_pages)]
    if profiles_buyer is not None:
        rounds.append((profiles_buyer, _profile_pages))
    rounds.append((seller, _seller_pages))
    if operator is not None:
        rounds.append((operator, _operator_pages))
    for login, pages in rounds:
        context = browser.new_context(base_url=portal_url, viewport=VIEWPORT)
        try:
            page = context.new_page()
            page.goto("/login")
            if not shots:
                shots.append(_save(page, "portal-login", out_dir))
            page.fill("#email", login.email)
            page.fill("#password", login.password)
            page.click("form.login button[type=submit]")
            page.wait_for_load_state()
            if urlsplit(page.url).path == "/login":
                raise RuntimeError(f"the portal refused the login of {login.email}")
            shots += pages(page, out_dir)
        finally:
            context.close()
    return shots


def _buyer_and_profile_pages(page, out_dir: Path) -> list[Shot]:
    return _buyer_pages(page, out_dir) + _profile_pages(page, out_dir)


def _buyer_pages(page, out_dir: Path) -> list[Shot]:
    page.goto("/buyer")
    shots = [_save(page, "portal-buyer-home", out_dir)]
    newest = page.locator("main table a[href^='/leads/']").first
    if newest.count():  # a buyer that bought nothing yet has no lead to show
        newest.click()
        page.wait_for_load_state()
        shots.append(_save(page, "portal-lead", out_dir, whole=True))  # its auction's bids are below the fold
    page.goto("/search?status=sold")
    shots.append(_save(page, "portal-search", out_dir))
    page.goto("/transactions?window=week")
    shots.append(_save(page, "portal-transactions", out_dir))
    page.goto("/partners")
    shots.append(_save(page, "portal-partners", out_dir))
    return shots


def _profile_pages(page, out_dir: Path) -> list[Shot]:
    page.goto("/profiles")
    shots = [_save(page, "portal-profiles", out_dir)]
    first = page.locator("table.profiles a[href^='/profiles/']").first
    if first.count():
        first.click()
        page.wait_for_load_state()
    else:  # a buyer without profiles: the form of a new one
        page.goto("/profiles/new")
    shots.append(_save(page, "portal-profile", out_dir))
    return shots


def _seller_pages(page, out_dir: Path) -> list[Shot]:
    page.goto("/seller")
    shots = [_save(page, "portal-seller-home", out_dir)]
    page.goto("/markets")
    shots.append(_save(page, "portal-markets", out_dir))
    priciest = page.locator("#market-states tbody a").first  # the table lists the highest price first
    if priciest.count():
        priciest.click()
        page.wait_for_load_state()
        shots.append(_save(page, "portal-market-state", out_dir, whole=True))  # its chart is below the fold
    return shots


def _operator_pages(page, out_dir: Path) -> list[Shot]:
    page.goto("/operator")
    shots = [_save(page, "portal-operator-home", out_dir)]
    page.goto("/admin")
    shots.append(_save(page, "portal-admin", out_dir))
    page.locator("table.accounts a").first.click()
    page.wait_for_load_state()
    shots.append(_save(page, "portal-admin-account", out_dir))
    page.goto("/admin/services")
    shots.append(_save(page, "portal-admin-services", out_dir))
    return shots


def _save(page, name: str, out_dir: Path, whole: bool = False) -> Shot:
    """The page as `<name>.png`: the window (VIEWPORT), or with `whole` the whole page's length."""
    page.screenshot(path=str(out_dir / f"{name}.png"), full_page=whole)
    address = urlsplit(page.url)
    return Shot(name, address.path + (f"?{address.query}" if address.query else ""))


def png_size(path: Path) -> tuple[int, int]:
    """The width and height a PNG file's header states (ValueError if it is not a PNG)."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG")
    width, height = struct.unpack(">II", head[16:24])
    return width, height


@dataclass(frozen=True)
class DemoLogins:
    buyer: Login
    seller: Login
    autobid: Login | None  # on the demo's AutoBid buyer, when there is one
    operator: Login


def logins_on_demo_accounts(database_url: str) -> DemoLogins:
    """People of the tool's own on the accounts of the demo's buyer and seller people, and on its
    AutoBid buyer's when there is one, and an operator, each with a new random password (made the
    first time, their password reset after)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from leadx.accounts import people
    from leadx.dev.demo.exchange import DEMO_AUTOBID_BUYER, DEMO_PEOPLE
    from leadx.platform.db.engine import make_engine
    from leadx.platform.db.models import Buyer

    accounts: dict[str, tuple[str, str]] = {}
    with Session(make_engine(database_url)) as session:
        for _, demo_email, kind in DEMO_PEOPLE:
            if kind not in (people.BUYER, people.SELLER):
                continue
            demo = people.person_by_email(session, demo_email)
            if demo is None or not demo.account_id:  # the URL is not shown: it may hold a password
                raise RuntimeError(f"no {demo_email} in DATABASE_URL's database: is it the one `make run` uses?")
            accounts[kind] = (kind, demo.account_id)
        autobid = session.scalar(select(Buyer.id).where(Buyer.name == DEMO_AUTOBID_BUYER).limit(1))
        if autobid is not None:
            accounts["autobid"] = (people.BUYER, autobid)
        accounts["operator"] = (people.OPERATOR, "")
        logins = {name: _own_person(session, f"screenshots-{name}@example.com", kind, account_id)
                  for name, (kind, account_id) in accounts.items()}
    return DemoLogins(logins["buyer"], logins["seller"], logins.get("autobid"), logins["operator"])


def _own_person(session, email: str, kind: str, account_id: str) -> Login:
    from leadx.accounts import people

    password = secrets.token_urlsafe(12)
    if people.person_by_email(session, email) is None:
        role = people.OPERATOR if kind == people.OPERATOR else people.MEMBER
        people.create_person(session, email, password, kind, account_id, role)
    else:
        people.reset_password(session, email, password)
    return Login(email, password)


def main(environ: Mapping[str, str] = os.environ) -> int:
    from leadx.dev import exchange_env

    settings = dict(environ)
    said = exchange_env.apply(settings, Path.cwd())
    if said:
        print(said, file=sys.stderr)
    if not settings.get("PORTAL_URL") or not settings.get("DATABASE_URL"):
        print("leadx: no running `make run` found (its .leadx/exchange.env): start it, let it trade a minute, "
              "then run this again", file=sys.stderr)
        return 2
    if not os.access(CHROMIUM, os.X_OK):
        print(f"leadx: no Chromium at {CHROMIUM}: apt-get install chromium, or set LEADX_CHROMIUM", file=sys.stderr)
        return 2
    logins = logins_on_demo_accounts(settings["DATABASE_URL"])
    with chromium_browser() as browser:
        for shot in take(browser, settings["PORTAL_URL"], logins.buyer, logins.seller, OUT_DIR,
                         profiles_buyer=logins.autobid, operator=logins.operator):
            print(f"{OUT_DIR / shot.name}.png  {shot.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
