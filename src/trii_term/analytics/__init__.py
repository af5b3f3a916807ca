"""Analytics on price series: technical indicators (`trii_term.analytics.indicators`)."""
