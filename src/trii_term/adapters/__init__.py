"""One package per venue: everything a venue needs (wire parsing, feed, broker, REST history,
instrument master, login) lives in `adapters/<venue>/`, and the venue is found through its entry
points (`trii_term.feeds`, `trii_term.brokers`, `trii_term.venues`; see `trii_term.venues`).
A third venue is a new package here, or in another distribution, plus those entry points."""

from __future__ import annotations


def login_names() -> list[str]:
    """What `trii-term login NAME` takes: every installed venue's login, then "anthropic"."""
    from trii_term import venues

    return [*venues.login_names(), "anthropic"]


def logout_names() -> list[str]:
    """What `trii-term logout NAME` takes: every keyring name (alpaca, alpaca-live, kite, …,
    anthropic)."""
    from trii_term import credentials

    return list(credentials.known())
