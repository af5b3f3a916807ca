"""Alpaca: US equities data (stream and REST) and orders (alpaca-py)."""
