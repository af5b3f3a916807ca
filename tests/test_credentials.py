"""Credentials: the OS keyring (a real Secret Service: gnome-keyring on a private D-Bus session),
environment variables for one process, the no-keyring path, the login flows against loopback
Alpaca and Kite servers, and secrets kept out of logs and output."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from trii_term import credentials
from trii_term.adapters.kite.login import request_token_from
from trii_term.adapters.kite.token import kite_expiry, kite_expiry_warning

from .conftest import run_cli
from .fakes.loopback import HttpFake, Request, Response

KEY_ID, SECRET = "PKTESTKEY0001", "s3cr3t-alpaca-value-xyz"
KITE_KEY, KITE_SECRET, KITE_TOKEN = "kitekey01", "kite-secret-value-77", "kite-access-token-99"
MOCKS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "kite-mocks"


# -- a real Secret Service ------------------------------------------------------------------------


@pytest.fixture
def secret_service(tmp_path: Path) -> Iterator[dict[str, str]]:
    """gnome-keyring's Secret Service on a private D-Bus session (dbus-run-session), with its
    own home: the environment a subprocess needs to use it."""
    missing = [exe for exe in ("dbus-run-session", "gnome-keyring-daemon") if shutil.which(exe) is None]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed: the Secret Service tests need a real keyring "
            "(apt install dbus-user-session gnome-keyring; .ci/run installs them)"
        )
    home = tmp_path / "kr-home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_RUNTIME_DIR": str(home / "run"),
    }
    env.pop("PYTHON_KEYRING_BACKEND", None)
    (home / "run").mkdir(mode=0o700)
    script = (
        'echo "$DBUS_SESSION_BUS_ADDRESS"; '
        "printf 'test-keyring-password' | "
        "gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1; "
        "echo unlocked; exec sleep 300"
    )
    proc = subprocess.Popen(
        ["dbus-run-session", "--", "sh", "-c", script],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        assert proc.stdout.readline().strip() == "unlocked", "gnome-keyring-daemon did not start"
        env["DBUS_SESSION_BUS_ADDRESS"] = address
        probe = "import keyring; print(type(keyring.get_keyring()).__module__)"
        for _ in range(50):  # the daemon registers its D-Bus name shortly after unlocking
            out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
            if "SecretService" in out.stdout:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the Secret Service did not come up: {out.stdout} {out.stderr}")
        yield env
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def _keyring_get(env: dict[str, str], username: str) -> str | None:
    code = f"import keyring; print(repr(keyring.get_password('trii-term', {username!r})))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return eval(out.stdout.strip())  # a repr of str or None, from our own subprocess


# -- loopback providers ---------------------------------------------------------------------------


@pytest.fixture
def alpaca() -> Iterator[HttpFake]:
    def account(req: Request) -> Response:
        if req.headers.get("apca-api-key-id") != KEY_ID or req.headers.get("apca-api-secret-key") != SECRET:
            return Response(401, {"code": 40110000, "message": "request is not authorized"})
        return Response(
            200,
            {"id": str(uuid.uuid4()), "account_number": "PA3TEST", "status": "ACTIVE", "currency": "USD",
             "cash": "100000", "buying_power": "200000", "equity": "100000"},
        )  # fmt: skip

    with HttpFake() as fake:
        fake.route("GET", "/v2/account", account)
        yield fake


@pytest.fixture
def kite() -> Iterator[HttpFake]:
    session = json.loads((MOCKS / "generate_session.json").read_text())

    def token(req: Request) -> Response:
        form = {k: v[0] for k, v in req.form().items()}
        want = hashlib.sha256((KITE_KEY + form.get("request_token", "") + KITE_SECRET).encode()).hexdigest()
        if form.get("api_key") != KITE_KEY or form.get("checksum") != want:
            body = {"status": "error", "message": "Invalid `checksum`.", "error_type": "TokenException"}
            return Response(403, body)
        data = {**session["data"], "api_key": KITE_KEY, "access_token": KITE_TOKEN}
        return Response(200, {"status": "success", "data": data})

    with HttpFake() as fake:
        fake.route("POST", "/session/token", token)
        yield fake


def _config(paths, text: str) -> None:  # type: ignore[no-untyped-def]
    paths.config_file.write_text(text, encoding="utf-8")


# -- the Secret Service path, end to end through the CLI -------------------------------------------


def test_login_alpaca_checks_the_keys_stores_them_in_the_secret_service_and_logout_removes_them(
    paths, secret_service, alpaca
) -> None:  # type: ignore[no-untyped-def]
    _config(paths, f'[brokers.alpaca]\nurl = "{alpaca.url}"\n')
    env = secret_service
    result = subprocess.run(
        [*_exe(), "--config", str(paths.config_file), "--data-dir", str(paths.data_dir), "login", "alpaca"],
        input=f"{KEY_ID}\n{SECRET}\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "stored in the keyring (keyring.backends.SecretService.Keyring)" in result.stdout
    assert SECRET not in result.stdout + result.stderr and KEY_ID not in result.stdout + result.stderr
    assert alpaca.requests[-1].path == "/v2/account"
    assert _keyring_get(env, "alpaca:key_id") == KEY_ID
    assert _keyring_get(env, "alpaca:secret_key") == SECRET

    doctor = subprocess.run(
        [*_exe(), "--config", str(paths.config_file), "--data-dir", str(paths.data_dir), "doctor"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    line = next(x for x in doctor.stdout.splitlines() if x.split()[1:2] == ["credentials"])
    assert "alpaca: keyring" in line and "kite: none" in line
    assert SECRET not in doctor.stdout and KEY_ID not in doctor.stdout

    out = subprocess.run(
        [*_exe(), "--config", str(paths.config_file), "--data-dir", str(paths.data_dir), "logout", "alpaca"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0 and "removed from the keyring" in out.stdout
    assert _keyring_get(env, "alpaca:secret_key") is None
    logs = "".join(p.read_text() for p in paths.data_dir.rglob("*.log"))
    assert SECRET not in logs and KEY_ID not in logs


def test_keys_alpaca_refuses_are_not_stored(paths, secret_service, alpaca) -> None:  # type: ignore[no-untyped-def]
    _config(paths, f'[brokers.alpaca]\nurl = "{alpaca.url}"\n')
    result = subprocess.run(
        [*_exe(), "--config", str(paths.config_file), "--data-dir", str(paths.data_dir), "login", "alpaca"],
        input=f"{KEY_ID}\nwrong-secret-000\n",
        env=secret_service, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Alpaca refused these keys (401)" in result.stderr and "nothing was stored" in result.stderr
    assert "wrong-secret-000" not in result.stderr
    assert _keyring_get(secret_service, "alpaca:key_id") is None


def test_login_kite_exchanges_the_request_token_from_the_redirect_url_and_stores_the_expiry(
    paths, secret_service, kite
) -> None:  # type: ignore[no-untyped-def]
    _config(paths, f'[providers.kite]\nroot = "{kite.url}"\n')
    redirect = "https://example.org/kite/callback?action=login&status=success&request_token=rq123TOKEN"
    result = subprocess.run(
        [*_exe(), "--config", str(paths.config_file), "--data-dir", str(paths.data_dir), "login", "kite"],
        input=f"{KITE_KEY}\n{KITE_SECRET}\n{redirect}\n",
        env=secret_service, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"https://kite.zerodha.com/connect/login?api_key={KITE_KEY}&v=3" in result.stdout
    form = {k: v[0] for k, v in kite.requests[-1].form().items()}
    assert form["request_token"] == "rq123TOKEN"  # the checksum matched, or the fake refused
    assert _keyring_get(secret_service, "kite:access_token") == KITE_TOKEN
    # logged in at 2021-01-01 16:15:14 IST: valid until 06:00 IST the next day
    assert _keyring_get(secret_service, "kite:expires_at") == "2021-01-02T00:30:00+00:00"
    assert KITE_TOKEN not in result.stdout + result.stderr and KITE_SECRET not in result.stdout


# -- no keyring ------------------------------------------------------------------------------------


def test_without_a_keyring_login_says_the_three_choices_and_asks_nothing(paths, alpaca) -> None:  # type: ignore[no-untyped-def]
    _config(paths, f'[brokers.alpaca]\nurl = "{alpaca.url}"\n')
    result = run_cli(
        "login", "alpaca", paths=paths, env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    )
    assert result.returncode == 1
    err = result.stderr
    assert "No usable OS keyring" in err
    assert "dbus-run-session" in err and "gnome-keyring-daemon --unlock" in err
    assert "PYTHON_KEYRING_BACKEND" in err
    assert "TRII_ALPACA_KEY_ID" in err and "TRII_ALPACA_SECRET_KEY" in err
    assert alpaca.requests == []  # nothing was asked for or sent


@pytest.mark.parametrize(
    "backend", ["keyring.backends.fail.Keyring", "keyring.backends.null.Keyring"], ids=["fail", "null"]
)
def test_fail_and_null_backends_are_no_keyring_but_the_environment_works(backend, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import keyring
    from keyring.backends import fail, null

    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring() if backend.endswith("fail.Keyring") else null.Keyring())
    try:
        with pytest.raises(credentials.NoKeyring) as info:
            credentials.load("alpaca")
        assert "TRII_ALPACA_KEY_ID" in str(info.value)
        with pytest.raises(credentials.NoKeyring):
            credentials.save("kite", {"api_key": "x"})
        env = {"TRII_ALPACA_KEY_ID": KEY_ID, "TRII_ALPACA_SECRET_KEY": SECRET}
        creds = credentials.load("alpaca", environ=env)
        assert creds is not None and creds.source == "environment" and creds["secret_key"] == SECRET
        assert SECRET not in repr(creds) and SECRET not in str(creds)
        assert credentials.inventory(env)["alpaca"] == "environment"
        assert credentials.inventory(env)["kite"].startswith("unknown: No usable OS keyring")
    finally:
        keyring.set_keyring(before)


def test_a_plaintext_backend_is_not_a_keyring() -> None:
    import keyring
    from keyring.backend import KeyringBackend

    class PlaintextKeyring(KeyringBackend):  # named like keyrings.alt's
        priority = 1  # type: ignore[assignment]

        def get_password(self, service: str, username: str) -> str | None:
            return None

        def set_password(self, service: str, username: str, password: str) -> None:
            raise AssertionError("a secret was written to a plaintext store")

        def delete_password(self, service: str, username: str) -> None:
            pass

    before = keyring.get_keyring()
    keyring.set_keyring(PlaintextKeyring())
    try:
        with pytest.raises(credentials.NoKeyring, match="unencrypted"):
            credentials.save("alpaca", {"key_id": KEY_ID, "secret_key": SECRET})
    finally:
        keyring.set_keyring(before)


def test_the_environment_is_read_for_one_process_and_never_persisted(paths) -> None:  # type: ignore[no-untyped-def]
    env = {"TRII_KITE_API_KEY": KITE_KEY, "TRII_KITE_ACCESS_TOKEN": KITE_TOKEN}
    result = run_cli("doctor", paths=paths, env=env)
    line = next(x for x in result.stdout.splitlines() if x.split()[1:2] == ["credentials"])
    assert "kite: environment" in line and KITE_TOKEN not in result.stdout
    assert not any(
        KITE_TOKEN in p.read_text(errors="ignore") for p in paths.data_dir.rglob("*") if p.is_file()
    )


# -- pieces ------------------------------------------------------------------------------------------


def test_secrets_are_masked_in_every_log_record(caplog) -> None:  # type: ignore[no-untyped-def]
    credentials.register_secrets({"secret_key": "zz-very-secret-zz"})
    handler = logging.Handler()
    records: list[str] = []
    handler.emit = lambda r: records.append(logging.Formatter().format(r))  # type: ignore[method-assign]
    credentials.install_log_filter(handler)
    log = logging.getLogger("trii_term.test")
    log.addHandler(handler)
    try:
        log.warning("auth with %s failed", "zz-very-secret-zz")
        try:
            raise ValueError("bad secret zz-very-secret-zz")
        except ValueError:
            log.exception("boom")
    finally:
        log.removeHandler(handler)
    assert records and all("zz-very-secret-zz" not in r for r in records)
    assert "auth with **** failed" in records[0] and "bad secret ****" in records[1]


@pytest.mark.parametrize(
    ("login", "expires"),
    [
        (datetime(2026, 11, 21, 16, 15), datetime(2026, 11, 22, 0, 30, tzinfo=UTC)),  # afternoon: next 06:00
        (datetime(2026, 11, 21, 5, 59), datetime(2026, 11, 21, 0, 30, tzinfo=UTC)),  # before 06:00: today's
        (datetime(2026, 11, 21, 6, 0), datetime(2026, 11, 22, 0, 30, tzinfo=UTC)),
    ],
)
def test_a_kite_token_expires_at_six_ist(login, expires) -> None:  # type: ignore[no-untyped-def]
    assert kite_expiry(login) == expires


def test_the_kite_expiry_warning_comes_two_hours_before() -> None:
    creds = credentials.Credentials("kite", {"expires_at": "2026-11-22T00:30:00+00:00"}, "keyring")
    assert kite_expiry_warning(creds, datetime(2026, 11, 21, 20, 0, tzinfo=UTC)) == ""
    soon = kite_expiry_warning(creds, datetime(2026, 11, 21, 23, 0, tzinfo=UTC))
    assert "valid until 2026-11-22 06:00 IST, in 1h 30m" in soon
    gone = kite_expiry_warning(creds, datetime(2026, 11, 22, 1, 0, tzinfo=UTC))
    assert "expired" in gone and "trii-term login kite" in gone


def test_the_request_token_is_taken_from_a_redirect_url_or_as_typed() -> None:
    assert request_token_from("https://x.org/cb?action=login&request_token=abc123&status=success") == "abc123"
    assert request_token_from("  abc123  ") == "abc123"
    assert request_token_from("request_token=zz9") == "zz9"


def _exe() -> list[str]:
    from .conftest import trii_term_exe

    return trii_term_exe()
