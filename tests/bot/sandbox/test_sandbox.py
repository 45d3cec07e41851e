"""The sandbox chat (``lyricbot sandbox``, ``make run`` without a token) as a person uses it: the real bot, its own
database and models, production's only read, and nothing silent: every line gets an answer or says it has none
yet, and answers that come late still show, in order."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from telegram import Bot, ForceReply

from bot.cli import build_parser
from bot.db.engine import make_engine, make_sessionmaker
from bot.db.migrate import upgrade
from bot.db.models import Chat, User
from bot.db.repos.requests import create_request
from bot.sandbox import FakeTelegram, run_sandbox
from bot.sandbox.terminal import CHAT_ID, USER_ID, chat_loop
from bot.settings import Settings
from tests.helpers.bot import serve_trained, serve_trained_at, served_in

CEILING = 90.0  # seconds: a busy CI machine is slow, never this slow
SONG = "窗外的麻雀 在电线杆上多嘴\\n你说这一句 很有夏天的感觉"


class Script:
    """A person at the sandbox's terminal: each line is typed once what the chat showed satisfies the line
    before it (``until``), or after CEILING seconds, so a failing run ends and says what it saw."""

    def __init__(self, *steps: tuple[str, Callable[[str], bool] | None]) -> None:
        self.steps = list(steps)
        self.text = ""
        self.stalled: list[str] = []  # the lines whose answer never showed
        self._line = ""
        self._until: Callable[[str], bool] | None = None

    def show(self, text: str) -> None:
        self.text += text + "\n"

    async def read(self) -> str | None:
        if not await until(lambda: self._until is None or self._until(self.text)):
            self.stalled.append(self._line)
        if not self.steps:
            return None
        self._line, self._until = self.steps.pop(0)
        return self._line


async def until(condition: Callable[[], bool], ceiling: float = CEILING) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ceiling
    while not condition() and loop.time() < deadline:
        await asyncio.sleep(0.05)
    return condition()


def shows(*words: str) -> Callable[[str], bool]:
    return lambda text: all(word in text for word in words)


def production(tmp_path: Path, model_dir: Path, corpus: Path, **overrides: Any) -> Settings:
    """The real bot's settings, as ``.env`` gives them: its database, where the default style serves the model
    ``lyricbot train`` left in its model directory."""
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'production' / 'lyricbot.db'}",
        "model_dir": model_dir, "corpus_path": corpus, "device": "cpu", "candidates": 2, "default_length": 40,
        "min_length": 10, "rate_limit_per_minute": 1000, "copy_threshold": 40, "title_candidates": 0, **overrides,
    }  # fmt: skip
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    asyncio.run(serve_trained(settings))
    return settings


def sandbox_rows(sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect("var/sandbox.db")) as conn:
        return conn.execute(sql).fetchall()


def test_a_restarted_sandbox_still_answers(
    tmp_path: Path, trained_store: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 3: a second session's updates must not reuse the ids the first one's requests are stored under."""
    monkeypatch.chdir(tmp_path)
    settings = production(tmp_path, *trained_store)
    sessions = []
    for _ in range(2):
        script = Script(("/write 我不要", shows("bot> 我不要")), ("/quit", None))
        asyncio.run(run_sandbox(settings, read=script.read, show=script.show, patience=5))
        sessions.append(script.text)
        assert not script.stalled, script.text[-2000:]
    assert "bot> 我不要" in sessions[0], sessions[0][-2000:]
    assert "bot> 我不要" in sessions[1], sessions[1][-2000:]  # answered, not taken for a repeat of session 1
    assert sandbox_rows("SELECT status, update_id FROM requests ORDER BY id") == [("answered", 1), ("answered", 2)]


def test_the_chat_says_there_is_no_reply_yet_and_shows_late_answers_in_order() -> None:
    """Item 4: a line without an answer gives the prompt back after ``patience``, with a note; the next lines
    are sent at once, and answers that come later are still shown, in the order the bot sent them."""

    async def scenario() -> None:
        async with FakeTelegram() as fake:
            fake.add_user(USER_ID, "You", "zh")
            lines: asyncio.Queue[str | None] = asyncio.Queue()
            shown: list[str] = []
            chat = asyncio.create_task(chat_loop(fake, lines.get, shown.append, patience=1.0))
            await lines.put("/write 分开")
            assert await until(lambda: any("(no reply" in s for s in shown)), shown
            await lines.put("still there?")  # typed while the bot is silent: sent at once
            typed = ["/write 分开", "still there?"]
            assert await until(lambda: [m.get("text") for m in fake.messages(CHAT_ID)] == typed)
            async with Bot(fake.token, base_url=fake.base_url) as bot:  # the bot answers, late
                await bot.send_message(CHAT_ID, "first answer")
                await bot.send_message(CHAT_ID, "second answer")
            assert await until(lambda: "bot> second answer" in shown), shown
            assert shown.index("bot> first answer") < shown.index("bot> second answer")
            await lines.put("/quit")
            await asyncio.wait_for(chat, CEILING)

    asyncio.run(scenario())


def test_a_question_of_the_bot_is_answered_by_the_next_line() -> None:
    """A message asking for a reply (ForceReply) makes the next line a reply to it, as a Telegram app does."""

    async def scenario() -> None:
        async with FakeTelegram() as fake:
            fake.add_user(USER_ID, "You", "en")
            fake.add_chat(CHAT_ID)
            lines: asyncio.Queue[str | None] = asyncio.Queue()
            shown: list[str] = []
            chat = asyncio.create_task(chat_loop(fake, lines.get, shown.append, patience=0.5))
            async with Bot(fake.token, base_url=fake.base_url) as bot:
                question = await bot.send_message(CHAT_ID, "Send me the first line", reply_markup=ForceReply())
            assert await until(lambda: "bot> Send me the first line" in shown), shown
            for line in ("天青色", "and again", "/quit"):
                await lines.put(line)
            await asyncio.wait_for(chat, CEILING)
            mine = [m for m in fake.messages(CHAT_ID) if m["from"]["id"] == USER_ID]
            assert [m.get("reply_to_message", {}).get("message_id") for m in mine] == [question.message_id, None]

    asyncio.run(scenario())


async def _pending_request(url: str) -> None:
    """A real person's request, accepted and not answered yet: what a stopped production bot leaves."""
    engine = make_engine(url)
    try:
        await upgrade(engine)
        async with make_sessionmaker(engine).begin() as session:
            session.add_all([User(id=777, first_name="Real"), Chat(id=777, type="private")])
            await session.flush()
            await create_request(session, update_id=5, user_id=777, chat_id=777, message_id=1, prefix="我不要",
                                 temperature=0.8, length=40)  # fmt: skip
    finally:
        await engine.dispose()


def _fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def test_the_sandbox_never_touches_production(
    tmp_path: Path, trained_store: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 5: with DATABASE_URL and MODEL_DIR set (the .env case), the sandbox opens neither production's
    database nor writes to its model directory, and still serves production's active model."""
    models = tmp_path / "production" / "models"
    shutil.copytree(trained_store[0], models)
    database = tmp_path / "production" / "lyricbot.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{database}")
    monkeypatch.setenv("MODEL_DIR", str(models))
    asyncio.run(_pending_request(f"sqlite+aiosqlite:///{database}"))
    asyncio.run(serve_trained_at(f"sqlite+aiosqlite:///{database}", models))  # production's `lyricbot train`
    with contextlib.closing(sqlite3.connect(database)) as conn:  # the last connection: -wal and -shm go
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the file alone holds everything from here on
    database_before, models_before = database.read_bytes(), _fingerprint(models)
    neighbours = sorted(p.name for p in database.parent.iterdir())
    active = served_in(database)

    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None, corpus_path=trained_store[1], device="cpu", candidates=2,  # type: ignore[call-arg]
                        default_length=40, min_length=10, copy_threshold=40, title_candidates=0)  # fmt: skip
    assert settings.database_url.endswith("production/lyricbot.db") and settings.model_dir == models
    script = Script(("/write 天青色", shows("bot> 天青色")), ("/quit", None))
    asyncio.run(run_sandbox(settings, read=script.read, show=script.show, patience=5))

    assert "bot> 天青色" in script.text and not script.stalled, script.text[-2000:]
    assert sorted(p.name for p in database.parent.iterdir()) == neighbours  # no lock, no -wal beside it
    assert database.read_bytes() == database_before  # the real person's request is still pending, untouched
    assert _fingerprint(models) == models_before
    with contextlib.closing(sqlite3.connect(database)) as conn:
        assert conn.execute("SELECT status FROM requests").fetchall() == [("queued",)]
    assert active in script.text  # the intro names the version it serves: production's
    assert served_in(tmp_path / "var" / "sandbox.db") == active


def test_the_sandbox_speaks_english_and_says_how_to_become_admin(
    tmp_path: Path, trained_store: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 8: --lang en makes the sandbox person English; the intro gives their user id and ADMIN_IDS."""
    assert build_parser().parse_args(["sandbox", "--lang", "en"]).lang == "en"
    assert build_parser().parse_args(["run", "--lang", "en"]).lang == "en"
    assert build_parser().parse_args(["run"]).lang == "zh"  # make run: as before
    monkeypatch.chdir(tmp_path)
    script = Script(("/stats", shows("bot> You asked for")), ("/quit", None))
    asyncio.run(run_sandbox(production(tmp_path, *trained_store), lang="en", read=script.read, show=script.show,
                            patience=5))  # fmt: skip
    assert f"user id {USER_ID}" in script.text and f"ADMIN_IDS={USER_ID} make run" in script.text
    assert "bot> You asked for 0 lyrics" in script.text and not script.stalled, script.text[-2000:]


def test_music_under_an_inline_lyric_follows_the_link_and_sings_in_the_private_chat(
    tmp_path: Path, trained_store: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """🎵 under a lyric sent through inline mode answers with a t.me link; a Telegram app opens it (``/start
    tune-...``) and the song comes in the private chat. The sandbox showed nothing after the press."""
    monkeypatch.chdir(tmp_path)
    script = Script(
        ("@LyricBot 春天", shows("inline> [#1]")),
        ("#1", shows("🎵")),
        ("!7", shows("bot> [file")),
        ("/quit", None),
    )
    asyncio.run(run_sandbox(production(tmp_path, *trained_store), read=script.read, show=script.show, patience=30))
    assert not script.stalled, script.text[-3000:]
    assert "bot (link)> https://t.me/" in script.text and "/start tune-" in script.text
    assert "bot> [picture]" in script.text and "bot> [voice message" in script.text


def test_addcorpus_in_the_sandbox_by_reply_and_by_file(
    tmp_path: Path, trained_store: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 8: an admin tries /addcorpus in the sandbox: /reply answers their own last line, /file sends a
    document (which the bot fetches from the local server)."""
    monkeypatch.chdir(tmp_path)
    song = tmp_path / "my song.txt"
    song.write_text("Rain on the window, rain on the road\nI carry the night like a heavy load\n", encoding="utf-8")
    script = Script(
        (SONG, lambda text: "(no reply" in text or text.count("bot> ") > 0),  # the pasted song: answered or not
        ("/reply /addcorpus", shows("Added document 1")),
        (f'/file "{song}" /addcorpus', shows("Added document 2")),
        ("/quit", None),
    )
    settings = production(tmp_path, *trained_store, admin_ids=frozenset({USER_ID}))
    asyncio.run(run_sandbox(settings, lang="en", read=script.read, show=script.show, patience=5))
    assert "Added document 2" in script.text and not script.stalled, script.text[-3000:]
    assert "You are an admin" in script.text
    assert sandbox_rows("SELECT name FROM corpus_documents ORDER BY id") == [("message",), ("my song.txt",)]


def test_a_lone_surrogate_is_a_bad_request_as_in_telegram() -> None:
    """Text that is not valid Unicode (a lone surrogate, escaped in JSON) is refused with 400, not a 500."""

    async def scenario() -> None:
        async with FakeTelegram() as fake, aiohttp.ClientSession() as http:
            fake.add_user(USER_ID)
            fake.add_chat(CHAT_ID)
            # Escaped in the JSON text, as a client's encoder writes a string it holds with a lone surrogate.
            bodies = (f'{{"chat_id": {CHAT_ID}, "text": "a\\ud800b"}}',
                      f'{{"chat_id": {CHAT_ID}, "text": "ok", "reply_markup": {{"inline_keyboard": [[{{"text": '
                      f'"\\udfff", "callback_data": "x"}}]]}}}}')  # fmt: skip
            for body in bodies:
                url = f"{fake.base_url}{fake.token}/sendMessage"
                async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
                    assert response.status == 400
                    assert await response.json() == {"ok": False, "error_code": 400,
                                                     "description": "Bad Request: strings must be encoded in UTF-8"}
            assert fake.sent() == []

    asyncio.run(scenario())
