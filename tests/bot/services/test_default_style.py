"""The default style's first start (``StyleService.ensure_default``): a model directory from before migration
0012 keeps serving what its ``ACTIVE`` file named, and replicas starting together on one database agree."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from bot.db import repository
from bot.db.engine import make_engine, make_sessionmaker
from bot.domain import DEFAULT_STYLE
from bot.services.styles import StyleService
from bot.serving.model_store import ModelStore
from tests.helpers.bot import trained_version
from tests.helpers.migrated import migrated


def model_dir_from_before(tmp_path: Path, trained_store: tuple[Path, Path]) -> tuple[Path, str]:
    """A copy of the trained model directory as the bot before migration 0012 left it: ACTIVE names the model."""
    model_dir = tmp_path / "models"
    shutil.copytree(trained_store[0], model_dir)
    version = trained_version(model_dir)
    assert version is not None
    (model_dir / "ACTIVE").write_text(version + "\n", encoding="utf-8")
    return model_dir, version


def test_a_model_directory_from_before_keeps_serving_its_active_version(
    tmp_path: Path, url: str, trained_store: tuple[Path, Path]
) -> None:
    model_dir, version = model_dir_from_before(tmp_path, trained_store)

    async def main() -> None:
        async with migrated(url) as engine:
            styles = StyleService(make_sessionmaker(engine), ModelStore(model_dir, "cpu"))
            assert await styles.ensure_default() == version
            assert not (model_dir / "ACTIVE").exists()  # the row is the pointer now: no second one to mislead
            choice = await styles.find(DEFAULT_STYLE)
            assert choice is not None and choice.version == version
            async with styles.sessions() as session:
                root = await repository.get_version(session, version=version)
            assert root is not None and root.style == DEFAULT_STYLE and root.parent is None  # its lineage's root
            assert root.activated_at is not None
            assert await styles.ensure_default() == version  # the next start: nothing changes
            assert not list(model_dir.glob("base-*"))  # the shipped base was never needed

    asyncio.run(main())


def test_replicas_starting_together_serve_one_version(
    tmp_path: Path, url: str, trained_store: tuple[Path, Path]
) -> None:
    """Two bots on one database, each with its own engine, give the default style its first version at once."""
    model_dir, _ = model_dir_from_before(tmp_path, trained_store)

    async def main() -> None:
        async with migrated(url):
            engines = [make_engine(url), make_engine(url)]
            try:
                replicas = [StyleService(make_sessionmaker(e), ModelStore(model_dir, "cpu")) for e in engines]
                served = await asyncio.gather(*(r.ensure_default() for r in replicas))
                assert served[0] == served[1]
                async with replicas[0].sessions() as session:
                    record = await repository.get_style(session, name=DEFAULT_STYLE)
                    versions = await repository.list_versions(session)
                assert record is not None and record.active_version == served[0]
                assert [v.version for v in versions if v.version == served[0]] == [served[0]]  # recorded once
            finally:
                for engine in engines:
                    await engine.dispose()

    asyncio.run(main())
