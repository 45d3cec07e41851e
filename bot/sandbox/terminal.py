"""A terminal chat with the real bot, through the local Bot API server that ships with the package.

A product feature: ``make run`` / ``lyricbot run`` without a token, and ``lyricbot sandbox``, open it
(``bot.cli.cmd_sandbox``). Nothing is mocked but Telegram itself: the same ``Application``, worker and model as in
production, against the server the tests use (``bot.sandbox.server``), with a database and a model directory of
the sandbox's own (``bot.sandbox.home``). You type as a person (``bot.sandbox.people``); INTRO lists the keys.

What the bot does is shown as it does it, in the order it did it, however late (``Chat.catch_up``): a line waits
for its answer only ``patience`` seconds, then says there is none yet, and the next line is taken. Lines typed
meanwhile are kept, in order (``bot.sandbox.console``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.app import build_application, running
from bot.sandbox.console import QUIT, Console
from bot.sandbox.home import last_update_id, sandbox_settings, seed_model
from bot.sandbox.protocol import JSONDict
from bot.sandbox.server import FakeTelegram
from bot.settings import Settings
from bot.telegram.i18n import LANGUAGES

USER_ID = 1001
CHAT_ID = 1001
SANDBOX_FILES = Path("var/sandbox-files")  # what the bot sends that is no text: pictures, voice, files
PATIENCE = 5.0  # seconds a person waits for an answer before the prompt is theirs again
# Piped input is a script, whose next line may need this line's answer (a button under it): it waits longer.
SCRIPT_PATIENCE = 120.0
NO_REPLY = "(no reply yet: it will show here when it comes)"
INTRO = """lyricbot sandbox: you are {name} (user id {user_id}, language {lang}; --lang zh|en changes it), chatting
with the real bot through a local Bot API server. It serves model {version}, in a database of its own.
Type your first words (分开, The night: plain text is a /write), or /settings  /temp 0.8  /len 120  /top  /help
!N presses button N under the bot's last message (!5 gives five stars, !6 writes again, !7 sings it:
the lead sheet, the voice message and the ABC file land in var/sandbox-files/).
@LyricBot 分开 asks inline mode for three lyrics; #N sends one, and !N presses its buttons.
/reply TEXT sends TEXT as a reply to your previous message (paste a song, then /reply /addcorpus);
/replybot TEXT replies to the bot's last message; /file PATH [CAPTION] sends a file (/file song.txt /addcorpus).
\\n in a line is a line break. /quit leaves.
{admin}
"""
ADMIN_YES = "You are an admin: /addcorpus, /corpus, /retrain, /jobs, /models and /rollback answer you."
ADMIN_HOW = "To try the admin commands (/addcorpus, /retrain, /models, ...): ADMIN_IDS={user_id} make run"

Reader = Callable[[], Awaitable[str | None]]
Show = Callable[[str], None]
Offer = tuple[str, list[dict[str, Any]]]


def render(message: dict[str, object]) -> str:
    text = str(message.get("text") or message.get("caption") or "")
    document = message.get("document")
    voice = message.get("voice")
    attached = f"[file {document.get('file_name', '')}] " if isinstance(document, dict) else (
        "[picture] " if "photo" in message else
        f"[voice message, {voice.get('duration', 0)} s] " if isinstance(voice, dict) else "")  # fmt: skip
    lines = [f"bot> {line}" for line in (attached + text).splitlines() or [""]]
    markup = message.get("reply_markup")
    if isinstance(markup, dict) and markup.get("inline_keyboard"):
        buttons = [b for row in markup["inline_keyboard"] for b in row]
        lines.append("     " + "  ".join(f"[{i}] {b['text']}" for i, b in enumerate(buttons, 1)))
    return "\n".join(lines)


def path_and_caption(rest: str) -> tuple[str, str]:
    """``PATH [CAPTION]``, or ``"PATH WITH SPACES" [CAPTION]``: the file's path and the caption after it."""
    rest = rest.strip()
    if rest[:1] in ("'", '"'):
        end = rest.find(rest[0], 1)
        return (rest[1:end], rest[end + 1 :].strip()) if end > 0 else ("", "")
    path, _, caption = rest.partition(" ")
    return path, caption.strip()


def intro(settings: Settings, lang: str, version: str) -> str:
    admin = ADMIN_YES if USER_ID in settings.admin_ids else ADMIN_HOW.format(user_id=USER_ID)
    return INTRO.format(name="You", user_id=USER_ID, lang=lang, version=version, admin=admin)


async def run_sandbox(
    settings: Settings, lang: str = "zh", read: Reader | None = None, show: Show | None = None,
    patience: float | None = None,
) -> None:  # fmt: skip
    """Chat with the real bot in this terminal (or through ``read`` and ``show``) as a person speaking ``lang``.

    ``settings`` are production's: of them the sandbox reads only which model version to serve.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"the sandbox speaks {' or '.join(LANGUAGES)}, not {lang!r}")
    version = await seed_model(settings, sandbox_settings(settings))
    fake = FakeTelegram(first_update_id=await last_update_id() + 1)
    await fake.start()
    sandbox = sandbox_settings(settings, telegram_bot_token=SecretStr(fake.token), telegram_base_url=fake.base_url,
                               telegram_base_file_url=fake.base_file_url)  # fmt: skip
    fake.add_user(USER_ID, first_name="You", language_code=lang)
    fake.add_chat(CHAT_ID)  # before the bot starts: it may answer what an earlier session left unanswered
    console = None
    if read is None or show is None:
        console = Console()
        read, show = console.read, console.show
        if patience is None:
            patience = PATIENCE if console.interactive else SCRIPT_PATIENCE
    try:
        async with running(build_application(sandbox)):
            show(intro(sandbox, lang, version))
            await chat_loop(fake, read, show, PATIENCE if patience is None else patience)
    finally:
        if console is not None:
            console.close()
        await fake.stop()


async def chat_loop(fake: FakeTelegram, read: Reader, show: Show, patience: float = PATIENCE) -> None:
    """Lines as the person types them, until /quit or the end of input; the bot's doings shown as they come."""
    chat = Chat(fake, show, patience)
    follower = asyncio.create_task(chat.follow(), name="sandbox-follow")
    try:
        while (line := await read()) is not None and line.strip() not in QUIT:
            await chat.handle(line)
        chat.catch_up()
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower


class Chat:
    """The person's side of the private chat with the bot: what they type becomes an update; what the bot does
    (a message, an edit, a popup, an inline answer) is shown in the order the bot did it."""

    def __init__(self, fake: FakeTelegram, show: Show, patience: float) -> None:
        self.fake, self.show, self.patience = fake, show, patience
        self.last_keyboard: JSONDict | None = None  # the bot's last message with buttons, which !N presses
        self.offer: Offer | None = None  # the last inline query's id and results, which #N chooses from
        self._asking: str | None = None  # the inline query whose answer is still to be shown
        self._calls = 0  # the bot's calls to the server looked at so far
        self._shown = 0  # the bot's messages in this chat shown so far
        self._popups = 0  # callback answers looked at so far
        self._looks: dict[int, str] = {}  # message id -> how it was shown, to tell when it was edited
        self._prompts_answered: set[int] = set()

    async def follow(self) -> None:
        while True:
            self.catch_up()
            await asyncio.sleep(0.1)

    def catch_up(self) -> None:
        """Show what the bot did since the last look, in the order it called the server."""
        calls = self.fake.requests[self._calls:]
        self._calls += len(calls)
        for method, _ in calls:
            if method in ("editMessageText", "editMessageReplyMarkup"):
                self._show_edits()
            elif method == "answerCallbackQuery":
                self._show_popups()
            elif method == "answerInlineQuery":
                self._show_offer()
            elif method.startswith("send") and method != "sendChatAction":
                self._show_new()

    async def handle(self, line: str) -> None:
        text = line.replace("\\n", "\n")
        if not text.strip():
            return
        word, *more = text.split(None, 1)
        rest = more[0] if more else ""
        username = f"@{self.fake.bot_user['username']}"
        if text.startswith("!") and text[1:].isdecimal():
            await self.press(int(text[1:]))
        elif text.startswith(username):  # inline mode
            await self.ask_inline(text.removeprefix(username))
        elif text.startswith("#") and text[1:].isdecimal():
            self.choose(int(text[1:]))
        elif word == "/reply":
            await self.say(rest, self._last_from(person=True), "you have sent nothing to reply to yet")
        elif word == "/replybot":
            await self.say(rest, self._last_from(person=False), "the bot has sent nothing to reply to yet")
        elif word == "/file":
            await self.send_file(rest)
        else:
            await self.say(text, self._open_prompt())

    async def say(self, text: str, reply_to: int | None, missing: str | None = None) -> None:
        """Send ``text``, as a reply to message ``reply_to`` when given (``missing``: why there is none to reply to)."""
        if missing is not None and reply_to is None:
            self.show(f"({missing})")
            return
        if not text.strip():
            self.show("(nothing to send: /reply TEXT, /replybot TEXT)")
            return
        before = self.fake.sent_count(CHAT_ID)
        self.fake.send_text(USER_ID, CHAT_ID, text, reply_to_message_id=reply_to)
        await self.wait(lambda: self.fake.sent_count(CHAT_ID) > before)

    async def send_file(self, rest: str) -> None:
        """``/file PATH [CAPTION]``: a document, as a person attaches one (a path with spaces goes in quotes)."""
        name, caption = path_and_caption(rest)
        if not name:
            self.show("(usage: /file PATH [CAPTION], for example /file song.txt /addcorpus)")
            return
        path = Path(name).expanduser()
        try:
            content = path.read_bytes()
        except OSError as exc:
            self.show(f"(cannot send {path}: {exc.strerror or exc})")
            return
        before = self.fake.sent_count(CHAT_ID)
        self.fake.send_document(USER_ID, CHAT_ID, path.name, content, caption or None)
        await self.wait(lambda: self.fake.sent_count(CHAT_ID) > before)

    async def press(self, number: int) -> None:
        """``!N``: button N under the bot's last message with buttons."""
        if (message := self.last_keyboard) is None:
            self.show("(no buttons to press yet)")
            return
        buttons = [b for row in message["reply_markup"]["inline_keyboard"] for b in row]
        if not 1 <= number <= len(buttons):
            self.show(f"(there are {len(buttons)} buttons)")
            return
        button = buttons[number - 1]
        if "callback_data" not in button:  # "send to a chat": the inline query it pre-fills
            await self.ask_inline(str(button.get("switch_inline_query", "")))
            return
        data = button["callback_data"]
        answered, before = len(self.fake.answered_callbacks), self.fake.sent_count(CHAT_ID)
        try:
            if "inline_message_id" in message:  # under a lyric sent through inline mode: no chat, no message
                self.fake.press_inline_button(USER_ID, str(message["inline_message_id"]), data)
            else:
                self.fake.press_button(USER_ID, CHAT_ID, int(message["message_id"]), data)
        except ValueError:
            self.show("(that button is no longer there)")
            return
        writes = data.startswith("a:")  # "write again" answers with a new lyric, the others with a popup or an edit
        # 🎵: a picture, a voice message and a file (or a refusal in words); under an inline message, a link
        sings = data.startswith("m:") and "inline_message_id" not in message
        callbacks = self.fake.answered_callbacks
        await self.wait(lambda: len(callbacks) > answered and (not writes or self.fake.sent_count(CHAT_ID) > before)
                        and (not sings or self._sung(before)))
        if len(callbacks) > answered and (link := callbacks[answered].get("url")):
            await self.open_link(str(link))

    async def open_link(self, link: str) -> None:
        """A link the bot answered a button with (``t.me/<bot>?start=<payload>``): a Telegram app opens the private
        chat with the bot and, on Start, sends ``/start <payload>``; so does the sandbox."""
        payload = link.partition("?start=")[2]
        self.show(f"bot (link)> {link}")
        self.show(f"(your Telegram app opens the chat with the bot and sends /start {payload})")
        before = self.fake.sent_count(CHAT_ID)
        self.fake.send_text(USER_ID, CHAT_ID, f"/start {payload}")
        await self.wait(lambda: self._sung(before))

    def _sung(self, before: int) -> bool:
        """A song's three messages (a picture, a voice message, a file) or a refusal in words, since ``before``."""
        sent = self.fake.sent(CHAT_ID)[before:]
        return len(sent) >= 3 or any("text" in m for m in sent)

    async def ask_inline(self, words: str) -> None:
        """An inline query; the results the bot offers for it are shown numbered, for #N."""
        query_id = self._asking = self.fake.send_inline_query(USER_ID, words.strip())
        await self.wait(lambda: query_id in self.fake.inline_answers)

    def choose(self, number: int) -> None:
        """``#N``: send inline result N into the chat; its buttons become the ones !N presses."""
        if self.offer is None or not 1 <= number <= len(self.offer[1]):
            self.show("(no such inline result: type @LyricBot and the first words first)")
            return
        query_id, results = self.offer
        inline_message_id = self.fake.choose_inline_result(USER_ID, query_id, str(results[number - 1]["id"]))
        result = results[number - 1]
        content = result.get("input_message_content", {})
        self.show(render({"text": content.get("message_text", ""), "reply_markup": result.get("reply_markup")}))
        if inline_message_id is not None:
            self.last_keyboard = dict(self.fake.inline_messages[inline_message_id])

    async def wait(self, answered: Callable[[], bool]) -> None:
        """Until ``answered()``, for ``patience`` seconds at most: then say so; the answer shows when it comes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.patience
        while not answered() and loop.time() < deadline:
            await asyncio.sleep(0.05)
        self.catch_up()
        if not answered():
            self.show(NO_REPLY)

    # --- showing what the bot did ---
    def _show_new(self) -> None:
        sent = self.fake.sent(CHAT_ID)
        for message in sent[self._shown:]:
            self._show_message(message)
        self._shown = len(sent)

    def _show_edits(self) -> None:
        for message in self.fake.sent(CHAT_ID)[: self._shown]:
            if self._looks.get(message["message_id"]) != render(message):
                self._show_message(message)

    def _show_message(self, message: JSONDict) -> None:
        self._looks[message["message_id"]] = shown = render(message)
        self.show(shown)
        saved = self._save_media(message)
        if saved is not None:
            self.show(f"     (saved as {saved}: open it to see or hear it)")
        if isinstance(message.get("reply_markup"), dict) and "inline_keyboard" in message["reply_markup"]:
            self.last_keyboard = message

    def _save_media(self, message: JSONDict) -> Path | None:
        """A picture, a voice message or a file the bot sent, written to var/sandbox-files/ (beside the sandbox's
        database and models) to open."""
        for kind, suffix in (("photo", ".png"), ("voice", ".ogg"), ("document", "")):
            media = message.get(kind)
            item = media[-1] if isinstance(media, list) and media else media
            if isinstance(item, dict) and "file_id" in item:
                name = item.get("file_name") or f"{kind}-{message['message_id']}{suffix}"
                path = SANDBOX_FILES / f"{message['message_id']}-{Path(str(name)).name}"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(self.fake.file_content(str(item["file_id"])))
                return path
        return None

    def _show_popups(self) -> None:
        for answer in self.fake.answered_callbacks[self._popups:]:
            if answer.get("text"):
                self.show(f"bot (popup)> {answer['text']}")
        self._popups = len(self.fake.answered_callbacks)

    def _show_offer(self) -> None:
        if self._asking is None or (answer := self.fake.inline_answers.get(self._asking)) is None:
            return
        for n, result in enumerate(answer["results"], 1):
            self.show(f"inline> [#{n}] {result.get('title', '')}  {result.get('description', '')}")
        self.offer, self._asking = (self._asking, answer["results"]), None

    # --- what a line replies to ---
    def _last_from(self, person: bool) -> int | None:
        """The id of the person's (or the bot's) last message in the chat."""
        sender = USER_ID if person else self.fake.bot_user["id"]
        mine = [m["message_id"] for m in self.fake.messages(CHAT_ID) if m.get("from", {}).get("id") == sender]
        return mine[-1] if mine else None

    def _open_prompt(self) -> int | None:
        """The bot's last message when it asks for a reply (ForceReply, as /write without words does): a
        Telegram app opens the reply to it, so the next line answers it."""
        sent = self.fake.sent(CHAT_ID)
        last = sent[-1] if sent else {}
        if not last.get("reply_markup", {}).get("force_reply") or last["message_id"] in self._prompts_answered:
            return None
        self._prompts_answered.add(last["message_id"])
        return int(last["message_id"])
