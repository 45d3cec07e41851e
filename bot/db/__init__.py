"""The bot's database: models, engine, repositories and migrations (SQLAlchemy 2 async, Alembic)."""

from bot.db.engine import make_engine, make_sessionmaker
from bot.db.models import Base, RequestStatus

__all__ = ["Base", "RequestStatus", "make_engine", "make_sessionmaker"]
