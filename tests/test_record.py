"""The real `trii-term record` console script against loopback Alpaca and Kite fakes: refused
keys and tokens end it at once with the reason, its accounting adds up with backfilled bars,
and SIGHUP/SIGTERM (a terminal that went away) end it within 3 s with everything written."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trii_term.paths import Paths
from trii_term.store.db import Store

from .conftest import run_cli, trii_term_exe
from .fakes import kite_data as kd
from .fakes.alpaca_data import KEY, SECRET, AlpacaDataFake, AlpacaStreamFake, bar, quote, trade

MIN = 60_000_000_000
DAY = 86_400 * 10**9
STOP_SECONDS = 3.0  # what the issue allows from the signal to the exit
FAST = '[feed]\nsymbols = ["IBM"]\n[providers.replay]\nspeed = 300\n'


@pytest.fixture
def stream() -> Iterator[AlpacaStreamFake]:
    with AlpacaStreamFake() as fake:
        yield fake


@pytest.fixture
def data() -> Iterator[AlpacaDataFake]:
    with AlpacaDataFake() as fake:
        yield fake


def alpaca_config(paths: Paths, stream: AlpacaStreamFake, data: AlpacaDataFake) -> None:
    paths.config_file.write_text(
        '[feed]\nprovider = "alpaca"\nsymbols = ["AAPL"]\n'
        f'[providers.alpaca]\nfeed = "iex"\nstream_url = "{stream.url}"\ndata_url = "{data.url}"\n'
        f'[brokers.alpaca]\nurl = "{data.url}"\n'
    )


ALPACA_KEYS = {"TRII_ALPACA_KEY_ID": KEY, "TRII_ALPACA_SECRET_KEY": SECRET}


def no_claim_that_all_was_stored(result: subprocess.CompletedProcess[str]) -> None:
    assert "every tick" not in result.stdout and "Traceback" not in result.stderr + result.stdout


# --------------------------------------------------------------------------------------------
# refusals end the recording at once
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("refusal", "said"),
    [
        ((402, "auth failed"), "Alpaca refused the API key (402 auth failed)"),
        ((406, "connection limit exceeded"), "406 connection limit exceeded): close the other program"),
    ],
)
def test_refused_alpaca_keys_or_the_connection_limit_end_the_recording_with_the_reason(
    paths: Paths, stream: AlpacaStreamFake, data: AlpacaDataFake, refusal: tuple[int, str], said: str
) -> None:
    alpaca_config(paths, stream, data)
    stream.auth_error = refusal
    started = time.monotonic()
    result = run_cli("record", "--seconds", "60", paths=paths, env=ALPACA_KEYS)
    assert time.monotonic() - started < 20  # not the whole run: the refusal is final
    assert result.returncode == 1, result.stderr
    assert "trii-term record: the alpaca feed failed: Alpaca " in result.stderr and said in result.stderr
    assert len(stream.conns) == 1  # no retry with keys that will not work
    assert "nothing was recorded: the feed failed" in result.stdout
    no_claim_that_all_was_stored(result)


def test_wrong_alpaca_keys_from_the_environment_say_which_variables(
    paths: Paths, stream: AlpacaStreamFake, data: AlpacaDataFake
) -> None:
    alpaca_config(paths, stream, data)  # the fake answers wrong keys with 402
    env = {"TRII_ALPACA_KEY_ID": "PKWRONG", "TRII_ALPACA_SECRET_KEY": "wrong"}
    result = run_cli("record", "--seconds", "60", "--json", paths=paths, env=env)
    assert result.returncode == 1
    reason = json.loads(result.stdout)["feed_error"]
    assert reason.startswith("Alpaca refused the API key (402 auth failed)")
    assert "TRII_ALPACA_KEY_ID" in reason and "wrong" not in reason
    no_claim_that_all_was_stored(result)


def test_a_kite_token_refused_at_the_ticker_ends_the_recording_and_says_log_in_again(paths: Paths) -> None:
    with (
        kd.KiteTickerFake(api_key="kite-key", access_token="kite-token") as ticker,
        kd.KiteRestFake(api_key="kite-key", access_token="kite-token") as rest,
    ):
        ticker.reject_status = 403
        paths.config_file.write_text(
            '[feed]\nprovider = "kite"\nsymbols = ["NSE:INFY"]\n'
            f'[providers.kite]\nticker_url = "{ticker.url}"\nroot = "{rest.url}"\n'
        )
        env = {"TRII_KITE_API_KEY": "kite-key", "TRII_KITE_ACCESS_TOKEN": "kite-token"}
        result = run_cli("record", "--seconds", "60", paths=paths, env=env)
        assert result.returncode == 1, result.stderr
        assert "Kite refused the access token (HTTP 403" in result.stderr
        assert "TRII_KITE_ACCESS_TOKEN" in result.stderr and "`trii-term login kite`" in result.stderr
        assert ticker.connections == 0 and len(ticker.queries) == 1  # asked once, not again
        assert "kite-token" not in result.stderr
        no_claim_that_all_was_stored(result)


def test_an_invalid_kite_token_says_log_in_again_not_unknown_symbol(paths: Paths) -> None:
    """No instrument master could be downloaded with the token: the symbol is not "unknown"."""
    with (
        kd.KiteTickerFake(api_key="kite-key", access_token="kite-token") as ticker,
        kd.KiteRestFake(api_key="kite-key", access_token="kite-token") as rest,
    ):
        paths.config_file.write_text(
            '[feed]\nprovider = "kite"\nsymbols = ["NSE:INFY"]\n'
            f'[providers.kite]\nticker_url = "{ticker.url}"\nroot = "{rest.url}"\n'
        )
        env = {"TRII_KITE_API_KEY": "kite-key", "TRII_KITE_ACCESS_TOKEN": "yesterdays-token"}
        for args in (["--symbols", "NSE:INFY"], []):
            result = run_cli("record", *args, "--seconds", "60", paths=paths, env=env)
            assert result.returncode == 1, result.stderr
            assert "Kite refused the access token" in result.stderr
            assert "log in again: `trii-term login kite`" in result.stderr
            assert "unknown symbol" not in result.stderr and "not known" not in result.stderr
            no_claim_that_all_was_stored(result)


# --------------------------------------------------------------------------------------------
# accounting
# --------------------------------------------------------------------------------------------


def test_json_accounting_adds_up_with_backfilled_bars(
    paths: Paths, stream: AlpacaStreamFake, data: AlpacaDataFake
) -> None:
    alpaca_config(paths, stream, data)
    now = time.time_ns()
    minute = now - now % MIN - 10 * MIN
    data.publish("AAPL", "1Min", [(minute + i * MIN, 10 + i, 11 + i, 9 + i, 10.5 + i, 100) for i in range(5)])
    data.publish("AAPL", "1Day", [(now - now % DAY - (i + 1) * DAY, 5, 6, 4, 5.5, 1e6) for i in range(3)])
    data.snapshots["AAPL"] = {
        "dailyBar": {"t": "2024-03-01T05:00:00Z", "o": 10, "h": 12, "l": 9, "c": 11, "v": 1000},
        "prevDailyBar": {"t": "2024-02-29T05:00:00Z", "o": 9, "h": 10, "l": 8, "c": 9.5, "v": 900},
        "latestTrade": {"t": "2024-03-01T15:00:00Z", "p": 11.0, "s": 5},
    }
    proc = _start_recorder(paths, "--json", env=ALPACA_KEYS)
    try:
        _wait(lambda: _subscribed(stream, 1))
        # the stream's own minute bar starts where the backfill's first one does: one row
        stream.send([trade("AAPL", 11.0, 5, now), quote("AAPL", 10.9, 11.1, 1, 2, now)])
        stream.send([bar("AAPL", minute, 10, 11, 9, 10.5, 100)])
        _wait(lambda: len(data.bar_requests("1Day")) == 1)
        _the_client_read_all_that_was_sent(stream)
    finally:
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["received"] == summary["stored"] + summary["snapshots"] + summary["bars"] + summary["lost"]
    assert summary["stored"] == summary["ticks"] + summary["quotes"]
    assert (summary["ticks"], summary["quotes"], summary["snapshots"], summary["lost"]) == (1, 1, 1, 0)
    assert summary["bars"] >= 1 + 5 + 3  # the stream's, the recent minutes, the days (and the gap's)
    store = Store.open(paths.default_store, read_only=True)
    try:
        assert store.con.execute(
            "SELECT count(*) FROM bars WHERE symbol = 'AAPL' AND source = 'alpaca'"
        ).fetchone() == (5 + 3,)
    finally:
        store.close()


# --------------------------------------------------------------------------------------------
# signals
# --------------------------------------------------------------------------------------------


def _wait(condition: Any, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {condition}")
        time.sleep(0.02)


def _start_recorder(paths: Paths, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    cmd = [*trii_term_exe(), "--config", str(paths.config_file), "--data-dir", str(paths.data_dir), "record"]
    proc = subprocess.Popen(
        [*cmd, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert line.startswith("Recording"), line + proc.stderr.read()
    return proc


def _subscribed(stream: AlpacaStreamFake, connection: int) -> bool:
    return len(stream.conns) >= connection and stream.conns[connection - 1].subscribed["trades"] == ["AAPL"]


def _the_client_read_all_that_was_sent(stream: AlpacaStreamFake) -> None:
    """Frames are read in order and a dropped line is noticed only after every frame before
    it: once the client has connected again, it has read all that was sent before the drop."""
    connections = len(stream.conns)
    stream.drop()
    _wait(lambda: _subscribed(stream, connections + 1))


def _ticks_in_store(path: Path) -> int:
    """Open the store as another process would: it must be released."""
    store = Store.open(path)
    try:
        row = store.con.execute("SELECT count(*) FROM ticks").fetchone()
        return int(row[0]) if row else 0
    finally:
        store.close()


def _three_trades(stream: AlpacaStreamFake) -> None:
    _wait(lambda: _subscribed(stream, 1))
    now = time.time_ns()
    stream.send([trade("AAPL", 11.0 + i, 5, now + i) for i in range(3)])
    _the_client_read_all_that_was_sent(stream)


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP", "SIGTERM"])
def test_sighup_and_sigterm_end_the_recording_within_3_s_with_everything_written(
    paths: Paths, stream: AlpacaStreamFake, data: AlpacaDataFake, sig: signal.Signals
) -> None:
    alpaca_config(paths, stream, data)
    proc = _start_recorder(paths, "--json", env=ALPACA_KEYS)
    try:
        _three_trades(stream)
    finally:
        sent = time.monotonic()
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    assert proc.returncode == 0, err
    assert took < STOP_SECONDS, f"took {took:.2f}s"
    summary = json.loads(out)
    assert (summary["ticks"], summary["lost"]) == (3, 0)
    assert summary["received"] == summary["stored"] + summary["snapshots"] + summary["bars"]
    assert _ticks_in_store(paths.default_store) == 3


def test_a_terminal_that_goes_away_ends_the_recording_within_3_s_with_everything_written(
    paths: Paths, stream: AlpacaStreamFake, data: AlpacaDataFake
) -> None:
    """The recorder's terminal closes (tmux kill-session, a dropped ssh): the kernel sends it
    SIGHUP and every later write to the terminal fails (EIO). It still saves everything."""
    alpaca_config(paths, stream, data)
    master, slave = pty.openpty()

    def controlling_terminal() -> None:  # the child: a session of its own, the pty its terminal
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    cmd = [*trii_term_exe(), "--config", str(paths.config_file), "--data-dir", str(paths.data_dir), "record"]
    proc = subprocess.Popen(
        cmd,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        preexec_fn=controlling_terminal,
        env={**os.environ, **ALPACA_KEYS},
    )
    os.close(slave)
    seen = b""
    try:
        while b"Recording" not in seen:
            seen += os.read(master, 4096)
        _three_trades(stream)
    finally:
        sent = time.monotonic()
        os.close(master)  # the terminal goes away
    proc.wait(timeout=30)
    took = time.monotonic() - sent
    assert proc.returncode == 0
    assert took < STOP_SECONDS, f"took {took:.2f}s"
    assert _ticks_in_store(paths.default_store) == 3
    log = paths.log_file.read_text()
    assert "unwritten" not in log and "Traceback" not in log


def test_a_sighup_ignored_by_nohup_stays_ignored(paths: Paths) -> None:
    paths.config_file.write_text(FAST)
    cmd = [*trii_term_exe(), "--config", str(paths.config_file), "--data-dir", str(paths.data_dir), "record"]
    proc = subprocess.Popen(
        ["nohup", *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    )
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().startswith("Recording")
        proc.send_signal(signal.SIGHUP)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=1.0)  # nothing to wait for: it must go on recording
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
