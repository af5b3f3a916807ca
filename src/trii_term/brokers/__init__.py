"""Broker adapters behind one protocol (`base.Broker`): `paper` (the default, offline), and the
live ones that plug into the same shape."""
