"""People who log in to the web portal (docs/portal.md), and the rules of their logins.

A person is an email and a password, and either belongs to one buyer or seller account with a role
(owner, member or read-only) or is an operator of the exchange. The rules here are pure and
unit-tested: checking what a person types, hashing passwords with argon2id, signed session cookies
with idle and absolute expiry, CSRF tokens, and how many failed logins an account or an address may
make. The store functions below them apply the rules to the `people` table.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import cast

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from leadx.accounts.ids import UnknownAccount, new_account_id
from leadx.platform.db.models import Buyer, Person, Seller

BUYER, SELLER, OPERATOR = "buyer", "seller", "operator"
KINDS = (BUYER, SELLER, OPERATOR)
OWNER, MEMBER, READ_ONLY = "owner", "member", "read-only"
ACCOUNT_ROLES = (OWNER, MEMBER, READ_ONLY)
CHANGING_ROLES = (OWNER, MEMBER)  # may act for the account (return a lead, ...); read-only only reads
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 256  # argon2 takes any length; a cap keeps one login from costing a megabyte's hash
MAX_EMAIL_CHARS = 254
# Letters, digits and the usual punctuation before the @, a dotted domain after it: enough to catch a
# typing mistake; whether the address receives mail is not the portal's to know.
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")

# argon2id (argon2-cffi's default type) with its default cost: 64 MiB and 3 passes, ~50 ms here.
_HASHER = PasswordHasher(type=Type.ID)


class PersonError(ValueError):
    """A value a person or an operator gave is not acceptable; `field` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# ---------------------------------------------------------------- what people type

def normalise_email(email: str) -> str:
    """The email as stored and looked up: trimmed and lower-cased."""
    email = email.strip().lower()
    if not email:
        raise PersonError("email", "enter your email address")
    if len(email) > MAX_EMAIL_CHARS or not _EMAIL.fullmatch(email):
        raise PersonError("email", "this is not an email address (name@example.com)")
    return email


def check_password(password: str) -> str:
    """A new password: at least MIN_PASSWORD_CHARS characters, at most MAX_PASSWORD_CHARS."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise PersonError("password", f"a password has at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise PersonError("password", f"a password has at most {MAX_PASSWORD_CHARS} characters")
    return password


def check_membership(kind: str, account_id: str, role: str) -> tuple[str, str, str]:
    """(kind, account id, role) of a person: an operator has no account and the role `operator`; a
    buyer's or seller's person has its account's id and one of ACCOUNT_ROLES."""
    if kind not in KINDS:
        raise PersonError("kind", f"kind must be one of {', '.join(KINDS)}")
    if kind == OPERATOR:
        if account_id:
            raise PersonError("account", "an operator belongs to no account")
        return OPERATOR, "", OPERATOR
    if not account_id:
        raise PersonError("account", f"a {kind}'s person needs the {kind} account's id")
    if role not in ACCOUNT_ROLES:
        raise PersonError("role", f"role must be one of {', '.join(ACCOUNT_ROLES)}")
    return kind, account_id, role


# ---------------------------------------------------------------- passwords

def may_return_leads(kind: str, role: str) -> bool:
    """A buyer's owner or member may return the leads it bought; a read-only person, a seller's
    people and operators may not."""
    return kind == BUYER and role in CHANGING_ROLES


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# A hash of nothing anyone knows: an unknown email is checked against it, so a failed login takes
# as long whether the email exists or not.
_NOBODY = hash_password(secrets.token_urlsafe(24))


def verify_nobody(password: str) -> bool:
    verify_password(_NOBODY, password)
    return False


# ---------------------------------------------------------------- sessions and CSRF

@dataclass(frozen=True)
class SessionPolicy:
    idle_s: int = 30 * 60  # a session unused this long has ended
    absolute_s: int = 12 * 3600  # and none lasts longer than this from the login

    def __post_init__(self) -> None:
        if self.idle_s <= 0 or self.absolute_s <= 0:
            raise ValueError("session lifetimes must be more than 0 seconds")


@dataclass(frozen=True)
class SessionState:
    """What the portal's cookie holds: a person once logged in (`person_id` empty before), the
    person's session epoch at the login (a password reset or a logout raises it, ending every
    session made before), the CSRF secret of this browser, and when it logged in and was last seen
    (Unix seconds)."""

    csrf: str
    person_id: str = ""
    epoch: int = 0
    logged_in_at: int = 0
    seen_at: int = 0

    @property
    def logged_in(self) -> bool:
        return bool(self.person_id)

    def expired(self, policy: SessionPolicy, now: float) -> bool:
        """Whether a logged-in session has been idle too long or lasted too long."""
        return (now - self.seen_at > policy.idle_s) or (now - self.logged_in_at > policy.absolute_s)

    def seen(self, now: float) -> SessionState:
        return SessionState(self.csrf, self.person_id, self.epoch, self.logged_in_at, int(now))


def anonymous_session() -> SessionState:
    return SessionState(csrf=secrets.token_urlsafe(24))


def logged_in_session(person_id: str, epoch: int, now: float) -> SessionState:
    """A new session at a login: a fresh CSRF secret too, so none known before the login survives it."""
    return SessionState(secrets.token_urlsafe(24), person_id, epoch, int(now), int(now))


class SessionSigner:
    """Signs and reads the session cookie: its JSON, base64url, a dot and an HMAC-SHA256 of it. A
    cookie whose signature does not match (altered, or made with another secret) reads as None."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the session secret must be at least 32 bytes")
        self._key = hashlib.sha256(b"leadx-portal-session\x00" + secret).digest()

    def _mac(self, body: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(self._key, body, hashlib.sha256).digest()).decode().rstrip("=")

    def dumps(self, state: SessionState) -> str:
        payload = [state.csrf, state.person_id, state.epoch, state.logged_in_at, state.seen_at]
        body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).rstrip(b"=")
        return f"{body.decode()}.{self._mac(body)}"

    def loads(self, cookie: str) -> SessionState | None:
        body, dot, mac = cookie.partition(".")
        if not dot or not hmac.compare_digest(self._mac(body.encode()), mac):
            return None
        try:
            csrf, person_id, epoch, logged_in_at, seen_at = json.loads(
                base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            state = SessionState(str(csrf), str(person_id), int(epoch), int(logged_in_at), int(seen_at))
        except (ValueError, TypeError):
            return None
        return state if state.csrf else None

    def csrf_token(self, state: SessionState) -> str:
        """The token a form carries: derived from the cookie's CSRF secret, so a page of another site,
        which can make the browser send the cookie but cannot read it, cannot make the token."""
        return self._mac(b"csrf\x00" + state.csrf.encode())

    def csrf_valid(self, state: SessionState, token: str) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(state), token)

    def signature(self, purpose: bytes, body: bytes) -> str:
        """A MAC of `body` for one purpose (another purpose's signature never matches it)."""
        return self._mac(purpose + b"\x00" + body)


# ---------------------------------------------------------------- links to choose a password

PASSWORD_LINK_S = 72 * 3600  # an invitation or a reset link works for three days


# A person id, the expiry (Unix seconds) and the signature (base64url of a SHA-256 HMAC).
_LINK_TOKEN = re.compile(r"(u_[a-z0-9]{1,30})\.(\d{1,12})\.([A-Za-z0-9_-]{43})", re.ASCII)


def password_link_token(signer: SessionSigner, person: Person, now: float) -> str:
    """The token of a link with which `person` chooses a password: an operator's invitation of a new
    person or a new password for one. Stateless, and used once: it is signed over the person's
    current password hash, which setting the password changes."""
    body = f"{person.id}.{int(now) + PASSWORD_LINK_S}"
    return f"{body}.{signer.signature(b'password-link', _link_subject(person.password_hash, body))}"


def person_for_link(session: Session, signer: SessionSigner, token: str, now: float) -> Person | None:
    """The active person whose link this is, while it has not expired nor been used; else None
    (whatever the token holds: it comes from anyone's browser)."""
    parsed = _LINK_TOKEN.fullmatch(token)
    if parsed is None or int(parsed.group(2)) < now:
        return None
    person = session.get(Person, parsed.group(1))
    if person is None or not person.active:
        return None
    body = f"{parsed.group(1)}.{parsed.group(2)}"
    expected = signer.signature(b"password-link", _link_subject(person.password_hash, body))
    return person if hmac.compare_digest(expected.encode(), parsed.group(3).encode()) else None


def _link_subject(password_hash: str, body: str) -> bytes:
    return f"{body}\x00{password_hash}".encode()


# ---------------------------------------------------------------- login throttling

@dataclass(frozen=True)
class ThrottlePolicy:
    """Failed logins allowed per window, per account (the email typed) and per client address;
    past either, logins are refused until the window is over, with the same message as a wrong
    password. 0 switches a limit off."""

    per_account: int = 5
    per_address: int = 20
    window_s: int = 300

    def window(self, now: float) -> int:
        return int(now // self.window_s)

    def retry_after_s(self, now: float) -> int:
        return max(1, self.window_s - int(now % self.window_s))

    def blocked(self, account_failures: int, address_failures: int) -> bool:
        return (0 < self.per_account <= account_failures) or (0 < self.per_address <= address_failures)


def throttle_subject(email: str, secret: bytes) -> str:
    """What counts an email's failed logins where the portal keeps them (Redis): an HMAC of it, so no
    address is stored there."""
    return hmac.new(secret, b"login\x00" + email.encode(), hashlib.sha256).hexdigest()[:32]


# ---------------------------------------------------------------- the people table

def new_person_id() -> str:
    return new_account_id("u_")


def account_kind(session: Session, account_id: str) -> str:
    """Whether `account_id` is a buyer's or a seller's."""
    if session.get(Buyer, account_id) is not None:
        return BUYER
    if session.get(Seller, account_id) is not None:
        return SELLER
    raise UnknownAccount(f"no buyer or seller {account_id}")


def create_person(session: Session, email: str, password: str, kind: str, account_id: str, role: str,
                  now_ms: int | None = None) -> Person:
    email = normalise_email(email)
    check_password(password)
    kind, account_id, role = check_membership(kind, account_id, role)
    model = {BUYER: Buyer, SELLER: Seller}.get(kind)
    if model is not None and session.get(model, account_id) is None:
        raise UnknownAccount(f"no {kind} {account_id}")
    if session.scalar(select(Person.id).where(Person.email == email)) is not None:
        raise PersonError("email", "a person with this email already exists")
    person = Person(id=new_person_id(), email=email, password_hash=hash_password(password), kind=kind,
                    account_id=account_id or None, role=role, session_epoch=0, active=True,
                    created_at_ms=int(time.time() * 1000) if now_ms is None else now_ms)
    session.add(person)
    try:
        session.commit()
    except IntegrityError:
        # Made meanwhile by another request with the same email (the check above saw none yet): the
        # unique email refuses the second, which is told as if it had come after.
        session.rollback()
        if session.scalar(select(Person.id).where(Person.email == email)) is not None:
            raise PersonError("email", "a person with this email already exists") from None
        raise
    return person


def reset_password(session: Session, email: str, password: str) -> Person:
    """A new password; every session of the person ends (its epoch rises)."""
    email = normalise_email(email)
    check_password(password)
    person = session.scalar(select(Person).where(Person.email == email))
    if person is None:
        raise PersonError("email", "no person has this email")
    person.password_hash = hash_password(password)
    person.session_epoch += 1
    session.commit()
    return person


def invite_person(session: Session, email: str, kind: str, account_id: str, role: str) -> Person:
    """A new person who has no password yet (a random one nobody knows): it chooses one with the
    link of its invitation (password_link_token)."""
    return create_person(session, email, secrets.token_urlsafe(32), kind, account_id, role)


def set_password(session: Session, person: Person, password: str) -> bool:
    """The person's new password, chosen through its link; every session of the person ends. Set
    only over the password hash the link was checked against: of two submits of one link at once,
    one sets it and the other is told (False), as for a link already used."""
    check_password(password)
    changed = cast(CursorResult, session.execute(  # an UPDATE's result counts its rows
        update(Person).where(Person.id == person.id, Person.password_hash == person.password_hash)
        .values(password_hash=hash_password(password), session_epoch=Person.session_epoch + 1)
        .execution_options(synchronize_session=False))).rowcount
    session.commit()
    session.refresh(person)
    return bool(changed)


def people_of(session: Session, account_id: str | None) -> list[Person]:
    """An account's people (None: the operators), by email."""
    where = Person.account_id == account_id if account_id else Person.kind == OPERATOR
    return list(session.scalars(select(Person).where(where).order_by(Person.email)))


def end_sessions(session: Session, person_id: str) -> None:
    session.execute(update(Person).where(Person.id == person_id).values(session_epoch=Person.session_epoch + 1))
    session.commit()


def mark_returns_seen(session: Session, person_id: str, at_ms: int) -> None:
    """The person has seen the returns up to `at_ms`: never moves back (two pages at once)."""
    session.execute(update(Person).where(Person.id == person_id, Person.returns_seen_at_ms < at_ms)
                    .values(returns_seen_at_ms=at_ms))
    session.commit()


def person_by_email(session: Session, email: str) -> Person | None:
    return session.scalar(select(Person).where(Person.email == email))


def person_by_id(session: Session, person_id: str) -> Person | None:
    return session.get(Person, person_id)


def authenticate(session: Session, email: str, password: str) -> Person | None:
    """The active person with this email and password, or None; an unknown email costs a hash too."""
    person = person_by_email(session, email)
    if person is None or not person.active:
        verify_nobody(password)
        return None
    if not verify_password(person.password_hash, password):
        return None
    if _HASHER.check_needs_rehash(person.password_hash):
        person.password_hash = hash_password(password)
        session.commit()
    return person
