"""Kite's access token expires at 06:00 IST the day after the login: when, in words, and a
warning shortly before."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta

from trii_term.credentials import Credentials

IST = timedelta(hours=5, minutes=30)


def kite_expiry(login_time_ist: datetime) -> datetime:
    """When a Kite access token obtained at `login_time_ist` (naive IST, as Kite reports it, or
    aware) expires: the next 06:00 IST, as an aware UTC datetime."""
    if login_time_ist.tzinfo is not None:
        login_time_ist = (login_time_ist.astimezone(UTC) + IST).replace(tzinfo=None)
    six = datetime.combine(login_time_ist.date(), time(6, 0))
    if login_time_ist >= six:
        six += timedelta(days=1)
    return (six - IST).replace(tzinfo=UTC)


def kite_expiry_text(expires_at: str, now: datetime | None = None) -> str:
    try:
        when = datetime.fromisoformat(expires_at)
    except ValueError:
        return "expiry unknown"
    now = now or datetime.now(UTC)
    left = when - now
    shown = (when + IST).strftime("%Y-%m-%d %H:%M IST")
    if left <= timedelta(0):
        return f"expired at {shown}: run `trii-term login kite`"
    hours, rem = divmod(int(left.total_seconds()), 3600)
    return f"valid until {shown}, in {hours}h {rem // 60:02d}m"


def kite_expiry_warning(creds: Credentials, now: datetime | None = None, within_hours: float = 2) -> str:
    """A warning when the Kite token has expired or expires within `within_hours`, else ""."""
    expires_at = creds.get("expires_at")
    if not expires_at:
        return ""
    try:
        when = datetime.fromisoformat(expires_at)
    except ValueError:
        return ""
    now = now or datetime.now(UTC)
    if when - now > timedelta(hours=within_hours):
        return ""
    return f"Kite access token {kite_expiry_text(expires_at, now)}"


def token_detail(values: Mapping[str, str]) -> str:
    """What `doctor` says about a stored Kite session: "access token valid until …", or ""."""
    expires_at = values.get("expires_at")
    return f"access token {kite_expiry_text(expires_at)}" if expires_at else ""
