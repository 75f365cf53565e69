"""The leadx services: one package each, each with a small main.py that only wires."""
