"""The status bar (feed state, SIM, session clock, msg/s, store lag) and the message line."""

from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from trii_term import format as fmt
from trii_term.domain import FeedState, SessionPhase
from trii_term.session import Session

STATE_MARK = {
    FeedState.CONNECTING: "◌",
    FeedState.LIVE: "●",
    FeedState.STALE: "!",
    FeedState.RECONNECTING: "↻",
    FeedState.PAUSED: "‖",
    FeedState.ENDED: "■",
    FeedState.ERROR: "✖",
    FeedState.STOPPED: "■",
}
PHASE_WORD = {
    SessionPhase.PRE_MARKET: "PRE-MARKET",
    SessionPhase.OPEN: "OPEN",
    SessionPhase.POST_MARKET: "POST-MARKET",
    SessionPhase.CLOSED: "CLOSED",
}


class StatusBar(Widget):
    """One line; refreshed four times a second, repainted only when its text changes."""

    COMPONENT_CLASSES = {
        "status-bar--good",
        "status-bar--warn",
        "status-bar--bad",
        "status-bar--badge",
        "status-bar--dim",
    }

    def __init__(self, session: Session, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._session = session
        self._text = Text("")
        self.focused_symbol: str | None = None

    def on_mount(self) -> None:
        self.set_interval(0.25, self.update_status)
        self.update_status()

    def on_resize(self) -> None:
        self.update_status()  # its width decides how much detail fits: now, not at the next tick

    def render(self) -> Text:
        return self._text

    def update_status(self) -> None:
        text = self.build(self.size.width or 80)
        if text.plain != self._text.plain or text.spans != self._text.spans:
            self._text = text
            self.refresh()

    # -- content --------------------------------------------------------------------------

    def build(self, width: int) -> Text:
        """The most detail that fits. A feed's reason (why it is in error, stale, …) comes
        first: clock details are dropped before it, and it is shortened only when nothing else
        can go. No number is ever cut: when even the tersest detail does not fit, whole parts
        give way, the least needed first (msg/s, the AI cost, a healthy store)."""
        feed, reason = self._feed_part(width)
        parts: list[tuple[int, Text]] = []
        for detail in DETAIL_LEVELS:
            parts = self._rest(detail)
            room = width - feed.cell_len - _length(parts)
            if room >= (len(reason) + 2 if reason else 0):
                break
        while parts and feed.cell_len + _length(parts) > width:
            parts.remove(min(reversed(parts), key=lambda part: part[0]))
        text = feed.copy()
        if reason:
            room = max(0, width - feed.cell_len - _length(parts))
            shown = reason if len(reason) + 2 <= room else reason[: max(0, room - 3)] + "…"
            text.append(f": {shown}", self._feed_style())
        for _keep, part in parts:
            text.append_text(part)
        text.truncate(width, overflow="ellipsis")
        return text

    def _feed_style(self) -> Style:
        state = self._session.feed_status.state
        name = "good" if state is FeedState.LIVE else "bad" if state is FeedState.ERROR else "warn"
        return self.get_component_rich_style(f"status-bar--{name}")

    def _feed_part(self, width: int) -> tuple[Text, str]:
        s = self._session
        status = s.feed_status
        state = status.state
        style = self._feed_style()
        out = Text()
        out.append(f"{STATE_MARK.get(state, '?')} ", style)
        if width >= 60:
            out.append(f"{status.provider} ")
        word = state.value.upper()
        if state is FeedState.RECONNECTING and status.retry_at_monotonic:
            word += f" in {max(0, status.retry_at_monotonic - time.monotonic()):.0f}s"
        out.append(word, style)
        shows_reason = state in (FeedState.ERROR, FeedState.RECONNECTING, FeedState.STALE, FeedState.ENDED)
        return out, (status.reason if shows_reason else "")

    def _rest(self, d: Detail) -> list[tuple[int, Text]]:
        """Everything after the feed: SIM, the exchange session and clock, msg/s, the AI cost,
        where orders go, the store — each part with how much it is needed (higher stays)."""
        s = self._session
        style = self.get_component_rich_style
        good, warn, bad = style("status-bar--good"), style("status-bar--warn"), style("status-bar--bad")
        dim = style("status-bar--dim")
        parts: list[tuple[int, Text]] = []

        def part(keep: int) -> Text:
            out = Text(" │ ", style=dim)
            parts.append((keep, out))
            return out

        if s.clock.simulated:
            sim = Text(" ")
            sim.append(" SIM ", style("status-bar--badge"))
            if d.speed:
                sim.append(f" ×{s.clock.speed:g}", dim)
            parts.append((KEEP_ALWAYS, sim))

        # the exchange session, in the exchange's time zone
        market = s.market_of(self.focused_symbol)
        out = part(KEEP_CLOCK)
        if not s.started:  # the clock means nothing until the feed has set it
            out.append(f"{market.label} starting…", dim)
            return parts
        now_ns = s.clock.now_ns()
        local = market.local(now_ns)
        phase = s.clock.phase(market, now_ns)
        out.append(f"{market.label} ")
        out.append(PHASE_WORD[phase], good if phase is SessionPhase.OPEN else warn)
        out.append(local.strftime(" %H:%M:%S"))
        if d.tz:
            out.append(f" {market.tz_abbrev(local)}")
        if d.weekday:
            out.append(local.strftime(" %a"))
        if d.date:
            out.append(local.strftime(f" {d.date}"))

        part(KEEP_RATE).append(d.rate.format(s.bus.market_rate.rate()))

        if s.ai_cost_usd:  # the AI desk's replies this session, estimated
            cost = s.ai_cost_usd
            part(KEEP_AI).append(f"AI ${cost:.4f}" if cost < 1 else f"AI ${cost:,.2f}", dim)

        if s.broker_name != "paper":  # where orders go, said in words: a live account is never a guess
            account = s.broker_tag()  # " PAPER" or " LIVE", as the broker says
            if s.desk is not None:
                part(KEEP_ALWAYS).append(f"⇄ {s.broker_name}{account}", good)
            else:
                text = f"✖ {s.broker_name}{account}" + (" (no trading)" if d.store_error else "")
                part(KEEP_ALWAYS).append(text, bad)

        writer = s.writer
        if s.memory_only:
            part(KEEP_ALWAYS).append("store: MEMORY ONLY", bad)
        elif writer is None:
            part(KEEP_STORE).append("store opening", warn)
        elif writer.stats.last_error:
            error = "store ERROR" + (f": {writer.stats.last_error}" if d.store_error else "")
            part(KEEP_ALWAYS).append(error, bad)
        else:
            seconds = writer.lag_seconds()
            part(KEEP_STORE if seconds < 1.0 else KEEP_ALWAYS).append(
                f"{d.lag}{fmt.duration(seconds)}", good if seconds < 1.0 else warn
            )
        return parts


# how much each part of the status bar is needed when the width runs out (the lowest goes first)
KEEP_RATE, KEEP_AI, KEEP_STORE, KEEP_CLOCK, KEEP_ALWAYS = 1, 2, 3, 8, 9


def _length(parts: list[tuple[int, Text]]) -> int:
    return sum(text.cell_len for _keep, text in parts)


@dataclass(frozen=True)
class Detail:
    """How much the status bar says after the feed; levels drop detail until it fits."""

    speed: bool
    tz: bool
    weekday: bool
    date: str  # strftime format, "" for none
    rate: str
    lag: str
    store_error: bool


# fmt: off
DETAIL_LEVELS = (
    #      speed  tz     weekday date        rate          lag           store_error
    Detail(True,  True,  True,   "%Y-%m-%d", "{:,} msg/s", "store lag ", True),
    Detail(True,  True,  False,  "%Y-%m-%d", "{:,} msg/s", "lag ",       True),
    Detail(False, False, False,  "%Y-%m-%d", "{:,} msg/s", "lag ",       False),
    Detail(False, False, False,  "%d%b%y",   "{:,}/s",     "lag ",       False),
    Detail(False, False, False,  "",         "{:,}/s",     "lag ",       False),  # (never a bare "0ms")
)
# fmt: on


class MessageLine(Widget):
    """The answer to the last command: `›` info, `!` warning, `✖` error — never colour alone."""

    COMPONENT_CLASSES = {"message-line--info", "message-line--warning", "message-line--error"}
    ICON = {"info": "›", "warning": "!", "error": "✖"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.message = ""
        self.level = "info"

    def show(self, message: str, level: str = "info") -> None:
        self.message = " ".join(message.split())
        self.level = level
        self.refresh(layout=True)

    def render(self) -> Text:
        if not self.message:
            return Text("")
        style = self.get_component_rich_style(f"message-line--{self.level}")
        text = f"{self.ICON.get(self.level, '›')} {self.message}"
        width = self.size.width
        if width > 1:
            lines = textwrap.wrap(text, width)
            if len(lines) > MESSAGE_LINES:  # what does not fit is marked, never silently dropped
                last = lines[MESSAGE_LINES - 1]
                lines = [*lines[: MESSAGE_LINES - 1], last[: width - 1] + "…"]
            text = "\n".join(lines)
        return Text(text, style=style)


MESSAGE_LINES = 3  # as MessageLine's max-height in app.tcss
