"""PostgreSQL's advisory locks end with their connection, while the process that took them lives on: the
instance lock and the fine-tune lock must notice that, on a live server, within seconds.

``take_over`` plays the second bot: it ends the lock's session (``pg_terminate_backend``, as an operator, a
server restart or a network timeout would) and takes the lock in the same statement, before the first bot
could take it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy.engine import make_url

from bot.app import build_application, running
from bot.db import migrate
from bot.db.engine import make_engine, make_sessionmaker
from bot.ops.instance import ADVISORY_KEY, FINETUNE_KEY, FinetuneLock, InstanceLock, InstanceLocked
from bot.sandbox import FakeTelegram
from bot.services.styles import DEFAULT_STYLE, StyleService
from bot.services.training import TrainingService
from bot.serving.model_store import ModelStore
from bot.settings import Settings
from charrnn.checkpoint import load_checkpoint, save_checkpoint
from tests.helpers import pg
from tests.helpers.bot import make_settings, serve_trained, trained_version
from tests.helpers.training import NEW_SONG

T = TypeVar("T")
USER = 77
CEILING_S = 90.0  # the locks are checked every 5 s; this only keeps a broken build from waiting forever


async def connect(url: str) -> Any:
    """An asyncpg connection of the test's own to the bot's database (Any: asyncpg has no type hints)."""
    import asyncpg

    return await asyncpg.connect(host=pg.HOST, port=pg.PORT, user=pg.USER, database=make_url(url).database)


async def holder(conn: Any, key: int) -> int | None:
    """The backend pid holding advisory lock ``key`` in this connection's database, if any.

    Advisory locks are per database but ``pg_locks`` lists the whole server's: without the database filter a
    test running beside another (pytest -n 2) would find, and end, the other test's bot."""
    pid = await conn.fetchval(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid::bigint = $1"
        " AND objid::bigint = $2 AND objsubid = 1"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        key >> 32, key & 0xFFFF_FFFF)
    return None if pid is None else int(pid)


async def end_session(conn: Any, key: int) -> int:
    """End the session holding ``key`` and wait until it is gone; returns its pid."""
    pid = await holder(conn, key)
    assert pid is not None, "nobody holds the lock"
    assert await conn.fetchval("SELECT pg_terminate_backend($1, 30000)", pid)
    return pid


async def take_over(url: str, key: int) -> Any:
    """End the holder's session and take ``key`` in one statement; returns the connection that now holds it."""
    conn = await connect(url)
    pid = await holder(conn, key)
    assert pid is not None, "nobody holds the lock"
    ended, taken = await conn.fetchrow("SELECT pg_terminate_backend($1, 30000), pg_try_advisory_lock($2)", pid, key)
    assert ended and taken
    return conn


async def wait_for(check: Callable[[], Coroutine[Any, Any, bool]], timeout: float = CEILING_S) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


class FakeInThread:
    """The local Bot API server on an event loop of its own thread, so the bot can own the main thread's loop
    through ``run_polling``, as ``lyricbot run`` does."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._fake: FakeTelegram | None = None
        self._thread = threading.Thread(target=self._serve, name="fake-telegram", daemon=True)

    @property
    def fake(self) -> FakeTelegram:
        assert self._fake is not None
        return self._fake

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        fake = FakeTelegram()
        self.loop.run_until_complete(fake.start())
        self._fake = fake
        self.loop.run_forever()
        self.loop.run_until_complete(fake.stop())
        self.loop.close()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        """Run ``coroutine`` on the fake's loop (where the fake must be used)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def __enter__(self) -> FakeInThread:
        self._thread.start()
        deadline = time.monotonic() + CEILING_S
        while self._fake is None:
            assert time.monotonic() < deadline and self._thread.is_alive(), "the fake did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(CEILING_S)


@contextlib.contextmanager
def own_event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The main thread's loop, as ``run_polling`` finds it; closed afterwards."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        loop.close()
        asyncio.set_event_loop(None)


def test_a_bot_that_loses_its_instance_lock_to_another_stops(
    tmp_path: Path, trained_store: tuple[Path, Path], postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The real ``run_polling``: once it polls, its lock's session ends and a second bot takes the lock. The
    first must notice, stop cleanly and say why (``lyricbot run`` exits 2 with it), not poll beside the other."""
    with FakeInThread() as server, own_event_loop() as loop, caplog.at_level(logging.WARNING):
        fake = server.fake
        settings = make_settings(tmp_path, trained_store, fake, database_url=postgres_url)
        loop.run_until_complete(serve_trained(settings))
        app = build_application(settings)
        # Only if the bot never stops by itself: stop it, and the test fails (no InstanceLocked).
        ceiling = threading.Timer(CEILING_S, lambda: loop.call_soon_threadsafe(loop.stop))

        async def second_bot() -> tuple[float, Any]:
            while fake.calls["getUpdates"] < 2:  # the first bot is up and polling
                await asyncio.sleep(0.1)
            conn = await take_over(postgres_url, ADVISORY_KEY)
            ceiling.start()
            return time.monotonic(), conn

        taken = server.call(second_bot())
        try:
            with pytest.raises(InstanceLocked, match="lost the lock on this PostgreSQL database"):
                app.run_polling(stop_signals=None, close_loop=False, timeout=1)
            stopped = time.monotonic()
        finally:
            ceiling.cancel()
        taken_at, conn = taken.result(CEILING_S)
        assert stopped - taken_at < CEILING_S
        assert any(r.levelno == logging.ERROR and "lost the instance lock" in r.getMessage() for r in caplog.records)
        assert not app.updater.running and not app.running  # run_polling returned: stopped, not polling
        server.call(conn.close()).result(CEILING_S)

    async def third_bot() -> None:
        """With the second bot gone, another can start: nothing of the first one holds on."""
        engine = make_engine(postgres_url)
        lock = InstanceLock(postgres_url, tmp_path / "third")
        try:
            await lock.acquire(engine)
        finally:
            await lock.release()
            await engine.dispose()

    asyncio.run(third_bot())


def test_a_bot_takes_its_lost_instance_lock_again_when_nobody_else_has(
    tmp_path: Path, trained_store: tuple[Path, Path], postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The connection drops (a restart, a proxy's timeout) and no other bot is there: take the lock again on a
    new connection, and keep serving."""

    async def scenario() -> None:
        async with FakeTelegram() as fake:
            settings = make_settings(tmp_path, trained_store, fake, database_url=postgres_url)
            await serve_trained(settings)
            async with running(build_application(settings)):
                conn = await connect(postgres_url)
                try:
                    ended = await end_session(conn, ADVISORY_KEY)

                    async def held_again() -> bool:
                        return await holder(conn, ADVISORY_KEY) not in (None, ended)

                    await wait_for(held_again)
                finally:
                    await conn.close()
                fake.send_text(USER, USER, "/write 我")
                sent = await fake.wait_for_sent(USER, 1, timeout=CEILING_S)
                assert sent[-1]["text"].startswith("我")  # still serving

    with caplog.at_level(logging.WARNING, logger="bot.ops.instance"):
        asyncio.run(scenario())
    assert "the instance lock on this PostgreSQL database: taken again" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def served(styles: StyleService) -> str | None:
    choice = await styles.find(DEFAULT_STYLE)
    return choice.version if choice is not None else None


def test_a_fine_tune_whose_lock_was_lost_is_not_promoted(
    tmp_path: Path, trained_store: tuple[Path, Path], postgres_url: str
) -> None:
    """While a run trains, its lock's session ends and another replica takes the lock (and may fine-tune now):
    the run must not promote its candidate. With the lock kept, the same candidate is promoted."""
    model_dir, corpus = trained_store
    shutil.copytree(model_dir, tmp_path / "models")
    first = trained_version(tmp_path / "models")
    settings = Settings(_env_file=None, database_url=postgres_url, model_dir=tmp_path / "models",  # type: ignore[call-arg]
                        corpus_path=corpus, device="cpu")

    async def scenario() -> None:
        engine = make_engine(postgres_url)
        rival: Any = None
        try:
            await migrate.upgrade(engine)
            await serve_trained(settings)  # as `lyricbot train` left it
            lock = FinetuneLock(postgres_url, tmp_path / "models")
            styles = StyleService(make_sessionmaker(engine), ModelStore(tmp_path / "models", "cpu"))
            service = TrainingService(settings, make_sessionmaker(engine), styles,
                                      exclusive=lambda: lock.try_hold(engine))

            async def candidate(spec_path: Path, lose_the_lock: bool) -> int:
                """Instead of training: a copy of the parent, with metrics the gate passes."""
                nonlocal rival
                if lose_the_lock:
                    rival = await take_over(postgres_url, FINETUNE_KEY)
                spec = json.loads(spec_path.read_text())
                ckpt = load_checkpoint(spec["parent_dir"])
                save_checkpoint(spec["out_dir"], ckpt.model, ckpt.vocab)
                metrics = {"old_ppl_before": 8.0, "old_ppl_after": 8.0, "new_ppl_before": 50.0,
                           "new_ppl_after": 20.0, "seconds": 1.0}
                Path(spec["result_path"]).write_text(json.dumps({
                    "metrics": metrics, "history": [], "added_chars": [],
                    "weights_sha256": load_checkpoint(spec["out_dir"]).weights_sha256}))
                return 0

            class Instead:
                lose_the_lock = True

                async def run(self, spec_path: Path) -> int:
                    return await candidate(spec_path, self.lose_the_lock)

                def interrupt(self) -> None:
                    pass

            service.runner = runner = Instead()
            await service.corpus.add_document(name="song.txt", raw=NEW_SONG.encode(), added_by=None)
            report = await service.retrain(trigger="cli")
            assert not isinstance(report, str)
            assert report.status == "interrupted" and "lock was lost" in report.detail, report
            assert await served(styles) == first

            await rival.close()  # the other replica is done
            runner.lose_the_lock = False
            report = await service.retrain(trigger="cli")
            assert not isinstance(report, str) and report.status == "promoted", report
            assert await served(styles) == report.metrics["version"]
        finally:
            if rival is not None and not rival.is_closed():
                await rival.close()
            await engine.dispose()

    asyncio.run(scenario())


def test_a_fine_tune_lock_lost_and_taken_again_was_not_held_throughout(postgres_url: str) -> None:
    """Taken again after a gap, the lock is held now, but another replica may have fine-tuned and promoted in the
    gap: a fine-tune asks whether it held the lock throughout, and the answer is no."""

    async def scenario() -> None:
        engine = make_engine(postgres_url)
        conn = await connect(postgres_url)
        try:
            async with FinetuneLock(postgres_url, Path("unused")).try_hold(engine) as held:
                assert held and await held.held_throughout()
                await end_session(conn, FINETUNE_KEY)  # the gap: nobody holds it for a moment
                assert await held.confirm()  # taken again, free as it was
                assert not await held.held_throughout()
        finally:
            await conn.close()
            await engine.dispose()

    asyncio.run(scenario())
