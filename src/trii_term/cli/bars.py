"""`trii-term bars SYMBOL`: the chart's bars for scripts, as a table, JSON or CSV.

The same bars the chart draws: ticks in the store merged with imported daily history, weekly
from daily, optionally split-adjusted. Times are bar starts; intraday ones carry the exchange's
UTC offset, daily and weekly ones are trading dates.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import sys
from datetime import datetime
from typing import TYPE_CHECKING, TextIO

from trii_term.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Subcommands,
    print_json,
    store_holder,
    with_config,
)

if TYPE_CHECKING:
    from trii_term.config import Config
    from trii_term.paths import Paths

log = logging.getLogger(__name__)


def register(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    bars = sub.add_parser(
        "bars",
        parents=[common],
        help="print a symbol's bars (the chart's data) for scripts",
        description="Print OHLCV bars from the store: ticks recorded by the feed merged with the "
        "imported daily history. Intraday times are bar starts in exchange time with its UTC "
        "offset; daily and weekly bars are trading dates.",
    )
    bars.add_argument("symbol", metavar="SYMBOL")
    bars.add_argument("--interval", default="1D", metavar="IV", help="1m, 5m, 15m, 1h, 1D (default) or 1W")
    bars.add_argument("--last", type=int, metavar="N", help="only the newest N bars")
    bars.add_argument(
        "--adjusted", action="store_true", help="split-adjusted daily/weekly prices (default: as traded)"
    )
    bars.add_argument("--source", metavar="NAME", help="only ticks from this provider (e.g. replay)")
    form = bars.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON object with the bars")
    form.add_argument("--csv", action="store_true", help="CSV with a header row")
    bars.set_defaults(run=with_config(_bars))


def _bars(args: argparse.Namespace, config: Config, paths: Paths) -> int:
    return run_bars(
        config,
        paths,
        args.symbol,
        interval=args.interval,
        last=args.last,
        fmt="json" if args.json else "csv" if args.csv else "table",
        adjusted=args.adjusted,
        source=args.source,
    )


def run_bars(
    config: Config,
    paths: Paths,
    symbol: str,
    *,
    interval: str = "1D",
    last: int | None = None,
    fmt: str = "table",
    adjusted: bool = False,
    source: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    from trii_term.charting.series import load_bars
    from trii_term.charting.spec import INTRADAY, SpecError, parse_interval
    from trii_term.domain import MARKETS, US, normalize_symbol
    from trii_term.paths import shipped_data_dir
    from trii_term.store.db import Store, StoreError, StoreLocked
    from trii_term.store.history import import_shipped_history, load_instruments

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        interval = parse_interval(interval)
    except SpecError as exc:
        print(f"trii-term bars: {exc}", file=err)
        return EXIT_USAGE
    if last is not None and last < 1:
        print("trii-term bars: --last must be 1 or more", file=err)
        return EXIT_USAGE
    symbol = normalize_symbol(symbol)

    path = config.store.path or paths.default_store
    memory = False
    try:
        store = Store.open(path)
    except StoreLocked as exc:
        print(
            f"trii-term bars: the store is in use by {store_holder(exc)}; showing the shipped daily "
            "history only (intraday bars need the store: close the workstation, or ask it with the chart).",
            file=err,
        )
        store = Store.open(None)
        memory = True
    except StoreError as exc:
        print(f"trii-term bars: {exc}", file=err)
        return EXIT_FAILED
    try:
        import_shipped_history(store.con, shipped_data_dir())
        instruments = load_instruments(store.con)
        inst = instruments.get(symbol)
        if inst is None:
            known = ", ".join(sorted(instruments)) or "none"
            print(f"trii-term bars: unknown symbol {symbol}. Known: {known}", file=err)
            return EXIT_USAGE
        market = MARKETS.get(inst.market, US)
        if source:
            known = [
                r[0] for r in store.con.execute("SELECT DISTINCT source FROM ticks ORDER BY 1").fetchall()
            ]
            if source not in known:
                listing = ", ".join(known) or "none yet"
                print(f"trii-term bars: no ticks from source {source!r}; sources stored: {listing}", file=err)
                return EXIT_USAGE
        loaded = load_bars(
            store.con,
            symbol,
            interval,
            market,
            adjusted=adjusted,
            sources=[source] if source else None,
            last=last if last is not None else 10**9,
        )
    finally:
        store.close()

    bars = loaded.bars
    if len(bars) == 0:
        why = (
            "intraday bars come from recorded ticks: run the workstation or `trii-term record` first"
            if interval in INTRADAY
            else "the store has no daily history for it"
        )
        if memory and interval in INTRADAY:
            why = "the store is in use by another process"
        print(f"trii-term bars: no {interval} bars for {symbol} ({why}).", file=err)
        return EXIT_FAILED
    if loaded.note and fmt == "table":
        print(f"# {symbol} {interval} {loaded.note}", file=err)

    intraday = interval in INTRADAY
    decimals = max(inst.price_decimals, 2)

    def when(ts) -> str:
        dt: datetime = ts.astype("datetime64[us]").astype(datetime)
        if intraday:
            return dt.replace(tzinfo=market.tz).isoformat()
        return dt.date().isoformat()

    def number(x: float) -> float | None:
        return round(float(x), 6) if math.isfinite(x) else None

    def whole(x: float) -> float | int | None:
        """Volumes are share counts: whole numbers print as integers."""
        if not math.isfinite(x):
            return None
        return int(x) if float(x).is_integer() else round(float(x), 6)

    rows = [
        (
            when(bars.ts[i]),
            number(bars.open[i]),
            number(bars.high[i]),
            number(bars.low[i]),
            number(bars.close[i]),
            whole(bars.volume[i]),
        )
        for i in range(len(bars))
    ]
    names = ("ts", "open", "high", "low", "close", "volume")
    if fmt == "json":
        payload = {
            "symbol": symbol,
            "interval": interval,
            "currency": inst.currency,
            "timezone": market.tz_name,
            "adjustment": "split-adjusted" if adjusted and not intraday else "unadjusted",
            "splits": [
                {"date": s.day.isoformat(), "ratio": f"{s.ratio.numerator}:{s.ratio.denominator}"}
                for s in loaded.splits
            ],
            "bars": [dict(zip(names, r, strict=True)) for r in rows],
        }
        print_json(payload, out)
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(rows)
    else:

        def places(x: float | None) -> int:
            text = f"{x:.6f}".rstrip("0") if x is not None else ""
            return len(text.split(".")[1]) if "." in text else 0

        decimals = max([decimals, *(places(v) for r in rows for v in r[1:5])])
        price_w = max(len(f"{r[2]:,.{decimals}f}") for r in rows if r[2] is not None) if rows else 8
        ts_w = max(len(r[0]) for r in rows)
        header = f"{'ts':<{ts_w}}  " + "  ".join(f"{n:>{price_w}}" for n in names[1:5]) + f"  {'volume':>14}"
        print(header, file=out)
        for r in rows:
            prices = "  ".join(
                f"{v:>{price_w},.{decimals}f}" if v is not None else f"{'—':>{price_w}}" for v in r[1:5]
            )
            vol = f"{r[5]:>14,.0f}" if r[5] is not None else f"{'—':>14}"
            print(f"{r[0]:<{ts_w}}  {prices}  {vol}", file=out)
    return EXIT_OK
