"""Queries of the bot's database.

Every function takes the caller's ``AsyncSession`` and keyword-only arguments, flushes what it changed so
that constraint errors surface here, and never commits: the service owns the transaction. Results are
frozen dataclasses copied out of the rows, safe to keep after the session is gone.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import Float, case, cast, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import (
    Chat,
    CorpusDocument,
    ModelVersion,
    Rating,
    Request,
    RequestStatus,
    RunStatus,
    RunTrigger,
    TrainingRun,
    User,
    UserSettings,
    utcnow,
)

UNFINISHED: Final = (RequestStatus.QUEUED, RequestStatus.RUNNING, RequestStatus.DONE)
# requests.id is an INTEGER: 32 bits on PostgreSQL, which rejects a larger parameter outright where SQLite
# (64 bits) just finds no row. Request ids arrive in button data, which anyone can forge.
REQUEST_ID_MAX: Final = 2**31 - 1


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET: Final = _Unset.UNSET  # "leave this field as it is", as opposed to None, "back to the default"


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    first_name: str
    username: str | None
    language_code: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ChatRecord:
    id: int
    type: str
    title: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RequestRecord:
    id: int
    update_id: int | None
    user_id: int
    chat_id: int
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


@dataclass(frozen=True, slots=True)
class RatingRecord:
    id: int
    request_id: int
    user_id: int
    stars: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TopLyric:
    request_id: int
    output: str
    mean_stars: float
    ratings: int


@dataclass(frozen=True, slots=True)
class UserStats:
    requests: int
    answered: int
    ratings_given: int
    ratings_received: int  # on this person's requests, their own ratings included
    mean_stars_received: float | None  # None: nobody rated their lyrics yet


@dataclass(frozen=True, slots=True)
class UserSettingsRecord:
    user_id: int
    temperature: float | None  # None: the bot's default
    length: int | None
    rhyme: bool | None
    updated_at: datetime | None  # None: never set


# --- users and chats ---------------------------------------------------------------------------------


async def upsert_user(
    session: AsyncSession, *, user_id: int, first_name: str, username: str | None, language_code: str | None
) -> UserRecord:
    fields = {
        "first_name": _storable(first_name),
        "username": _storable_optional(username),
        "language_code": _storable_optional(language_code),
    }
    row = await session.get(User, user_id)
    if row is None:
        row = User(id=user_id, **fields)
        try:
            async with session.begin_nested():
                session.add(row)
        except IntegrityError:  # another transaction inserted the same person first (not on SQLite)
            row = await session.get(User, user_id)
            if row is None:
                raise
    _update(row, fields)
    await session.flush()
    return _user_record(row)


async def upsert_chat(session: AsyncSession, *, chat_id: int, type: str, title: str | None) -> ChatRecord:
    fields = {"type": _storable(type), "title": _storable_optional(title)}
    row = await session.get(Chat, chat_id)
    if row is None:
        row = Chat(id=chat_id, **fields)
        try:
            async with session.begin_nested():
                session.add(row)
        except IntegrityError:
            row = await session.get(Chat, chat_id)
            if row is None:
                raise
    _update(row, fields)
    await session.flush()
    return ChatRecord(id=row.id, type=row.type, title=row.title, created_at=row.created_at)


# --- requests ------------------------------------------------------------------------------------------


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
) -> tuple[RequestRecord, bool]:
    """Store a new request; ``(existing, False)`` if this Telegram update was stored before (a redelivery)."""
    if update_id is not None:
        existing = await _request_by_update_id(session, update_id)
        if existing is not None:
            return _request_record(existing), False
    row = Request(
        update_id=update_id,
        user_id=user_id,
        chat_id=chat_id,
        message_id=message_id,
        prefix=_storable(prefix),
        temperature=temperature,
        length=length,
        rhyme=rhyme,
        status=RequestStatus.QUEUED.value,
        candidate_index=0,
        parent_id=parent_id,
    )
    try:
        # A savepoint, so that losing a race on the unique update_id leaves the caller's transaction usable.
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        existing = None if update_id is None else await _request_by_update_id(session, update_id)
        if existing is None:
            raise  # not the duplicate update: a missing user or chat, say
        return _request_record(existing), False
    return _request_record(row), True


async def get_request(session: AsyncSession, *, request_id: int) -> RequestRecord | None:
    if not _valid_request_id(request_id):
        return None
    row = await session.get(Request, request_id, populate_existing=True)
    return None if row is None else _request_record(row)


async def mark_running(session: AsyncSession, *, request_id: int) -> None:
    row = await _request_row(session, request_id)
    row.status = RequestStatus.RUNNING.value
    row.started_at = utcnow()
    await session.flush()


async def complete_request(
    session: AsyncSession,
    *,
    request_id: int,
    output: str,
    candidates: list[str],
    model_version: str | None,
    latency_ms: int,
) -> None:
    """Store the shown lyric and the other candidates, which "write again" can show without generating."""
    row = await _request_row(session, request_id)
    row.status = RequestStatus.DONE.value
    row.output = output
    row.candidates = json.dumps(candidates, ensure_ascii=False)
    row.candidate_index = 0
    row.model_version = model_version
    row.latency_ms = latency_ms
    row.error = None
    row.finished_at = utcnow()
    await session.flush()


async def request_for_update(session: AsyncSession, *, update_id: int) -> int | None:
    """The request a Telegram update already created, if any: a read, so a redelivery costs no write."""
    return await session.scalar(select(Request.id).where(Request.update_id == update_id))


async def mark_sending(session: AsyncSession, *, request_id: int) -> bool:
    """Claim the right to send a generated answer: True once per request, False ever after.

    The claim is durable before the message leaves, so neither a second task nor a restart can send it
    again; a crash between the claim and Telegram's reply loses that one answer rather than doubling it.
    """
    if not _valid_request_id(request_id):
        return False
    row = await session.scalar(
        select(Request).where(Request.id == request_id).with_for_update().execution_options(populate_existing=True)
    )
    if row is None or row.status != RequestStatus.DONE.value:
        return False
    row.status = RequestStatus.SENDING.value
    await session.flush()
    return True


async def abandon_sending(session: AsyncSession) -> list[int]:
    """At start-up: answers caught mid-send may have arrived; mark them failed instead of sending twice."""
    rows = list(await session.scalars(select(Request).where(Request.status == RequestStatus.SENDING.value)))
    for row in rows:
        row.status = RequestStatus.FAILED.value
        row.error = "delivery unknown: the bot stopped while sending"
        row.finished_at = utcnow()
    await session.flush()
    return [row.id for row in rows]


async def mark_answered(session: AsyncSession, *, request_id: int, answer_message_id: int) -> None:
    row = await _request_row(session, request_id)
    row.status = RequestStatus.ANSWERED.value
    row.answer_message_id = answer_message_id
    row.answered_at = utcnow()
    await session.flush()


async def fail_request(session: AsyncSession, *, request_id: int, error: str) -> None:
    row = await _request_row(session, request_id)
    row.status = RequestStatus.FAILED.value
    row.error = _storable(error)
    row.finished_at = utcnow()
    await session.flush()


async def unfinished_requests(session: AsyncSession) -> list[RequestRecord]:
    """Requests a restart must still generate or answer, oldest first."""
    rows = await session.scalars(
        select(Request)
        .where(Request.status.in_([s.value for s in UNFINISHED]))
        .order_by(Request.id)
        .execution_options(populate_existing=True)
    )
    return [_request_record(row) for row in rows]


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
    candidates = _candidates(row)
    if row.candidate_index >= len(candidates):
        return None
    text = candidates[row.candidate_index]
    row.candidate_index += 1
    await session.flush()
    return text


# --- ratings ---------------------------------------------------------------------------------------


async def rate(session: AsyncSession, *, request_id: int, user_id: int, stars: int) -> RatingRecord:
    """Record this person's rating of a request, replacing their earlier one."""
    if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
        raise ValueError(f"stars must be an integer from 1 to 5, got {stars!r}")
    row = await _rating_row(session, request_id, user_id)
    if row is None:
        row = Rating(request_id=request_id, user_id=user_id, stars=stars)
        try:
            async with session.begin_nested():
                session.add(row)
        except IntegrityError:
            row = await _rating_row(session, request_id, user_id)
            if row is None:
                raise
    row.stars = stars
    await session.flush()
    return RatingRecord(
        id=row.id,
        request_id=row.request_id,
        user_id=row.user_id,
        stars=row.stars,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def top_rated(session: AsyncSession, *, limit: int = 5) -> list[TopLyric]:
    """The best-rated answered lyrics: highest mean stars, then most ratings, then oldest."""
    mean = func.avg(cast(Rating.stars, Float)).label("mean")
    count = func.count(Rating.id).label("count")
    result = await session.execute(
        select(Request.id, Request.output, mean, count)
        .join(Rating, Rating.request_id == Request.id)
        .where(Request.status == RequestStatus.ANSWERED.value, Request.output.is_not(None))
        .group_by(Request.id, Request.output)
        .order_by(mean.desc(), count.desc(), Request.id)
        .limit(limit)
    )
    return [
        TopLyric(request_id=rid, output=output, mean_stars=float(avg), ratings=int(n)) for rid, output, avg, n in result
    ]


async def user_stats(session: AsyncSession, *, user_id: int) -> UserStats:
    requests, answered = (
        await session.execute(
            select(
                func.count(Request.id),
                func.count(case((Request.status == RequestStatus.ANSWERED.value, 1))),
            ).where(Request.user_id == user_id)
        )
    ).one()
    ratings_given = await session.scalar(select(func.count(Rating.id)).where(Rating.user_id == user_id))
    received, mean = (
        await session.execute(
            select(func.count(Rating.id), func.avg(cast(Rating.stars, Float)))
            .join(Request, Rating.request_id == Request.id)
            .where(Request.user_id == user_id)
        )
    ).one()
    return UserStats(
        requests=int(requests),
        answered=int(answered),
        ratings_given=int(ratings_given or 0),
        ratings_received=int(received),
        mean_stars_received=None if mean is None else float(mean),
    )


# --- settings --------------------------------------------------------------------------------------


async def get_settings(session: AsyncSession, *, user_id: int) -> UserSettingsRecord:
    row = await session.get(UserSettings, user_id, populate_existing=True)
    if row is None:
        return UserSettingsRecord(user_id=user_id, temperature=None, length=None, rhyme=None, updated_at=None)
    return _settings_record(row)


async def set_settings(
    session: AsyncSession,
    *,
    user_id: int,
    temperature: float | Literal[_Unset.UNSET] | None = UNSET,
    length: int | Literal[_Unset.UNSET] | None = UNSET,
    rhyme: bool | Literal[_Unset.UNSET] | None = UNSET,
) -> UserSettingsRecord:
    """Change the given fields only; None puts a field back to the bot's default."""
    row = await session.get(UserSettings, user_id)
    if row is None:
        row = UserSettings(user_id=user_id, temperature=None, length=None, rhyme=None)
        try:
            async with session.begin_nested():
                session.add(row)
        except IntegrityError:
            row = await session.get(UserSettings, user_id)
            if row is None:
                raise
    if temperature is not UNSET:
        row.temperature = temperature
    if length is not UNSET:
        row.length = length
    if rhyme is not UNSET:
        row.rhyme = rhyme
    row.updated_at = utcnow()
    await session.flush()
    return _settings_record(row)


# --- helpers -----------------------------------------------------------------------------------------


def _valid_request_id(request_id: int) -> bool:
    """Whether a request with this id can exist: asking PostgreSQL for one outside INTEGER raises instead."""
    return 0 < request_id <= REQUEST_ID_MAX


def _storable(text: str) -> str:
    """``text`` with NUL as U+FFFD, the replacement character: PostgreSQL's text cannot hold NUL at all (the
    whole statement fails), SQLite's can. Applied on both, so that both store the same for the same input."""
    return text.replace("\x00", "\ufffd")


def _storable_optional(text: str | None) -> str | None:
    return None if text is None else _storable(text)


def _update(row: User | Chat, fields: dict[str, str | None]) -> None:
    # Assign only what changed, so an unchanged upsert issues no UPDATE and keeps updated_at.
    for name, value in fields.items():
        if getattr(row, name) != value:
            setattr(row, name, value)


async def _request_by_update_id(session: AsyncSession, update_id: int) -> Request | None:
    return await session.scalar(select(Request).where(Request.update_id == update_id))


async def _request_row(session: AsyncSession, request_id: int) -> Request:
    row = await session.get(Request, request_id) if _valid_request_id(request_id) else None
    if row is None:
        raise LookupError(f"no request {request_id}")
    return row


async def _rating_row(session: AsyncSession, request_id: int, user_id: int) -> Rating | None:
    return await session.scalar(select(Rating).where(Rating.request_id == request_id, Rating.user_id == user_id))


def _candidates(row: Request) -> list[str]:
    return [] if row.candidates is None else list(json.loads(row.candidates))


def _user_record(row: User) -> UserRecord:
    return UserRecord(
        id=row.id,
        first_name=row.first_name,
        username=row.username,
        language_code=row.language_code,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


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
        candidates=tuple(_candidates(row)),
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
    )


def _settings_record(row: UserSettings) -> UserSettingsRecord:
    return UserSettingsRecord(
        user_id=row.user_id, temperature=row.temperature, length=row.length, rhyme=row.rhyme,
        updated_at=row.updated_at,
    )


# --- corpus and training -------------------------------------------------------------------------------

OPEN_RUNS: Final = (RunStatus.QUEUED, RunStatus.RUNNING)
DOCUMENT_NAME_MAX = 255  # the column's length; longer names are cut


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    id: int
    sha256: str
    name: str
    chars: int
    added_by: int | None  # None: added from the command line
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    status: RunStatus
    trigger: RunTrigger
    requested_by: int | None
    parent_version: str | None
    candidate_version: str | None
    document_ids: list[int]
    metrics: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class VersionRecord:
    version: str
    parent: str | None
    weights_sha256: str
    document_ids: list[int]
    old_ppl: float | None
    new_ppl: float | None
    metrics: dict[str, Any] | None
    run_id: int | None
    created_at: datetime
    activated_at: datetime | None


async def add_document(
    session: AsyncSession, *, name: str, text: str, added_by: int | None
) -> tuple[DocumentRecord, bool]:
    """Store a corpus document; ``(existing, False)`` if the same text was stored before, under any name."""
    sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    existing = await _document_by_sha256(session, sha256)
    if existing is not None:
        return _document_record(existing), False
    row = CorpusDocument(
        sha256=sha256, name=_storable(name[:DOCUMENT_NAME_MAX]), text=text, chars=len(text), added_by=added_by
    )
    try:
        async with session.begin_nested():  # losing the race on the unique sha256 keeps the transaction usable
            session.add(row)
    except IntegrityError:
        existing = await _document_by_sha256(session, sha256)
        if existing is None:
            raise  # not the duplicate: an unknown added_by, say
        return _document_record(existing), False
    return _document_record(row), True


async def list_documents(session: AsyncSession) -> list[DocumentRecord]:
    """Every corpus document, oldest first, without its text."""
    result = await session.execute(
        select(
            CorpusDocument.id,
            CorpusDocument.sha256,
            CorpusDocument.name,
            CorpusDocument.chars,
            CorpusDocument.added_by,
            CorpusDocument.created_at,
        ).order_by(CorpusDocument.id)
    )
    return [
        DocumentRecord(id=id_, sha256=sha, name=name, chars=chars, added_by=by, created_at=created)
        for id_, sha, name, chars, by, created in result
    ]


async def document_texts(session: AsyncSession, *, ids: Sequence[int]) -> dict[int, str]:
    """The texts of the given documents by id; LookupError if any is missing."""
    wanted = set(ids)
    if not wanted:
        return {}
    result = await session.execute(
        select(CorpusDocument.id, CorpusDocument.text).where(CorpusDocument.id.in_(sorted(wanted)))
    )
    texts = {id_: text for id_, text in result}
    missing = wanted - texts.keys()
    if missing:
        raise LookupError(f"no corpus documents {sorted(missing)}")
    return texts


async def create_run(
    session: AsyncSession,
    *,
    trigger: str,
    requested_by: int | None,
    parent_version: str | None,
    document_ids: list[int],
) -> RunRecord:
    """A new run in status queued. ValueError for an unknown trigger."""
    row = TrainingRun(
        status=RunStatus.QUEUED.value,
        trigger=RunTrigger(trigger).value,
        requested_by=requested_by,
        parent_version=parent_version,
        document_ids=json.dumps(list(document_ids)),
    )
    session.add(row)
    await session.flush()
    return _run_record(row)


async def start_run(session: AsyncSession, *, run_id: int) -> None:
    row = await _run_row(session, run_id)
    row.status = RunStatus.RUNNING.value
    row.started_at = utcnow()
    await session.flush()


async def finish_run(
    session: AsyncSession,
    *,
    run_id: int,
    status: str,
    candidate_version: str | None,
    metrics: dict[str, Any] | None,
    error: str | None = None,
) -> None:
    """Close a run with a final status; ValueError for an unknown or unfinished status."""
    final = RunStatus(status)
    if final in OPEN_RUNS:
        raise ValueError(f"{status!r} is not a final run status")
    row = await _run_row(session, run_id)
    row.status = final.value
    row.candidate_version = candidate_version
    row.metrics = _dump_optional(metrics)
    row.error = error
    row.finished_at = utcnow()
    await session.flush()


async def running_run(session: AsyncSession) -> RunRecord | None:
    """The newest run still queued or running, if any."""
    row = await session.scalar(
        select(TrainingRun)
        .where(TrainingRun.status.in_([s.value for s in OPEN_RUNS]))
        .order_by(TrainingRun.id.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )
    return None if row is None else _run_record(row)


async def recent_runs(session: AsyncSession, *, limit: int = 10) -> list[RunRecord]:
    """The latest runs, newest first."""
    rows = await session.scalars(
        select(TrainingRun).order_by(TrainingRun.id.desc()).limit(limit).execution_options(populate_existing=True)
    )
    return [_run_record(row) for row in rows]


async def interrupt_stale_runs(session: AsyncSession) -> int:
    """Mark every queued or running run as interrupted (at start-up: no process works on them any more)."""
    rows = (
        await session.scalars(
            select(TrainingRun)
            .where(TrainingRun.status.in_([s.value for s in OPEN_RUNS]))
            .execution_options(populate_existing=True)
        )
    ).all()
    now = utcnow()
    for row in rows:
        row.status = RunStatus.INTERRUPTED.value
        row.finished_at = now
    await session.flush()
    return len(rows)


async def record_version(
    session: AsyncSession,
    *,
    version: str,
    parent: str | None,
    weights_sha256: str,
    document_ids: list[int],
    old_ppl: float | None,
    new_ppl: float | None,
    metrics: dict[str, Any] | None,
    run_id: int | None,
) -> VersionRecord:
    """Store a trained checkpoint (not yet active). ``parent`` must be a recorded version: IntegrityError if not."""
    row = ModelVersion(
        version=version,
        parent=parent,
        weights_sha256=weights_sha256,
        document_ids=json.dumps(list(document_ids)),
        old_ppl=old_ppl,
        new_ppl=new_ppl,
        metrics=_dump_optional(metrics),
        run_id=run_id,
    )
    session.add(row)
    await session.flush()
    return _version_record(row)


async def activate_version(session: AsyncSession, *, version: str) -> None:
    """Note that ``version`` is served from now on; LookupError if it was never recorded."""
    row = await session.get(ModelVersion, version)
    if row is None:
        raise LookupError(f"no model version {version}")
    row.activated_at = utcnow()
    await session.flush()


async def list_versions(session: AsyncSession) -> list[VersionRecord]:
    """Every recorded version, newest first."""
    rows = await session.scalars(
        select(ModelVersion)
        .order_by(ModelVersion.created_at.desc(), ModelVersion.version.desc())
        .execution_options(populate_existing=True)
    )
    return [_version_record(row) for row in rows]


async def get_version(session: AsyncSession, *, version: str) -> VersionRecord | None:
    row = await session.get(ModelVersion, version, populate_existing=True)
    return None if row is None else _version_record(row)


async def version_feedback(session: AsyncSession) -> dict[str, tuple[float | None, int]]:
    """Per ``requests.model_version``: (mean stars of the ratings on its requests or None, number of requests).

    Counts every request that names the version, recorded in ``model_versions`` or not (the first model isn't).
    """
    result = await session.execute(
        select(
            Request.model_version,
            func.avg(cast(Rating.stars, Float)),
            func.count(Request.id.distinct()),
        )
        .outerjoin(Rating, Rating.request_id == Request.id)
        .where(Request.model_version.is_not(None))
        .group_by(Request.model_version)
    )
    return {
        version: (None if mean is None else float(mean), int(n)) for version, mean, n in result if version is not None
    }


async def _document_by_sha256(session: AsyncSession, sha256: str) -> CorpusDocument | None:
    return await session.scalar(select(CorpusDocument).where(CorpusDocument.sha256 == sha256))


async def _run_row(session: AsyncSession, run_id: int) -> TrainingRun:
    row = await session.get(TrainingRun, run_id)
    if row is None:
        raise LookupError(f"no training run {run_id}")
    return row


def _dump_optional(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _load_optional(text: str | None) -> dict[str, Any] | None:
    return None if text is None else dict(json.loads(text))


def _document_record(row: CorpusDocument) -> DocumentRecord:
    return DocumentRecord(
        id=row.id,
        sha256=row.sha256,
        name=row.name,
        chars=row.chars,
        added_by=row.added_by,
        created_at=row.created_at,
    )


def _run_record(row: TrainingRun) -> RunRecord:
    return RunRecord(
        id=row.id,
        status=RunStatus(row.status),
        trigger=RunTrigger(row.trigger),
        requested_by=row.requested_by,
        parent_version=row.parent_version,
        candidate_version=row.candidate_version,
        document_ids=[int(i) for i in json.loads(row.document_ids)],
        metrics=_load_optional(row.metrics),
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _version_record(row: ModelVersion) -> VersionRecord:
    return VersionRecord(
        version=row.version,
        parent=row.parent,
        weights_sha256=row.weights_sha256,
        document_ids=[int(i) for i in json.loads(row.document_ids)],
        old_ppl=row.old_ppl,
        new_ppl=row.new_ppl,
        metrics=_load_optional(row.metrics),
        run_id=row.run_id,
        created_at=row.created_at,
        activated_at=row.activated_at,
    )
