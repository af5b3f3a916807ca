"""The embedded DuckDB store: schema, batched writer, history, bars."""
