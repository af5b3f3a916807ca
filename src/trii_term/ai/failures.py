"""When the Anthropic API fails: the failure in the trader's words, and whether and when to try
again by ourselves (the policy is explained in `trii_term.ai.engine`'s docstring)."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 529})
RETRY_KINDS = frozenset({"rate_limit_error", "overloaded_error", "api_error", "timeout_error"})


@dataclass(frozen=True)
class ReplyFailed:
    message: str
    partial: bool
    retry_after: float | None
    kind: str  # auth | rate_limited | overloaded | dropped | bad_request | network | no_key
    attempts: int = 1  # requests made for the failing turn (retries included)


@dataclass(frozen=True)
class Retrying:
    """The API asked to come back later: the next attempt is made after `wait` seconds."""

    reason: str  # "Claude is overloaded (529)"
    wait: float
    attempt: int  # the attempt about to be made (2 for the first retry)
    attempts: int  # at most this many

    def countdown(self, seconds_left: float) -> str:
        return (
            f"{self.reason}: retrying in {math.ceil(max(0.0, seconds_left))} s… "
            f"(attempt {self.attempt} of {self.attempts}) · Esc to stop"
        )


@dataclass(frozen=True)
class RetryPolicy:
    """How long the engine waits on a 429/529/5xx by itself (why: `trii_term.ai.engine`)."""

    attempts: int = 4  # requests per turn, the first included
    first: float = 2.0  # seconds before the first retry when the server says nothing; doubles
    longest: float = 30.0  # no single wait is longer (a longer retry-after is not waited)
    budget: float = 60.0  # seconds of waiting per turn, in all
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def wait(self, failure: ReplyFailed, attempt: int, waited: float) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None: do not retry."""
        if attempt >= self.attempts:
            return None
        wait = failure.retry_after if failure.retry_after is not None else self.first * 2 ** (attempt - 1)
        if wait > self.longest or waited + wait > self.budget:
            return None
        return wait


def retry_after(headers: Any) -> float | None:
    """Seconds the server asks us to wait (`retry-after-ms`, else `retry-after` in seconds or as
    an HTTP date), or None when it says nothing usable (absent, garbage, nan, inf)."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = str(headers.get(name) or "").strip()
        if not value:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            if name != "retry-after":
                continue
            try:
                seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
            except (ValueError, TypeError, IndexError, OverflowError):
                continue
        if math.isfinite(seconds):
            return max(0.0, seconds)
    return None


def _error_kind(exc: Any) -> str:
    body = getattr(exc, "body", None)
    err = body.get("error", body) if isinstance(body, dict) else {}
    return str(err.get("type", "")) if isinstance(err, dict) else ""


def retry_reason(exc: Any) -> str:
    """What to tell the trader while waiting to retry this error; "" when a retry would not help."""
    status = getattr(exc, "status_code", 0) or 0
    kind = _error_kind(exc)
    if status not in RETRY_STATUSES and kind not in RETRY_KINDS:
        return ""
    code = str(status) if status in RETRY_STATUSES else kind  # an error event in a 200 stream
    if status == 429 or kind == "rate_limit_error":
        return f"Rate limited by Anthropic ({code})"
    if status == 529 or kind == "overloaded_error":
        return f"Claude is overloaded ({code})"
    return f"Anthropic's API failed ({code})"


def given_up(failure: ReplyFailed, reason: str, attempts: int, waited: float) -> ReplyFailed:
    """The failure after retries: how often and how long, and what to do now."""
    if failure.partial:
        return ReplyFailed(failure.message, True, failure.retry_after, failure.kind, attempts)
    later = (
        f"try again in {math.ceil(failure.retry_after)} s"
        if failure.retry_after is not None
        else "try again in a minute"
    )
    return ReplyFailed(
        f"{reason}: still failing after {attempts} attempts over {math.ceil(waited)} s. "
        f"Your question is kept: {later} (up brings it back).",
        False,
        failure.retry_after,
        failure.kind,
        attempts,
    )


def status_failure(exc: Any, partial: bool) -> ReplyFailed:
    status = getattr(exc, "status_code", 0)
    body = getattr(exc, "body", None)
    err = body.get("error", body) if isinstance(body, dict) else {}
    kind = err.get("type", "") if isinstance(err, dict) else ""
    detail = (err.get("message", "") if isinstance(err, dict) else "") or ""
    response = getattr(exc, "response", None)
    retry = retry_after(getattr(response, "headers", None))
    kept = " What arrived is kept (marked partial)." if partial else ""
    log.warning("Anthropic API error %s %s: %s", status, kind, detail)
    if status == 401 or kind == "authentication_error":
        return ReplyFailed(
            "Anthropic refused the API key (401). Run `trii-term login anthropic` to store a valid key "
            "(or set ANTHROPIC_API_KEY), then ask again." + kept,
            partial,
            None,
            "auth",
        )
    if status == 403 or kind == "permission_error":
        return ReplyFailed(
            f"The API key is not allowed to do this (403: {detail}). Check the key's workspace and "
            "model access, or run `trii-term login anthropic` with another key." + kept,
            partial,
            None,
            "auth",
        )
    if status == 429 or kind == "rate_limit_error":
        wait = f"Try again in {retry:.0f} s." if retry is not None else "Wait a moment and try again."
        return ReplyFailed(f"Rate limited by Anthropic (429). {wait}{kept}", partial, retry, "rate_limited")
    if status == 529 or kind == "overloaded_error":
        wait = f"Try again in {retry:.0f} s." if retry is not None else "Try again in a moment."
        return ReplyFailed(f"Anthropic's API is overloaded (529). {wait}{kept}", partial, retry, "overloaded")
    if status in (400, 404, 413, 422) or kind in (
        "invalid_request_error",
        "not_found_error",
        "request_too_large",
    ):
        hint = {
            404: " Check ai.model in the config.",
            400: " (If it names temperature: remove ai.temperature from the config.)"
            if "temperature" in detail
            else "",
            413: " The conversation is too long: start a new one.",
        }.get(status, "")
        return ReplyFailed(
            f"The API refused the request ({status} {kind}): {detail}.{hint}{kept}",
            partial,
            None,
            "bad_request",
        )
    if status == 402 or kind == "billing_error":
        return ReplyFailed(
            f"Anthropic refused for billing ({detail}). Check the account's credits.{kept}",
            partial,
            None,
            "bad_request",
        )
    if partial:
        return ReplyFailed(
            f"The reply was cut off by an API error ({kind or status}: {detail}).{kept} "
            "Ask again to continue.",
            True,
            retry,
            "dropped",
        )
    return ReplyFailed(
        f"The Anthropic API failed ({status} {kind}: {detail}). Try again in a moment.",
        False,
        retry,
        "network",
    )
