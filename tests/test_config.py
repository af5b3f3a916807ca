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
        ("[providers.replay]\nspeed = -1\n", "providers.replay.speed", 2, "from 0.01 to 100,000 (got -1)"),
        ("[providers.replay]\nseed = 1.5\n", "providers.replay.seed", 2, "must be a whole number"),
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


# -- numbers out of range or odd: refused with the key and its line (issue 11) ----------------

# (table, key, TOML value as written): each must be refused, never read as something else
ODD_NUMBERS = [
    ("providers.replay", "speed", "1e400"),
    ("providers.replay", "speed", "0.001"),
    ("providers.replay", "speed", "1" * 30),
    ("providers.replay", "speed", "1" + "0" * 400),  # an int with no float: was OverflowError
    ("providers.replay", "seed", "-1"),
    ("providers.replay", "seed", "1" * 30),
    ("ui", "stale_after", "1e400"),
    ("ui", "stale_after", "nan"),
    ("ui", "stale_after", "-inf"),
    ("ui", "stale_after", "1" * 30),
    ("ui", "stale_after", "1" + "0" * 400),
    ("ai", "max_tokens", "1" * 30),
    ("ai", "temperature", "nan"),
    ("ai", "temperature", "1" + "0" * 400),
    ("brokers.paper", "starting_cash", '"1e400"'),  # Decimal("1e400") is finite: was accepted
    ("brokers.paper", "starting_cash", '"1E+3"'),
    ("brokers.paper", "starting_cash", '"١٠"'),  # Decimal reads Arabic-Indic digits: was 10
    ("brokers.paper", "starting_cash", '"１０"'),
    ("brokers.paper", "starting_cash", '"1_0"'),
    ("brokers.paper", "starting_cash", '"Infinity"'),
    ("brokers.paper", "starting_cash", '"NaN"'),
    ("brokers.paper", "starting_cash", '"' + "9" * 30 + '"'),
    ("brokers.paper", "starting_cash", "9" * 30),
    ("brokers.paper", "starting_cash", '"0"'),
    ("brokers.paper", "starting_cash", '"100.005"'),
    ("brokers.paper", "starting_cash", '"-5"'),
    ("brokers.paper", "starting_cash", "1e400"),
    ("risk", "max_order_notional", '"1e400"'),
    ("risk", "max_order_notional", '"0"'),
    ("risk", "daily_loss_limit", '"1_000"'),
    ("risk", "daily_loss_limit", '"2000000000000"'),
    ("risk", "max_order_qty", '"1e400"'),
    ("risk", "max_order_qty", "1" * 30),
    ("risk", "max_order_qty", '"١٠"'),
    ("risk", "max_position_pct", "1e-400"),  # a TOML float that is 0.0: was accepted as 0
    ("risk", "max_position_pct", "nan"),
    ("risk", "max_position_pct", "0"),
    ("risk", "max_position_pct", '"1e1"'),
    ("risk", "price_band_pct", "100.5"),
    ("risk", "price_band_pct", "inf"),
    ("fees.US", "per_share", '"1e400"'),
    ("fees.US", "per_share", '"-0.005"'),
    ("fees.US", "min", '"١"'),
    ("fees.US", "min", '"10001"'),
    ("fees.NSE", "pct", "nan"),
    ("fees.NSE", "pct", "50"),
]


@pytest.mark.parametrize(("table", "key", "value"), ODD_NUMBERS)
def test_odd_or_out_of_range_numbers_are_refused_with_the_key_and_line(
    table: str, key: str, value: str
) -> None:
    text = f"# trii-term\n\n[{table}]\n{key} = {value}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("cfg.toml"))
    err = info.value
    assert (err.key, err.line) == (f"{table}.{key}", 4)
    assert str(err).startswith(f"cfg.toml, line 4: {table}.{key}: ")


def test_numbers_at_the_documented_bounds_are_read_exactly() -> None:
    from decimal import Decimal

    config = parse_config(
        "[providers.replay]\nspeed = 0.01\nseed = 4294967295\n"
        "[ui]\nstale_after = 86400\n"
        "[ai]\nmax_tokens = 64000\ntemperature = 0\n"
        '[brokers.paper]\nstarting_cash = "1,000,000,000,000"\n'
        '[risk]\nmax_order_notional = 1000000\ndaily_loss_limit = "0.01"\nmax_order_qty = "0.000001"\n'
        'max_position_pct = 100\nprice_band_pct = "0.0001"\n'
        '[fees.US]\nper_share = "0"\nmin = 10000\npct = 10\n'
        '[fees.NSE]\npct = 0.0125\nmin = "20.00"\n'
    )
    assert config.replay.speed == 0.01 and config.replay.seed == 2**32 - 1
    assert config.ui.stale_after == 86400.0 and type(config.ui.stale_after) is float
    assert config.ai.max_tokens == 64000 and config.ai.temperature == 0.0
    assert config.brokers.paper.starting_cash == Decimal(10) ** 12
    assert config.risk.max_order_notional == Decimal(1_000_000)
    assert config.risk.daily_loss_limit == Decimal("0.01")
    assert config.risk.max_order_qty == Decimal("0.000001")
    assert config.risk.max_position_pct == 100 and config.risk.price_band_pct == Decimal("0.0001")
    us, nse = config.fees["US"], config.fees["NSE"]
    assert (us.per_share, us.minimum, us.pct) == (0, 10000, 10)
    assert nse.pct == Decimal("0.0125") and str(nse.pct) == "0.0125"  # the float as written, exactly
    assert str(nse.minimum) == "20.00"


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ('[brokers.paper]\nstarting_cash = "1e400"\n', "brokers.paper.starting_cash", "no exponents"),
        ('[brokers.paper]\nstarting_cash = "١٠"\n', "brokers.paper.starting_cash", "use the digits 0-9"),
        ('[brokers.paper]\nstarting_cash = "1_0"\n', "brokers.paper.starting_cash", "no underscores"),
        ("[brokers.paper]\nstarting_cash = " + "9" * 30 + "\n", "brokers.paper.starting_cash",
         "at most 1,000,000,000,000"),
        ("[providers.replay]\nspeed = 1e400\n", "providers.replay.speed", "(got 1e400)"),
        ("[ui]\nstale_after = nan\n", "ui.stale_after", "(got nan)"),
        ("[risk]\nmax_position_pct = 1e-400\n", "risk.max_position_pct", "no exponents"),
    ],
)  # fmt: skip
def test_the_refusal_says_what_was_written_and_what_is_allowed(text: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert info.value.key == key and words in str(info.value)
    assert "Allowed" in str(info.value) or "from" in str(info.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("a = " + "[" * 5000 + "]" * 5000 + "\n", None),  # tomllib: RecursionError
        ("[feed]\nsymbols = " + "[" * 5000 + "]" * 5000 + "\n", None),
        ('[store]\npath = "~nobody-here-at-all/trii.duckdb"\n', "store.path"),  # expanduser: RuntimeError
        ('[store]\npath = "/tmp/a\\u0000b"\n', "store.path"),
        ("[providers.replay]\ndate = 2013-03-01T10:00:00\n", "providers.replay.date"),  # a datetime
        ('[ai]\nmodel = "claude-sonnet-4-6\\n"\n', "ai.model"),
        ('[feed]\nprovider = "replay\\n"\n', "feed.provider"),
        ('[feed]\nsymbols = ["ß"]\n', "feed.symbols"),  # "ß".upper() == "SS"
        ('[feed]\nsymbols = ["ﬁ"]\n', "feed.symbols"),  # "ﬁ".upper() == "FI"
        ('[ai]\nbase_url = "http://127.0.0.1:9/a b"\n', "ai.base_url"),
    ],
)
def test_odd_values_are_config_errors_not_crashes(text: str, key: str | None) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("cfg.toml"))
    if key is not None:
        assert info.value.key == key and info.value.line is not None


@pytest.mark.parametrize(
    ("command", "text", "key", "line"),
    [
        (
            "orders",
            '[feed]\nsymbols = ["AAPL"]\n\n[risk]\nmax_order_qty = "1e400"\n',
            "risk.max_order_qty",
            5,
        ),
        ("doctor", '[brokers.paper]\nstarting_cash = "١٠٠٠٠٠"\n', "brokers.paper.starting_cash", 2),
        ("orders", "[ui]\nstale_after = nan\n", "ui.stale_after", 2),
        ("doctor", "a = " + "[" * 5000 + "]" * 5000 + "\n", None, None),
    ],
)
def test_cli_refuses_a_bad_number_in_the_config_with_exit_2(  # type: ignore[no-untyped-def]
    paths, command: str, text: str, key: str | None, line: int | None
) -> None:
    paths.config_file.write_text(text, encoding="utf-8")
    result = run_cli(command, paths=paths)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    said = result.stderr + result.stdout
    if key is not None:
        assert f"line {line}: {key}:" in said


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('[store]\npath = "/tmp/[x"\n[ai]\nmax_tokens = 0\n', 4),  # a [ in a string was an open array
        ("[store]\npath = '/tmp/[[x'\n\n[ai]\nmax_tokens = 0\n", 5),
        ('[store]\npath = """/tmp/\n[ai]\nmax_tokens = 1"""\n[ai]\nmax_tokens = 0\n', 6),
        ("[feed]\nprovider = [\n  'alpaca', # ]]\n  'kite',\n]\n[ai]\nmax_tokens = 0\n", 7),
        ('[store]\npath = "/tmp/\u2028x"\n[ai]\nmax_tokens = 0\n', 4),  # not a line break in TOML
        ("[ai]\r\nmodel = 'claude-haiku-4-5'\r\nmax_tokens = 0\r\n", 3),
    ],
)
def test_strings_and_values_over_lines_do_not_move_the_line_of_a_key(text: str, line: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert (info.value.key, info.value.line) == ("ai.max_tokens", line)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_float_that_is_not_a_number_is_refused_without_advising_a_string_of_it(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f"[risk]\nmax_order_qty = {value}\n")
    text = str(info.value)
    assert "max_order_qty" in text and "not a number" in text and "written as a string" not in text


@pytest.mark.parametrize(
    "text",
    [
        "[risk]\nmax_order_qty = 1_0\n",
        "[providers.replay]\nspeed = 6_0  # fast\n",
        "[risk]\nmax_order_qty = 100_000\n",  # (the module's docstring says so)
    ],
)
def test_a_number_with_an_underscore_is_refused_with_its_key_and_line(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert info.value.line == 2 and "no underscores" in str(info.value)


def test_underscores_inside_strings_and_keys_are_fine() -> None:
    cfg = parse_config('[feed]\nsymbols = ["BRK_B"]\n[keys]\n"watch.add" = "ctrl+a"\n')
    assert cfg.feed.symbols == ("BRK_B",) or list(cfg.feed.symbols) == ["BRK_B"]
