"""A lead's life cycle. Events arrive on several topics and may be seen out of order, so a status
only ever moves forward: each carries a rank, and a lower rank never overwrites a higher one."""

from __future__ import annotations

SUBMITTED = "submitted"
VERIFIED = "verified"
SCORED = "scored"
IN_AUCTION = "in_auction"
SOLD = "sold"
UNSOLD = "unsold"
DUPLICATE = "duplicate"
REJECTED = "rejected"
RETURNED = "returned"  # a sold lead the buyer sent back (recorded by the returns of the ledger issue)

RANK = {SUBMITTED: 1, VERIFIED: 2, SCORED: 3, IN_AUCTION: 4, SOLD: 9, UNSOLD: 9, DUPLICATE: 9,
        REJECTED: 9, RETURNED: 10}

# What a seller sees: the pipeline's internal steps collapse into pending / accepted.
PUBLIC = {SUBMITTED: "pending", VERIFIED: "accepted", SCORED: "accepted", IN_AUCTION: "in_auction",
          SOLD: "sold", UNSOLD: "unsold", DUPLICATE: "duplicate", REJECTED: "rejected", RETURNED: "returned"}


def advances(current: str | None, new: str) -> bool:
    return current is None or RANK[new] > RANK[current]
