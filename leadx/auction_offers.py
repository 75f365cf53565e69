"""The offer record of an open auction in Redis, `offer:<namespace><auction id>`: a hash of its
close (`closes_at_ms`), reserve (`min_price_cents`) and offered buyers (`offered`, space-separated).

The auction worker writes it when it opens an auction with buyers to ping; the bid API reads it to
refuse at once a bid the worker would refuse. The worker's table stays the judge of every bid."""

from __future__ import annotations


def offer_key(namespace: str, auction_id: str) -> str:
    return f"offer:{namespace}{auction_id}"
