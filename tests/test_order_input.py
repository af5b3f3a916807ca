"""Order input, fuzzed: every line is refused with a message or accepted as exactly what was typed
(the palette, the ticket and the CLI share one grammar). Found: `buy 1 AAPL lmt 1e400` in the
palette closed the workstation."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trii_term.commands import CommandError
from trii_term.commands.order_grammar import parse_draft
from trii_term.domain.orders import TIF, Bracket, OrderError, OrderRequest, OrderType, Side
from trii_term.paths import Paths
from trii_term.trading.order_line import order_number, request_line

from .conftest import FAST, run_cli

NASTY = [
    "1e400", "1E3", "nan", "NaN", "inf", "-inf", "Infinity", "1_0", "١٠", "１０", "٣.٥", "0x10", "-5",
    "0", "0.0", "00", "1.2.3", "1,00", "10,000,0", ".", "", " ", "1 0", "123456789012345678901234567890",
    "0.00000000001", "1e-400", "10\u200b", "²",
]  # fmt: skip


@pytest.mark.parametrize("text", NASTY)
def test_odd_numbers_are_refused_with_a_message_never_converted(text: str) -> None:
    if text.strip() == "":
        assert order_number("limit", text) is None  # empty: not given
        return
    with pytest.raises(OrderError) as err:
        order_number("limit", text)
    assert str(err.value).startswith("limit ")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        *(("28.10", D("28.10")), ("1,000", D(1000)), ("1,000.5", D("1000.5")), (".5", D("0.5"))),
        *(("007", D(7)), ("+5", D(5)), ("10,00,000", D(1000000))),
    ],
)
def test_numbers_a_trader_types_mean_exactly_what_they_say(text: str, value: D) -> None:
    assert order_number("limit", text) == value and str(order_number("limit", text)) == str(value)


WORDS = ["lmt", "stp", "trail", "trail%", "tp", "sl", "day", "gtc", "ioc", "fok", "AAPL", "MSFT", "x"]


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.one_of(st.sampled_from(WORDS + NASTY), st.text(max_size=6)), max_size=8))
def test_any_line_is_refused_cleanly_or_taken_as_typed(tokens: list[str]) -> None:
    tokens = [t for t in tokens if t.split() == [t]]  # the palette splits on white space
    try:
        draft = parse_draft(Side.BUY, tokens)
        request = draft.request()
    except (CommandError, OrderError) as exc:
        assert str(exc)  # says what is wrong
        return
    # accepted: every number is exactly the one typed
    typed = dict(itertools.pairwise(tokens))
    for word, value in (("lmt", request.limit_price), ("stp", request.stop_price), ("tp", _tp(request))):
        if value is not None:
            assert value == D(typed[word].replace(",", ""))
    assert request.qty == D(draft.qty.replace(",", "")) and request.qty > 0


def _tp(r: OrderRequest) -> D | None:
    return r.bracket.take_profit if r.bracket else None


orders = st.builds(
    lambda side, qty, kind, lim, stp, tif, tp: _valid(side, qty, kind, lim, stp, tif, tp),
    st.sampled_from(Side),
    st.integers(1, 10**9).map(D),
    st.sampled_from((OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT)),
    st.decimals(min_value=D("0.01"), max_value=D("99999.99"), places=2),
    st.decimals(min_value=D("0.01"), max_value=D("99999.99"), places=2),
    st.sampled_from(TIF),
    st.booleans(),
)


def _valid(side, qty, kind, lim, stp, tif, tp) -> OrderRequest | None:  # type: ignore[no-untyped-def]
    fields: dict[str, object] = {}
    if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        fields["limit_price"] = lim
    if kind in (OrderType.STOP, OrderType.STOP_LIMIT):
        fields["stop_price"] = stp
    if tif in (TIF.IOC, TIF.FOK) and kind not in (OrderType.MARKET, OrderType.LIMIT):
        tif = TIF.DAY
    if tp and kind is OrderType.LIMIT and tif in (TIF.DAY, TIF.GTC):
        fields["bracket"] = Bracket(lim + side.sign, None) if lim + side.sign > 0 else None
    r = OrderRequest("AAPL", side, qty, kind, tif, **fields)  # type: ignore[arg-type]
    try:
        r.check()
    except OrderError:
        return None
    return r


@settings(max_examples=300, deadline=None)
@given(orders)
def test_formatting_then_parsing_an_order_gives_it_back(request: OrderRequest | None) -> None:
    if request is None:
        return
    side, *tokens = request_line(request).split()
    assert parse_draft(Side(side), tokens).request() == request


def test_a_price_given_twice_is_refused() -> None:
    with pytest.raises(CommandError, match="given twice"):
        parse_draft(Side.BUY, ["1", "AAPL", "lmt", "10", "lmt", "11"])


# -- the same refusals, through the real console script (exit 2, one sentence, no traceback) --------


def test_the_cli_refuses_odd_numbers_with_exit_2_and_starts_nothing(paths: Paths) -> None:
    paths.config_file.write_text(FAST)
    for args in (
        ("order", "buy", "1", "AAPL", "lmt", "1e400"),
        ("order", "buy", "123456789012345678901234567890", "AAPL"),
        ("order", "buy", "١٠", "AAPL"),
        ("order", "buy", "1_0", "AAPL", "--yes"),
        ("order", "sell", "1", "AAPL", "--limit", "nan", "--yes"),
        ("order", "buy", "1", "AAPL", "--stop", "inf"),
        ("order", "buy", "1", "AAPL", "tp", "-3"),
        ("order", "buy", "1", "AAPL", "lmt", "10", "lmt", "11"),
        ("replace", "P000001", "qty", "1e400"),
    ):
        out = run_cli(*args, paths=paths)
        assert out.returncode == 2, (args, out.stderr)
        assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert json.loads(run_cli("journal", "--json", paths=paths).stdout) == []  # nothing was tried


@pytest.mark.parametrize("word", ["nan", "NaN", "inf", "-inf", "Infinity", "∞"])
def test_a_non_number_in_the_quantitys_place_is_a_number_refused_not_a_symbol(word: str) -> None:
    with pytest.raises(OrderError, match=r"quantity .*number"):
        parse_draft(Side.BUY, [word, "AAPL"]).request()


@pytest.mark.parametrize(
    ("tokens", "says"),
    [
        (["1", "AAPL", "lmt"], "lmt needs a price after it, e.g. lmt 28.10"),
        (["1", "AAPL", "lmt", "gtc"], "lmt needs a price after it, e.g. lmt 28.10"),
        (["1", "AAPL", "stp", "tp", "450"], "stp needs a price after it, e.g. stp 28.10"),
        (["1", "AAPL", "trail"], "trail needs an amount after it, e.g. trail 2.50"),
        (["1", "AAPL", "trail%"], "trail% needs a percent after it, e.g. trail% 1.5"),
        (["1", "AAPL", "lmt", "430", "sl"], "sl needs a price after it, e.g. sl 28.10"),
    ],
)
def test_a_price_word_without_its_price_says_what_to_type(tokens: list[str], says: str) -> None:
    """Found: `lmt gtc` said "limit 'gtc': is not a number", `trail%` asked for a price."""
    with pytest.raises(CommandError) as refused:
        parse_draft(Side.BUY, tokens)
    assert str(refused.value) == says


@pytest.mark.parametrize("words", [["BUY"], ["order", "BUY"], ["Order", "buy"]])
def test_the_side_and_the_words_are_read_in_any_case(words: list[str]) -> None:
    """The palette takes the CLI's words too (`order buy 5 AAPL`; found: "Unknown command")."""
    from trii_term.commands import core_registry

    found = core_registry().match([*words, "5", "aapl", "LMT", "430", "GTC"])
    assert found is not None and found[0].id == "trade.buy"
    request = parse_draft(Side.BUY, found[1]).request()
    assert (request.side, request.qty, request.symbol, request.limit_price, request.tif) == (
        Side.BUY, D(5), "AAPL", D(430), TIF.GTC,
    )  # fmt: skip
    sell = core_registry().match(["order", "SELL", "5", "AAPL"])
    assert sell is not None and sell[0].id == "trade.sell"


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ("qty", "qty needs a number after it, e.g. order replace P000007 qty 120"),
        ("qty lmt 5", "qty needs a number after it, e.g. order replace P000007 qty 120"),
        ("lmt", "lmt needs a price after it, e.g. order replace P000007 lmt 28.15"),
        ("qty 10 stp", "stp needs a price after it, e.g. order replace P000007 stp 28.15"),
    ],
)
def test_a_change_without_its_value_says_what_to_type(changes: str, says: str) -> None:
    """Found: `order replace P000001 qty` said "'qty' is not understood"."""
    from trii_term.commands.trade import parse_changes

    with pytest.raises(CommandError) as refused:
        parse_changes(changes, order_id="P000007")
    assert str(refused.value) == says
