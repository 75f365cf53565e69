"""People and their logins (leadx.accounts.people): what they type, argon2id passwords, signed
session cookies with idle and absolute expiry, CSRF tokens, the login throttle, and the people table."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from leadx.accounts import accounts, people
from leadx.accounts.ids import UnknownAccount
from leadx.accounts.people import PersonError, SessionPolicy, SessionSigner, ThrottlePolicy
from leadx.platform.db.models import Person

SECRET = b"s" * 32


# ---------------------------------------------------------------- what people type

def test_emails_are_trimmed_and_lower_cased():
    assert people.normalise_email("  Ann.Lee@Example.COM ") == "ann.lee@example.com"


@pytest.mark.parametrize("email, message", [
    ("", "enter your email address"),
    ("ann", "this is not an email address (name@example.com)"),
    ("ann@example", "this is not an email address (name@example.com)"),
    ("a b@example.com", "this is not an email address (name@example.com)"),
    ("a" * 250 + "@example.com", "this is not an email address (name@example.com)"),
])
def test_a_bad_email_says_what_is_wrong_and_names_its_field(email, message):
    with pytest.raises(PersonError) as error:
        people.normalise_email(email)
    assert (error.value.field, error.value.message) == ("email", message)


def test_passwords_have_a_minimum_and_a_maximum_length():
    assert people.check_password("x" * 12) == "x" * 12
    with pytest.raises(PersonError, match="at least 12 characters"):
        people.check_password("x" * 11)
    with pytest.raises(PersonError, match="at most 256 characters"):
        people.check_password("x" * 257)


def test_memberships():
    assert people.check_membership("buyer", "b_1", "owner") == ("buyer", "b_1", "owner")
    assert people.check_membership("seller", "s_1", "read-only") == ("seller", "s_1", "read-only")
    assert people.check_membership("operator", "", "owner") == ("operator", "", "operator")
    with pytest.raises(PersonError, match="needs the buyer account's id"):
        people.check_membership("buyer", "", "owner")
    with pytest.raises(PersonError, match="role must be one of owner, member, read-only"):
        people.check_membership("seller", "s_1", "admin")
    with pytest.raises(PersonError, match="an operator belongs to no account"):
        people.check_membership("operator", "b_1", "")
    with pytest.raises(PersonError, match="kind must be one of buyer, seller, operator"):
        people.check_membership("robot", "b_1", "owner")


# ---------------------------------------------------------------- passwords

def test_passwords_are_hashed_with_argon2id_and_verified():
    hashed = people.hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed
    assert people.verify_password(hashed, "correct horse battery")
    assert not people.verify_password(hashed, "correct horse batterY")
    assert not people.verify_password("not a hash", "correct horse battery")
    assert people.hash_password("correct horse battery") != hashed  # salted


# ---------------------------------------------------------------- sessions

def test_a_session_cookie_reads_back_only_with_its_signature():
    signer = SessionSigner(SECRET)
    state = people.logged_in_session("p_1", epoch=3, now=1000)
    cookie = signer.dumps(state)
    assert signer.loads(cookie) == state
    assert SessionSigner(b"t" * 32).loads(cookie) is None  # another secret
    body, _, mac = cookie.partition(".")
    forged = people.SessionState(state.csrf, "p_2", 3, 1000, 1000)
    assert signer.loads(signer.dumps(forged).partition(".")[0] + "." + mac) is None  # another body
    assert signer.loads(body) is None
    assert signer.loads("") is None
    assert signer.loads("garbage.garbage") is None


def test_the_session_secret_must_be_long():
    with pytest.raises(ValueError, match="at least 32 bytes"):
        SessionSigner(b"short")


def test_sessions_end_when_idle_too_long_or_lasting_too_long():
    policy = SessionPolicy(idle_s=600, absolute_s=3600)
    state = people.logged_in_session("p_1", 0, now=10_000)
    assert not state.expired(policy, 10_600)  # idle exactly the limit
    assert state.expired(policy, 10_601)
    kept_busy = state
    for now in range(10_000, 13_601, 500):
        assert not kept_busy.expired(policy, now)
        kept_busy = kept_busy.seen(now)
    assert kept_busy.expired(policy, 13_601)  # seen a moment ago, but logged in over an hour before


def test_csrf_tokens_belong_to_one_browser_and_change_at_login():
    signer = SessionSigner(SECRET)
    anonymous = people.anonymous_session()
    token = signer.csrf_token(anonymous)
    assert signer.csrf_valid(anonymous, token)
    assert not signer.csrf_valid(anonymous, "")
    assert not signer.csrf_valid(people.anonymous_session(), token)
    logged_in = people.logged_in_session("p_1", 0, now=1)
    assert not signer.csrf_valid(logged_in, token)
    assert not signer.csrf_valid(anonymous, anonymous.csrf)  # the secret itself is not the token


# ---------------------------------------------------------------- throttle

def test_the_throttle_blocks_an_account_or_an_address_past_its_limit():
    policy = ThrottlePolicy(per_account=5, per_address=20, window_s=300)
    assert not policy.blocked(4, 19)
    assert policy.blocked(5, 0)
    assert policy.blocked(0, 20)
    off = ThrottlePolicy(per_account=0, per_address=0)
    assert not off.blocked(10_000, 10_000)
    assert policy.window(599) == 1 and policy.window(600) == 2
    assert policy.retry_after_s(599) == 1 and policy.retry_after_s(600) == 300


def test_throttle_subjects_hide_the_email():
    subject = people.throttle_subject("ann@example.com", SECRET)
    assert "ann" not in subject and len(subject) == 32
    assert subject == people.throttle_subject("ann@example.com", SECRET)
    assert subject != people.throttle_subject("ann@example.com", b"t" * 32)


# ---------------------------------------------------------------- the people table

def test_two_people_made_with_one_email_at_once_make_one_and_tell_the_other(sessions):
    """Two invitations of one email at once: each checks that no person has it, then the second to
    commit meets the unique email and is told as if it had come after (not a server error)."""
    with sessions() as racing, sessions() as meanwhile:
        @event.listens_for(racing, "before_flush", once=True)
        def the_other_commits_first(*_):
            people.create_person(meanwhile, "race@example.com", "correct horse battery", "operator", "", "")

        with pytest.raises(PersonError, match="already exists") as refused:
            people.create_person(racing, "Race@example.com", "correct horse battery", "operator", "", "")
        assert refused.value.field == "email"
        assert len(racing.scalars(select(Person).where(Person.email == "race@example.com")).all()) == 1


def test_people_are_created_checked_and_authenticated(sessions):
    with sessions() as session:
        buyer = accounts.create_buyer(session, "Acme", "https://acme.example/ping", "https://acme.example/post")
        person = people.create_person(session, "Ann@Example.com", "correct horse battery", "buyer", buyer.id, "owner")
        assert (person.email, person.kind, person.account_id, person.role) == \
            ("ann@example.com", "buyer", buyer.id, "owner")
        with pytest.raises(PersonError, match="already exists"):
            people.create_person(session, "ann@example.com", "correct horse battery", "buyer", buyer.id, "member")
        with pytest.raises(UnknownAccount, match="no seller"):
            people.create_person(session, "bob@example.com", "correct horse battery", "seller", buyer.id, "owner")
        operator = people.create_person(session, "ops@example.com", "correct horse battery", "operator", "", "")
        assert (operator.account_id, operator.role) == (None, "operator")

        assert people.authenticate(session, "ann@example.com", "correct horse battery").id == person.id
        assert people.authenticate(session, "ann@example.com", "wrong horse battery") is None
        assert people.authenticate(session, "nobody@example.com", "correct horse battery") is None

        epoch = person.session_epoch
        people.reset_password(session, "ANN@example.com", "another long password")
        session.refresh(person)
        assert person.session_epoch == epoch + 1
        assert people.authenticate(session, "ann@example.com", "correct horse battery") is None
        assert people.authenticate(session, "ann@example.com", "another long password").id == person.id
        with pytest.raises(PersonError, match="no person has this email"):
            people.reset_password(session, "nobody@example.com", "another long password")
        people.end_sessions(session, person.id)
        session.refresh(person)
        assert person.session_epoch == epoch + 2


@pytest.mark.parametrize("kind, role, may", [
    ("buyer", "owner", True), ("buyer", "member", True), ("buyer", "read-only", False),
    ("seller", "owner", False), ("seller", "member", False), ("operator", "operator", False)])
def test_only_a_buyers_owners_and_members_may_return_its_leads(kind, role, may):
    assert people.may_return_leads(kind, role) is may


def test_returns_seen_only_move_forward(sessions):
    with sessions() as session:
        seller = accounts.create_seller(session, "Leadgen")
        person = people.create_person(session, "sam@example.com", "a long enough password", "seller", seller.id,
                                      "member")
        person_id = person.id
        assert person.returns_seen_at_ms == 0
        people.mark_returns_seen(session, person_id, 5000)
        people.mark_returns_seen(session, person_id, 4000)  # an older page, later: changes nothing
    with sessions() as session:
        assert people.person_by_id(session, person_id).returns_seen_at_ms == 5000


def test_a_password_link_works_until_it_expires_or_is_used_and_only_with_its_signature(sessions):
    signer, now = SessionSigner(b"k" * 32), 1_800_000_000.0
    with sessions() as session:
        seller = accounts.create_seller(session, "s")
        person = people.invite_person(session, "new@example.com", "seller", seller.id, "member")
        assert people.authenticate(session, "new@example.com", "") is None  # no password anyone knows
        token = people.password_link_token(signer, person, now)
        assert people.person_for_link(session, signer, token, now + people.PASSWORD_LINK_S) is person
        assert people.person_for_link(session, signer, token, now + people.PASSWORD_LINK_S + 1) is None  # expired
        assert people.person_for_link(session, SessionSigner(b"j" * 32), token, now) is None  # another secret
        person_id, expires, mac = token.split(".")
        assert people.person_for_link(session, signer, f"{person_id}.{int(expires) + 999}.{mac}", now) is None
        # Whatever a browser sends is no link, never an error: non-ASCII digits, a huge number, a
        # signature with characters no signature has.
        for token_sent in ("nonsense", f"{person_id}.\u00b2.{mac}", f"{person_id}.{'9' * 5000}.{mac}",
                           f"{person_id}.{expires}.{mac[:-1]}\u00e9", f"{person_id}\x00.{expires}.{mac}"):
            assert people.person_for_link(session, signer, token_sent, now) is None
        epoch = person.session_epoch
        people.set_password(session, person, "a brand new password")
        assert person.session_epoch == epoch + 1  # every session of the person ends
        assert people.person_for_link(session, signer, token, now) is None  # used: spent
        assert people.authenticate(session, "new@example.com", "a brand new password") is person
        with pytest.raises(PersonError):
            people.set_password(session, person, "short")
        assert [p.email for p in people.people_of(session, seller.id)] == ["new@example.com"]
        assert people.people_of(session, None) == []
