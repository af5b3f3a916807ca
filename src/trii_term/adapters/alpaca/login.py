"""`trii-term login alpaca [--live]`: the paper (or live) account's key id and secret, checked
against Alpaca's account endpoint and only then stored in the keyring."""

from __future__ import annotations

import logging
import sys
from typing import Any

from trii_term import credentials

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _check_keyring(name: str) -> None:
    """Fail before asking for secrets when they could not be stored anyway."""
    _, why = credentials.keyring_state()
    if why:
        raise credentials.NoKeyring(credentials.no_keyring_message(why, name))


def login(config: Any, ask: Any, *, live: bool = False) -> int:
    """`trii-term login alpaca [--live]`: the keys, checked against the account, then stored."""
    name = "alpaca-live" if live else "alpaca"
    _check_keyring(name)
    account = "live" if live else "paper"
    key_id = ask.ask(f"Alpaca {account} API key id: ", secret=False)
    secret = ask.ask(f"Alpaca {account} API secret key: ", secret=True)
    if not key_id or not secret:
        print("trii-term login alpaca: the key id and the secret are both needed", file=sys.stderr)
        return EXIT_USAGE
    credentials.register_secrets({"key_id": key_id, "secret_key": secret})
    settings = config.brokers.alpaca
    url = settings.url.rstrip("/") if settings.url else None
    where = url or ("https://api.alpaca.markets" if live else "https://paper-api.alpaca.markets")
    problem = check_alpaca(key_id, secret, paper=not live, url=url)
    if problem:
        print(f"trii-term login alpaca: {problem}; nothing was stored", file=sys.stderr)
        return EXIT_FAILED
    credentials.save(name, {"key_id": key_id, "secret_key": secret})
    print(
        f"Alpaca {account} keys checked against {where} and stored in the keyring "
        f"({credentials.backend_name()})."
    )
    return EXIT_OK


def check_alpaca(key_id: str, secret: str, *, paper: bool, url: str | None) -> str:
    """ "" when the account endpoint accepts the keys, else what went wrong."""
    from alpaca.common.exceptions import APIError
    from alpaca.trading.client import TradingClient

    client = TradingClient(key_id, secret, paper=paper, raw_data=True, url_override=url)
    client._retry = 0  # a 429 answers now instead of after three 3 s sleeps
    try:
        acct = client.get_account()
    except APIError as exc:
        status = getattr(exc, "status_code", None)
        if status in (401, 403):
            return (
                f"Alpaca refused these keys ({status}): check that they are the "
                f"{'paper' if paper else 'live'} account's key id and secret"
            )
        return f"Alpaca answered {status}: {_api_message(exc)}"
    except Exception as exc:  # network: requests' ConnectionError, timeouts, …
        log.warning("alpaca login check failed: %s", type(exc).__name__)
        return f"could not reach Alpaca ({type(exc).__name__}); check the network or brokers.alpaca.url"
    status = acct.get("status") if isinstance(acct, dict) else None
    if status and status != "ACTIVE":
        return f"the Alpaca account is {status}, not ACTIVE"
    return ""


def _api_message(exc: Exception) -> str:
    try:
        return str(exc.message)  # type: ignore[attr-defined]
    except Exception:
        return str(exc)[:200]
