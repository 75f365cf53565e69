"""The first revision: the schema exactly as `Base.metadata.create_all` made it before the schema
had revisions, written out table by table. A database made that way (tables, no alembic_version)
is adopted at this revision by `leadx db upgrade` (leadx.platform.db.schema.upgrade).

Every later change to leadx/platform/db/models.py is a revision of its own after this one. This file
never changes: it describes the databases made before revisions existed."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("sellers",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("api_key_hash", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("fee_percent", sa.Float(), nullable=True),
        sa.Column("sells_to", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("api_key_hash")
    )

    op.create_table("buyers",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("api_key_hash", sa.String(length=64), nullable=False),
        sa.Column("ping_url", sa.String(length=2000), nullable=False),
        sa.Column("post_url", sa.String(length=2000), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("caps", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("api_key_hash")
    )

    op.create_table("partnerships",
        sa.Column("buyer_id", sa.String(length=16), nullable=False),
        sa.Column("seller_id", sa.String(length=16), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("buyer_id", "seller_id")
    )

    op.create_table("seller_buyer_choices",
        sa.Column("seller_id", sa.String(length=16), nullable=False),
        sa.Column("buyer_id", sa.String(length=16), nullable=False),
        sa.Column("choice", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("seller_id", "buyer_id")
    )

    op.create_table("buyer_profiles",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("buyer_id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index(op.f("ix_buyer_profiles_buyer_id"), "buyer_profiles", ["buyer_id"], unique=False)

    op.create_table("contracts",
        sa.Column("seller_id", sa.String(length=16), nullable=False),
        sa.Column("buyer_id", sa.String(length=16), nullable=False),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seller_id", "buyer_id")
    )

    op.create_table("leads",
        sa.Column("id", sa.String(length=10), nullable=False),
        sa.Column("seller_id", sa.String(length=16), nullable=False),
        sa.Column("vertical", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=2), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_rank", sa.Integer(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=True),
        sa.Column("min_price_cents", sa.BigInteger(), nullable=False),
        sa.Column("direct_buyer_id", sa.String(length=16), nullable=False),
        sa.Column("seller_reference", sa.String(length=100), nullable=False),
        sa.Column("submitted_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("rejection_detail", sa.Text(), nullable=True),
        sa.Column("rejected_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("probability", sa.Float(), nullable=True),
        sa.Column("cluster", sa.String(length=32), nullable=True),
        sa.Column("redrives", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_leads_open_by_age", "leads", ["status_rank", "updated_at_ms"], unique=False)
    op.create_index(op.f("ix_leads_seller_id"), "leads", ["seller_id"], unique=False)
    op.create_index("ix_leads_seller_submitted", "leads", ["seller_id", "submitted_at_ms"], unique=False)

    op.create_table("auctions",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("lead_id", sa.String(length=10), nullable=False),
        sa.Column("offered_buyers", sa.Integer(), nullable=False),
        sa.Column("opened_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("closes_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index(op.f("ix_auctions_lead_id"), "auctions", ["lead_id"], unique=False)

    op.create_table("sales",
        sa.Column("lead_id", sa.String(length=10), nullable=False),
        sa.Column("buyer_id", sa.String(length=16), nullable=False),
        sa.Column("auction_id", sa.String(length=16), nullable=False),
        sa.Column("sold", sa.Boolean(), nullable=False),
        sa.Column("seller_id", sa.String(length=16), nullable=False),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("seller_fee_cents", sa.BigInteger(), nullable=False),
        sa.Column("vertical", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=2), nullable=False),
        sa.Column("county", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("closed_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("returned", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id", "buyer_id")
    )
    op.create_index("ix_sales_buyer_closed", "sales", ["buyer_id", "closed_at_ms"], unique=False,
                    postgresql_include=["sold", "price_cents", "returned"])
    op.create_index(op.f("ix_sales_buyer_id"), "sales", ["buyer_id"], unique=False)
    op.create_index("ix_sales_closed_at", "sales", ["closed_at_ms"], unique=False)
    op.create_index("ix_sales_seller_closed", "sales", ["seller_id", "closed_at_ms"], unique=False,
                    postgresql_include=["sold", "price_cents", "seller_fee_cents", "returned"])
    op.create_index(op.f("ix_sales_seller_id"), "sales", ["seller_id"], unique=False)

    op.create_table("market_days",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("vertical", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=2), nullable=False),
        sa.Column("county", sa.String(length=64), nullable=False),
        sa.Column("week", sa.String(length=10), nullable=False),
        sa.Column("month", sa.String(length=10), nullable=False),
        sa.Column("sales", sa.BigInteger(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "vertical", "state", "county")
    )
    op.create_index("ix_market_days_month", "market_days", ["month"], unique=False)
    op.create_index("ix_market_days_week", "market_days", ["week"], unique=False)

    op.create_table("processed_events",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("processed_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "consumer")
    )

    op.create_table("buyer_postings",
        sa.Column("lead_id", sa.String(length=10), nullable=False),
        sa.Column("buyer_id", sa.String(length=16), nullable=False),
        sa.Column("posted_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id", "buyer_id")
    )
    op.create_index(op.f("ix_buyer_postings_posted_at_ms"), "buyer_postings", ["posted_at_ms"], unique=False)

    op.create_table("buyer_duplicate_days",
        sa.Column("buyer_id", sa.String(length=16), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("duplicates", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("buyer_id", "day")
    )

    op.create_table("post_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("auction_id", sa.String(length=16), nullable=False),
        sa.Column("lead_id", sa.String(length=10), nullable=False),
        sa.Column("buyer_id", sa.String(length=16), nullable=False),
        sa.Column("sent_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("request_body", sa.Text(), nullable=False),
        sa.Column("connects", sa.Integer(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index(op.f("ix_post_attempts_auction_id"), "post_attempts", ["auction_id"], unique=False)
    op.create_index(op.f("ix_post_attempts_buyer_id"), "post_attempts", ["buyer_id"], unique=False)
    op.create_index(op.f("ix_post_attempts_lead_id"), "post_attempts", ["lead_id"], unique=False)

    op.create_table("lead_returns",
        sa.Column("lead_id", sa.String(length=10), nullable=False),
        sa.Column("buyer_id", sa.String(length=16), nullable=False),
        sa.Column("seller_id", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("seller_fee_cents", sa.BigInteger(), nullable=False),
        sa.Column("sold_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("returned_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id", "buyer_id")
    )
    op.create_index(op.f("ix_lead_returns_buyer_id"), "lead_returns", ["buyer_id"], unique=False)
    op.create_index(op.f("ix_lead_returns_returned_at_ms"), "lead_returns", ["returned_at_ms"], unique=False)
    op.create_index(op.f("ix_lead_returns_seller_id"), "lead_returns", ["seller_id"], unique=False)

    op.create_table("lead_outcomes",
        sa.Column("lead_id", sa.String(length=10), nullable=False),
        sa.Column("buyer_id", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("seller_id", sa.String(length=16), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("reported_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id", "buyer_id", "outcome")
    )

    op.create_table("ledger_transactions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("lead_id", sa.String(length=10), nullable=False),
        sa.Column("buyer_id", sa.String(length=16), nullable=False),
        sa.Column("seller_id", sa.String(length=16), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("fee_cents", sa.BigInteger(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index(op.f("ix_ledger_transactions_at_ms"), "ledger_transactions", ["at_ms"], unique=False)
    op.create_index(op.f("ix_ledger_transactions_buyer_id"), "ledger_transactions", ["buyer_id"], unique=False)
    op.create_index(op.f("ix_ledger_transactions_lead_id"), "ledger_transactions", ["lead_id"], unique=False)
    op.create_index(op.f("ix_ledger_transactions_seller_id"), "ledger_transactions", ["seller_id"], unique=False)

    op.create_table("ledger_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("transaction_id", sa.String(length=32), nullable=False),
        sa.Column("account", sa.String(length=40), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_ledger_entries_account_at", "ledger_entries", ["account", "at_ms"], unique=False)
    op.create_index(op.f("ix_ledger_entries_transaction_id"), "ledger_entries", ["transaction_id"], unique=False)

    op.create_table("account_balances",
        sa.Column("account", sa.String(length=40), nullable=False),
        sa.Column("balance_cents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account")
    )

    op.create_table("ratings",
        sa.Column("rater_id", sa.String(length=16), nullable=False),
        sa.Column("ratee_id", sa.String(length=16), nullable=False),
        sa.Column("stars", sa.Integer(), nullable=False),
        sa.Column("rated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("rater_id", "ratee_id")
    )
    op.create_index(op.f("ix_ratings_ratee_id"), "ratings", ["ratee_id"], unique=False)

    op.create_table("prospects",
        sa.Column("id", sa.String(length=10), nullable=False),
        sa.Column("vertical", sa.String(length=64), nullable=False),
        sa.Column("seller_id", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_name", sa.String(length=200), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("ssn_key", sa.String(length=32), nullable=True),
        sa.Column("email_key", sa.String(length=32), nullable=True),
        sa.Column("home_phone_key", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=2), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("propensity", sa.Float(), nullable=False),
        sa.Column("cluster", sa.String(length=32), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("consumer_since_ms", sa.BigInteger(), nullable=False),
        sa.Column("added_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_prospects_email", "prospects", ["vertical", "email_key"], unique=False)
    op.create_index("ix_prospects_phone", "prospects", ["vertical", "home_phone_key"], unique=False)
    op.create_index(op.f("ix_prospects_seller_id"), "prospects", ["seller_id"], unique=False)
    op.create_index("ix_prospects_ssn", "prospects", ["vertical", "ssn_key"], unique=False)
    op.create_index("ix_prospects_vertical_probability", "prospects", ["vertical", "probability"], unique=False)

    op.create_table("list_auctions",
        sa.Column("id", sa.String(length=10), nullable=False),
        sa.Column("vertical", sa.String(length=64), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("band_width", sa.Float(), nullable=False),
        sa.Column("reserve_cents", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("opened_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("closes_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("closed_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("tie_break_seed", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index(op.f("ix_list_auctions_closes_at_ms"), "list_auctions", ["closes_at_ms"], unique=False)

    op.create_table("list_members",
        sa.Column("auction_id", sa.String(length=10), nullable=False),
        sa.Column("prospect_id", sa.String(length=10), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("cluster", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("auction_id", "prospect_id")
    )

    op.create_table("list_bids",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("auction_id", sa.String(length=10), nullable=False),
        sa.Column("buyer_id", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("max_count", sa.Integer(), nullable=True),
        sa.Column("max_budget_cents", sa.BigInteger(), nullable=True),
        sa.Column("placed_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index(op.f("ix_list_bids_auction_id"), "list_bids", ["auction_id"], unique=False)

    op.create_table("list_awards",
        sa.Column("auction_id", sa.String(length=10), nullable=False),
        sa.Column("prospect_id", sa.String(length=10), nullable=False),
        sa.Column("buyer_id", sa.String(length=16), nullable=False),
        sa.Column("bid_id", sa.Integer(), nullable=False),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("awarded_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("auction_id", "prospect_id"),
        sa.UniqueConstraint("prospect_id", "buyer_id", name="uq_list_awards_prospect_buyer")
    )
    op.create_index(op.f("ix_list_awards_buyer_id"), "list_awards", ["buyer_id"], unique=False)


def downgrade() -> None:
    op.drop_table("list_awards")
    op.drop_table("list_bids")
    op.drop_table("list_members")
    op.drop_table("list_auctions")
    op.drop_table("prospects")
    op.drop_table("ratings")
    op.drop_table("account_balances")
    op.drop_table("ledger_entries")
    op.drop_table("ledger_transactions")
    op.drop_table("lead_outcomes")
    op.drop_table("lead_returns")
    op.drop_table("post_attempts")
    op.drop_table("buyer_duplicate_days")
    op.drop_table("buyer_postings")
    op.drop_table("processed_events")
    op.drop_table("market_days")
    op.drop_table("sales")
    op.drop_table("auctions")
    op.drop_table("leads")
    op.drop_table("contracts")
    op.drop_table("buyer_profiles")
    op.drop_table("seller_buyer_choices")
    op.drop_table("partnerships")
    op.drop_table("buyers")
    op.drop_table("sellers")
