"""Each request has one owner: the process answering it holds a lease it keeps renewing, and other processes
(webhook replicas on one database, a restart) take over only requests whose lease ran out. Every state change
is a compare-and-set on the state it expects, so nothing is answered twice and nothing answered turns back.
Run on SQLite and on PostgreSQL (the ``url`` fixture)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from bot.app import runtime_of
from bot.db import repository
from bot.db.engine import make_sessionmaker
from bot.db.models import RequestStatus, utcnow
from bot.domain import Person, Place
from bot.sandbox import FakeTelegram
from bot.services.lyrics import LyricsService
from bot.services.preferences import PreferencesService
from bot.services.ratings import RatingService
from bot.services.styles import DEFAULT_STYLE, StyleService
from bot.serving.model_store import ModelStore
from bot.settings import Settings
from tests.helpers.bot import SECRET, make_settings, replica
from tests.helpers.migrated import migrated

ANN = Person(701, "Ann", None, "en")
HERE = Place(701, "private", None)


@asynccontextmanager
async def two_processes(url: str) -> AsyncIterator[tuple[LyricsService, LyricsService]]:
    """Two bot processes' lyrics services on one database (no generation: the rows are driven by hand)."""
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    async with migrated(url) as engine:
        sessions = make_sessionmaker(engine)
        async with sessions.begin() as session:  # what the default style serves: a name is all these rows need
            await repository.point_style(session, name=DEFAULT_STYLE, version="v1", expected_current=None)
        styles = StyleService(sessions, ModelStore(settings.model_dir, "cpu"))
        preferences = PreferencesService(settings, sessions, styles)
        yield (LyricsService(settings, sessions, None, None, preferences, owner="replica-a"),  # type: ignore[arg-type]
               LyricsService(settings, sessions, None, None, preferences, owner="replica-b"))  # type: ignore[arg-type]


async def new_request(service: LyricsService, update_id: int) -> int:
    request_id, created, _ = await service.register(update_id=update_id, person=ANN, place=HERE, message_id=1,
                                                    prefix="窗外")
    assert created
    return request_id


async def complete(service: LyricsService, request_id: int) -> bool:
    async with service.sessions.begin() as session:
        return await repository.complete_request(session, request_id=request_id, output="窗外的麻雀", candidates=[],
                                                 model_version="v1", latency_ms=1, owner=service.owner)


async def status(service: LyricsService, request_id: int) -> tuple[RequestStatus, str | None]:
    async with service.sessions() as session:
        record = await repository.get_request(session, request_id=request_id)
    assert record is not None
    return record.status, record.error


def test_a_starting_replica_leaves_a_live_replicas_requests_alone(url: str) -> None:
    async def scenario() -> None:
        async with two_processes(url) as (a, b):
            held, sending = await new_request(a, 1), await new_request(a, 2)
            assert await complete(a, sending) and await a.claim_sending(sending)  # A is sending this one now
            # B starts (a rolling restart): nothing of A's is B's to answer, nor to give up as failed.
            assert await b.unfinished() == []
            assert await status(a, sending) == (RequestStatus.SENDING, None)
            assert not await b.claim_sending(held) and not await complete(b, held)
            # A carries on and answers each once.
            assert await complete(a, held) and await a.claim_sending(held)
            for request_id in (held, sending):
                await a.answered(request_id, 100 + request_id)
            # Answered stays answered: a late completion or a second claim changes nothing.
            assert not await complete(a, held) and not await a.claim_sending(held)
            async with a.sessions.begin() as session:
                assert not await repository.fail_request(session, request_id=held, error="late")
            assert await status(a, held) == (RequestStatus.ANSWERED, None)
            assert await b.unfinished() == [] and await a.unfinished(everyone=True) == []

    asyncio.run(scenario())


def test_requests_of_a_replica_that_died_are_taken_over_once_its_lease_ran_out(url: str) -> None:
    async def scenario() -> None:
        async with two_processes(url) as (a, b):
            waiting, mid_send = await new_request(a, 1), await new_request(a, 2)
            assert await complete(a, mid_send) and await a.claim_sending(mid_send)
            assert await a.renew_leases() == 2  # A's heartbeat covers both
            assert await b.unfinished() == []
            async with a.sessions.begin() as session:  # A's heartbeat is late: A still never takes its own
                await session.execute(text("UPDATE requests SET lease_until = :past"),
                                      {"past": utcnow() - timedelta(seconds=1)})
            assert await a.unfinished() == [] and (await status(a, mid_send))[0] is RequestStatus.SENDING
            async with a.sessions.begin() as session:  # A dies: its heartbeat stops and the lease runs out
                await session.execute(text("UPDATE requests SET lease_until = :past"),
                                      {"past": utcnow() - timedelta(seconds=1)})
            taken = await b.unfinished()
            assert [r.id for r in taken] == [waiting]  # B's now: generate and answer it
            # What A was sending may have arrived: given up, never sent twice.
            assert (await status(b, mid_send))[0] is RequestStatus.FAILED
            # A comes back from a long pause: its late steps find the request is not its own any more, and its
            # late failure (a timeout, say) does not take B's request from the person either.
            assert not await complete(a, waiting) and not await a.claim_sending(waiting)
            await a.fail(waiting, "timeout")
            assert (await status(b, waiting))[0] is RequestStatus.QUEUED  # still B's to answer
            assert await complete(b, waiting) and await b.claim_sending(waiting)
            assert await a.unfinished() == [] and await b.unfinished() == []

    asyncio.run(scenario())


def test_a_tap_on_a_lyric_being_sent_waits_for_its_message_id(url: str) -> None:
    """Under load a star can be tapped before Telegram's reply to our sendMessage is recorded: the person's own
    fresh lyric is still theirs to rate, and a tap under another message is still refused."""

    async def scenario() -> None:
        async with two_processes(url) as (a, _):
            request_id = await new_request(a, 1)
            assert await complete(a, request_id) and await a.claim_sending(request_id)
            ratings = RatingService(a)
            tap = asyncio.create_task(ratings.rate(request_id=request_id, person=ANN, place=HERE, button_message_id=55,
                                                   stars=5))
            forged = asyncio.create_task(ratings.rate(request_id=request_id, person=ANN, place=HERE,
                                                      button_message_id=56, stars=1))
            await asyncio.sleep(0.3)  # both taps are waiting on the send
            await a.answered(request_id, 55)
            assert await tap is True and await forged is False
            async with a.sessions() as session:
                stars = await session.scalars(text("SELECT stars FROM ratings WHERE request_id = :id"),
                                              {"id": request_id})
                assert list(stars) == [5]

    asyncio.run(scenario())


def test_a_starting_webhook_replica_does_not_answer_a_live_replicas_request(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    """The audit's case, through the real start-up: replica A has a lyric ready to send when replica B starts."""

    async def scenario() -> None:
        async with FakeTelegram() as fake:
            settings = make_settings(tmp_path, trained_store, fake, webhook_secret=SECRET)
            fake.add_user(ANN.user_id, "Ann", "en")
            async with replica(settings) as app_a:
                a: LyricsService = app_a.bot_data.services.lyrics
                request_id = await new_request(a, 1)
                assert await complete(a, request_id)
                async with replica(settings) as app_b:
                    leftovers = runtime_of(app_b).leftovers
                    assert leftovers is not None
                    await asyncio.wait_for(leftovers, 120)  # B's catch-up at start is over
                    assert fake.sent(ANN.user_id) == []
                    assert await status(a, request_id) == (RequestStatus.DONE, None)
                assert await a.claim_sending(request_id)  # still A's to send, once

    asyncio.run(scenario())
