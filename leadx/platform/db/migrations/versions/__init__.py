"""One module per schema change; each names the revision it follows (`down_revision`)."""
