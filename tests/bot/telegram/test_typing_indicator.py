"""One "typing..." loop per chat, however many of its requests are waiting (bot.telegram.typing_indicator)."""

from __future__ import annotations

import asyncio

from bot.telegram.typing_indicator import TypingIndicator


def test_requests_in_one_chat_share_one_indicator_and_it_stops_with_the_last() -> None:
    async def scenario() -> None:
        sent: list[int] = []

        async def send(chat_id: int) -> None:
            sent.append(chat_id)

        typing = TypingIndicator(send, every_s=0.05)
        async with typing.during(1):
            async with typing.during(1), typing.during(1), typing.during(2):
                await asyncio.sleep(0.12)  # each chat: at 0, 0.05 and 0.10
            assert typing.active(1) and not typing.active(2)
            # Three requests in chat 1, one in chat 2: as many actions in each (one loop per chat), on any clock.
            assert sent.count(2) >= 2 and abs(sent.count(1) - sent.count(2)) <= 1, sent
        assert not typing.active(1)
        after = len(sent)
        await asyncio.sleep(0.12)
        assert len(sent) == after  # nothing keeps sending once no request waits

    asyncio.run(scenario())


def test_a_failing_chat_action_never_reaches_the_request() -> None:
    async def scenario() -> None:
        calls = 0

        async def send(chat_id: int) -> None:
            nonlocal calls
            calls += 1
            raise RuntimeError("Telegram is away")

        typing = TypingIndicator(send, every_s=0.02)
        async with typing.during(7):
            await asyncio.sleep(0.07)
        assert calls >= 2  # kept trying, and the body ran to the end without an error
        assert not typing.active(7)

    asyncio.run(scenario())


def test_a_request_that_fails_still_releases_the_chat() -> None:
    async def scenario() -> None:
        async def send(chat_id: int) -> None:
            return None

        typing = TypingIndicator(send, every_s=1.0)
        try:
            async with typing.during(3):
                raise ValueError("generation failed")
        except ValueError:
            pass
        assert not typing.active(3)

    asyncio.run(scenario())
