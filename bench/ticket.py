"""Ticket submit to the fill shown in the blotter, on the paper broker (headless Textual).

The portfolio screen (blotter) is open under the order ticket; `trading.confirm = false`, so
Enter in the ticket sends. Timed from the ticket's Enter handler until the blotter's table
holds the new order as filled: the desk, the matcher, the ledger, the store writes, the journal, the
ticket closing and the blotter refreshing (Pilot's own key-press overhead, tens of ms, is left
out). Baseline, same run: one refresh of the blotter with nothing new.

Target: < 50 ms.

    python bench/ticket.py [--orders 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from textual.widgets import DataTable

from trii_term.app import TriiTermApp
from trii_term.config import parse_config
from trii_term.paths import resolve_paths
from trii_term.screens.portfolio import PortfolioScreen
from trii_term.screens.ticket import TicketScreen
from trii_term.session import Session

CONFIG = "[providers.replay]\nspeed = 60\n[trading]\nconfirm = false\n[risk]\nmax_position_pct = 100\n"


async def until(cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    end = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > end:
            raise TimeoutError("the bench waited too long")
        await asyncio.sleep(0.0005)


def shown_filled(blotter: DataTable, known: int) -> bool:
    """The blotter has the new order, newest first, as filled (its Status column)."""
    return blotter.row_count > known and str(blotter.get_row_at(0)[8]) == "filled"


async def run(n: int) -> tuple[list[float], list[float]]:
    folder = Path(tempfile.mkdtemp())
    paths = resolve_paths(config=folder / "c.toml", data_dir=folder / "data")
    app = TriiTermApp(Session(parse_config(CONFIG), paths, memory_fallback=True))
    submit, baseline = [], []
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: app.ready and app.session.quotes.get("AAPL") is not None, 20)
        await until(lambda: app.session.quotes.get("AAPL").ask is not None)  # type: ignore[union-attr]
        await pilot.press("o")
        await until(lambda: isinstance(app.screen, PortfolioScreen))
        blotter = app.screen.query_one("#orders", DataTable)
        for _ in range(n):
            result = await app.execute("buy 1 AAPL")
            try:
                await until(lambda: isinstance(app.screen, TicketScreen))
            except TimeoutError:
                raise SystemExit(f"no ticket: {result} on {app.screen}") from None
            await pilot.pause()
            known = len(app.session.broker.orders())  # type: ignore[union-attr]
            ticket = app.screen
            t0 = time.perf_counter()
            await ticket.review()  # what Enter runs
            await until(lambda k=known: shown_filled(blotter, k) and isinstance(app.screen, PortfolioScreen))
            submit.append(time.perf_counter() - t0)
            screen = app.screen
            t0 = time.perf_counter()
            screen.refresh_all()  # type: ignore[attr-defined]
            baseline.append(time.perf_counter() - t0)
        await pilot.press("escape")
        await app.session.stop()
    return submit, baseline


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--orders", type=int, default=20)
    args = ap.parse_args()
    submit, baseline = asyncio.run(run(args.orders))
    s, b = statistics.median(submit), statistics.median(baseline)
    print(f"{args.orders} market orders through the ticket, medians:")
    print(
        f"  Enter → fill in the blotter: {s * 1e3:.1f} ms [{min(submit) * 1e3:.1f}–{max(submit) * 1e3:.1f}]"
    )
    print(f"  baseline, one blotter refresh: {b * 1e3:.1f} ms  (submit = ×{s / b:.1f})")
    print(f"  target < 50 ms: {'met' if s < 0.05 else 'NOT met'}")


if __name__ == "__main__":
    main()
