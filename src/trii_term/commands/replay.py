"""`replay …`: controls for the offline replay feed (pause, speed, go to a day)."""

from __future__ import annotations

from trii_term.commands.registry import Arg, Command, CommandError, Invocation, Result


def _feed(inv: Invocation):  # type: ignore[no-untyped-def]
    from trii_term.feeds.replay import ReplayFeed

    feed = inv.session.feed
    if not isinstance(feed, ReplayFeed):
        raise CommandError('The replay controls work only with the replay feed (feed.provider = "replay").')
    return feed


def pause(inv: Invocation) -> Result:
    feed = _feed(inv)
    if inv.session.clock.paused:
        feed.resume()
        return Result("Replay resumed.")
    feed.pause()
    return Result("Replay paused: the session clock is stopped. Press p again to resume.")


def resume(inv: Invocation) -> Result:
    feed = _feed(inv)
    feed.resume()
    return Result("Replay resumed.")


def speed(inv: Invocation) -> Result:
    feed = _feed(inv)
    value: float = inv.args["speed"]
    if not 0 < value <= 100_000:
        raise CommandError("SPEED is simulated seconds per real second, from 0.1 to 100000.")
    feed.set_speed(value)
    return Result(f"Replay speed {value:g}× (one real second is {value:g} market seconds).")


def goto(inv: Invocation) -> Result:
    from trii_term.feeds.replay import ReplayDateError

    feed = _feed(inv)
    try:
        day = feed.goto(inv.args["date"])
    except ReplayDateError as exc:
        raise CommandError(f"Cannot replay {exc}.") from None
    return Result(f"Replaying {day.isoformat()} from the open.")


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
