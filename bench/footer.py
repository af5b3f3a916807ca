"""A change of bindings to the new key hints on screen: trii-term's footer against Textual's.

Every focus change, screen and command state changes the keys in force, and the footer must show
the new ones. Two apps, alike but for the footer (trii-term's `KeysFooter`; Textual's `Footer`,
the baseline), each with 14 hints on one widget and 7 on the other, as the workstation has. Focus
moves between the two widgets; timed from the focus call until the last line of the screen
shows the other widget's first hint (what the compositor would send). The two apps take turns,
one focus change each, so both see the same machine.

    python bench/footer.py [--changes 150]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Footer

from trii_term.widgets.keys_footer import KeysFooter


class Pane(Widget, can_focus=True):
    DEFAULT_CSS = "Pane { height: 1fr; }"

    def action_noop(self, key: str) -> None:
        pass


def pane_class(name: str, keys: str) -> type[Pane]:
    """A focusable pane with a hint per key: `a Left0`, `b Left1`, …"""
    bindings = [Binding(k, f"noop('{k}')", f"{name.title()}{i}") for i, k in enumerate(keys)]
    return type(f"Pane{name.title()}", (Pane,), {"BINDINGS": bindings})


LeftPane = pane_class("left", "abcdefghijklmn")
RightPane = pane_class("right", "opqrstu")


class Desk(App[None]):
    def __init__(self, footer: type[Widget]) -> None:
        super().__init__()
        self.footer_type = footer

    def compose(self) -> ComposeResult:
        yield LeftPane()
        yield RightPane()
        yield self.footer_type()


def last_line(app: App[Any]) -> str:
    return app.screen._compositor.render_strips()[-1].text


async def change(app: App[Any], pane: Widget, hint: str) -> float:
    t0 = time.perf_counter()
    pane.focus()
    end = t0 + 5.0
    while hint not in last_line(app):
        if time.perf_counter() > end:
            raise TimeoutError(f"the footer never showed {hint!r}: {last_line(app)!r}")
        await asyncio.sleep(0.0002)
    return time.perf_counter() - t0


async def run(changes: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"KeysFooter": [], "Textual Footer": []}
    ours, theirs = Desk(KeysFooter), Desk(Footer)
    async with ours.run_test(size=(200, 24)) as p1, theirs.run_test(size=(200, 24)) as p2:
        for pilot in (p1, p2):
            await pilot.pause(0.2)
        panes = {
            "KeysFooter": (ours, ours.query_one(LeftPane), ours.query_one(RightPane)),
            "Textual Footer": (theirs, theirs.query_one(LeftPane), theirs.query_one(RightPane)),
        }
        for n in range(changes + 10):  # the first 10 of each warm up
            for name, (app, left, right) in panes.items():
                pane, hint = (right, "o Right0") if n % 2 == 0 else (left, "a Left0")
                took = await change(app, pane, hint)
                if n >= 10:
                    times[name].append(took)
    return times


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--changes", type=int, default=150)
    args = ap.parse_args()
    load = os.getloadavg()[0]
    times = asyncio.run(run(args.changes))
    print(f"{args.changes} focus changes each, interleaved; load average {load:.2f}")
    for name, xs in times.items():
        print(
            f"  {name:15} median {statistics.median(xs) * 1e3:6.2f} ms  p95 {p95(xs) * 1e3:6.2f} ms  "
            f"[{min(xs) * 1e3:.2f}–{max(xs) * 1e3:.2f}]"
        )
    ratio = statistics.median(times["KeysFooter"]) / statistics.median(times["Textual Footer"])
    print(f"  KeysFooter / Textual Footer: ×{ratio:.2f}")


if __name__ == "__main__":
    main()
