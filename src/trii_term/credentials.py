"""Credentials: only in the OS keyring (service `trii-term`), or environment variables for one
process. Never in the config, the store, the logs or on screen.

    name          fields                                            environment (one process only)
    anthropic     api_key                                           ANTHROPIC_API_KEY
    (a venue's)   as its package declares (`venues.CredentialSpec`, in adapters/<venue>/)

Each field is one keyring entry, username `<name>:<field>`. When every required field of a name
is in the environment, the environment wins and the keyring is not touched (a server without a
keyring works). A keyring that cannot keep secrets — the fail, null and plaintext backends, or a
Secret Service with no D-Bus — is "no keyring": reads and writes raise `NoKeyring` with the
trader's choices.

Every secret read is registered with `SecretFilter`, which masks it in every log record.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from trii_term import venues
from trii_term.venues import CredentialSpec

SERVICE = "trii-term"

# Each venue declares its own keyring names (see `venues.CredentialSpec`); the AI desk's is here.
ANTHROPIC = CredentialSpec("anthropic", ("api_key",), ("api_key",), {"api_key": "ANTHROPIC_API_KEY"})


def known() -> dict[str, CredentialSpec]:
    """Every keyring name trii-term knows: the venues' (in their order), then anthropic."""
    return {spec.name: spec for spec in (*venues.credential_specs(), ANTHROPIC)}


SECRET_FIELDS = frozenset({"secret_key", "api_secret", "access_token", "api_key", "key_id"})

NO_KEYRING_HELP = (
    "Choices: (1) start a Secret Service for this session: "
    "`dbus-run-session -- sh -c 'gnome-keyring-daemon --unlock --components=secrets; exec $SHELL'` "
    "(type a keyring password, then press ctrl+d), and run trii-term from that shell; "
    "(2) configure another keyring backend (PYTHON_KEYRING_BACKEND or keyringrc.cfg, see "
    "`keyring diagnose`); (3) set the environment variables for one process: {env}."
)

log = logging.getLogger(__name__)


class CredentialError(Exception):
    """A credential problem the trader can act on; the message says what to do."""


class NoKeyring(CredentialError):
    """There is no keyring that can keep secrets here."""


class MissingCredentials(CredentialError):
    pass


def _env_names(name: str) -> str:
    spec = known().get(name)
    return ", ".join(sorted(set(spec.env.values()))) if spec is not None else ""


def no_keyring_message(why: str, name: str) -> str:
    return f"No usable OS keyring ({why}). " + NO_KEYRING_HELP.format(env=_env_names(name))


@dataclass(frozen=True)
class Credentials:
    """One provider's credentials. The values never appear in repr or str."""

    name: str
    values: Mapping[str, str]
    source: str  # "keyring" or "environment"

    def __getitem__(self, field: str) -> str:
        return self.values[field]

    def get(self, field: str, default: str | None = None) -> str | None:
        return self.values.get(field, default)

    def __repr__(self) -> str:
        return f"Credentials({self.name!r}, fields={sorted(self.values)}, source={self.source!r})"

    __str__ = __repr__


# --------------------------------------------------------------------------------------------
# Masking secrets in the logs
# --------------------------------------------------------------------------------------------


class SecretFilter(logging.Filter):
    """Masks every registered secret in log records (message, arguments and traceback text)."""

    secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:
            return True
        masked = _mask(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _mask(record.exc_text)
        return True


def _mask(text: str) -> str:
    for secret in SecretFilter.secrets:
        if secret and secret in text:
            text = text.replace(secret, "****")
    return text


def register_secrets(values: Mapping[str, str]) -> None:
    for field, value in values.items():
        if field in SECRET_FIELDS and value and len(value) >= 4:
            SecretFilter.secrets.add(value)


def install_log_filter(handler: logging.Handler) -> None:
    if not any(isinstance(f, SecretFilter) for f in handler.filters):
        handler.addFilter(SecretFilter())


# --------------------------------------------------------------------------------------------
# The keyring
# --------------------------------------------------------------------------------------------


def keyring_state() -> tuple[object | None, str]:
    """(backend, "") when the keyring can keep secrets, else (backend or None, why not)."""
    try:
        import keyring
    except Exception as exc:  # pragma: no cover - keyring is a dependency
        return None, f"the keyring package cannot be imported ({exc})"
    try:
        backend = keyring.get_keyring()
    except Exception as exc:
        return None, f"no keyring backend ({exc})"
    module = type(backend).__module__
    name = f"{module}.{type(backend).__name__}"
    if module.startswith(("keyring.backends.fail", "keyring.backends.null")):
        return backend, f"{name} keeps nothing"
    if module.startswith("keyring.backends.chainer") and not getattr(backend, "backends", []):
        return backend, f"{name} has no backends"
    if "plaintext" in name.lower():
        return backend, f"{name} stores secrets unencrypted"
    return backend, ""


def backend_name() -> str:
    backend, _ = keyring_state()
    return f"{type(backend).__module__}.{type(backend).__name__}" if backend is not None else "none"


def _backend(name: str):
    backend, why = keyring_state()
    if why or backend is None:
        raise NoKeyring(no_keyring_message(why, name))
    return backend


def _call(name: str, fn, *args):
    from keyring.errors import KeyringError, NoKeyringError, PasswordDeleteError

    try:
        return fn(*args)
    except PasswordDeleteError:
        return None
    except NoKeyringError as exc:
        raise NoKeyring(no_keyring_message(str(exc).split(". ")[0], name)) from None
    except (KeyringError, RuntimeError) as exc:
        log.warning("keyring call failed: %s", type(exc).__name__)
        raise NoKeyring(no_keyring_message(f"{type(exc).__name__}: {exc}", name)) from None


def from_environment(name: str, environ: Mapping[str, str] | None = None) -> Credentials | None:
    environ = os.environ if environ is None else environ
    spec = known()[name]
    values = {field: environ[var] for field, var in spec.env.items() if environ.get(var)}
    if all(f in values for f in spec.required):
        register_secrets(values)
        return Credentials(name, values, "environment")
    return None


def stored_fields(name: str) -> dict[str, str]:
    """Whatever fields of `name` the keyring holds (possibly incomplete). Raises NoKeyring."""
    backend = _backend(name)
    values: dict[str, str] = {}
    for field in known()[name].fields:
        value = _call(name, backend.get_password, SERVICE, f"{name}:{field}")
        if value:
            values[field] = value
    register_secrets(values)
    return values


def load(name: str, *, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials for `name` (environment first, then the keyring), or None when there are
    none. Raises NoKeyring when there is no keyring and the environment does not have them."""
    specs = known()
    if name not in specs:
        raise CredentialError(f"unknown credentials {name!r}; known: {', '.join(specs)}")
    env = from_environment(name, environ)
    if env is not None:
        return env
    values = stored_fields(name)
    if not all(f in values for f in specs[name].required):
        return None
    return Credentials(name, values, "keyring")


def require(name: str, *, environ: Mapping[str, str] | None = None) -> Credentials:
    """Like `load`, but a missing credential is an error that says how to add it."""
    creds = load(name, environ=environ)
    if creds is None:
        login = known()[name].login or name
        raise MissingCredentials(
            f"no {name} credentials: run `trii-term login {login}`, or set {_env_names(name)} for one process"
        )
    return creds


def save(name: str, values: Mapping[str, str]) -> None:
    """Store `values` (fields of `name`) in the keyring, replacing what was there."""
    unknown = set(values) - set(known()[name].fields)
    if unknown:
        raise CredentialError(f"{name} has no field {', '.join(sorted(unknown))}")
    backend = _backend(name)
    register_secrets(values)
    for field, value in values.items():
        _call(name, backend.set_password, SERVICE, f"{name}:{field}", value)


def delete(name: str) -> bool:
    """Remove `name` from the keyring. True when something was removed."""
    specs = known()
    if name not in specs:
        raise CredentialError(f"unknown credentials {name!r}; known: {', '.join(specs)}")
    backend = _backend(name)
    removed = False
    for field in specs[name].fields:
        if _call(name, backend.get_password, SERVICE, f"{name}:{field}") is not None:
            _call(name, backend.delete_password, SERVICE, f"{name}:{field}")
            removed = True
    return removed


def inventory(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """For `doctor`: where each name's credentials are ("keyring", "environment", "none", or
    "unknown: why") — never their values."""
    out: dict[str, str] = {}
    for name, spec in known().items():
        if from_environment(name, environ) is not None:
            out[name] = "environment"
            continue
        try:
            creds = load(name, environ={})
        except CredentialError as exc:
            out[name] = "unknown: " + str(exc).split(". ")[0]
            continue
        if creds is None:
            out[name] = "none"
        else:
            detail = spec.detail(creds.values) if spec.detail is not None else ""
            out[name] = f"keyring ({detail})" if detail else "keyring"
    return out
