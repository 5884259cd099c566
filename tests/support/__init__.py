"""Shared test support: moto account builders (accounts.py) and AWS fault injection (faults.py)."""
