"""ORM models of the bot's database; every schema change also needs a migration in ``migrations/versions``."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.domain import DEFAULT_STYLE

# Named constraints from the first migration on: SQLite leaves them unnamed otherwise, and batch
# migrations (and Alembic's drift check) can only address a constraint by its name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSON, with None stored as SQL NULL rather than as the JSON text `null`, so that IS NULL finds it. (SQLite
# keeps JSON as text; PostgreSQL's json type keeps the text as written, unlike jsonb.)
JSON_VALUE = JSON(none_as_null=True)


class RequestStatus(StrEnum):
    QUEUED = "queued"  # stored, waiting for the generation worker
    RUNNING = "running"
    DONE = "done"  # generated, not sent yet
    SENDING = "sending"  # handed to Telegram; whether it arrived is known only once marked answered
    ANSWERED = "answered"
    FAILED = "failed"


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PROMOTED = "promoted"  # the candidate passed the gate and is now served
    REJECTED = "rejected"  # trained, but the gate kept the parent
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # killed, or still open when the bot restarted
    SKIPPED = "skipped"  # nothing to do, e.g. no new corpus text


class RunTrigger(StrEnum):
    SCHEDULE = "schedule"
    ADMIN = "admin"
    CLI = "cli"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always hands back aware UTC datetimes.

    PostgreSQL keeps the zone, but SQLite stores the text without it and returns naive values.
    Naive input is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # the Telegram user id
    first_name: Mapped[str] = mapped_column(String(255))
    username: Mapped[str | None] = mapped_column(String(64))
    language_code: Mapped[str | None] = mapped_column(String(35))  # an IETF tag
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Chat(Base):
    __tablename__ = "chats"

    # Telegram chat id: supergroups and channels are below -10**12, hence 64 bits.
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(32))  # private, group, supergroup, channel
    title: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Request(Base):
    __tablename__ = "requests"
    __table_args__ = (
        CheckConstraint(f"status IN ({', '.join(repr(s.value) for s in RequestStatus)})", name="status"),
        Index(None, "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # None for a "write again" request, which comes from a button and has no update of its own.
    update_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="RESTRICT"))
    # None for an inline request: Telegram does not say in which chat a chosen inline result was sent.
    chat_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("chats.id", ondelete="RESTRICT"))
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16), server_default="chat")  # chat (a command) or inline
    inline_message_id: Mapped[str | None] = mapped_column(String(255), index=True)  # a sent inline result
    style: Mapped[str] = mapped_column(String(32), server_default=DEFAULT_STYLE)  # the style written in
    title: Mapped[str | None] = mapped_column(Text)  # the lyric's generated title, shown as its first line
    prefix: Mapped[str] = mapped_column(Text)
    temperature: Mapped[float] = mapped_column(Float)
    length: Mapped[int] = mapped_column(Integer)
    rhyme: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # The form it is written in (bot.services.forms): a ci tune's name or a pattern string; None: free lines.
    form: Mapped[str | None] = mapped_column(String(64))
    pattern: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True, default=RequestStatus.QUEUED.value)
    output: Mapped[str | None] = mapped_column(Text)
    candidates: Mapped[list[str] | None] = mapped_column(JSON_VALUE)  # the spares besides `output`, in showing order
    candidate_index: Mapped[int] = mapped_column(Integer, default=0)  # next entry of `candidates` to show
    answer_message_id: Mapped[int | None] = mapped_column(BigInteger)
    model_version: Mapped[str | None] = mapped_column(String(128))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    parent_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("requests.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The process answering it (``LyricsService.owner``) and until when its claim holds unless renewed; an
    # unfinished request whose lease ran out belongs to a process that died, and another may take it over.
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Rating(Base):
    __tablename__ = "ratings"
    __table_args__ = (
        UniqueConstraint("request_id", "user_id"),
        CheckConstraint("stars BETWEEN 1 AND 5", name="stars"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(Integer, ForeignKey("requests.id", ondelete="RESTRICT"))
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    stars: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class UserSettings(Base):
    __tablename__ = "user_settings"

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="RESTRICT"), primary_key=True, autoincrement=False
    )
    temperature: Mapped[float | None] = mapped_column(Float)  # None: the bot's default
    length: Mapped[int | None] = mapped_column(Integer)
    rhyme: Mapped[bool | None] = mapped_column(Boolean)
    form: Mapped[str | None] = mapped_column(String(64))  # a ci tune's name; "" or None: free lines
    style: Mapped[str | None] = mapped_column(String(32))  # None: not chosen, the default style
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ChatSettings(Base):
    """A group's settings: they apply to everyone writing in that group, and only its administrators change them."""

    __tablename__ = "chat_settings"

    chat_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("chats.id", ondelete="RESTRICT"), primary_key=True, autoincrement=False
    )
    temperature: Mapped[float | None] = mapped_column(Float)  # None: the bot's default
    length: Mapped[int | None] = mapped_column(Integer)
    rhyme: Mapped[bool | None] = mapped_column(Boolean)
    form: Mapped[str | None] = mapped_column(String(64))  # a ci tune's name; "" or None: free lines
    style: Mapped[str | None] = mapped_column(String(32))  # None: not chosen, the default style
    updated_by: Mapped[int | None] = mapped_column(BigInteger)  # a Telegram user id; no key, it is a log
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Style(Base):
    """A named style: a lineage of model versions (the default style's, from the shipped base on, or a corpus an
    admin trained), served side by side with the others. ``active_version`` is the pointer that serves it (the one
    for every style, the default's included: migration 0012). Deleting one keeps its row (``deleted_at``): old
    requests and ratings still name it; the default style is never deleted."""

    __tablename__ = "styles"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)  # a slug: jaychou, shakespeare
    title: Mapped[str] = mapped_column(String(64))  # what people see on the button
    active_version: Mapped[str | None] = mapped_column(String(64))  # a model directory in MODEL_DIR
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CorpusDocument(Base):
    """Training text added after the first model: an uploaded file or a message, stored once per content and
    style (the same song may train two styles)."""

    __tablename__ = "corpus_documents"
    __table_args__ = (
        UniqueConstraint("sha256", "style"),  # a text once per style's corpus
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64))  # of the UTF-8 text, hex
    name: Mapped[str] = mapped_column(String(255))  # a file name, or "message"
    text: Mapped[str] = mapped_column(Text)
    chars: Mapped[int] = mapped_column(Integer)
    # None when added from the command line.
    added_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    style: Mapped[str] = mapped_column(String(32), server_default=DEFAULT_STYLE)  # whose lineage this text trains


class TrainingRun(Base):
    __tablename__ = "training_runs"
    __table_args__ = (
        CheckConstraint(f"status IN ({', '.join(repr(s.value) for s in RunStatus)})", name="status"),
        CheckConstraint(f"trigger IN ({', '.join(repr(t.value) for t in RunTrigger)})", name="trigger"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default=RunStatus.QUEUED.value)
    trigger: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[int | None] = mapped_column(BigInteger)  # a Telegram user id; no key, it is a log
    parent_version: Mapped[str | None] = mapped_column(String(64))
    candidate_version: Mapped[str | None] = mapped_column(String(64))
    style: Mapped[str] = mapped_column(String(32), server_default=DEFAULT_STYLE)  # the style fine-tuned
    document_ids: Mapped[list[int]] = mapped_column(JSON_VALUE)  # corpus_documents ids
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON_VALUE)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ModelVersion(Base):
    """A fine-tuned checkpoint, promoted or not; ``parent`` is the version it was trained from."""

    __tablename__ = "model_versions"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)  # the directory name, e.g. v20261123-101500
    parent: Mapped[str | None] = mapped_column(String(64), ForeignKey("model_versions.version", ondelete="RESTRICT"))
    weights_sha256: Mapped[str] = mapped_column(String(64))
    document_ids: Mapped[list[int]] = mapped_column(JSON_VALUE)  # the corpus_documents it was trained on
    old_ppl: Mapped[float | None] = mapped_column(Float)  # perplexity on held-out old corpus text
    new_ppl: Mapped[float | None] = mapped_column(Float)  # ... and on held-out new text
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON_VALUE)
    run_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("training_runs.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the latest time it was made active
    style: Mapped[str] = mapped_column(String(32), server_default=DEFAULT_STYLE)  # whose lineage it belongs to
