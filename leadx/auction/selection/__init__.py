"""Buyer Selection and AutoBid, pure: who may be offered a lead (partnerships, the seller's
choices, caps), when a profile is active, what its criteria match, and what it bids.

Nothing here reads a clock, a database or Redis: callers pass the time, the accounts and the usage,
so every rule is unit-tested on its own (tests/unit/test_selection_*.py)."""
