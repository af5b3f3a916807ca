"""The AI desk's commands: `ask …`, the chat pane, and conversations (new, list, resume,
rename, delete, export, persona). Conversations live in the store; the chat itself runs in the
screen (the pane and the full-screen chat), and headless as `trii-term ask`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from trii_term.commands.registry import Arg, Command, CommandError, Invocation, Result

if TYPE_CHECKING:
    from trii_term.session import Session

G = "AI desk"
PERSONA_NAMES = ("analyst", "risk", "coach")


def _saved(inv: Invocation) -> Session:
    """The session, once the store the conversations are saved in is open."""
    if inv.session.store is None:
        raise CommandError("The store is still opening: try again in a moment.")
    return inv.session


def _resolve(inv: Invocation, text: str) -> str:
    try:
        return str(_saved(inv).conversations().resolve(text))
    except ValueError as exc:
        raise CommandError(f"{exc}. Nothing was changed.") from None


def ask(inv: Invocation) -> None:
    question = (inv.args.get("question") or "").strip()
    inv.ui.open_chat(question or None, full=True)


def toggle(inv: Invocation) -> None:
    inv.ui.toggle_chat()


async def new(inv: Invocation) -> Result:
    persona = inv.args.get("persona")
    await inv.ui.chat_new(persona)
    return Result(f"A new conversation{f' with the {persona} persona' if persona else ''}.")


def list_conversations(inv: Invocation) -> Result:
    infos = _saved(inv).conversations().list()
    if not infos:
        return Result("No conversations yet: press t, or `ask …`.")
    shown = [
        f"{c.id[:8]} “{c.title or 'untitled'}” ({c.persona}, {c.messages} msgs, ${c.cost_usd:.4f})"
        for c in infos[:8]
    ]
    more = f" … and {len(infos) - 8} more" if len(infos) > 8 else ""
    return Result("Conversations: " + "; ".join(shown) + more + ". `chat resume ID` opens one.")


async def resume(inv: Invocation) -> Result:
    cid = _resolve(inv, inv.args["conversation"])
    await inv.ui.chat_resume(cid)
    return Result(f"Resumed conversation {cid[:8]}.")


async def rename(inv: Invocation) -> Result:
    cid = inv.ui.chat_current()
    if not cid:
        raise CommandError("No conversation is open: press t to start one.")
    title = " ".join(inv.args["title"].split())
    _saved(inv).conversations().rename(cid, title)
    await inv.ui.chat_refresh()
    return Result(f"Conversation {cid[:8]} is now “{title}”.")


async def delete(inv: Invocation) -> Result:
    cid = _resolve(inv, inv.args["conversation"])
    convs = _saved(inv).conversations()
    info = convs.info(cid)
    convs.delete(cid)
    ui = inv.ctx.ui
    if ui is not None and ui.chat_current() == cid:
        await ui.chat_new(None)
    title = f"“{info.title}” " if info and info.title else ""
    return Result(f"Deleted conversation {title}{cid[:8]}.")


def export(inv: Invocation) -> Result:
    cid = inv.ui.chat_current()
    target = inv.args.get("path")
    if not cid:
        raise CommandError("No conversation is open to export: `chat resume ID` first.")
    convs = _saved(inv).conversations()
    text = convs.export_markdown(cid)
    info = convs.info(cid)
    if target:
        path = Path(target).expanduser()
    else:
        stem = "".join(
            ch if ch.isalnum() or ch in "-_" else "-" for ch in (info.title if info else "") or cid
        )
        path = inv.session.paths.data_dir / "exports" / f"chat-{stem[:40].strip('-') or cid[:8]}.md"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CommandError(
            f"Cannot write {path} ({exc.strerror}); give another path: chat export PATH"
        ) from None
    return Result(f"Exported the conversation to {path}.")


async def persona(inv: Invocation) -> Result:
    return Result(await inv.ui.chat_persona(inv.args["persona"]))


PERSONA = Arg("persona", "choice", choices=PERSONA_NAMES)

COMMANDS: tuple[Command, ...] = (
    Command(
        "ai.ask",
        ("ask",),
        "Ask Claude about the market on screen, full screen: ask what is MSFT's trend?",
        ask,
        (Arg("question", "text", optional=True),),
        key="T",
        key_label="Ask",
        needs_ui=True,
        group=G,
    ),
    Command(
        "ai.chat",
        ("chat",),
        "Show or hide the chat pane",
        toggle,
        key="t",
        key_label="Chat",
        needs_ui=True,
        group=G,
    ),
    Command(
        "ai.new",
        ("chat", "new"),
        "Start a new conversation (optionally with a persona)",
        new,
        (Arg("persona", "choice", optional=True, choices=PERSONA_NAMES),),
        needs_ui=True,
        group=G,
    ),
    Command("ai.list", ("chat", "list"), "List the saved conversations", list_conversations, group=G),
    Command(
        "ai.resume",
        ("chat", "resume"),
        "Open a saved conversation by id, id prefix or title",
        resume,
        (Arg("conversation", "text"),),
        needs_ui=True,
        group=G,
    ),
    Command(
        "ai.rename",
        ("chat", "rename"),
        "Rename the open conversation",
        rename,
        (Arg("title", "text"),),
        needs_ui=True,
        group=G,
    ),
    Command(
        "ai.delete",
        ("chat", "delete"),
        "Delete a saved conversation",
        delete,
        (Arg("conversation", "text"),),
        group=G,
    ),
    Command(
        "ai.export",
        ("chat", "export"),
        "Export the open conversation as Markdown (to PATH)",
        export,
        (Arg("path", "text", optional=True),),
        needs_ui=True,
        group=G,
    ),
    Command(
        "ai.persona",
        ("chat", "persona"),
        "Choose the persona: analyst, risk or coach",
        persona,
        (PERSONA,),
        needs_ui=True,
        group=G,
    ),
)
