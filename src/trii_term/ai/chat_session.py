"""The chat with Claude as the workstation holds it, without a screen: the open conversation and
its persona, the engine, the reply in flight and what the replies cost.

Whatever shows the conversation (the workstation's pane, the full-screen chat) is a `ChatDisplay`
registered in `views`; the reply is shown in the one the trader sees (the last), and every view
hears a reload or a new title. What the chat asks of the workstation around it (what the
trader is looking at, a drafted order for the ticket, a message) is a `ChatHost`.

A reply runs as a task of its own; `stop()` (Esc) cancels it, and what had arrived is kept (the
engine saves a partial reply).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, Protocol

from trii_term import runtime
from trii_term.ai import engine as ai
from trii_term.ai.conversations import ChatMessage, Conversations
from trii_term.ai.personas import PERSONAS

if TYPE_CHECKING:
    from trii_term.ai.failures import Retrying, RetryPolicy
    from trii_term.session import Session
    from trii_term.trading.order_line import Draft

log = logging.getLogger(__name__)


class ChatDisplay(Protocol):
    """One view of the conversation: what the chat session tells it."""

    async def reload(self) -> None:
        """Show the open conversation again, from the store (on open, resume, a new one)."""

    def retitle(self) -> None:
        """Show the conversation's title and cost again."""

    async def user_said(self, text: str) -> None: ...

    async def text_delta(self, text: str) -> None:
        """More of the reply's text, as it streams."""

    async def tool_started(self, tool_id: str, name: str, args: dict[str, Any]) -> None: ...

    def tool_finished(self, tool_id: str, output: str, is_error: bool) -> None: ...

    async def reply_done(self, usage: ai.Usage) -> None: ...

    async def retry_countdown(self, retrying: Retrying) -> None:
        """The engine waits `retrying.wait` seconds before trying again: count them down."""

    async def clear_countdown(self) -> None: ...

    async def reply_failed(self, message: str, partial: bool) -> None: ...


class ChatHost(Protocol):
    """What the chat asks of the workstation around it."""

    def chat_focus(self) -> ai.Focus:
        """What Claude is told the trader is looking at."""

    def chat_drafted(self, draft: Draft) -> None:
        """Claude drafted an order: it goes into the ticket for the trader to send (or not)."""

    def chat_leave(self, view: ChatDisplay) -> None:
        """Esc with no reply in flight: close the full-screen chat, or leave the pane."""

    def chat_cost_changed(self) -> None:
        """The session's AI cost changed (the status bar shows it)."""

    def message(self, text: str, level: str = "info") -> None: ...

    def bell(self) -> None: ...


class ChatSession:
    """The open conversation, its engine, and the reply in flight; shown in whichever view is
    visible (the pane, or the full-screen chat on top)."""

    def __init__(self, session: Session, host: ChatHost) -> None:
        self.session = session
        self.host = host
        self.history: list[str] = []  # what the trader sent, for up/down in the input
        self.cid: str | None = None
        self.persona = session.config.ai.persona
        self.retry: RetryPolicy | None = None  # the engine's RetryPolicy (None: its default)
        self.views: list[ChatDisplay] = []
        self._engine: ai.ChatEngine | None = None
        self._convs: Conversations | None = None
        self._task: asyncio.Task[None] | None = None
        self._partial = False  # text of the reply in flight is on screen
        self._retrying = False  # the engine is waiting to try again
        self._frozen = False

    # -- the parts, made when first used (the SDK is imported only then) ----------------------

    @property
    def conversations(self) -> Conversations:
        if self._convs is None:
            self._convs = self.session.conversations()
        return self._convs

    @property
    def engine(self) -> ai.ChatEngine:
        if self._engine is None:
            self._engine = ai.ChatEngine(self.session, conversations=self.conversations, retry=self.retry)
        return self._engine

    @property
    def view(self) -> ChatDisplay | None:
        """The view the trader sees: the full-screen chat if it is on top, else the pane."""
        return self.views[-1] if self.views else None

    def problem(self) -> str:
        if self.session.store is None:
            return "the store is still opening"
        return str(self.engine.ready)

    def title(self) -> str:
        p = PERSONAS.get(self.persona)
        info = self.conversations.info(self.cid) if self.cid else None
        title = info.title if info and info.title else "new conversation"
        cost = f" · ${info.cost_usd:.4f}" if info else ""
        return f"{p.title if p else self.persona} · {self.session.config.ai.model} · {title}{cost}"

    def persona_intro(self) -> str:
        """The persona talking, in one line: what it will and will not do."""
        p = PERSONAS[self.persona]
        return f"{p.title}. Will: {p.will} Won't: {p.wont}"

    def messages(self) -> list[ChatMessage]:
        return self.conversations.messages(self.cid) if self.cid else []

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    async def aclose(self) -> None:
        """At quit: stop a reply in flight and close the HTTP client while the loop still runs."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._engine is not None:
            await self._engine.aclose()

    # -- actions --------------------------------------------------------------------------------

    def send(self, text: str) -> None:
        if self.busy:
            self.host.bell()
            self.host.message("A reply is still coming: Esc stops it.", "warning")
            return
        problem = self.problem()
        if problem:
            self.host.bell()
            self.host.message(problem, "error")
            return
        self._task = asyncio.get_running_loop().create_task(self._reply(text), name="chat-reply")
        self._task.add_done_callback(_log_failure)

    def stop(self) -> bool:
        """Stop the reply in flight (Esc). False when there is none."""
        if self._task is None or self._task.done():
            return False
        self._task.cancel()
        if self._retrying:
            self.host.message("Retry stopped. Your question is kept: up brings it back to ask again.")
        else:
            self.host.message("Reply stopped; what had arrived is kept.")
        return True

    def escape(self, view: ChatDisplay) -> None:
        """Esc in a view: stop the reply in flight, or (none) leave the view."""
        if not self.stop():
            self.host.chat_leave(view)

    async def new(self, persona: str | None) -> None:
        if persona:
            self.persona = persona
        self.cid = None
        for v in self.views:
            await v.reload()

    async def resume(self, cid: str) -> None:
        info = self.conversations.info(cid)
        self.cid = cid
        if info is not None:
            self.persona = info.persona
        for v in self.views:
            await v.reload()

    async def refresh_views(self) -> None:
        for v in self.views:
            v.retitle()

    # -- the reply in flight --------------------------------------------------------------------

    async def _reply(self, text: str) -> None:
        if self.cid is None:
            self.cid = self.conversations.create(
                persona=self.persona, model=self.session.config.ai.model, title=_title_from(text)
            )
        view = self.view
        if view is not None:
            await view.user_said(text)
        self._partial = False
        replies = self.engine.reply(self.cid, text, focus=self.host.chat_focus(), persona=self.persona)
        try:
            # aclosing: a reply stopped mid-event closes the HTTP stream and saves the partial now
            async with contextlib.aclosing(replies) as events:
                async for event in events:
                    await self._show(event)
        except asyncio.CancelledError:
            await self._clear_countdown()
            view = self.view
            if view is not None:
                await view.reply_failed("stopped (Esc)", self._partial)
            raise
        except Exception as exc:  # a bug of ours: said in one line, the traceback in the log
            log.exception("the chat reply failed")
            text = f"the reply failed ({type(exc).__name__}); details in {self.session.paths.log_file}"
            self.host.message(text, "error")
            view = self.view
            if view is not None:
                await view.reply_failed(text, self._partial)

    async def _clear_countdown(self) -> None:
        """The wait is over (or stopped): its countdown goes from whichever view showed it."""
        self._retrying = False
        for v in self.views:
            await v.clear_countdown()

    async def _show(self, event: Any) -> None:
        view = self.view
        if view is None:
            return
        if isinstance(event, ai.Retrying):
            self._retrying = True
            await view.retry_countdown(event)
            return
        if self._retrying:
            await self._clear_countdown()
        if isinstance(event, ai.TextDelta):
            self._partial = True
            await view.text_delta(event.text)
        elif isinstance(event, ai.ToolStarted):
            await view.tool_started(event.id, event.name, event.input)
        elif isinstance(event, ai.ToolFinished):
            view.tool_finished(event.id, event.output, event.is_error)
        elif isinstance(event, ai.Drafted):
            self.host.chat_drafted(event.draft)
        elif isinstance(event, ai.ReplyDone):
            self._partial = False
            if not self._frozen:  # the SDK's modules, loaded by the first reply: out of the GC's way
                runtime.freeze_heap()
                self._frozen = True
            self.session.ai_cost_usd = self.engine.session_cost_usd  # (the status bar's total)
            await view.reply_done(event.usage)
            self.host.chat_cost_changed()
        elif isinstance(event, ai.ReplyFailed):  # (its message says when to try again)
            self._partial = False
            await view.reply_failed(event.message, event.partial)
            self.host.message(event.message, "error")


def _title_from(text: str) -> str:
    words = " ".join(text.split())
    return words if len(words) <= 48 else words[:47].rstrip() + "…"


def _log_failure(task: asyncio.Task[None]) -> None:
    """A reply task that ended on an error nothing caught (its view was gone, say): logged."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("the chat reply stopped on an unexpected error", exc_info=error)
