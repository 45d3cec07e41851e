"""The lyrics service: requests in, lyrics out, with nothing lost on the way.

A request row is written before generation starts (keyed by Telegram's ``update_id``, so a repeated
update creates nothing), the chosen lyric and the spare candidates are stored before the answer is
sent, and the row is marked answered only after Telegram accepted the message. After a crash,
``unfinished`` lists exactly what still needs an answer.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
import uuid
from dataclasses import replace
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import repository as repo
from bot.db.models import RequestStatus, utcnow
from bot.domain import Duplicate, Lyric, Person, Place, Preferences, Refused, WriteOutcome, group_id
from bot.services.admission import RateLimiter, RefusalThrottle
from bot.services.forms import Asked, pattern_chars, written_form
from bot.services.preferences import PreferencesService, upsert_person
from bot.services.quality import CopyGuard, shown
from bot.serving.generation import GenerationBackend, GenerationJob, QueueFull
from bot.settings import Settings
from charrnn.vocab import Vocab

log = logging.getLogger(__name__)
SENDING_WAIT_S = 30.0  # how long a button waits for its lyric's sendMessage to be recorded


def job_for(
    prefix: str, prefs: Preferences, *, candidates: int, titles: int, length: int | None = None, phrases: int = 1
) -> GenerationJob:
    """The generation job for ``prefix`` written with ``prefs``: a tune always rhymes, as the tune does."""
    length = prefs.length if length is None else length
    return GenerationJob(prefix=prefix, temperature=prefs.temperature, length=length,
                         candidates=candidates, rhyme=prefs.rhyme or bool(prefs.form), version=prefs.version,
                         titles=titles, form=prefs.form, pattern=prefs.pattern, phrases=phrases)


def _has_spare(record: repo.RequestRecord) -> bool:
    """Whether "write again" can show a candidate of ``record`` already generated."""
    return record.candidate_index < len(record.candidates)


class LyricsService:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        backend: GenerationBackend,
        guard: CopyGuard | None,
        preferences: PreferencesService,
        owner: str | None = None,
    ) -> None:
        # Which process answers a request (``requests.owner``): unique per start, readable in the database.
        self.owner = owner or f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.settings = settings
        self.sessions = sessions
        self.backend = backend
        self.guard = guard
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        self.refusals = RefusalThrottle()
        self.preferences = preferences  # which settings and style a request is written with
        self.styles = self.preferences.styles

    # --- writing --------------------------------------------------------------------------------

    async def register(
        self,
        *,
        update_id: int | None,
        person: Person,
        place: Place,
        message_id: int | None,
        prefix: str,
        parent_id: int | None = None,
        form: str = "",
        pattern: str = "",
    ) -> tuple[int, bool, Preferences]:
        """Write the request row first; returns (request id, created, the preferences it is written with)."""
        async with self.sessions.begin() as session:
            await upsert_person(session, person)
            await repo.upsert_chat(session, chat_id=place.chat_id, type=place.type, title=place.title)
            prefs = await self.preferences.applicable(session, person.user_id, place)
            written = written_form(prefs.form, Asked(prefix, form=form, pattern=pattern))
            prefs = replace(prefs, form=written.form, pattern=written.pattern)
            record, created = await repo.create_request(
                session,
                update_id=update_id,
                user_id=person.user_id,
                chat_id=place.chat_id,
                message_id=message_id,
                prefix=prefix,
                temperature=prefs.temperature,
                length=prefs.length,
                rhyme=prefs.rhyme,
                parent_id=parent_id,
                lease=self._lease(),
                form=prefs.form,
                pattern=pattern,
                style=prefs.style,
            )
        return record.id, created, prefs

    async def admit(
        self, *, update_id: int | None, person: Person, place: Place, prefix: str
    ) -> Refused | Duplicate | None:
        """What is checked before any row, typing action or reply: None means go ahead.

        A repeated update is found by a read and costs nothing. Everything else counts against the person's
        rate limit whatever its outcome, a prefix too long included: each answer is a message, and in a group
        a flood of refusals would hold up everyone's lyrics behind Telegram's per-chat limit.
        """
        if update_id is not None:
            async with self.sessions() as session:
                known = await repo.request_for_update(session, update_id=update_id)
            if known is not None:
                return Duplicate(known)
        refused = self.limit(person, place)
        if refused is not None:
            return refused
        if len(prefix) > self.settings.max_prefix_chars:
            return Refused("prefix_too_long", length=len(prefix), limit=self.settings.max_prefix_chars)
        return None

    def limit(self, person: Person, place: Place) -> Refused | None:
        """Count one request of ``person``; a refusal when over the limit.

        In a private chat every refusal is said (the person asked and would otherwise hear nothing); in a group,
        once a minute per person, so one person's flood does not become the group's flood of refusals.
        """
        wait = self.limiter.check(person.user_id)
        if wait <= 0:
            return None
        tell = group_id(place) is None or self.refusals.tell(place.chat_id, person.user_id)
        log.info("rate limited %s in chat %s for %.0f s%s", person.user_id, place.chat_id, wait,
                 "" if tell else " (not told again)")
        return Refused("rate_limited", seconds=math.ceil(wait), tell=tell)

    async def write(
        self, *, update_id: int | None, person: Person, place: Place, message_id: int | None, prefix: str,
        form: str = "", pattern: str = "",
    ) -> WriteOutcome:
        """A lyric for ``prefix``, or the reason there is none; call ``admit`` first. Never raises for input.

        ``form`` (a tune's table name) or ``pattern`` (``bot.services.forms``): the form it is written in."""
        if len(prefix) > self.settings.max_prefix_chars:
            return Refused("prefix_too_long", length=len(prefix), limit=self.settings.max_prefix_chars)
        if pattern and (chars := pattern_chars(pattern)) > self.settings.max_length:
            return Refused("pattern_too_long", length=chars, limit=self.settings.max_length)
        request_id, created, prefs = await self.register(
            update_id=update_id, person=person, place=place, message_id=message_id, prefix=prefix, form=form,
            pattern=pattern,
        )
        if not created:  # a redelivery that raced past admit(): the unique update_id caught it
            return Duplicate(request_id)
        return await self.generate(request_id, prefix, prefs)

    async def generate(self, request_id: int, prefix: str, prefs: Preferences) -> Lyric | Refused | Duplicate:
        """Run the request through the model, store the best candidate and the spares."""
        async with self.sessions.begin() as session:
            mine = await repo.mark_running(session, request_id=request_id, owner=self.owner)
        if not mine:
            log.warning("request %s was taken over by another process; not generating it here", request_id)
            return Duplicate(request_id)
        job = job_for(prefix, prefs, candidates=self.settings.candidates, titles=self.settings.title_candidates,
                      phrases=self.settings.phrase_candidates)
        started = time.monotonic()
        try:
            result = await self.backend.generate(job, timeout=self.settings.request_timeout_s)
        except QueueFull as busy:
            await self._fail(request_id, "busy")
            return Refused("busy", request_id, seconds=math.ceil(busy.wait_s))
        except TimeoutError:
            await self._fail(request_id, "timeout")
            return Refused("timeout", request_id)
        except Exception as exc:
            await self._fail(request_id, f"internal error: {type(exc).__name__}")
            raise
        candidates = shown(result, self.guard)
        if not candidates:
            await self._fail(request_id, "no candidate worth showing")
            return Refused("no_output", request_id)
        best = candidates[0]
        async with self.sessions.begin() as session:
            stored = await repo.complete_request(
                session,
                request_id=request_id,
                output=best.text,
                candidates=[c.text for c in candidates[1:]],  # each spare keeps its own title
                model_version=result.model_version,
                latency_ms=round(1000 * (time.monotonic() - started)),
                title=best.title,
                owner=self.owner,
            )
        if not stored:
            log.warning("request %s was taken over by another process while generating; its lyric is theirs",
                        request_id)
            return Duplicate(request_id)
        return Lyric(request_id, best.text, best.skipped, style_gone=prefs.style_gone, prefix=prefix)

    async def finish(self, record: repo.RequestRecord) -> WriteOutcome:
        """What a request left from before a restart comes to: its stored lyric, or one written now with its own
        settings and its style's version now."""
        if record.status == "done" and record.output:
            return Lyric(record.id, record.output, (), prefix=record.prefix)
        return await self.generate(record.id, record.prefix, await self.preferences.of_request(record))

    async def own_button(
        self, request_id: int, place: Place, button_message_id: int | None
    ) -> repo.RequestRecord | None:
        """The request behind a button, only if the button sits under that request's own answer.

        Callback data comes from the person's client and can be forged: ``a:17`` pressed under any
        message must not reveal request 17's prompt or lyric, nor rate it.
        """
        original = await self._settled(request_id)
        if (
            original is None
            or button_message_id is None
            or original.chat_id != place.chat_id
            or original.answer_message_id != button_message_id
        ):
            log.warning("refused a button for request %s from chat %s, message %s", request_id, place.chat_id,
                        button_message_id)
            return None
        return original

    async def record(self, request_id: int) -> repo.RequestRecord | None:
        """A request by id, once its answer is sent (``_settled``)."""
        return await self._settled(request_id)

    async def _settled(self, request_id: int) -> repo.RequestRecord | None:
        """The request, once its answer's message id is known: a tap can come the moment the lyric appears,
        before Telegram's reply to our sendMessage has reached us and been recorded. Waits while it is being
        sent (a few seconds at most), so a person's own fresh lyric is always theirs to rate."""
        deadline = time.monotonic() + min(self.settings.request_timeout_s, SENDING_WAIT_S)
        while True:
            async with self.sessions() as session:
                record = await repo.get_request(session, request_id=request_id)
            if record is None or record.status != RequestStatus.SENDING or time.monotonic() >= deadline:
                return record
            await asyncio.sleep(0.05)

    async def admit_again(
        self, *, request_id: int, person: Person, place: Place, button_message_id: int | None
    ) -> repo.RequestRecord | Refused:
        """A "write again" press: its own button, by the person who asked. Showing a candidate already generated
        costs nothing, so only a press that must generate anew counts against the rate limit (``write_again``
        checks again when a second press took the last spare meanwhile)."""
        original = await self.own_button(request_id, place, button_message_id)
        if original is None:
            return Refused("button_foreign")
        if original.user_id != person.user_id:
            # Written by an anonymous admin as the group itself: any of its admins may ask again, as the group.
            as_group = original.user_id == place.chat_id and group_id(place) is not None
            return Refused("again_as_group" if as_group else "again_not_yours", request_id)
        if _has_spare(original):
            return original
        return self.limit(person, place) or original

    async def write_again(
        self, *, original: repo.RequestRecord, person: Person, place: Place, update_id: int | None = None
    ) -> WriteOutcome:
        """After ``admit_again``: the next stored candidate at once, or a fresh generation when none is left."""
        request_id = original.id
        new_id, created, prefs = await self.register(
            update_id=update_id, person=person, place=place, message_id=None, prefix=original.prefix,
            parent_id=request_id, form=original.form, pattern=original.pattern,
        )
        if not created:
            return Duplicate(new_id)
        async with self.sessions.begin() as session:
            spare = await repo.next_candidate(session, request_id=request_id)
        if spare is None:
            refused = self.limit(person, place) if _has_spare(original) else None  # admitted free, now it costs
            if refused is not None:
                await self._fail(new_id, "rate limited")
                return refused
            return await self.generate(new_id, original.prefix, prefs)
        async with self.sessions.begin() as session:
            stored = await repo.complete_request(session, request_id=new_id, output=spare, candidates=[],
                                                 model_version=original.model_version, latency_ms=0, owner=self.owner)
        return Lyric(new_id, spare, (), prefix=original.prefix) if stored else Duplicate(new_id)

    async def claim_sending(self, request_id: int) -> bool:
        """True exactly once per generated answer: only the claimant may send it (see ``repo.mark_sending``)."""
        async with self.sessions.begin() as session:
            return await repo.mark_sending(session, request_id=request_id, owner=self.owner)

    async def answered(self, request_id: int, message_id: int, attempts: int = 5) -> None:
        """Record Telegram's acceptance; retried, because until it is recorded the row says only 'sending'."""
        for attempt in range(attempts):
            try:
                async with self.sessions.begin() as session:
                    await repo.mark_answered(session, request_id=request_id, answer_message_id=message_id)
                return
            except Exception:
                if attempt == attempts - 1:
                    raise
                log.warning("could not mark request %s answered (attempt %d); retrying", request_id, attempt + 1,
                            exc_info=True)
                await asyncio.sleep(0.2 * 2**attempt)

    async def _fail(self, request_id: int, error: str) -> None:
        async with self.sessions.begin() as session:
            await repo.fail_request(session, request_id=request_id, error=error, owner=self.owner)

    async def fail(self, request_id: int, error: str) -> None:
        await self._fail(request_id, error)

    async def unfinished(self, everyone: bool = False) -> list[repo.RequestRecord]:
        """What processes that died left unanswered (their leases ran out), now this one's to answer; with
        ``everyone`` (the one polling bot, at start: its instance lock says no other bot lives), every unfinished
        request not its own. Answers caught mid-send are given up, never doubled; a live replica's are left alone."""
        async with self.sessions.begin() as session:
            abandoned, taken = await repo.take_over(session, lease=self._lease(), now=utcnow(), everyone=everyone)
        if abandoned:
            log.warning("requests %s were being sent when their bot stopped; not sending them twice", abandoned)
        return taken

    async def renew_leases(self) -> int:
        """The heartbeat: this process still answers the requests it holds."""
        async with self.sessions.begin() as session:
            return await repo.renew_leases(session, lease=self._lease())

    def _lease(self) -> repo.Lease:
        return repo.Lease(self.owner, utcnow() + timedelta(seconds=self.settings.request_lease_s))

    # --- settings, ratings, statistics ------------------------------------------------------------

    async def vocab(self, prefs: Preferences) -> Vocab:
        """The vocabulary of the model ``prefs`` (its style's version) runs on: not the default's for another style."""
        if prefs.version is None:
            raise ValueError("preferences not resolved to a style's version (PreferencesService.applicable)")
        return await self.styles.vocab(prefs.version)
