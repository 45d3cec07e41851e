"""Styles end to end: several models served at once, chosen per person in private and per group by its
administrators, deleted styles, per-style /models and /rollback, and `lyricbot train --style`."""

from __future__ import annotations

import asyncio
import copy
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.db import repository
from bot.db.engine import make_engine, make_sessionmaker
from bot.db.repository import record_version
from bot.sandbox import FakeTelegram
from bot.services.styles import StyleService
from charrnn.checkpoint import load_checkpoint
from tests.helpers.bot import Harness, ask, bot_running, buttons, eventually, serve_trained_at, served_in
from tests.helpers.training import FAST as FAST_TRAINING
from tests.helpers.training import NEW_SONG, copy_store, last_user_message_id

ADMIN, PERSON, OTHER, GROUP = 42, 501, 502, -100888
FAST = {"admin_ids": frozenset({ADMIN})}


def styles(h: Harness) -> StyleService:
    service = h.app.bot_data.services.styles
    assert service is not None
    return service


async def active(h: Harness) -> str:
    """The version the default style serves: its row, read through the bot's own service (SQLite or PostgreSQL)."""
    choice = await styles(h).find("default")
    assert choice is not None and choice.version is not None
    return choice.version


async def add_style(h: Harness, name: str = "jay", title: str = "Jay Chou", version: str | None = None) -> str:
    """A second style: a copy of the fixture's model under a directory of its own, registered as ``name``."""
    version = version or f"{name}-v1"
    shutil.copytree(h.settings.model_dir / await active(h), h.settings.model_dir / version)
    await styles(h).create(name=name, title=title, version=version, created_by=ADMIN)
    return version


def last_request(h: Harness, user: int) -> list[tuple[Any, ...]]:
    return h.rows("SELECT style, model_version, status FROM requests WHERE user_id = ? ORDER BY id DESC LIMIT 1", user)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_private_choice_runs_on_the_styles_version(
    tmp_path: Path, trained_store: tuple[Path, Path], language: str
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, copy_store(trained_store, tmp_path), **FAST) as h:
            h.fake.add_user(PERSON, "Ann", language)
            version = await add_style(h)
            panel = await ask(h, "/style", chat=PERSON, user=PERSON)
            assert buttons(panel) == ["st:default", "st:jay"]
            labels = [b["text"] for row in panel["reply_markup"]["inline_keyboard"] for b in row]
            default_title = "Default" if language == "en" else "默认"
            assert labels == [f"\u2713 {default_title}", "Jay Chou"] and default_title in panel["text"]

            h.fake.press_button(PERSON, PERSON, panel["message_id"], "st:jay")
            await eventually(lambda: len(h.fake.answered_callbacks) == 1)
            assert "Jay Chou" in h.fake.answered_callbacks[0]["text"]
            assert h.rows("SELECT style FROM user_settings WHERE user_id = ?", PERSON) == [("jay",)]
            lyric = await ask(h, "/write 我不要", chat=PERSON, user=PERSON)
            assert lyric["text"].startswith("我不要")
            await eventually(lambda: last_request(h, PERSON) == [("jay", version, "answered")])

            # Typed by name works too, case-insensitively; the setting is NULL again (never chose), the request
            # names the default style and the version its row points at.
            await ask(h, "/style DEFAULT", chat=PERSON, user=PERSON)
            assert h.rows("SELECT style FROM user_settings WHERE user_id = ?", PERSON) == [(None,)]
            await ask(h, "/write 我不要", chat=PERSON, user=PERSON)
            served = await active(h)
            await eventually(lambda: last_request(h, PERSON) == [("default", served, "answered")])

            # A style answers to the title its button shows, in either language: 默认 / Default, Jay Chou.
            for typed, stored in (("jay chou", "jay"), (default_title, None), ("Default", None), ("Jay Chou", "jay"),
                                  ("默认", None)):
                await ask(h, f"/style {typed}", chat=PERSON, user=PERSON)
                assert h.rows("SELECT style FROM user_settings WHERE user_id = ?", PERSON) == [(stored,)], typed

            unknown = await ask(h, "/style nosuch", chat=PERSON, user=PERSON)
            assert "nosuch" in unknown["text"] and f"{default_title} (default), Jay Chou (jay)" in unknown["text"]
            # Forged button data: refused in a popup, nothing changes.
            for forged in ("st:nosuch", "st:../ACTIVE", "st:" + "x" * 60):
                h.fake.forge_callback(PERSON, PERSON, panel["message_id"], forged)
            await eventually(lambda: len(h.fake.answered_callbacks) == 4)
            assert all(a.get("show_alert") for a in h.fake.answered_callbacks[1:])
            assert h.rows("SELECT style FROM user_settings WHERE user_id = ?", PERSON) == [(None,)]
            # Real style data under a lyric (not a /style panel): refused; the lyric keeps its text and buttons.
            before = copy.deepcopy(lyric)
            h.fake.forge_callback(PERSON, PERSON, lyric["message_id"], "st:jay")
            await eventually(lambda: len(h.fake.answered_callbacks) == 5)
            assert h.fake.answered_callbacks[-1].get("show_alert")
            after = next(m for m in h.fake.messages(PERSON) if m["message_id"] == lyric["message_id"])
            assert (after["text"], after["reply_markup"]) == (before["text"], before["reply_markup"])
            assert h.rows("SELECT style FROM user_settings WHERE user_id = ?", PERSON) == [(None,)]

    asyncio.run(scenario())


@pytest.mark.parametrize("language", ["en", "zh"])
def test_group_style_is_set_by_its_administrators_only(
    tmp_path: Path, trained_store: tuple[Path, Path], language: str
) -> None:
    async def scenario() -> None:
        fake = FakeTelegram()
        await fake.start()
        try:
            async with bot_running(tmp_path, copy_store(trained_store, tmp_path), fake=fake, **FAST) as h:
                fake.add_user(PERSON, "Ann", language)
                fake.add_user(OTHER, "Bo", language)
                fake.add_chat(GROUP, "supergroup", "Lyrics club")
                fake.set_member(GROUP, PERSON, "creator")
                fake.set_member(GROUP, OTHER, "member")
                version = await add_style(h)

                panel = await ask(h, "/style@LyricBot", chat=GROUP, user=OTHER)
                assert buttons(panel) == ["st:default", "st:jay"]
                fake.press_button(OTHER, GROUP, panel["message_id"], "st:jay")  # not an administrator
                await eventually(lambda: len(fake.answered_callbacks) == 1)
                refusal = fake.answered_callbacks[0]
                assert refusal.get("show_alert")
                admins = "administrators" if language == "en" else "管理员"
                assert admins in refusal["text"]
                assert h.rows("SELECT style FROM chat_settings") == []
                typed = await ask(h, "/style@LyricBot jay", chat=GROUP, user=OTHER)
                assert admins in typed["text"]
                assert h.rows("SELECT style FROM chat_settings") == []

                fake.press_button(PERSON, GROUP, panel["message_id"], "st:jay")  # the group's creator
                await eventually(lambda: len(fake.answered_callbacks) == 2)
                assert h.rows("SELECT chat_id, style, updated_by FROM chat_settings") == [(GROUP, "jay", PERSON)]
                await eventually(lambda: "\u2713 Jay Chou" in str(fake.messages(GROUP)))  # the panel ticks it

                # Everyone's requests in the group use the group's style; Bo's private chat keeps his own.
                lyric = await ask(h, "/write@LyricBot 天青色", chat=GROUP, user=OTHER)
                assert lyric["text"].startswith("天青色")
                await eventually(lambda: last_request(h, OTHER) == [("jay", version, "answered")])
                await ask(h, "/write 天青色", chat=OTHER, user=OTHER)
                served = await active(h)
                await eventually(lambda: last_request(h, OTHER) == [("default", served, "answered")])
        finally:
            await fake.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_deleted_style_falls_back_to_the_default_with_a_note(
    tmp_path: Path, trained_store: tuple[Path, Path], language: str
) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, copy_store(trained_store, tmp_path), **FAST) as h:
            h.fake.add_user(PERSON, "Ann", language)
            h.fake.add_user(ADMIN, "Root", "en")
            await add_style(h)
            await ask(h, "/style jay", chat=PERSON, user=PERSON)
            panel = await ask(h, "/style", chat=PERSON, user=PERSON)

            refused = await ask(h, "/delstyle jay", chat=PERSON, user=PERSON)
            assert "only for the bot's admins" in refused["text"]
            deleted = await ask(h, "/delstyle jay", chat=ADMIN, user=ADMIN)
            assert "deleted" in deleted["text"]
            assert h.rows("SELECT name FROM styles WHERE deleted_at IS NOT NULL") == [("jay",)]
            again = await ask(h, "/delstyle jay", chat=ADMIN, user=ADMIN)
            assert "No style jay" in again["text"]

            # Inline, with the setting still naming the deleted style: the default style's lyrics, no crash.
            answer = await h.fake.wait_for_inline_answer(h.fake.send_inline_query(PERSON, "我不要"), timeout=120)
            assert answer["results"] and answer["results"][0]["id"] != "hint"
            assert all(r["input_message_content"]["message_text"].startswith("我不要") for r in answer["results"])

            lyric = await ask(h, "/write 我不要", chat=PERSON, user=PERSON)
            assert lyric["text"].startswith("我不要") and "jay" in lyric["text"].split("\n\n")[-1]
            served = await active(h)
            await eventually(lambda: last_request(h, PERSON) == [("default", served, "answered")])
            assert h.rows("SELECT style FROM user_settings WHERE user_id = ?", PERSON) == [(None,)]
            second = await ask(h, "/write 我不要", chat=PERSON, user=PERSON)
            assert "jay" not in second["text"].split("\n\n")[-1]  # told once

            gone = await ask(h, "/style jay", chat=PERSON, user=PERSON)
            assert "jay" in gone["text"] and "default" in gone["text"] and "Jay Chou" not in gone["text"]
            h.fake.press_button(PERSON, PERSON, panel["message_id"], "st:jay")  # an old panel's button
            await eventually(lambda: len(h.fake.answered_callbacks) == 1)
            assert h.fake.answered_callbacks[0].get("show_alert")
            assert h.rows("SELECT style FROM user_settings WHERE user_id = ?", PERSON) == [(None,)]
            assert buttons(await ask(h, "/style", chat=PERSON, user=PERSON)) == ["st:default"]

    asyncio.run(scenario())


def test_two_styles_in_one_flood_are_both_answered(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, copy_store(trained_store, tmp_path), **FAST) as h:
            h.fake.add_user(PERSON, "Ann", "en")
            h.fake.add_user(OTHER, "Bo", "zh")
            version = await add_style(h)
            await ask(h, "/style jay", chat=PERSON, user=PERSON)
            assert h.app.bot_data.services.lyrics.backend._max_lanes >= 2  # type: ignore[attr-defined]
            for _ in range(4):
                h.fake.send_text(PERSON, PERSON, "/write 我不要")
                h.fake.send_text(OTHER, OTHER, "/write 我不要")
            await h.fake.wait_for_sent(PERSON, 1 + 4, timeout=60)
            await h.fake.wait_for_sent(OTHER, 4, timeout=60)
            await eventually(lambda: h.rows("SELECT COUNT(*) FROM requests WHERE status = 'answered'") == [(8,)])
            rows = h.rows("SELECT user_id, style, model_version FROM requests ORDER BY id")
            assert {r for r in rows} == {(PERSON, "jay", version), (OTHER, "default", await active(h))}

    asyncio.run(scenario())


def test_models_and_rollback_per_style(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        async with bot_running(tmp_path, copy_store(trained_store, tmp_path), **FAST) as h:
            h.fake.add_user(ADMIN, "Root", "en")
            h.fake.add_user(PERSON, "Ann", "en")
            default = await active(h)
            first = await add_style(h, version="jay-v1")
            # A second version of the style, as a fine-tune would record it.
            shutil.copytree(h.settings.model_dir / first, h.settings.model_dir / "jay-v2")
            sha = load_checkpoint(h.settings.model_dir / "jay-v2").weights_sha256
            async with styles(h).sessions.begin() as session:
                await record_version(session, version="jay-v2", parent=first, weights_sha256=sha, document_ids=[],
                                     old_ppl=None, new_ppl=None, metrics={}, run_id=None, style="jay")

            forward = await ask(h, "/rollback jay jay-v2", chat=ADMIN, user=ADMIN)
            assert "jay-v2" in forward["text"]
            listing = await ask(h, "/models jay", chat=ADMIN, user=ADMIN)
            versions = listing["text"].split("Styles:")[0]
            assert "jay-v2 (active)" in versions and first in versions and default not in versions
            await ask(h, "/style jay", chat=PERSON, user=PERSON)
            await ask(h, "/write 我", chat=PERSON, user=PERSON)
            await eventually(lambda: last_request(h, PERSON) == [("jay", "jay-v2", "answered")])

            back = await ask(h, "/rollback jay", chat=ADMIN, user=ADMIN)
            assert first in back["text"]
            assert h.rows("SELECT active_version FROM styles WHERE name = 'jay'") == [(first,)]
            assert await active(h) == default  # the default style did not move
            await ask(h, "/write 我", chat=PERSON, user=PERSON)
            await eventually(lambda: last_request(h, PERSON) == [("jay", first, "answered")])

            # Versions of one style never serve another: not as the default's, not across styles.
            crossed = await ask(h, f"/rollback {first}", chat=ADMIN, user=ADMIN)
            assert "No rollback" in crossed["text"] and await active(h) == default
            foreign = await ask(h, f"/rollback jay {default}", chat=ADMIN, user=ADMIN)
            assert "No rollback" in foreign["text"]
            nothing = await ask(h, "/rollback jay", chat=ADMIN, user=ADMIN)  # jay-v1 has no parent
            assert "No rollback" in nothing["text"]
            overview = await ask(h, "/models", chat=ADMIN, user=ADMIN)
            assert "jay-v2" not in overview["text"].split("Styles:")[0] and f"jay ({first})" in overview["text"]
            unknown = await ask(h, "/models nosuch", chat=ADMIN, user=ADMIN)
            assert "no style nosuch" in unknown["text"]

    asyncio.run(scenario())


def test_lyricbot_train_style_creates_a_style(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    trained_store: tuple[Path, Path],
) -> None:
    model_dir, corpus = copy_store(trained_store, tmp_path)
    monkeypatch.setenv("MODEL_DIR", str(model_dir))
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    monkeypatch.setenv("DEVICE", "cpu")
    asyncio.run(serve_trained_at(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", model_dir))  # `lyricbot train`
    before = served_in(tmp_path / "bot.db")
    assert main(["train", "--corpus", str(corpus), "--minutes", "0.05", "--style", "Shakespeare",
                 "--title", "The Bard"]) == 0
    out = capsys.readouterr().out
    assert "style shakespeare" in out
    assert served_in(tmp_path / "bot.db") == before  # the default style is untouched
    # Its corpus is kept for its fine-tunes (replay, the held-out guard) and for the copy filter.
    assert (model_dir / "styles" / "shakespeare" / "corpus.txt").read_text(encoding="utf-8") == corpus.read_text(
        encoding="utf-8")

    async def check() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
        try:
            async with make_sessionmaker(engine)() as session:
                record = await repository.get_style(session, name="shakespeare")
                assert record is not None and record.title == "The Bard" and record.active_version
                assert record.active_version.startswith("shakespeare-v")
                version = await repository.get_version(session, version=record.active_version)
                assert version is not None and version.style == "shakespeare"
        finally:
            await engine.dispose()

    asyncio.run(check())
    # A taken or malformed name is refused before any training.
    assert main(["train", "--corpus", str(corpus), "--minutes", "0.05", "--style", "shakespeare"]) == 2
    assert main(["train", "--corpus", str(corpus), "--minutes", "0.05", "--style", "default"]) == 2
    assert "cannot name a style" in capsys.readouterr().err


def test_retrain_a_style_promotes_within_the_style(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    """Corpus text added for a style fine-tunes that style only, and its candidate is promoted within it."""

    async def scenario() -> None:
        async with bot_running(tmp_path, copy_store(trained_store, tmp_path), **FAST_TRAINING) as h:
            h.fake.add_user(ADMIN, "Ada", "en")
            default = await active(h)
            first = await add_style(h)
            assert "characters" in (await ask(h, NEW_SONG, chat=ADMIN, user=ADMIN))["text"]  # too long to continue
            song = last_user_message_id(h, ADMIN)
            bad = await ask(h, "/addcorpus nosuch", chat=ADMIN, user=ADMIN)  # not a reply: usage first
            assert "Reply /addcorpus" in bad["text"]
            before = len(h.fake.sent(ADMIN))
            h.fake.send_text(ADMIN, ADMIN, "/addcorpus nosuch", reply_to_message_id=song)
            refused = (await h.fake.wait_for_sent(ADMIN, before + 1))[-1]
            assert "no style nosuch" in refused["text"]
            before = len(h.fake.sent(ADMIN))
            h.fake.send_text(ADMIN, ADMIN, "/addcorpus jay", reply_to_message_id=song)
            added = (await h.fake.wait_for_sent(ADMIN, before + 1))[-1]
            assert "Added document 1" in added["text"]
            assert h.rows("SELECT style FROM corpus_documents") == [("jay",)]
            listing = await ask(h, "/corpus", chat=ADMIN, user=ADMIN)
            assert "style jay, new" in listing["text"]

            nothing = await ask(h, "/retrain", chat=ADMIN, user=ADMIN)  # the default style has nothing new
            assert "nothing to do" in nothing["text"]
            unknown = await ask(h, "/retrain nosuch", chat=ADMIN, user=ADMIN)
            assert "no style nosuch" in unknown["text"]
            started = await ask(h, "/retrain jay", chat=ADMIN, user=ADMIN)
            assert "Training started" in started["text"]
            report = (await h.fake.wait_for_sent(ADMIN, len(h.fake.sent(ADMIN)) + 1, timeout=180))[-1]
            assert "Training run 1 (style jay)" in report.get("caption", report.get("text", ""))
            status, candidate, parent, style = h.rows(
                "SELECT status, candidate_version, parent_version, style FROM training_runs")[0]
            assert (status, parent, style) == ("promoted", first, "jay"), report
            assert h.rows("SELECT active_version FROM styles WHERE name = 'jay'") == [(candidate,)]
            assert h.rows("SELECT style FROM model_versions WHERE version IN (?, ?)", first, candidate) == [
                ("jay",), ("jay",)]
            assert await active(h) == default  # the default style was not touched
            assert "nothing to do" in (await ask(h, "/retrain jay", chat=ADMIN, user=ADMIN))["text"]
            assert "style jay, in the active model" in (await ask(h, "/corpus", chat=ADMIN, user=ADMIN))["text"]

            back = await ask(h, "/rollback jay", chat=ADMIN, user=ADMIN)
            assert first in back["text"]
            assert h.rows("SELECT active_version FROM styles WHERE name = 'jay'") == [(first,)]

    asyncio.run(scenario())


def test_a_request_left_over_from_a_crash_is_answered_in_its_style(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def scenario() -> None:
        store = copy_store(trained_store, tmp_path)
        async with bot_running(tmp_path, store, **FAST) as h:
            h.fake.add_user(PERSON, "Ann", "en")
            version = await add_style(h)
            await ask(h, "/style jay", chat=PERSON, user=PERSON)
        with sqlite3.connect(tmp_path / "bot.db") as conn:  # accepted, then the bot died before generating
            conn.execute(f"INSERT INTO chats (id, type, created_at) VALUES ({PERSON}, 'private', CURRENT_TIMESTAMP)")
            conn.execute(
                "INSERT INTO requests (update_id, user_id, chat_id, prefix, temperature, length, rhyme, status, "
                "candidate_index, source, style, created_at) VALUES "
                f"(777, {PERSON}, {PERSON}, '我不要', 0.8, 40, 0, 'queued', 0, 'chat', 'jay', CURRENT_TIMESTAMP)"
            )
        fake = FakeTelegram()
        await fake.start()
        try:
            fake.add_user(PERSON, "Ann", "en")
            fake.add_chat(PERSON)
            async with bot_running(tmp_path, store, fake=fake, **FAST) as h:
                await fake.wait_for_sent(PERSON, 1, timeout=120)
                await eventually(lambda: h.rows("SELECT style, model_version, status FROM requests "
                                                "WHERE update_id = 777") == [("jay", version, "answered")])
        finally:
            await fake.stop()

    asyncio.run(scenario())


def test_celery_workers_serve_each_style_on_its_version(
    tmp_path: Path, trained_store: tuple[Path, Path], postgres_url: str
) -> None:
    """With GENERATION_BACKEND=celery each task names its style's version, which a worker loads on first use."""
    from tests.e2e.test_celery import bot_settings
    from tests.helpers.celery_workers import celery_env, redis_prefix, workers
    from tests.helpers.db import rows

    store = copy_store(trained_store, tmp_path)
    with redis_prefix() as prefix, workers(celery_env(prefix, store[0]), tmp_path / "workers", 1):

        async def scenario() -> None:
            async with bot_running(tmp_path, store, **bot_settings(prefix, postgres_url), **FAST) as h:
                h.fake.add_user(PERSON, "Ann", "en")
                h.fake.add_user(OTHER, "Bo", "zh")
                version = await add_style(h)
                await ask(h, "/style jay", chat=PERSON, user=PERSON)
                for _ in range(3):
                    h.fake.send_text(PERSON, PERSON, "/write 我不要")
                    h.fake.send_text(OTHER, OTHER, "/write 我不要")
                await h.fake.wait_for_sent(PERSON, 1 + 3, timeout=90)
                await h.fake.wait_for_sent(OTHER, 3, timeout=90)

                async def versions() -> set[tuple[Any, ...]]:
                    return set(await rows(postgres_url, "SELECT user_id, style, model_version, status FROM requests"))

                expected = {(PERSON, "jay", version, "answered"), (OTHER, "default", await active(h), "answered")}
                for _ in range(100):
                    if await versions() == expected:
                        break
                    await asyncio.sleep(0.1)
                assert await versions() == expected

        asyncio.run(scenario())
