"""How numbers and times read on screen: signed changes, compact volumes, ages.

Plain functions with no UI dependency, shared by the workstation and the CLI. Signs and arrows
always accompany colour, so meaning survives 16 colours, no colours and screen readers.
"""

from __future__ import annotations

from collections.abc import Collection

UP = "▲"
DOWN = "▼"
DASH = "—"


def price(value: float | None, decimals: int = 2) -> str:
    if value is None:
        return DASH
    return f"{value:,.{decimals}f}"


def signed(value: float | None, decimals: int = 2) -> str:
    """+1.25 / -0.40 / 0.00 — a change that rounds to zero keeps its sign (+0.00), so it never
    reads as unchanged when it is not."""
    if value is None:
        return DASH
    if value == 0:
        return f"{0:.{decimals}f}"
    return f"{value:+,.{decimals}f}"


def signed_pct(value: float | None) -> str:
    if value is None:
        return DASH
    if value == 0:
        return "0.00%"
    return f"{value:+.2f}%"


def volume(value: float | None) -> str:
    if value is None:
        return DASH
    v = abs(value)
    if v < 10_000:
        return f"{value:,.0f}"
    if v < 1_000_000:
        return f"{value / 1_000:.1f}K"
    if v < 1_000_000_000:
        return f"{value / 1_000_000:.2f}M"
    return f"{value / 1_000_000_000:.2f}B"


def age(seconds: float | None) -> str:
    """A compact age: 0s … 59s, 1m … 59m, 1h … 47h, then days."""
    if seconds is None:
        return DASH
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 48 * 3600:
        return f"{s // 3600}h"
    return f"{s // 86_400}d"


def arrow(direction: int) -> str:
    return UP if direction > 0 else DOWN if direction < 0 else " "


def duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    return f"{seconds:.1f}s"


def some_of(symbols: Collection[str], limit: int = 20) -> str:
    """A readable sample of known symbols (a live master holds tens of thousands)."""
    names = sorted(symbols) if len(symbols) <= limit else sorted(list(symbols)[:2000])[:limit]
    more = len(symbols) - len(names)
    return ", ".join(names) + (f" … and {more:,} more" if more > 0 else "")
