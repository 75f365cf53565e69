"""The wholesale auction's domain: per-vertical terms, offer records, caps and budgets, and buyer
selection with AutoBid (`selection`, pure)."""
