"""Zerodha Kite: NSE/BSE data (binary ticker, candles, instrument master) and orders (kiteconnect)."""
