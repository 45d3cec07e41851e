"""The bot's database: models, engine, repositories and the migration runner (SQLAlchemy 2 async, Alembic); the
migrations themselves are in ``migrations/`` at the top, shipped inside the package so that a wheel has them."""

from bot.db.engine import make_engine, make_sessionmaker
from bot.db.models import Base, RequestStatus

__all__ = ["Base", "RequestStatus", "make_engine", "make_sessionmaker"]
