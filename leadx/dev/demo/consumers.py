"""Simulated consumers with consistent, verifiable fields: real ZIP codes with their own state
and city, issuable SSNs, valid phone numbers. Seeded, so a run can be repeated."""

from __future__ import annotations

import random
from functools import lru_cache

import zipcodes

from leadx.leads import pii
from leadx.leads.phone_areas import area_codes_of

FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
         "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Maria", "Luis"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
        "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor"]
EMPLOYERS = ["Acme Logistics", "City Hospital", "Northwind Foods", "Globex", "State University",
             "Initech", "Blue Ridge Builders", "Sunrise Retail"]


@lru_cache(maxsize=1)
def _standard_zips() -> list[dict]:
    return [z for z in zipcodes.list_all() if z["zip_code_type"] == "STANDARD" and z["active"]]


def make_consumer(rng: random.Random, vertical: str = "auto_loan") -> dict:
    place = rng.choice(_standard_zips())
    first, last = rng.choice(FIRST), rng.choice(LAST)
    area = rng.randint(1, 665)
    ssn = f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
    # An area code of the consumer's own state, so the lead passes the area-code plausibility check.
    area_code = rng.choice(area_codes_of(place["state"]) or ("212",))
    phone = f"{area_code}{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(0, 9)}{rng.randint(0, 9999):04d}"
    income = rng.randrange(150_000, 1_500_000, 500)
    lead = {
        "vertical": vertical,
        "first_name": first,
        "last_name": last,
        "email": f"{first}.{last}.{rng.randint(1, 10**9)}@example.com".lower(),
        "home_phone": phone,
        "ssn": ssn,
        "address": f"{rng.randint(1, 9999)} {rng.choice(['Oak', 'Maple', 'Pine', 'Cedar'])} St",
        "city": place["city"].title(),
        "state": place["state"],
        "zip": place["zip_code"],
        "date_of_birth": f"{rng.randint(1950, 2004)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "gross_monthly_income": income,
        "employer": rng.choice(EMPLOYERS),
        "months_employed": rng.randint(0, 240),
        "residence_type": rng.choice(["own", "rent", "rent", "other"]),
        "requested_amount": rng.randrange(500_000, 5_000_000, 10_000),
    }
    if vertical == "auto_insurance":
        lead |= {"vehicle_year": rng.randint(2005, 2026), "currently_insured": rng.choice(["yes", "no"])}
    return lead


def ping_subset(lead: dict) -> dict:
    """What a seller PINGs for a lead: the minimal subset, with the email as its SHA-256."""
    return {"vertical": lead["vertical"], "zip": lead["zip"], "gross_monthly_income": lead["gross_monthly_income"],
            "ssn": lead["ssn"], "email_sha256": pii.sha256_hex(pii.EMAIL, lead["email"])}
