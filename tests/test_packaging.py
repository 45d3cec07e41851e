"""What the wheel ships: every package of the checkout, and the Alembic folder as ``bot/migrations``.

The package list in pyproject.toml is written out (Alembic's folder is ``migrations/`` at the top, mapped into
the package with ``package-dir``), so a new package could be forgotten: the first test compares the list with the
folders. The second builds the wheel and migrates a database from it, as an installed bot does at start.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def listed_packages() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return set(config["tool"]["setuptools"]["packages"])


def test_every_package_of_the_checkout_is_listed() -> None:
    folders = {".".join(p.parent.relative_to(ROOT).parts) for top in ("bot", "charrnn")
               for p in (ROOT / top).rglob("__init__.py")}
    assert listed_packages() == folders | {"bot.migrations", "bot.migrations.versions"}


def tracked_copy(target: Path) -> Path:
    """The checkout's tracked files, copied: pip builds in the source tree, and a ``build/`` left there by an older
    build would put files that no longer exist into the wheel."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout.split(b"\0")
    for name in filter(None, names):
        source, copy = ROOT / name.decode(), target / name.decode()
        if source.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy)
    return target


def test_an_installed_wheel_migrates_a_database(tmp_path: Path) -> None:
    built = tmp_path / "dist"
    source = tracked_copy(tmp_path / "source")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(source),
                    "-w", str(built)], check=True, cwd=tmp_path, timeout=600)
    (wheel,) = built.glob("lyricbot-*.whl")
    installed = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(installed)
    revisions = sorted(p.name for p in (ROOT / "migrations" / "versions").glob("[0-9]*.py"))
    assert {f"bot/migrations/versions/{name}" for name in revisions} <= names
    assert {"bot/migrations/env.py", "bot/migrations/script.py.mako", "charrnn/text/ci_forms.json"} <= names
    script = (
        "import asyncio, sys\n"
        "from bot.db import migrate\n"
        "from bot.db.engine import make_engine\n"
        "async def main():\n"
        "    engine = make_engine(sys.argv[1])\n"
        "    await migrate.upgrade(engine)\n"
        "    print(migrate.MIGRATIONS_DIR, await migrate.current(engine), migrate.head_revision())\n"
        "    await engine.dispose()\n"
        "asyncio.run(main())\n"
    )
    env = {"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    where, current, head = done.stdout.split()
    assert Path(where) == installed / "bot" / "migrations"  # the wheel's own copy, not the checkout's
    assert current == head == revisions[-1][:4]
