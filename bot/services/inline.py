"""Inline mode: ``@Bot first words`` in any chat offers a few lyrics to pick from, and the pick is recorded.

An inline query is answered with up to ``INLINE_CANDIDATES`` lyrics generated as one job (one batch) through the
same backend as ``/write``, ranked and copy-guarded the same way. Nothing is written to the database while a
person types: Telegram sends a query per pause in typing, and most are never chosen. The candidates wait in an
in-memory cache instead, under a random token that the result ids carry (``<token>.<index>``, well below
Telegram's 64 bytes), so that the ``chosen_inline_result`` Telegram sends later is recorded as a request row with
the exact text that went out. The same cache answers a person's identical query (same words, same settings)
without generating again, and a query already being generated is awaited rather than started twice.

A newer query of the same person supersedes the older one (Telegram shows only the answer to the words in the
box): the older generation is stopped, and it is answered with no results. A generation that started still
counts against the person's rate limit, as ``/write`` does: typing on is not a free generator.

Telegram gives no chat for inline messages: the row has ``source='inline'``, no chat, and the message's
``inline_message_id``, which is how a rating pressed under it finds its request.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, replace

from bot.db import repository as repo
from bot.domain import Person, Preferences
from bot.services.forms import parse_write, pattern_chars, written_form
from bot.services.lyrics import LyricsService, job_for
from bot.services.quality import shown
from bot.serving.generation import QueueFull

log = logging.getLogger(__name__)

INLINE_CANDIDATES = 3
# Longer lyrics make a person wait while typing; the description shows only the first lines anyway.
INLINE_MAX_LENGTH = 200
TITLE_CHARS = 64  # a title is one line in the results list; longer ones are cut by the client anyway
DESCRIPTION_LINES = 3


@dataclass(frozen=True)
class InlineCandidate:
    result_id: str  # "<token>.<index>": unique per answer, at most 64 bytes
    text: str
    title: str
    description: str


@dataclass(frozen=True)
class InlineLyrics:
    query: str
    candidates: tuple[InlineCandidate, ...]
    cached: bool  # answered from the cache, without generating


@dataclass(frozen=True)
class InlineHint:
    """No lyrics: ``reason`` names the hint to show (inline_empty, inline_too_long, inline_unknown, pattern_too_long,
    rate_limited, busy, timeout, no_output, failed), or ``superseded`` (a newer query of the same person took its
    place: nothing to show); ``seconds`` when the person should try again."""

    reason: str
    seconds: int = 0
    limit: int = 0
    error_id: str = ""  # with "failed": the id the log has the details under


InlineOutcome = InlineLyrics | InlineHint


@dataclass
class _Entry:
    token: str
    user_id: int
    query: str
    prefs: Preferences
    texts: tuple[str, ...]  # as sent: the title line (when there is one), then the lyric
    lyrics: tuple[str, ...]  # the lyrics alone, for the description
    titles: tuple[str | None, ...]
    model_version: str
    latency_ms: int
    created: float


def _title_and_description(lyric: str, title: str | None) -> tuple[str, str]:
    """The lyric's title and its first lines; without a title, the first line is the title and the next ones
    the description."""
    lines = [line.strip() for line in lyric.split("\n") if line.strip()] or ["…"]
    if not title:
        title, lines = lines[0], lines[1:]
    title = title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "…"
    return title, " / ".join(lines[:DESCRIPTION_LINES])


class InlineService:
    """Answers inline queries and records the chosen results; one per bot process.

    ``answer_ttl_s``: how long an identical query is answered from memory (a little over the ``cache_time``
    Telegram is told, so Telegram's cache expires first). ``keep_ttl_s``: how long a person may take to pick a
    result and still have it recorded with its text. ``max_entries`` bounds the memory either way.
    """

    def __init__(
        self,
        lyrics: LyricsService,
        *,
        answer_ttl_s: float = 60.0,
        keep_ttl_s: float = 1800.0,
        max_entries: int = 4096,
    ) -> None:
        self.lyrics = lyrics
        self.answer_ttl_s = answer_ttl_s
        self.keep_ttl_s = keep_ttl_s
        self.max_entries = max_entries
        self._by_token: OrderedDict[str, _Entry] = OrderedDict()
        self._by_query: dict[tuple[int, str, Preferences], str] = {}
        # A query being generated: its answer's future, and the generation (which a newer query may supersede).
        self._in_flight: dict[tuple[int, str, Preferences], tuple[asyncio.Future[InlineOutcome],
                                                                   asyncio.Task[InlineOutcome]]] = {}
        self._choosing: dict[str, asyncio.Future[int | None]] = {}
        self._latest: dict[int, asyncio.Task[InlineOutcome]] = {}  # per person: the generation of their latest query

    # --- answering ---------------------------------------------------------------------------------------

    async def answer(self, person: Person, query: str) -> InlineOutcome:
        """Lyrics for the typed words, or the hint to show instead. Never raises for what a person types."""
        query = query.strip()
        settings = self.lyrics.settings
        if not query:
            return InlineHint("inline_empty")
        if len(query) > settings.max_prefix_chars:
            return InlineHint("inline_too_long", limit=settings.max_prefix_chars)
        prefs = await self.lyrics.preferences.current(person)  # the person's own settings and style: no group inline
        vocab = await self.lyrics.vocab(prefs)  # the person's style's model
        if not any(ch in vocab for ch in query if not ch.isspace()):
            return InlineHint("inline_unknown")  # emoji only, or a script the model never saw: nothing to go on
        key = (person.user_id, query, prefs)
        if (cached := self._fresh(key)) is not None:
            return self._lyrics(cached, cached=True)
        running = self._in_flight.get(key)
        if running is not None and self._latest.get(person.user_id) is running[1]:
            return await self._join(running[0])  # the same words again while they are being written
        # Not joined when a newer query superseded that generation: it ends with no answer to share.
        future: asyncio.Future[InlineOutcome] = asyncio.get_running_loop().create_future()
        # Telegram sends a query at every pause in typing: a newer one from the same person makes the older one's
        # answer unseen, so its generation stops (its rows leave the batch, its Celery task is revoked). The
        # older one's rate-limit slot stays spent: the generation started.
        if (older := self._latest.get(person.user_id)) is not None and not older.done():
            older.cancel()
        task = self._latest[person.user_id] = asyncio.create_task(self._generate(person, query, prefs, key))
        self._in_flight[key] = (future, task)
        try:
            outcome = await task
            future.set_result(outcome)
            return outcome
        except asyncio.CancelledError:
            future.cancel()
            current = asyncio.current_task()
            if task.cancelled() and (current is None or not current.cancelling()):
                log.info("inline query %r of %s superseded by a newer one: dropped", query, person.user_id)
                return InlineHint("superseded")
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: a waiter may never come
            raise
        finally:
            if (mine := self._in_flight.get(key)) is not None and mine[0] is future:  # not a newer one's
                del self._in_flight[key]
            if self._latest.get(person.user_id) is task:
                del self._latest[person.user_id]

    @staticmethod
    async def _join(running: asyncio.Future[InlineOutcome]) -> InlineOutcome:
        """The outcome of an identical query already being generated; superseded with it if a newer one came."""
        try:
            outcome = await asyncio.shield(running)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if running.cancelled() and (current is None or not current.cancelling()):
                return InlineHint("superseded")
            raise
        return InlineLyrics(outcome.query, outcome.candidates, cached=True) if isinstance(
            outcome, InlineLyrics) else outcome  # fmt: skip

    async def _generate(
        self, person: Person, query: str, prefs: Preferences, key: tuple[int, str, Preferences]
    ) -> InlineOutcome:
        """Generate, within the person's rate limit; the answer is cached under ``key``."""
        # The chat path's limiter: inline queries and /write share each person's budget. Only generations
        # count: hints, cached answers and queries joining an identical one cost nothing. A superseded
        # generation counts too: refunding it let a person typing on keep the generator busy for free.
        wait = self.lyrics.limiter.check(person.user_id)
        if wait > 0:
            log.info("rate limited %s's inline query for %.0f s", person.user_id, wait)
            return InlineHint("rate_limited", seconds=math.ceil(wait))
        asked = written_form(prefs.form, parse_write(query))  # /write's syntax and its form setting: 浣溪沙：一曲新词
        if asked.pattern and pattern_chars(asked.pattern) > self.lyrics.settings.max_length:
            return InlineHint("pattern_too_long", limit=self.lyrics.settings.max_length)
        prefs = replace(prefs, form=asked.form, pattern=asked.pattern)
        job = job_for(asked.words, prefs, candidates=INLINE_CANDIDATES, titles=self.lyrics.settings.title_candidates,
                      length=self._length(prefs))
        started = time.monotonic()
        try:
            result = await self.lyrics.backend.generate(
                job, timeout=min(self.lyrics.settings.request_timeout_s, self.lyrics.settings.inline_timeout_s)
            )
        except QueueFull as busy:
            return InlineHint("busy", seconds=math.ceil(busy.wait_s))
        except TimeoutError:
            return InlineHint("timeout")
        candidates = shown(result, self.lyrics.guard)[:INLINE_CANDIDATES]
        if not candidates:
            return InlineHint("no_output")
        entry = _Entry(
            token=secrets.token_urlsafe(9),  # 12 characters, 72 random bits: unguessable, so ids cannot be forged
            user_id=person.user_id,
            query=query,
            prefs=prefs,
            texts=tuple(c.text for c in candidates),
            lyrics=tuple(c.lyric for c in candidates),
            titles=tuple(c.title for c in candidates),
            model_version=result.model_version,
            latency_ms=round(1000 * (time.monotonic() - started)),
            created=time.monotonic(),
        )
        self._store(key, entry)
        return self._lyrics(entry, cached=False)

    def _length(self, prefs: Preferences) -> int:
        """Short, for a person typing; never below ``min_length``, which workers hold every job to."""
        return min(prefs.length, max(INLINE_MAX_LENGTH, self.lyrics.settings.min_length))

    def _lyrics(self, entry: _Entry, cached: bool) -> InlineLyrics:
        candidates = []
        for index, (text, lyric, own_title) in enumerate(zip(entry.texts, entry.lyrics, entry.titles, strict=True)):
            title, description = _title_and_description(lyric, own_title)
            candidates.append(InlineCandidate(f"{entry.token}.{index}", text, title, description))
        return InlineLyrics(entry.query, tuple(candidates), cached)

    # --- the cache ---------------------------------------------------------------------------------------

    def _fresh(self, key: tuple[int, str, Preferences]) -> _Entry | None:
        self._expire()
        token = self._by_query.get(key)
        entry = self._by_token.get(token) if token is not None else None
        if entry is None or time.monotonic() - entry.created > self.answer_ttl_s:
            return None
        return entry

    def _store(self, key: tuple[int, str, Preferences], entry: _Entry) -> None:
        self._by_token[entry.token] = entry
        self._by_query[key] = entry.token
        self._expire()

    def _expire(self) -> None:
        """Forget entries past ``keep_ttl_s``, and the oldest beyond ``max_entries``: memory stays bounded."""
        now = time.monotonic()
        while self._by_token:
            token, oldest = next(iter(self._by_token.items()))
            if now - oldest.created <= self.keep_ttl_s and len(self._by_token) <= self.max_entries:
                break
            del self._by_token[token]
            key = (oldest.user_id, oldest.query, oldest.prefs)
            if self._by_query.get(key) == token:
                del self._by_query[key]

    # --- the chosen result, and ratings under it ------------------------------------------------------------

    async def choose(
        self, *, update_id: int, person: Person, result_id: str, inline_message_id: str | None
    ) -> int | None:
        """Record the result a person sent as an answered request; its id, or None when it was not a lyric
        (a hint), was chosen after the cache forgot it (logged: the text is no longer known), or was offered to
        someone else (a forged update: only the person whose query produced a result may record it)."""
        token, _, index_text = result_id.partition(".")
        entry = self._by_token.get(token)
        if entry is None or not index_text.isdecimal() or int(index_text) >= len(entry.texts):
            if token != "hint":
                log.warning("chosen inline result %r is not in the cache (expired, or from before a restart); "
                            "not recorded", result_id)  # fmt: skip
            return None
        if entry.user_id != person.user_id:  # Telegram sends a pick only to the person who asked: this is forged
            log.warning("inline result %r was offered to %s, not to %s who chose it: not recorded", result_id,
                        entry.user_id, person.user_id)
            return None
        waiting: asyncio.Future[int | None] | None = None
        if inline_message_id is not None:  # a rating pressed at once waits for this row rather than finding none
            waiting = self._choosing[inline_message_id] = asyncio.get_running_loop().create_future()
        request_id: int | None = None
        try:
            async with self.lyrics.sessions.begin() as session:
                await repo.upsert_user(session, user_id=person.user_id, first_name=person.first_name,
                                       username=person.username, language_code=person.language_code)
                request_id, created = await repo.record_inline_choice(
                    session, update_id=update_id, user_id=person.user_id, inline_message_id=inline_message_id,
                    prefix=entry.query, output=entry.texts[int(index_text)], title=entry.titles[int(index_text)],
                    temperature=entry.prefs.temperature, style=entry.prefs.style,
                    length=self._length(entry.prefs), rhyme=entry.prefs.rhyme,
                    model_version=entry.model_version, latency_ms=entry.latency_ms,
                )  # fmt: skip
            if not created:
                log.info("update %s repeats inline request %s: recorded once", update_id, request_id)
            return request_id
        finally:
            if waiting is not None and inline_message_id is not None:
                waiting.set_result(request_id)
                if self._choosing.get(inline_message_id) is waiting:
                    del self._choosing[inline_message_id]

    async def rate(self, *, inline_message_id: str, person: Person, stars: int) -> bool:
        """A star pressed under an inline message: it rates the request recorded for that message, if any.

        The message id comes from Telegram, not from button data, so it cannot be forged to rate another lyric.
        """
        request_id = await self.request_for(inline_message_id)
        if request_id is None:
            log.info("a rating under inline message %s, which no request records", inline_message_id)
            return False
        async with self.lyrics.sessions.begin() as session:
            await repo.upsert_user(session, user_id=person.user_id, first_name=person.first_name,
                                   username=person.username, language_code=person.language_code)
            await repo.rate(session, request_id=request_id, user_id=person.user_id, stars=stars)
        return True

    async def request_for(self, inline_message_id: str) -> int | None:
        if (recording := self._choosing.get(inline_message_id)) is not None:
            try:
                return await asyncio.wait_for(asyncio.shield(recording), 5.0)
            except TimeoutError:
                return None
        async with self.lyrics.sessions() as session:
            return await repo.request_for_inline_message(session, inline_message_id=inline_message_id)
