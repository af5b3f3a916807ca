"""Config: every key optional, unknown keys and wrong types rejected with key and line."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from trii_term.config import Config, ConfigError, load_config, parse_config

from .conftest import run_cli


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    cfg = load_config(tmp_path / "nope.toml")
    assert cfg == Config()
    assert cfg.feed.provider == "replay"
    assert cfg.feed.symbols == ("AAPL", "MSFT", "IBM", "GOOG")
    assert cfg.replay.date is None and cfg.replay.speed == 60 and cfg.replay.seed == 1


def test_the_documented_keys_parse() -> None:
    cfg = parse_config(
        """
        [feed]
        provider = "replay"
        symbols  = ["aapl", "MSFT", "IBM", "GOOG", "AAPL"]

        [providers.replay]
        date  = "2013-03-01"
        speed = 60
        seed  = 7

        [store]
        path = "/somewhere/trii.duckdb"

        [keys]
        "watch.remove" = "x, delete"
        """
    )
    assert cfg.feed.symbols == ("AAPL", "MSFT", "IBM", "GOOG")  # upper-cased, de-duplicated
    assert cfg.replay.date == date(2013, 3, 1)
    assert cfg.replay.speed == 60.0 and cfg.replay.seed == 7
    assert cfg.store.path == Path("/somewhere/trii.duckdb")
    assert cfg.keys == {"watch.remove": "x,delete"}


def test_toml_date_literal_is_accepted() -> None:
    assert parse_config("[providers.replay]\ndate = 2012-06-01\n").replay.date == date(2012, 6, 1)


@pytest.mark.parametrize(
    ("text", "key", "line", "words"),
    [
        ("[feed]\nsymbol = ['AAPL']\n", "feed.symbol", 2, "did you mean 'feed.symbols'"),
        ("[feeds]\nprovider = 'replay'\n", "feeds", 1, "did you mean 'feed'"),
        ("\n\n[providers.replay]\nspeed = 'fast'\n", "providers.replay.speed", 4, "must be a number"),
        ("[providers.replay]\nspeed = -1\n", "providers.replay.speed", 2, "greater than 0"),
        ("[providers.replay]\nseed = 1.5\n", "providers.replay.seed", 2, "must be an integer"),
        ("[providers.replay]\ndate = 'yesterday'\n", "providers.replay.date", 2, "must be a date"),
        ("[feed]\nprovider = 'Yahoo Finance'\n", "feed.provider", 2, "must be a provider name"),
        ("[feed]\nsymbols = 'AAPL'\n", "feed.symbols", 2, "must be an array"),
        ("[feed]\nsymbols = ['AAPL', 3]\n", "feed.symbols", 2, "only strings"),
        ("[store]\npath = 5\n", "store.path", 2, "file path"),
        ("feed = 3\n", "feed", 1, "must be a table"),
        ("[ui]\nstale_after = true\n", "ui.stale_after", 2, "must be a number"),
    ],
)
def test_errors_name_the_key_and_line(text: str, key: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("cfg.toml"))
    err = info.value
    assert err.key == key
    assert err.line == line
    assert words in str(err)
    assert str(err).startswith(f"cfg.toml, line {line}: {key}:")


def test_syntax_error_has_a_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[feed]\nsymbols = ["AAPL"\nprovider = 1\n', Path("c.toml"))
    assert info.value.line is not None
    assert "not valid TOML" in str(info.value)


def test_multiline_arrays_do_not_confuse_line_numbers() -> None:
    text = '[feed]\nsymbols = [\n  "AAPL",\n  "MSFT",\n]\nprovidr = "replay"\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert info.value.line == 6


def test_cli_exits_2_on_a_bad_config(paths, write_config) -> None:  # type: ignore[no-untyped-def]
    paths.config_file.write_text("[feed]\nsymbls = ['AAPL']\n")
    result = run_cli("record", "--seconds", "1", paths=paths)
    assert result.returncode == 2
    assert "line 2" in result.stderr and "feed.symbls" in result.stderr
    assert "Traceback" not in result.stderr


def test_env_var_points_at_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trii_term.paths import resolve_paths

    monkeypatch.setenv("TRII_TERM_CONFIG", str(tmp_path / "x.toml"))
    monkeypatch.setenv("TRII_TERM_DATA_DIR", str(tmp_path / "d"))
    p = resolve_paths()
    assert p.config_file == tmp_path / "x.toml" and p.config_source == "$TRII_TERM_CONFIG"
    assert p.data_dir == tmp_path / "d" and p.default_store == tmp_path / "d" / "trii.duckdb"
    p2 = resolve_paths(config=tmp_path / "y.toml", data_dir=tmp_path / "e")
    assert p2.config_source == "--config" and p2.data_dir_source == "--data-dir"


async def test_an_uninstalled_provider_is_reported_with_its_line(paths) -> None:  # type: ignore[no-untyped-def]
    from trii_term.session import Session

    cfg = parse_config("[feed]\n\nprovider = 'iqfeed'\n", Path("c.toml"))
    with pytest.raises(ConfigError) as info:
        Session(cfg, paths)
    assert info.value.key == "feed.provider" and info.value.line == 3
    assert "no market-data provider named 'iqfeed' is installed" in str(info.value)
    assert "available: replay" in str(info.value)


def test_cli_names_an_uninstalled_provider(paths) -> None:  # type: ignore[no-untyped-def]
    paths.config_file.write_text("[feed]\nprovider = 'iqfeed'\n")
    result = run_cli("record", "--seconds", "1", paths=paths)
    assert result.returncode == 2
    assert "line 2" in result.stderr and "Traceback" not in result.stderr
    assert "no market-data provider named 'iqfeed'" in result.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "100001"])
def test_replay_speed_must_be_a_finite_sane_number(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f"[providers.replay]\nspeed = {value}\n")
    assert info.value.key == "providers.replay.speed" and info.value.line == 2


def test_at_end_is_loop_or_stop() -> None:
    assert parse_config('[providers.replay]\nat_end = "stop"\n').replay.at_end == "stop"
    with pytest.raises(ConfigError, match="loop, stop"):
        parse_config('[providers.replay]\nat_end = "wrap"\n')


def test_trading_sections_parse_exactly_and_refuse_inexact_money() -> None:
    from decimal import Decimal

    text = (
        '[brokers.paper]\nstarting_cash = "250000.50"\ncurrency = "USD"\npartial_fills = true\n'
        "[trading]\nconfirm = false\n"
        '[risk]\nmax_order_notional = "50000"\nmax_position_pct = 12.5\nrestricted = ["gme"]\n'
        '[fees.US]\nper_share = "0.0035"\nmin = "0.35"\n'
    )
    config = parse_config(text)
    assert config.brokers.paper.starting_cash == Decimal("250000.50") and config.brokers.paper.partial_fills
    assert config.trading.confirm is False
    assert config.risk.max_order_notional == Decimal("50000") and config.risk.max_position_pct == Decimal(
        "12.5"
    )
    assert config.risk.restricted == frozenset({"GME"}) and config.risk.daily_loss_limit == Decimal("5000")
    assert config.fees["US"].per_share == Decimal("0.0035") and config.fees["US"].minimum == Decimal("0.35")
    with pytest.raises(ConfigError, match=r'line 2: brokers.paper.starting_cash: .*string \("1000.5"\)'):
        parse_config("[brokers.paper]\nstarting_cash = 1000.5\n")
    with pytest.raises(ConfigError, match=r"fees\.EU"):
        parse_config('[fees.EU]\nmin = "1"\n')
