"""ListPartners' SQL (services.ledger.partner_queries) on SQLite and PostgreSQL: a buyer reads every
active seller, a seller the buyers that opted in or that it named, each with its own rating of them
and the community's average; a buyer is not told a seller's word on it."""

from __future__ import annotations

from sqlalchemy import update

from leadx.accounts import accounts, partnerships, ratings
from leadx.platform.db.models import Seller
from services.ledger.partner_queries import partners


def test_partners_with_their_choices_and_stars(sessions):
    with sessions() as session:
        s1 = accounts.create_seller(session, "Northwind leads").id
        s2 = accounts.create_seller(session, "Acme leads").id
        gone = accounts.create_seller(session, "Closed shop").id
        session.execute(update(Seller).where(Seller.id == gone).values(active=False))
        b1 = accounts.create_buyer(session, "Bank one", "", "", kind="autobid").id
        b2 = accounts.create_buyer(session, "Bank two", "", "", kind="autobid").id
        b3 = accounts.create_buyer(session, "Bank three", "", "", kind="autobid").id
        partnerships.add_partnership(session, s1, b1)
        partnerships.add_partnership(session, s2, b1)
        partnerships.set_choice(session, s1, b2, "block")  # named, never opted in
        partnerships.set_sells_to(session, s1, "named")
        ratings.rate(session, b1, s1, 5, 1)
        ratings.rate(session, b2, s1, 2, 2)
        ratings.rate(session, s1, b1, 4, 3)
        session.commit()

        found, sells_to = partners(session, buyer_id=b1)
        assert sells_to == ""
        assert [(p.name, p.partnered, p.choice) for p in found] == [("Acme leads", True, ""),
                                                                     ("Northwind leads", True, "")]
        north = found[1]
        assert (north.account_id, north.your_stars, north.average_stars, north.ratings) == (s1, 5, 3.5, 2)
        assert (found[0].your_stars, found[0].average_stars, found[0].ratings) == (0, 0.0, 0)

        # The blocked buyer sees the seller, not its word on it.
        seen_by_b2 = {p.account_id: p for p in partners(session, buyer_id=b2)[0]}
        assert (seen_by_b2[s1].partnered, seen_by_b2[s1].choice, seen_by_b2[s1].your_stars) == (False, "", 2)

        found, sells_to = partners(session, seller_id=s1)
        assert sells_to == "named"
        assert [(p.account_id, p.partnered, p.choice) for p in found] == [(b1, True, ""), (b2, False, "block")]
        assert (found[0].your_stars, found[0].average_stars, found[0].ratings) == (4, 4.0, 1)
        assert b3 not in {p.account_id for p in found}
        assert partners(session, seller_id=s2)[0][0].account_id == b1
