"""``lyricbot train [--style NAME]``: the database half of training from the command line.

The training itself is ``ModelStore.train_first``; this points a style's row at the new version directory: a new
style's first version, or the default style's next one. A running bot serves it from the next request on: the
style row is the pointer, read per request (see ``bot.services.styles``).
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from bot.settings import Settings


def check_new_style(settings: Settings, name: str) -> None:
    """ValueError now, before any training, for a malformed name or one a live style already has."""
    from bot.db.engine import make_engine, make_sessionmaker
    from bot.db.migrate import upgrade
    from bot.db.repos.styles import get_style
    from bot.services.styles import DEFAULT_STYLE, STYLE_NAME, normalize

    slug = normalize(name)
    if slug == DEFAULT_STYLE or not STYLE_NAME.fullmatch(slug):
        raise ValueError(f"{name!r} cannot name a style: use 1-32 of a-z, 0-9, _ and -, not {DEFAULT_STYLE!r}")

    async def go() -> None:
        engine = make_engine(settings.database_url)
        try:
            await upgrade(engine)
            async with make_sessionmaker(engine)() as session:
                record = await get_style(session, name=slug)
            if record is not None and record.deleted_at is None:
                raise ValueError(f"a style named {slug} already exists")
        finally:
            await engine.dispose()

    asyncio.run(go())


def register_style(settings: Settings, name: str, title: str | None, version: str, corpus: Path | None) -> str:
    """Point the new style ``name`` at the trained ``version``; returns the style's name.

    The corpus is kept beside the model versions: the style's fine-tunes replay it and are judged on it.
    """
    from bot.db.engine import make_engine, make_sessionmaker
    from bot.db.migrate import upgrade
    from bot.services.styles import StyleService, normalize
    from bot.serving.model_store import ModelStore, style_corpus_path
    from charrnn.files import write_atomic

    if corpus is not None:
        target = style_corpus_path(settings.model_dir, normalize(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, lambda p: shutil.copyfile(corpus, p))

    async def go() -> str:
        engine = make_engine(settings.database_url)
        try:
            await upgrade(engine)
            styles = StyleService(make_sessionmaker(engine), ModelStore(settings.model_dir, settings.device))
            record = await styles.create(name=name, title=title, version=version, created_by=None)
            return record.name
        finally:
            await engine.dispose()

    return asyncio.run(go())


def serve_in_default(settings: Settings, version: str) -> None:
    """Point the default style at the freshly trained ``version`` (a root of its lineage: it has no parent)."""
    asyncio.run(point_default(settings.database_url, settings.model_dir, version, settings.device))


async def point_default(database_url: str, model_dir: Path, version: str, device: str = "auto") -> None:
    """``serve_in_default`` for a caller already in an event loop (a benchmark that trains its own model)."""
    from bot.db.engine import make_engine, make_sessionmaker
    from bot.db.migrate import upgrade
    from bot.domain import DEFAULT_STYLE
    from bot.services.styles import StyleService
    from bot.serving.model_store import ModelStore

    engine = make_engine(database_url)
    try:
        await upgrade(engine)
        await StyleService(make_sessionmaker(engine), ModelStore(model_dir, device)).replace(DEFAULT_STYLE, version)
    finally:
        await engine.dispose()
