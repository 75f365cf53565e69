"""Delivering a sold lead: each buyer's POST adaptation and the headers that authenticate a call to
a buyer."""
