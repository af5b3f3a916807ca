"""`trii-term login alpaca [--live] | kite | anthropic` and `trii-term logout NAME`.

Secrets are read with hidden input on a terminal, or one per line from stdin when there is no
terminal (scripts, CI), checked against the provider where it can be, and only then stored in
the OS keyring (service `trii-term`). Nothing is printed back, and nothing is written anywhere
else. Exit codes: 0 stored/removed; 1 the provider refused or could not be reached, or there is no
keyring (the message gives the choices); 2 bad input.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO
from urllib.parse import parse_qs, urlsplit

from trii_term import credentials
from trii_term.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Subcommands, with_config

if TYPE_CHECKING:
    from trii_term.config import Config
    from trii_term.paths import Paths

log = logging.getLogger(__name__)


def register(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    login = sub.add_parser(
        "login",
        parents=[common],
        help="store a provider's credentials in the OS keyring",
        description="Ask for a provider's credentials (hidden input; one value per line from stdin when "
        "there is no terminal), check them with the provider, and store them in the OS keyring "
        "(service trii-term). Nothing is written to the config, the store or the logs. Without a "
        "keyring, set the TRII_* environment variables for one process instead (see the README).",
    )
    login.add_argument("provider", choices=("alpaca", "kite", "anthropic"))
    login.add_argument("--live", action="store_true", help="alpaca: the live account (default: paper)")
    login.set_defaults(run=with_config(_login))
    logout = sub.add_parser(
        "logout", parents=[common], help="remove a provider's credentials from the keyring"
    )
    logout.add_argument("provider", choices=("alpaca", "alpaca-live", "kite", "anthropic"))
    logout.add_argument("--live", action="store_true", help="alpaca: the live account's keys")
    logout.set_defaults(run=with_config(_logout))


def _login(args: argparse.Namespace, config: Config, paths: Paths) -> int:
    return run_login(config, args.provider, live=args.live)


def _logout(args: argparse.Namespace, config: Config, paths: Paths) -> int:
    return run_logout(args.provider, live=args.live)


class _Input:
    """Hidden prompts on a terminal; plain lines from stdin otherwise."""

    def __init__(self, stdin: TextIO | None = None, out: TextIO | None = None) -> None:
        self.stdin = stdin or sys.stdin
        self.out = out or sys.stderr
        self.tty = self.stdin.isatty()

    def ask(self, prompt: str, *, secret: bool) -> str:
        if self.tty:
            value = getpass.getpass(prompt, stream=self.out) if secret else input(prompt)
        else:
            line = self.stdin.readline()
            if not line:
                raise EOFError(prompt.strip().rstrip(":"))
            value = line
        return value.strip()


def run_login(config: Config, name: str, *, live: bool = False, stdin: TextIO | None = None) -> int:
    ask = _Input(stdin)
    try:
        if name == "alpaca":
            return _login_alpaca(config, ask, live=live)
        if name == "kite":
            return _login_kite(config, ask)
        if name == "anthropic":
            return _login_anthropic(ask)
    except EOFError as exc:
        print(
            f"trii-term login {name}: no input for {exc}; type it, or pipe one value per line",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\ntrii-term login {name}: cancelled; nothing stored", file=sys.stderr)
        return EXIT_FAILED
    except credentials.CredentialError as exc:
        print(f"trii-term login {name}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"trii-term login: unknown provider {name!r}; use alpaca, kite or anthropic", file=sys.stderr)
    return EXIT_USAGE


def _check_keyring(name: str) -> None:
    """Fail before asking for secrets when they could not be stored anyway."""
    _, why = credentials.keyring_state()
    if why:
        raise credentials.NoKeyring(credentials.no_keyring_message(why, name))


# -- Alpaca ------------------------------------------------------------------------------------


def _login_alpaca(config: Config, ask: _Input, *, live: bool) -> int:
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


# -- Kite ----------------------------------------------------------------------------------------


def request_token_from(text: str) -> str:
    """The request token from what the trader pasted: the token itself, or the whole redirect URL."""
    text = text.strip()
    if "request_token=" in text:
        query = urlsplit(text).query or text.split("?", 1)[-1]
        values = parse_qs(query).get("request_token") or [""]
        return values[0].strip()
    return text


def _login_kite(config: Config, ask: _Input) -> int:
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
    expires = credentials.kite_expiry(login_time)
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
        f"token is {credentials.kite_expiry_text(expires.isoformat())}. Log in again after that."
    )
    return EXIT_OK


def exchange_kite_token(kite, request_token: str, api_secret: str) -> tuple[str, dict]:  # type: ignore[no-untyped-def, type-arg]
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


# -- Anthropic -------------------------------------------------------------------------------------


def _login_anthropic(ask: _Input) -> int:
    _check_keyring("anthropic")
    key = ask.ask("Anthropic API key: ", secret=True)
    if not key:
        print("trii-term login anthropic: no key given; nothing stored", file=sys.stderr)
        return EXIT_USAGE
    credentials.save("anthropic", {"api_key": key})
    print(f"Anthropic API key stored in the keyring ({credentials.backend_name()}).")
    return EXIT_OK


# -- logout ----------------------------------------------------------------------------------------


def run_logout(name: str, *, live: bool = False, remove: Callable[[str], bool] | None = None) -> int:
    if name == "alpaca" and live:
        name = "alpaca-live"
    if name not in credentials.FIELDS:
        print(
            f"trii-term logout: unknown name {name!r}; use one of {', '.join(credentials.FIELDS)}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        removed = (remove or credentials.delete)(name)
    except credentials.CredentialError as exc:
        print(f"trii-term logout {name}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    env = credentials.from_environment(name)
    tail = (
        f" Note: {credentials._env_names(name)} are set in this shell's environment; unset them too."
        if env
        else ""
    )
    print(
        (
            f"{name} credentials removed from the keyring."
            if removed
            else f"No {name} credentials were stored."
        )
        + tail
    )
    return EXIT_OK
