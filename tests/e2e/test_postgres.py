"""One conversation end to end on PostgreSQL: the real bot, migrated from empty, against a fresh database.

The other end-to-end tests run on SQLite (the default); this one checks that nothing on the way from an update
to a stored row assumes SQLite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.helpers.bot import USER, ask, bot_running
from tests.helpers.db import request_of, rows


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 90.0) -> None:
    """Wait for a condition that the bot makes true right after sending (its bookkeeping)."""
    for _ in range(int(timeout / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    assert await check()


def test_private_write_rate_and_write_again_on_postgres(
    tmp_path: Path, trained_store: tuple[Path, Path], postgres_url: str
) -> None:
    async def stored(sql: str, expected: list[tuple[Any, ...]], **params: object) -> bool:
        return [tuple(r) for r in await rows(postgres_url, sql, **params)] == expected

    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store, database_url=postgres_url) as h:
            h.fake.add_user(USER, "Ann", "en")
            lyric = await ask(h, "/write 我不要")
            assert lyric["text"].startswith("我不要")
            request_id = request_of(lyric)
            assert request_id is not None
            await eventually(
                lambda: stored(
                    "SELECT status, prefix, answer_message_id FROM requests WHERE id = :id",
                    [("answered", "我不要", lyric["message_id"])],
                    id=request_id,
                )
            )

            h.fake.press_button(USER, USER, lyric["message_id"], f"r:{request_id}:4")
            await eventually(lambda: stored("SELECT user_id, stars FROM ratings", [(USER, 4)]))
            h.fake.press_button(USER, USER, lyric["message_id"], f"r:{request_id}:2")  # rating again replaces
            await eventually(lambda: stored("SELECT user_id, stars FROM ratings", [(USER, 2)]))

            before = len(h.fake.sent(USER))
            h.fake.press_button(USER, USER, lyric["message_id"], f"a:{request_id}")
            again = (await h.fake.wait_for_sent(USER, before + 1))[-1]
            assert again["text"].startswith("我不要") and again["text"] != lyric["text"]
            await eventually(
                lambda: stored(
                    "SELECT status, prefix, answer_message_id FROM requests WHERE parent_id = :id",
                    [("answered", "我不要", again["message_id"])],
                    id=request_id,
                )
            )

            stats = await ask(h, "/stats")
            assert "2" in stats["text"]
            best = await ask(h, "/top")
            assert "我不要" in best["text"]

        # After the bot stopped: two requests, each answered by exactly one message, and the one rating.
        assert await stored(
            "SELECT parent_id, status FROM requests ORDER BY id", [(None, "answered"), (request_id, "answered")]
        )
        for message in (lyric, again):
            answers = [m["message_id"] for m in h.fake.sent(USER) if request_of(m) == request_of(message)]
            assert answers == [message["message_id"]]
        assert await stored("SELECT request_id, user_id, stars FROM ratings", [(request_id, USER, 2)])

    asyncio.run(scenario())
