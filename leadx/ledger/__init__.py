"""The exchange's books: double-entry billing, reports, return rules and outcome feedback."""
