"""Lyric requests through their life: queued, running, done, sending, answered or failed, and the spare
candidates that "write again" shows without generating."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import ColumnElement, CursorResult, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Request, RequestStatus, utcnow
from bot.db.repos.common import get_or_insert, storable
from bot.domain import DEFAULT_STYLE

UNFINISHED: Final = (RequestStatus.QUEUED, RequestStatus.RUNNING, RequestStatus.DONE)
HELD: Final = (*UNFINISHED, RequestStatus.SENDING)  # the states in which an owner holds a request's lease
# requests.id is an INTEGER: 32 bits on PostgreSQL, which rejects a larger parameter outright where SQLite
# (64 bits) just finds no row. Request ids arrive in button data, which anyone can forge.
REQUEST_ID_MAX: Final = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Lease:
    """Who answers a request (a process: ``LyricsService.owner``) and until when, unless renewed."""

    owner: str
    until: datetime


@dataclass(frozen=True, slots=True)
class RequestRecord:
    id: int
    update_id: int | None
    user_id: int
    chat_id: int | None  # None: an inline request (Telegram does not say where it went)
    message_id: int | None
    prefix: str
    temperature: float
    length: int
    rhyme: bool
    status: RequestStatus
    output: str | None
    candidates: tuple[str, ...]  # every stored candidate; candidates[candidate_index:] are still unshown
    candidate_index: int
    answer_message_id: int | None
    model_version: str | None
    latency_ms: int | None
    error: str | None
    parent_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    answered_at: datetime | None
    form: str = ""  # a ci tune's name; "": none
    pattern: str = ""  # a pattern string (charrnn.text.forms); "": none
    style: str = DEFAULT_STYLE  # the style it is written in


async def create_request(
    session: AsyncSession,
    *,
    update_id: int | None,
    user_id: int,
    chat_id: int,
    message_id: int | None,
    prefix: str,
    temperature: float,
    length: int,
    rhyme: bool = False,
    parent_id: int | None = None,
    lease: Lease | None = None,
    form: str = "",
    pattern: str = "",
    style: str = DEFAULT_STYLE,
) -> tuple[RequestRecord, bool]:
    """Store a new request, owned by ``lease.owner``; ``(existing, False)`` if this Telegram update was stored
    before (a redelivery)."""

    def make() -> Request:
        return Request(
            update_id=update_id,
            user_id=user_id,
            chat_id=chat_id,
            message_id=message_id,
            prefix=storable(prefix),
            temperature=temperature,
            length=length,
            rhyme=rhyme,
            form=form or None,
            pattern=pattern or None,
            style=style,
            status=RequestStatus.QUEUED.value,
            candidate_index=0,
            parent_id=parent_id,
            owner=None if lease is None else lease.owner,
            lease_until=None if lease is None else lease.until,
        )

    # "Write again" requests have no update of their own: nothing to be a duplicate of.
    find = None if update_id is None else (lambda: request_by_update_id(session, update_id))
    row, created = await get_or_insert(session, find, make)
    return _request_record(row), created


async def get_request(session: AsyncSession, *, request_id: int) -> RequestRecord | None:
    if not _valid_request_id(request_id):
        return None
    row = await session.get(Request, request_id, populate_existing=True)
    return None if row is None else _request_record(row)


async def mark_running(session: AsyncSession, *, request_id: int, owner: str | None = None) -> bool:
    """Queued (or running, when taken over from a process that died) -> running; False when ``owner`` no
    longer owns it or it moved on."""
    return await _set(session, request_id, where_status=(RequestStatus.QUEUED, RequestStatus.RUNNING), owner=owner,
                      status=RequestStatus.RUNNING.value, started_at=utcnow())


async def complete_request(
    session: AsyncSession,
    *,
    request_id: int,
    output: str,
    candidates: list[str],
    model_version: str | None,
    latency_ms: int,
    title: str | None = None,
    owner: str | None = None,
) -> bool:
    """Store the shown lyric and the other candidates, which "write again" can show without generating.

    Only a request still being written, and by ``owner`` when given: a lyric that was answered (or taken over by
    another process) is never turned back into one waiting to be sent. False when nothing changed."""
    return await _set(
        session, request_id, where_status=(RequestStatus.QUEUED, RequestStatus.RUNNING), owner=owner,
        status=RequestStatus.DONE.value, output=output, title=title, candidates=list(candidates), candidate_index=0,
        model_version=model_version, latency_ms=latency_ms, error=None, finished_at=utcnow(),
    )


async def request_for_update(session: AsyncSession, *, update_id: int) -> int | None:
    """The request a Telegram update already created, if any: a read, so a redelivery costs no write."""
    return await session.scalar(select(Request.id).where(Request.update_id == update_id))


async def mark_sending(session: AsyncSession, *, request_id: int, owner: str | None = None) -> bool:
    """Claim the right to send a generated answer: True once per request, False ever after.

    The claim is durable before the message leaves, so neither a second task nor a restart can send it
    again; a crash between the claim and Telegram's reply loses that one answer rather than doubling it.
    """
    # One compare-and-set: of two claims, on SQLite or PostgreSQL, the second finds the status changed.
    return await _set(session, request_id, where_status=(RequestStatus.DONE,), owner=owner,
                      status=RequestStatus.SENDING.value)


async def mark_answered(session: AsyncSession, *, request_id: int, answer_message_id: int) -> None:
    """Sending -> answered; ``LookupError`` when the request is not being sent (it never turns back)."""
    await _set(session, request_id, where_status=(RequestStatus.SENDING,), strict=True,
               status=RequestStatus.ANSWERED.value, answer_message_id=answer_message_id, answered_at=utcnow())


async def fail_request(session: AsyncSession, *, request_id: int, error: str, owner: str | None = None) -> bool:
    """Any state still in someone's hands (``owner``'s, when given) -> failed; an answered request stays answered,
    and a process whose request was taken over cannot fail it under its new owner."""
    return await _set(session, request_id, where_status=HELD, owner=owner, status=RequestStatus.FAILED.value,
                      error=storable(error), finished_at=utcnow())


async def renew_leases(session: AsyncSession, *, lease: Lease) -> int:
    """Extend the lease on every request ``lease.owner`` holds: the heartbeat that tells other processes it lives."""
    result = await session.execute(
        update(Request)
        .where(Request.owner == lease.owner, Request.status.in_([s.value for s in HELD]))
        .values(lease_until=lease.until)
        .execution_options(synchronize_session=False)
    )
    return cast(CursorResult[Any], result).rowcount


async def take_over(
    session: AsyncSession, *, lease: Lease, now: datetime, everyone: bool = False
) -> tuple[list[int], list[RequestRecord]]:
    """Take what dead processes left: requests whose lease ran out (``everyone``: every request not ``lease.owner``'s,
    for the one polling bot, whose instance lock says no other process lives). Returns (requests caught mid-send,
    now failed, since they may have arrived; requests to generate or send, now owned by ``lease.owner``), oldest
    first. Each row changes by a compare-and-set on its lease, so of two replicas starting together one takes it."""
    takeable = _takeable(lease.owner, now, everyone)
    abandoned: list[int] = []
    for request_id in await session.scalars(
        select(Request.id).where(Request.status == RequestStatus.SENDING.value, takeable).order_by(Request.id)
    ):
        if await _set(session, request_id, where_status=(RequestStatus.SENDING,), where=takeable,
                      status=RequestStatus.FAILED.value, error="delivery unknown: the bot stopped while sending",
                      finished_at=utcnow()):
            abandoned.append(request_id)
    taken: list[int] = []
    unfinished = [s.value for s in UNFINISHED]
    for request_id in await session.scalars(
        select(Request.id).where(Request.status.in_(unfinished), takeable).order_by(Request.id)
    ):
        if await _set(session, request_id, where_status=UNFINISHED, where=takeable, owner_to=lease.owner,
                      lease_until=lease.until):
            taken.append(request_id)
    rows = await session.scalars(
        select(Request).where(Request.id.in_(taken)).order_by(Request.id).execution_options(populate_existing=True)
    )
    return abandoned, [_request_record(row) for row in rows]


def _takeable(owner: str, now: datetime, everyone: bool) -> ColumnElement[bool]:
    """Another process's request (never this one's own: a late heartbeat must not make it generate a request
    twice), whose lease ran out unless ``everyone``."""
    theirs = or_(Request.owner.is_(None), Request.owner != owner)
    if everyone:
        return theirs
    return and_(theirs, or_(Request.lease_until.is_(None), Request.lease_until < now))


async def next_candidate(session: AsyncSession, *, request_id: int) -> str | None:
    """Take the next unshown candidate of a request; None when all were shown."""
    if not _valid_request_id(request_id):
        raise LookupError(f"no request {request_id}")
    # FOR UPDATE: two quick taps on "write again" must not get the same text (SQLite ignores it, and
    # needs no lock: BEGIN IMMEDIATE already serializes writers).
    row = await session.scalar(
        select(Request).where(Request.id == request_id).with_for_update().execution_options(populate_existing=True)
    )
    if row is None:
        raise LookupError(f"no request {request_id}")
    candidates = row.candidates or []
    if row.candidate_index >= len(candidates):
        return None
    text = candidates[row.candidate_index]
    row.candidate_index += 1
    await session.flush()
    return text






def _valid_request_id(request_id: int) -> bool:
    """Whether a request with this id can exist: asking PostgreSQL for one outside INTEGER raises instead."""
    return 0 < request_id <= REQUEST_ID_MAX


async def request_by_update_id(session: AsyncSession, update_id: int) -> Request | None:
    return await session.scalar(select(Request).where(Request.update_id == update_id))


async def _set(
    session: AsyncSession,
    request_id: int,
    *,
    where_status: tuple[RequestStatus, ...],
    owner: str | None = None,
    where: ColumnElement[bool] | None = None,
    owner_to: str | None = None,
    strict: bool = False,
    **values: Any,
) -> bool:
    """One ``UPDATE`` of a request row by id, only while it is in one of ``where_status`` (and owned by ``owner``,
    when given): every step of a request is a compare-and-set on the state it expects, without reading the row
    first. True when the row changed; when it did not, ``LookupError`` if ``strict``."""
    changed = False
    if _valid_request_id(request_id):
        statement = update(Request).where(Request.id == request_id,
                                          Request.status.in_([s.value for s in where_status]))
        if owner is not None:
            statement = statement.where(Request.owner == owner)
        if where is not None:
            statement = statement.where(where)
        if owner_to is not None:
            values["owner"] = owner_to
        # A Request already loaded in this session is brought in step ("auto"); rowcount: rows matched.
        result = await session.execute(statement.values(**values))
        changed = cast(CursorResult[Any], result).rowcount == 1
    if strict and not changed:
        raise LookupError(f"request {request_id} is not there, or not {'/'.join(s.value for s in where_status)}")
    return changed


def _request_record(row: Request) -> RequestRecord:
    return RequestRecord(
        id=row.id,
        update_id=row.update_id,
        user_id=row.user_id,
        chat_id=row.chat_id,
        message_id=row.message_id,
        prefix=row.prefix,
        temperature=row.temperature,
        length=row.length,
        rhyme=row.rhyme,
        status=RequestStatus(row.status),
        output=row.output,
        candidates=tuple(row.candidates or ()),
        candidate_index=row.candidate_index,
        answer_message_id=row.answer_message_id,
        model_version=row.model_version,
        latency_ms=row.latency_ms,
        error=row.error,
        parent_id=row.parent_id,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        answered_at=row.answered_at,
        form=row.form or "",
        pattern=row.pattern or "",
        style=row.style,
    )
