"""The fault checker on histories made by hand: a clean one passes, and each broken promise is found
and named, however it hides among clean records."""

from __future__ import annotations

from tests.faults.checker import (Attempt, BuyerPost, Charge, Fault, History, SaleEvent, Submission, fault_rows,
                                  percentile, sold_since, table, violations)

T0 = 1_000_000.0


def accepted(consumer: int, lead: str, at: float = T0, wait: float = 0.05, http: int = 200) -> Submission:
    return Submission(consumer, at, at + wait, http, "accepted" if http == 200 else "pending", lead)


def sold(lead: str, buyer: str, at: float = T0 + 2, event: str | None = None) -> SaleEvent:
    return SaleEvent(event or f"e-{lead}-{buyer}", lead, "sold", buyer, int(at * 1000))


def clean() -> History:
    """Two consumers, three leads: L1 sold to b1, L2 (the same consumer again) sold to b2, L3 unsold;
    a duplicate refused; every post recorded; balanced books."""
    return History(
        submissions=[accepted(1, "L1"), accepted(1, "L2", at=T0 + 1), accepted(2, "L3", http=202),
                     Submission(2, T0 + 3, T0 + 3.1, 409, "duplicate", "L4")],
        sales=[sold("L1", "b1"), sold("L2", "b2"), SaleEvent("e-L3", "L3", "unsold", "", int((T0 + 3) * 1000)),
               sold("L1", "b1")],  # the same decision again: at-least-once, harmless
        posts=[BuyerPost("b1", "L1", "a1"), BuyerPost("b2", "L2", "a2")],
        attempts=[Attempt("L1", "b1", 1, "accepted"), Attempt("L2", "b2", 1, "accepted")],
        charges=[Charge("L1", "b1"), Charge("L2", "b2")],
        statuses={"L1": "sold", "L2": "sold", "L3": "unsold", "L4": "duplicate"},
        transaction_sums={"sale:L1:b1": 0, "sale:L2:b2": 0})


def rules(history: History) -> list[str]:
    return [v.rule for v in violations(history)]


def test_a_clean_history_passes():
    assert violations(clean()) == []


def test_an_accepted_lead_without_an_outcome_is_lost():
    history = clean()
    history.statuses["L3"] = "in_auction"
    found = violations(history)
    assert [v.rule for v in found] == ["lost"] and "L3" in found[0].detail and "in_auction" in found[0].detail
    history.statuses.pop("L3")  # never even recorded
    assert rules(history) == ["lost"]


def test_an_unanswered_submission_is_not_counted_lost():
    history = clean()
    history.submissions.append(Submission(3, T0 + 5, None, None, "", None))
    assert violations(history) == []


def test_a_lead_closed_two_ways_is_doubled():
    history = clean()
    history.sales.append(sold("L1", "b2", event="e-other"))  # an exclusive lead sold to a second buyer
    assert rules(history) == ["doubled"]
    history = clean()
    history.sales.append(SaleEvent("e-late", "L1", "unsold", "", int(T0 * 1000)))  # sold and unsold
    assert rules(history) == ["doubled"]


def test_a_shared_lead_may_go_to_as_many_buyers_as_its_shares():
    history = clean()
    history.sales.append(sold("L1", "b2"))
    history.shares["L1"] = 2
    assert violations(history) == []
    history.sales.append(sold("L1", "b3"))
    assert rules(history) == ["doubled"]


def test_a_buyer_charged_twice_for_one_consumer_is_found():
    history = clean()
    history.charges.append(Charge("L2", "b1"))  # consumer 1 again, to b1
    found = violations(history)
    assert [v.rule for v in found] == ["paid twice"] and "L1" in found[0].detail and "L2" in found[0].detail


def test_one_consumer_posted_to_one_buyer_in_two_leads_is_found_but_a_repeat_of_one_lead_is_not():
    history = clean()
    history.posts.append(BuyerPost("b1", "L1", "a1"))  # the same lead again, same key: counted, not failed
    history.attempts.append(Attempt("L1", "b1", 2, "accepted"))
    assert violations(history) == []
    assert fault_rows(History(**{**history.__dict__, "faults": [Fault("f", T0 - 1, T0 + 0.5)]}), 10)[0] \
        .delivered_twice == 1
    history.posts.append(BuyerPost("b1", "L2", "a2"))
    history.attempts.append(Attempt("L2", "b1", 1, "rejected"))
    assert rules(history) == ["posted twice"]


def test_a_lead_posted_again_under_another_key_is_found():
    history = clean()
    history.posts.append(BuyerPost("b1", "L1", "another-key"))
    history.attempts.append(Attempt("L1", "b1", 2, "accepted"))
    found = violations(history)
    assert [v.rule for v in found] == ["repeat without its key"] and "another-key" in found[0].detail


def test_a_refused_lead_that_was_sold_is_found():
    history = clean()
    history.submissions.append(Submission(5, T0, T0 + 40, 503, "rejected", "L9"))
    history.sales.append(sold("L9", "b3"))
    history.statuses["L9"] = "sold"
    assert "refused then sold" in rules(history)


def test_a_consumer_refused_without_a_lead_id_must_reach_no_buyer():
    history = clean()
    history.submissions.append(Submission(7, T0, T0 + 1, 503, "rejected", None))
    assert violations(history) == []
    # Its data reached a buyer under a lead id the seller was never told.
    history.submissions.append(Submission(7, T0 + 9, T0 + 9.5, 503, "rejected", "L7"))
    history.posts.append(BuyerPost("b1", "L7", "a7"))
    history.attempts.append(Attempt("L7", "b1", 1, "accepted"))
    found = rules(history)
    assert found.count("refused then sold") == 1 and "posted twice" not in found


def test_books_must_balance_per_transaction_and_overall():
    history = clean()
    history.transaction_sums["sale:L2:b2"] = 150
    assert rules(history) == ["books", "books"]  # the transaction, and the whole
    history.transaction_sums["return:L1:b1"] = -150
    assert rules(history) == ["books", "books"]  # balanced overall, two transactions are not


def test_a_server_error_is_found_but_a_503_is_not():
    history = clean()
    history.submissions += [Submission(11, T0, T0 + 1, 503, "", None), Submission(12, T0, T0 + 1, 500, "", None)]
    assert rules(history) == ["server error"]


def test_a_post_with_no_attempt_row_is_found():
    history = clean()
    history.posts.append(BuyerPost("b1", "L1", "a1"))  # received twice, recorded once
    found = violations(history)
    assert [v.rule for v in found] == ["unrecorded post"] and "2 times" in found[0].detail


def test_a_ledger_that_disagrees_with_sale_closed_is_found_both_ways():
    history = clean()
    history.statuses["L3"] = "sold"  # the ledger holds sold a lead closed unsold
    found = violations(history)
    assert [v.rule for v in found] == ["ledger disagrees"] and "L3 is not sold on sale.closed" in found[0].detail
    history = clean()
    history.statuses["L2"] = "unsold"  # sold on the topic, not in the ledger
    found = violations(history)
    assert [v.rule for v in found] == ["ledger disagrees"] and "'unsold' in the ledger" in found[0].detail
    history = clean()
    history.statuses["L2"] = "returned"  # sold, then returned: agrees
    assert violations(history) == []
    history.submissions.append(Submission(3, T0 + 5, None, None, "", None))  # its answer lost: id unknown
    history.sales.append(sold("L5", "b1"))  # that lead, sold: its status was not read, nothing to compare
    assert violations(history) == []


def test_sold_since_counts_the_accepted_leads_sent_from_then_and_those_sold():
    history = clean()  # L1 at T0 and L2 at T0 + 1 sold, L3 at T0 unsold, L4 at T0 + 3 refused
    assert sold_since(history, T0) == (3, 2)
    assert sold_since(history, T0 + 0.5) == (1, 1)
    assert sold_since(history, T0 + 2) == (0, 0)


def test_fault_rows_count_the_leads_sent_while_the_fault_lasted():
    history = clean()
    history.submissions += [accepted(8, "L8", at=T0 + 10, wait=4.0), Submission(9, T0 + 11, None, None, "", None),
                            accepted(10, "L10", at=T0 + 30)]
    history.statuses.update({"L8": "in_auction", "L10": "sold"})
    history.sales.append(sold("L10", "b1", at=T0 + 33))
    history.faults.append(Fault("dedup SIGSTOP", T0 + 9, T0 + 20))
    [row] = fault_rows(history, client_timeout_s=15)
    assert (row.leads, row.accepted, row.lost, row.unanswered) == (2, 1, 1, 1)
    assert row.p99_s == 15  # the unanswered one waited the client's whole timeout
    assert row.recovered_s == 13.0  # L10, sent after the fault, sold 13 s after it ended
    assert "| dedup SIGSTOP | 2 | 1 | 1 | 0 | 0 | 15.00 s | 1 | 13.0 s |" in table([row])


def test_percentile_is_nearest_rank():
    assert percentile([5, 1, 3, 2, 4], 0.99) == 5
    assert percentile(range(1, 101), 0.99) == 99
    assert percentile([7], 0.5) == 7
