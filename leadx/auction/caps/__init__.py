"""Caps and budgets: the limits a buyer or profile sets (`limits`, pure) and what was bought against
them, counted in Redis (`counters`)."""
