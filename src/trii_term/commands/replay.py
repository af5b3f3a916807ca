"""`replay …`: controls for the offline replay feed (pause, speed, go to a day)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trii_term.commands.registry import Arg, Command, CommandError, Invocation, Result
from trii_term.config import MAX_REPLAY_SPEED, MIN_REPLAY_SPEED
from trii_term.domain import FeedState

if TYPE_CHECKING:
    from trii_term.feeds.replay import ReplayFeed


def _feed(inv: Invocation) -> ReplayFeed:
    from trii_term.feeds.replay import ReplayFeed

    feed = inv.session.feed
    if not isinstance(feed, ReplayFeed):
        raise CommandError('The replay controls work only with the replay feed (feed.provider = "replay").')
    return feed


def _not_ended(feed: ReplayFeed) -> None:
    if feed.ended:
        raise CommandError(f"The replay has ended ({feed.status.reason}). Use: replay goto DATE")


def pause(inv: Invocation) -> Result:
    feed = _feed(inv)
    _not_ended(feed)
    if feed.status.state is FeedState.PAUSED:
        feed.resume()
        return Result("Replay resumed.")
    feed.pause()
    return Result("Replay paused: the session clock is stopped. Press p again to resume.")


def resume(inv: Invocation) -> Result:
    feed = _feed(inv)
    _not_ended(feed)
    feed.resume()
    return Result("Replay resumed.")


def speed(inv: Invocation) -> Result:
    feed = _feed(inv)
    value: float = inv.args["speed"]
    if not MIN_REPLAY_SPEED <= value <= MAX_REPLAY_SPEED:  # (also refuses nan)
        raise CommandError(
            f"SPEED is market seconds per real second, from {MIN_REPLAY_SPEED:g} to {MAX_REPLAY_SPEED:g}."
        )
    feed.set_speed(value)
    return Result(f"Replay speed {value:g}× (one real second is {value:g} market seconds).")


def goto(inv: Invocation) -> Result:
    from trii_term.feeds.replay import ReplayDateError

    feed = _feed(inv)
    problem = inv.session.rewind_problem(inv.args["date"])
    if problem is not None:
        raise CommandError(f"Not replaying {inv.args['date']}: {problem}.")
    try:
        day = feed.goto(inv.args["date"])
    except ReplayDateError as exc:
        raise CommandError(f"Cannot replay that day: {exc}.") from None
    resume = feed.resumes_at(day)
    if resume is None:
        return Result(f"Replaying {day.isoformat()} from the open.")
    when = feed.market.local(resume)
    return Result(
        f"Replaying {day.isoformat()} from {when:%H:%M:%S} {feed.market.tz_abbrev(when)}, just after "
        f"the paper account's latest order or fill; the day before it shows as the day so far."
    )


COMMANDS: tuple[Command, ...] = (
    Command(
        "replay.pause",
        ("replay", "pause"),
        "Pause or resume the replay clock",
        pause,
        key="p",
        key_label="Pause",
        group="Replay",
    ),
    Command("replay.resume", ("replay", "resume"), "Resume the replay clock", resume, group="Replay"),
    Command(
        "replay.speed",
        ("replay", "speed"),
        "Set the replay speed (market seconds per second)",
        speed,
        (Arg("SPEED", "number"),),
        group="Replay",
    ),
    Command(
        "replay.goto",
        ("replay", "goto"),
        "Replay another day from its open",
        goto,
        (Arg("DATE", "date"),),
        group="Replay",
    ),
)
