"""Download the public corpora, verified by SHA-256, so that users get exactly the texts the README measures.

Jay Chou and Shakespeare are plain files. The Song ci, Yuan qu and Book of Songs come from the MIT-licensed
``chinese-poetry`` package on the npm registry (the poems themselves are public domain): its tarball is
pinned by npm's own integrity hash, and its JSON is converted to our plain-text format (``to_blocks``),
which must then match the pinned SHA-256 byte for byte.

Only the CLI calls this; the library and the tests never touch the network.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import tarfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charrnn.checkpoint import write_atomic


class FetchError(RuntimeError):
    """A download that failed or did not match its checksum."""


@dataclass(frozen=True)
class RemoteCorpus:
    url: str
    sha256: str  # of the UTF-8 text we write
    member: str | None = None  # the file inside a zip archive


@dataclass(frozen=True)
class PoetryCorpus:
    """Poems converted from JSON files of the ``chinese-poetry`` npm tarball."""

    sha256: str  # of the converted text
    members: Callable[[str], bool]  # which files of the tarball, by path
    order: Callable[[str], Any]  # sort key of those paths
    title: str  # the JSON field of the first line of a block
    lines: str  # the JSON field of its lines


POETRY_TARBALL = "https://registry.npmjs.org/chinese-poetry/-/chinese-poetry-2.0.1.tgz"
# npm's "integrity" of that tarball (registry.npmjs.org/chinese-poetry/2.0.1, dist.integrity).
POETRY_SHA512 = "KtYARvV7CWNtax0na9+Jn6PlhGgSoid7PWyDzXI4KsCEm2odZcqEQyval5koaLygZnM/EQ3lfJ//25K8p3uHNg=="
_SONGCI_FILE = re.compile(r"package/dist/songci/ci\.song\.(\d+)\.json")

CORPORA: dict[str, RemoteCorpus | PoetryCorpus] = {
    # The Jay Chou lyrics of Dive into Deep Learning (d2l-zh), pinned to a commit.
    "jaychou": RemoteCorpus(
        "https://raw.githubusercontent.com/d2l-ai/d2l-zh/89403b9792861d86a0f1735cdd4a3d60c423f5a2/"
        "data/jaychou_lyrics.txt.zip",
        "f0cab49f5d00e736c7201a0e2aa9c8dd72da1940c9491b309e4cc657be0faa48",
        member="jaychou_lyrics.txt",
    ),
    # Karpathy's char-rnn tiny Shakespeare.
    "shakespeare": RemoteCorpus(
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    ),
    # 21,050 Song-dynasty ci: the tune name, then the lines (the numbered files, in numeric order).
    "songci": PoetryCorpus(
        "c20af3444c440e092155dfaabef202e88eb05a0a9db62a8b2e66e29a798241dd",
        members=lambda path: _SONGCI_FILE.fullmatch(path) is not None,
        order=lambda path: int(_SONGCI_FILE.fullmatch(path).group(1)),  # type: ignore[union-attr]
        title="rhythmic",
        lines="paragraphs",
    ),
    "yuanqu": PoetryCorpus(
        "47716ced0dda3417e97c2ba54781365e16a8ebd1ca036595efc3e422c071147c",
        members=lambda path: path == "package/dist/yuanqu/yuanqu.json",
        order=str,
        title="title",
        lines="paragraphs",
    ),
    "shijing": PoetryCorpus(
        "a7813be54c7bf01007ba4dd9c204462abda98385487e3b1539472bc53ef96d46",
        members=lambda path: path == "package/dist/shijing/shijing.json",
        order=str,
        title="title",
        lines="content",
    ),
}


def to_blocks(poems: Iterable[dict[str, Any]], title: str, lines: str) -> str:
    """The corpus format: per poem its title line, then its lines, stripped, empty ones dropped; poems
    with no line at all are left out; one blank line between poems; a final line break."""
    blocks = []
    for poem in poems:
        body = [str(line).strip() for line in poem.get(lines) or ()]
        body = [line for line in body if line]
        if body:
            blocks.append("\n".join([str(poem.get(title, "")).strip(), *body]))
    return "\n\n".join(blocks) + "\n"


def poetry_text(tarball: bytes, corpus: PoetryCorpus) -> str:
    """Convert the chosen JSON files of a ``chinese-poetry`` tarball to one text."""
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            members = sorted((m for m in archive.getmembers() if m.isfile() and corpus.members(m.name)),
                             key=lambda m: corpus.order(m.name))
            poems: list[dict[str, Any]] = []
            for member in members:
                handle = archive.extractfile(member)
                assert handle is not None
                poems.extend(json.load(handle))
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise FetchError(f"the chinese-poetry package is unusable: {exc}") from None
    if not members:
        raise FetchError("the chinese-poetry package holds none of the expected files")
    return to_blocks(poems, corpus.title, corpus.lines)


def _download(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bytes(response.read())
    except OSError as exc:
        raise FetchError(f"cannot download {url}: {exc}") from None


def _verified(name: str, payload: bytes, sha256: str) -> bytes:
    digest = hashlib.sha256(payload).hexdigest()
    if digest != sha256:
        raise FetchError(f"{name} has SHA-256 {digest}, expected {sha256}; not saved")
    return payload


def fetch(name: str, out: Path, timeout: float = 120.0, download: Callable[[str, float], bytes] = _download) -> Path:
    """Download corpus ``name`` to ``out`` unless a verified copy is already there."""
    corpus = CORPORA[name]
    if out.is_file() and hashlib.sha256(out.read_bytes()).hexdigest() == corpus.sha256:
        return out
    if isinstance(corpus, PoetryCorpus):
        tarball = download(POETRY_TARBALL, timeout)
        if base64.b64encode(hashlib.sha512(tarball).digest()).decode() != POETRY_SHA512:
            raise FetchError(f"the downloaded {POETRY_TARBALL} does not match npm's integrity hash")
        payload = poetry_text(tarball, corpus).encode("utf-8")
    else:
        payload = download(corpus.url, timeout)
        if corpus.member is not None:
            try:
                with zipfile.ZipFile(io.BytesIO(payload)) as archive:
                    payload = archive.read(corpus.member)
            except (zipfile.BadZipFile, KeyError) as exc:
                raise FetchError(f"downloaded {name} archive is unusable: {exc}") from None
    payload = _verified(name, payload, corpus.sha256)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, lambda p: p.write_bytes(payload))
    return out
