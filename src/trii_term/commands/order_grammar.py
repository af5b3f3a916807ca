"""An order line as a command reads it: the desk's grammar (`trading.order_line`), with the
symbol checked against the feed's instruments and a line that does not read as an order refused
as a `CommandError` (exit 2), like every other command line."""

from __future__ import annotations

from trii_term.commands.registry import CommandContext, CommandError, resolve_symbol
from trii_term.domain.orders import Side
from trii_term.trading.order_line import Draft, OrderLineError, read_draft


def parse_draft(side: Side, tokens: list[str], ctx: CommandContext | None = None) -> Draft:
    """`100 AAPL lmt 28.10 gtc` → a Draft. Unknown words are an error that says what is allowed;
    the symbol is checked against the feed's instruments when a context is given."""
    resolve = None if ctx is None else (lambda text: resolve_symbol(ctx, text))
    try:
        return read_draft(side, tokens, resolve)
    except OrderLineError as exc:
        raise CommandError(str(exc)) from None
