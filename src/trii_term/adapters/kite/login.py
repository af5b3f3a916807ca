"""`trii-term login kite`: Kite Connect's browser login. The request token the trader pastes is
exchanged for an access token, stored in the keyring with its expiry (06:00 IST the next day)."""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from trii_term import credentials
from trii_term.adapters.kite.token import kite_expiry, kite_expiry_text

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _check_keyring(name: str) -> None:
    """Fail before asking for secrets when they could not be stored anyway."""
    _, why = credentials.keyring_state()
    if why:
        raise credentials.NoKeyring(credentials.no_keyring_message(why, name))


def request_token_from(text: str) -> str:
    """The request token from what the trader pasted: the token itself, or the whole redirect URL."""
    text = text.strip()
    if "request_token=" in text:
        query = urlsplit(text).query or text.split("?", 1)[-1]
        values = parse_qs(query).get("request_token") or [""]
        return values[0].strip()
    return text


def login(config: Any, ask: Any, *, live: bool = False) -> int:
    """`trii-term login kite`: the API key and secret, the request token from the browser, then
    the session (access token and its expiry) stored in the keyring."""
    _check_keyring("kite")
    known = credentials.stored_fields("kite")
    env = os.environ
    api_key = env.get("TRII_KITE_API_KEY") or known.get("api_key") or ask.ask("Kite API key: ", secret=False)
    api_secret = (
        env.get("TRII_KITE_API_SECRET")
        or known.get("api_secret")
        or ask.ask("Kite API secret: ", secret=True)
    )
    if not api_key or not api_secret:
        print("trii-term login kite: the API key and secret are both needed", file=sys.stderr)
        return EXIT_USAGE
    credentials.register_secrets({"api_key": api_key, "api_secret": api_secret})
    from kiteconnect import KiteConnect

    root = config.brokers.kite.root or config.providers.kite.rest
    kite = KiteConnect(api_key, root=root.rstrip("/"), timeout=15)
    print("Open this URL in a browser, log in, and paste the request token (or the whole URL you are")
    print("redirected to):")
    print(f"  {kite.login_url()}")
    token = request_token_from(ask.ask("Request token or redirect URL: ", secret=True))
    if not token:
        print("trii-term login kite: no request token given; nothing stored", file=sys.stderr)
        return EXIT_USAGE
    problem, data = exchange_kite_token(kite, token, api_secret)
    if problem:
        print(f"trii-term login kite: {problem}; nothing was stored", file=sys.stderr)
        return EXIT_FAILED
    login_time = data.get("login_time")
    if not isinstance(login_time, datetime):
        login_time = datetime.now(UTC)
    expires = kite_expiry(login_time)
    credentials.save(
        "kite",
        {
            "api_key": api_key,
            "api_secret": api_secret,
            "access_token": str(data["access_token"]),
            "expires_at": expires.isoformat(),
        },
    )
    who = data.get("user_id") or "your account"
    print(
        f"Kite session for {who} stored in the keyring ({credentials.backend_name()}); the access "
        f"token is {kite_expiry_text(expires.isoformat())}. Log in again after that."
    )
    return EXIT_OK


def exchange_kite_token(kite, request_token: str, api_secret: str) -> tuple[str, dict]:
    """Exchange the request token (with the checksum the SDK computes) for a session."""
    from kiteconnect import exceptions as kex

    try:
        data = kite.generate_session(request_token, api_secret=api_secret)
    except kex.TokenException as exc:
        return f"Kite refused the request token ({exc}); it is single-use and short-lived — log in again", {}
    except kex.KiteException as exc:
        return f"Kite refused the login ({type(exc).__name__}: {exc})", {}
    except Exception as exc:
        log.warning("kite login failed: %s", type(exc).__name__)
        return f"could not reach Kite ({type(exc).__name__}); check the network or providers.kite.root", {}
    if not isinstance(data, dict) or not data.get("access_token"):
        return "Kite's answer had no access token", {}
    return "", data
