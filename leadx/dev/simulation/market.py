"""A simulated lead market: consumers, the sellers who bring them, the buyers who call them, and what
happened (contacted, converted, returned, and whether they answered a direct offer), drawn from the
ground truth in `leadx.dev.simulation.truth`. Seeded: the same seed gives the same market.

Consumers are real-looking leads (`leadx.dev.demo.consumers.make_consumer`: a real ZIP with its own
city, state and area code, an issuable SSN) whose economics hang together: income rises with age
into the fifties, tenure is bounded by working life, older and better-paid people own their homes
more often, and poorer sellers bring consumers with less income and larger asks.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

from leadx.dev.demo.consumers import make_consumer
from leadx.dev.simulation import truth
from leadx.scoring.features import consumer_row, timing_row, zone_of

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Seller:
    seller_id: str
    quality: float  # 0 (poor) .. 1 (excellent): the consumers it brings, and how many are returned

    @property
    def return_rate(self) -> float:
        return 0.02 + 0.18 * (1 - self.quality)


@dataclass(frozen=True)
class Buyer:
    buyer_id: str
    median_delay_minutes: float  # how soon it calls a lead it bought
    calls_at_night: bool         # a call centre open around the clock, or 08:00-21:00 local only


@dataclass(frozen=True)
class Outcome:
    buyer_id: str
    contact_ms: int
    contacted: bool
    converted: bool
    returned: bool


@dataclass
class SimulatedLead:
    fields: dict
    seller_id: str
    created_ms: int
    features: list[float]
    timing: list[float]           # at the contact below
    respond: float                # true probability at once, at the best moment
    timing_factor: float          # true share of it left at the contact below
    direct_response: float        # true probability of answering a direct offer
    outcome: Outcome
    answered_direct_offer: bool

    def record(self) -> dict:
        """One line of `leadx simulate`'s output."""
        return {
            "lead": self.fields, "seller_id": self.seller_id, "created_ms": self.created_ms,
            "truth": {"respond": round(self.respond, 6), "timing_factor": round(self.timing_factor, 6),
                      "direct_response": round(self.direct_response, 6)},
            "outcome": {"buyer_id": self.outcome.buyer_id, "contact_ms": self.outcome.contact_ms,
                        "contacted": self.outcome.contacted, "converted": self.outcome.converted,
                        "returned": self.outcome.returned, "answered_direct_offer": self.answered_direct_offer},
        }


def sellers(rng: random.Random, count: int = 6) -> list[Seller]:
    return [Seller(f"sim-seller-{i + 1}", round(rng.uniform(0.3, 1.0), 2)) for i in range(count)]


def buyers(rng: random.Random, count: int = 8) -> list[Buyer]:
    return [Buyer(f"sim-buyer-{i + 1}", median_delay_minutes=rng.choice([2, 5, 15, 60, 240, 720]),
                  calls_at_night=rng.random() < 0.25) for i in range(count)]


def _economics(rng: random.Random, seller: Seller, created: date) -> dict:
    age = min(max(rng.gauss(40, 13), 19), 80)
    born = created - timedelta(days=int(age * 365.25))
    monthly = math.exp(rng.gauss(math.log(2800) + 0.012 * (min(age, 55) - 40) - 0.25 * (1 - seller.quality), 0.45))
    monthly = min(max(monthly, 1200), 20_000)
    working_months = max(int((age - 18) * 12), 1)
    months = rng.randint(0, 11) if rng.random() < 0.15 else int(rng.expovariate(1 / (0.35 * min(working_months, 300))))
    own_p = 1 / (1 + math.exp(-(-2.2 + 0.07 * (age - 30) + 0.8 * (math.log(monthly) - math.log(3000)))))
    residence = "own" if rng.random() < own_p else ("rent" if rng.random() < 0.8 else "other")
    loan_to_income = math.exp(rng.gauss(math.log(0.35) + 0.3 * (1 - seller.quality), 0.5))
    requested = round(loan_to_income * 12 * monthly * 100 / 10_000) * 10_000
    return {
        "date_of_birth": born.isoformat(),
        "gross_monthly_income": int(round(monthly)) * 100,
        "months_employed": min(months, working_months),
        "residence_type": residence,
        "requested_amount": min(max(requested, 300_000), 10_000_000),
    }


def consumer(rng: random.Random, seller: Seller, created: date, vertical: str = "auto_loan") -> dict:
    """One consumer's lead fields, as `seller` would bring it on day `created`."""
    fields = make_consumer(rng, vertical)
    fields |= _economics(rng, seller, created)
    if rng.random() < 0.4 and fields["months_employed"] > 0:
        fields["work_phone"] = fields["home_phone"][:3] + f"{rng.randint(2_000_000, 9_999_999)}"
    return fields


def _contact_ms(rng: random.Random, buyer: Buyer, created_ms: int, zone) -> int:
    delay_minutes = buyer.median_delay_minutes * math.exp(rng.gauss(0, 1.2))
    at = created_ms + int(delay_minutes * 60_000)
    local = datetime.fromtimestamp(at / 1000, UTC).astimezone(zone)
    if not buyer.calls_at_night and not 8 <= local.hour < 21:
        # The next morning's calling session, 09:00 to 12:00 local.
        morning = (local + timedelta(days=1 if local.hour >= 21 else 0)).replace(hour=9, minute=0, second=0)
        at = int(morning.timestamp() * 1000) + rng.randint(0, 3 * 3_600_000)
    return at


def simulate(count: int, seed: int, start_ms: int, days: float = 30.0,
             vertical: str = "auto_loan") -> Iterator[SimulatedLead]:
    """`count` leads created over `days` from `start_ms`, with their outcomes."""
    rng = random.Random(seed)
    market_sellers, market_buyers = sellers(rng), buyers(rng)
    for _ in range(count):
        seller = rng.choice(market_sellers)
        created_ms = start_ms + int(rng.random() * days * DAY_MS)
        created = datetime.fromtimestamp(created_ms / 1000, UTC).date()
        fields = consumer(rng, seller, created, vertical)
        features = consumer_row(fields, created)
        x = np.array([features])
        zone = zone_of(fields["zip"])
        buyer = rng.choice(market_buyers)
        contact_ms = _contact_ms(rng, buyer, created_ms, zone)
        when = timing_row(zone, created_ms, contact_ms)
        respond = float(truth.respond(x)[0])
        factor = float(truth.timing(np.array([when[0]]), np.array([when[1]]), np.array([when[2]]))[0])
        contacted = rng.random() < respond * factor
        converted = contacted and rng.random() < float(truth.convert(x)[0])
        returned = rng.random() < seller.return_rate * (0.5 if contacted else 1.5)
        direct = float(truth.direct_response(x)[0])
        yield SimulatedLead(
            fields=fields, seller_id=seller.seller_id, created_ms=created_ms, features=features, timing=when,
            respond=respond, timing_factor=factor, direct_response=direct,
            outcome=Outcome(buyer.buyer_id, contact_ms, contacted, converted, returned),
            answered_direct_offer=rng.random() < direct)
