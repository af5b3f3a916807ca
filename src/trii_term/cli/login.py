"""`trii-term login VENUE | anthropic` and `trii-term logout NAME` (each venue brings its login).

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
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from trii_term import adapters, credentials, venues
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
    login.add_argument("provider", choices=adapters.login_names())
    login.add_argument("--live", action="store_true", help="alpaca: the live account (default: paper)")
    login.set_defaults(run=with_config(_login))
    logout = sub.add_parser(
        "logout", parents=[common], help="remove a provider's credentials from the keyring"
    )
    logout.add_argument("provider", choices=adapters.logout_names())
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
    venue = venues.venue(name)
    try:
        if venue is not None and venue.login is not None:  # each venue's own login
            return venue.login(config, ask, live=live)
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
    *known, last = [*venues.login_names(), "anthropic"]
    print(f"trii-term login: unknown provider {name!r}; use {', '.join(known)} or {last}", file=sys.stderr)
    return EXIT_USAGE


def _check_keyring(name: str) -> None:
    """Fail before asking for secrets when they could not be stored anyway."""
    _, why = credentials.keyring_state()
    if why:
        raise credentials.NoKeyring(credentials.no_keyring_message(why, name))


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
    if live:
        name = venues.live_credential(name)
    if name not in credentials.known():
        print(
            f"trii-term logout: unknown name {name!r}; use one of {', '.join(credentials.known())}",
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
