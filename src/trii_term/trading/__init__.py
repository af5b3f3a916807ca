"""Trading without a screen or a broker: orders and fills (exact Decimal money), the paper
matching engine, and the accounting of cash and positions. Brokers and the ticket build on it."""
