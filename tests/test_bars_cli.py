"""`trii-term bars`: the chart's bars for scripts, through the real console script."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import datetime

from trii_term.paths import Paths, shipped_data_dir

from .conftest import FAST, run_cli, store_held_by_another_process


def _shipped(symbol: str) -> list[list[str]]:
    with gzip.open(shipped_data_dir() / "us_stocks_daily.csv.gz", "rt") as f:
        return [r for r in csv.reader(f) if r[0] == symbol]


def test_daily_table_matches_the_shipped_history(paths: Paths) -> None:
    result = run_cli("bars", "IBM", "--last", "3", paths=paths)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ts", "open", "high", "low", "close", "volume"]
    assert len(lines) == 4
    for line, row in zip(lines[1:], _shipped("IBM")[-3:], strict=True):
        ts, o, h, lo, c, v = line.split()
        assert ts == row[1]
        assert [float(x) for x in (o, h, lo, c)] == [float(x) for x in row[2:6]]
        assert float(v.replace(",", "")) == float(row[6])


def test_weekly_split_adjusted_json(paths: Paths) -> None:
    result = run_cli("bars", "AAPL", "--interval", "1W", "--adjusted", "--json", paths=paths)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["adjustment"] == "split-adjusted" and data["currency"] == "USD"
    assert data["splits"] == [{"date": "2000-06-21", "ratio": "2:1"}, {"date": "2005-02-28", "ratio": "2:1"}]
    bars = data["bars"]
    assert all(datetime.fromisoformat(b["ts"]).weekday() < 5 for b in bars)
    # no 50 % weekly gap across the 2005 split once adjusted
    week = next(i for i, b in enumerate(bars) if b["ts"] >= "2005-02-28")
    assert abs(bars[week]["open"] / bars[week - 1]["close"] - 1) < 0.1
    raw = json.loads(run_cli("bars", "AAPL", "--interval", "1W", "--json", paths=paths).stdout)["bars"]
    assert raw[week]["open"] / raw[week - 1]["close"] < 0.55


def test_csv_and_bad_input(paths: Paths) -> None:
    result = run_cli("bars", "MSFT", "--last", "2", "--csv", paths=paths)
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["ts", "open", "high", "low", "close", "volume"] and len(rows) == 3

    bad = run_cli("bars", "ZZZ", paths=paths)
    assert bad.returncode == 2 and "unknown symbol ZZZ" in bad.stderr and "AAPL" in bad.stderr
    bad = run_cli("bars", "AAPL", "--interval", "2h", paths=paths)
    assert bad.returncode == 2 and "use one of 1m, 5m, 15m, 1h, 1D, 1W" in bad.stderr
    none = run_cli("bars", "AAPL", "--interval", "5m", paths=paths)
    assert none.returncode == 1 and "trii-term record" in none.stderr
    assert "Traceback" not in bad.stderr + none.stderr


def test_intraday_bars_after_recording(paths: Paths) -> None:
    paths.config_file.write_text(FAST)
    rec = run_cli("record", "--symbols", "AAPL", "--seconds", "2", paths=paths)
    assert rec.returncode == 0, rec.stderr
    result = run_cli("bars", "AAPL", "--interval", "1m", "--json", paths=paths)
    assert result.returncode == 0, result.stderr
    bars = json.loads(result.stdout)["bars"]
    assert bars and bars[0]["ts"] == "2013-03-01T09:30:00-05:00"  # bar starts, exchange time
    assert all(
        b["low"] <= min(b["open"], b["close"]) <= max(b["open"], b["close"]) <= b["high"] for b in bars
    )
    five = json.loads(run_cli("bars", "AAPL", "--interval", "5m", "--json", paths=paths).stdout)["bars"]
    assert sum(b["volume"] for b in five) == sum(b["volume"] for b in bars)


def test_a_store_in_use_still_gives_daily_history(paths: Paths) -> None:
    run_cli("bars", "AAPL", "--last", "1", paths=paths)  # creates the store
    with store_held_by_another_process(paths.default_store):
        daily = run_cli("bars", "AAPL", "--last", "1", paths=paths)
        assert daily.returncode == 0 and "2013-03-01" in daily.stdout
        assert "in use by PID" in daily.stderr and "shipped daily history only" in daily.stderr
        intraday = run_cli("bars", "AAPL", "--interval", "5m", paths=paths)
        assert intraday.returncode == 1 and "in use by another process" in intraday.stderr
