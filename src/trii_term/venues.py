"""The venues installed, found through entry points, and what each declares to the core.

A venue (Alpaca, Kite, a third one) is a package under `adapters/` that names a `Venue` in the
entry-point group `trii_term.venues`, its feed in `trii_term.feeds` and its broker in
`trii_term.brokers`. From the `Venue` the core learns, without naming any venue:

- its settings: `[providers.<name>]` and `[brokers.<name>]`, each a frozen dataclass whose fields
  are the keys, declared with `choice`, `url` and `flag` so that `config` can check them;
- its credentials: the keyring names, their fields, the environment variables that stand in for
  them, how to log in, and what the doctor should say about a stored one;
- its login: the function `trii-term login <name>` runs.

This module reads entry points and imports the venue packages (which import nothing heavy: their
feeds, brokers and SDKs are imported only when used); it imports nothing of trii-term itself.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

log = logging.getLogger(__name__)

VENUE_GROUP = "trii_term.venues"
BROKER_GROUP = "trii_term.brokers"
FEED_GROUP = "trii_term.feeds"
OWN_DISTRIBUTION = "trii-term"
ADAPTERS = "trii_term.adapters"  # where trii-term's own venues live


# -- declaring settings keys --------------------------------------------------------------------


# Each takes `doc`: what the key is for, in one or two sentences (docs/config.md shows it).


def choice(default: str, *options: str, doc: str) -> Any:
    """A settings key that takes one of `options` (the config says which, by name)."""
    return field(default=default, metadata={"choices": (default, *options), "doc": doc})


def ordered_choice(default: str, options: tuple[str, ...], *, doc: str) -> Any:
    """Like `choice`, with the options in the order the error message lists them."""
    return field(default=default, metadata={"choices": options, "doc": doc})


def url(*schemes: str, doc: str) -> Any:
    """A settings key that is a URL with one of `schemes` ("" means the venue's default)."""
    return field(default="", metadata={"url": schemes, "doc": doc})


def flag(default: bool, *, doc: str) -> Any:
    """A settings key that is true or false."""
    return field(default=default, metadata={"flag": True, "doc": doc})


# -- what a venue declares ----------------------------------------------------------------------


@dataclass(frozen=True)
class CredentialSpec:
    """One keyring name of a venue (`alpaca`, `alpaca-live`, `kite`)."""

    name: str
    fields: tuple[str, ...]  # every field it may hold
    required: tuple[str, ...]  # the fields it needs to be usable
    env: Mapping[str, str]  # field -> environment variable (one process only)
    login: str = ""  # the arguments of `trii-term login` that store it ("alpaca --live"); "" = name
    live_of: str = ""  # with `--live`, `trii-term logout <live_of>` means this name
    # what `doctor` adds about stored credentials ("access token valid until …"), or ""
    detail: Callable[[Mapping[str, str]], str] | None = None
    # what `doctor` says to do when the detail says "expired", or ""
    expired_fix: str = ""


@dataclass(frozen=True)
class Venue:
    name: str
    provider_settings: type | None = None  # [providers.<name>]
    broker_settings: type | None = None  # [brokers.<name>]
    credentials: tuple[CredentialSpec, ...] = ()
    # `trii-term login <name>`: (config, ask, live=) -> exit code
    login: Callable[..., int] | None = None


# -- reading the registry -----------------------------------------------------------------------


def _ordered(group: str) -> list[EntryPoint]:
    """The entry points of `group`: trii-term's built-ins first (the replay feed, the paper
    broker), then its venues, then other distributions', each by name. A name registered twice
    is trii-term's. Read once per search path (a scan of every distribution costs tens of ms)."""
    return list(_scan(group, tuple(sys.path)))


@cache
def _scan(group: str, search_path: tuple[str, ...]) -> tuple[EntryPoint, ...]:
    try:
        found = list(entry_points(group=group))
    except Exception:  # a broken third-party distribution must not stop the built-ins
        log.exception("entry points of %s could not be read", group)
        return ()

    def rank(ep: EntryPoint) -> tuple[int, str]:
        dist = getattr(ep, "dist", None)
        if dist is None or dist.name != OWN_DISTRIBUTION:
            return 2, ep.name
        return (1 if ep.value.startswith(ADAPTERS + ".") else 0), ep.name

    seen: dict[str, EntryPoint] = {}
    for ep in sorted(found, key=rank):
        seen.setdefault(ep.name, ep)
    return tuple(seen.values())


def names(group: str) -> list[str]:
    """The names registered in an entry-point group, without loading them."""
    return [ep.name for ep in _ordered(group)]


def entry(group: str, name: str) -> EntryPoint | None:
    return next((ep for ep in _ordered(group) if ep.name == name), None)


@cache
def venues() -> tuple[Venue, ...]:
    """Every installed venue, in name order. One that cannot be loaded is logged and left out."""
    out: list[Venue] = []
    for ep in _ordered(VENUE_GROUP):
        try:
            venue = ep.load()
        except Exception:
            log.exception("venue %s (%s) failed to load", ep.name, ep.value)
            continue
        if isinstance(venue, Venue):
            out.append(venue)
        else:
            log.warning("venue %s (%s) is not a Venue; left out", ep.name, ep.value)
    return tuple(sorted(out, key=lambda v: v.name))


def venue(name: str) -> Venue | None:
    return next((v for v in venues() if v.name == name), None)


def credential_specs() -> tuple[CredentialSpec, ...]:
    return tuple(spec for v in venues() for spec in v.credentials)


def login_names() -> list[str]:
    """The venues `trii-term login NAME` knows (the CLI adds "anthropic")."""
    return [v.name for v in venues() if v.login is not None]


def credential_names() -> list[str]:
    """Every venue keyring name `trii-term logout NAME` knows (the CLI adds "anthropic")."""
    return [spec.name for spec in credential_specs()]


def live_credential(name: str) -> str:
    """The keyring name `--live` means for `name` (alpaca -> alpaca-live), else `name`."""
    return next((spec.name for spec in credential_specs() if spec.live_of == name), name)
