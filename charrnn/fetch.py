"""Download the public corpora, verified by SHA-256, so that users get exactly the texts the README measures.

Jay Chou and Shakespeare are plain files. The Song ci, Yuan qu, Book of Songs and the other sung lyrics
(the Five Dynasties ci of the Huajian ji, the ci of the two Southern Tang rulers, Nalan Xingde's ci) come
from the MIT-licensed ``chinese-poetry`` package on the npm registry (the poems themselves are public
domain): its tarball is pinned by npm's own integrity hash, and its JSON is converted to our plain-text
format (``to_blocks``), which must then match the pinned SHA-256 byte for byte. A derived corpus is
another one rewritten by a pure function (``yuanqu-sung``: the Yuan qu without its drama,
``charrnn.drama``), made from the downloaded source or from a verified copy given as ``source``.

Only the CLI calls this; the library and the tests never touch the network.
"""

from __future__ import annotations

import base64
import functools
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

from charrnn import drama
from charrnn.files import write_atomic


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
    # A ci anthology (``ci_poem``): the block's title is the tune name alone, so that these line up with
    # the Song ci, and the lines lose the editors' marks. The first three corpora were pinned without it.
    ci: bool = False


@dataclass(frozen=True)
class DerivedCorpus:
    """Corpus ``source`` rewritten by ``derive``, which also says what it removed (printed by the CLI)."""

    source: str
    sha256: str  # of the rewritten text
    derive: Callable[[str], drama.Cleaning]


POETRY_TARBALL = "https://registry.npmjs.org/chinese-poetry/-/chinese-poetry-2.0.1.tgz"
# npm's "integrity" of that tarball (registry.npmjs.org/chinese-poetry/2.0.1, dist.integrity).
POETRY_SHA512 = "KtYARvV7CWNtax0na9+Jn6PlhGgSoid7PWyDzXI4KsCEm2odZcqEQyval5koaLygZnM/EQ3lfJ//25K8p3uHNg=="
_SONGCI_FILE = re.compile(r"package/dist/songci/ci\.song\.(\d+)\.json")
# The ten juan of the Huajian ji; juan 0 is the preface (prose), "x" the tenth.
_HUAJIAN_FILE = re.compile(r"package/dist/wudaishici/huajianji/huajianji-([1-9x])-juan\.json")

CORPORA: dict[str, RemoteCorpus | PoetryCorpus | DerivedCorpus] = {
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
    # The Yuan qu's sung verses: its role markers, stage directions and spoken dialogue taken out.
    "yuanqu-sung": DerivedCorpus(
        "yuanqu",
        "ff4d2c47f00e0ff258f6fec0e1c43aa55cc9fa81c37d49b60a6d24ec345d34dc",
        derive=drama.clean,
    ),
    # The Huajian ji (花间集, 940): its Five Dynasties ci (497 in the package), in the anthology's order.
    "huajian": PoetryCorpus(
        "12f0af3ebb0b10610bd3ad9239390d9e55029c6fd0c64f9da3284ccd160dfd17",
        members=lambda path: _HUAJIAN_FILE.fullmatch(path) is not None,
        order=lambda path: "123456789x".index(_HUAJIAN_FILE.fullmatch(path).group(1)),  # type: ignore[union-attr]
        title="rhythmic",
        lines="paragraphs",
        ci=True,
    ),
    # The ci of Li Jing and Li Yu, the two rulers of the Southern Tang (南唐二主词).
    "nantang": PoetryCorpus(
        "05135419df4f0a2fd7ebca394294788db5110f0dc56810196f7554e5e10d9366",
        members=lambda path: path == "package/dist/wudaishici/nantang/poetrys.json",
        order=str,
        title="rhythmic",
        lines="paragraphs",
        ci=True,
    ),
    # Nalan Xingde's ci (纳兰性德, 1655-1685): his titles are "tune·subtitle"; his shi (no tune) are left out.
    "nalan": PoetryCorpus(
        "34596211982cf326826ce3dc8a5cff7a56c3133cb3012298a259e5dee906d7bc",
        members=lambda path: path == "package/dist/nalanxingde/纳兰性德诗集.json",
        order=str,
        title="title",
        lines="para",
        ci=True,
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


# Editors' marks in the ci anthologies: footnote numbers ("[1]", "②"), spaces (Nalan's "莫回首、 斜阳下"),
# and words in brackets: the chorus's refrain of the Huajian ji's 竹枝 and 采莲子 ("门前春水（竹枝）白苹花
# （女儿）", which would break the seven-character line the model is to learn) and the authors of a linked
# verse ("(陈维崧)"). ASCII punctuation becomes the full-width marks of every other line.
_EDITORIAL = re.compile(r"\[\d+\]|[\u2460-\u2473]|[（(][^（）()]*[）)]|\s+")
_FULL_WIDTH = str.maketrans(",.?!:;", "，。？！：；")
_STOPS = "，。？！：；、…—”」》"


def ci_line(line: str) -> str:
    """A line of a ci anthology without its editors' marks, ending with a stop as the Song ci's lines do
    (Nalan's lines have none); a line left with no character, or only lost ones ("□"), becomes empty."""
    line = _EDITORIAL.sub("", line).translate(_FULL_WIDTH)
    if not any(ch.isalnum() for ch in line):
        return ""
    return line if line.endswith(tuple(_STOPS)) else line + "。"


def ci_poem(poem: dict[str, Any], title: str, lines: str) -> dict[str, Any] | None:
    """The poem with its title cut to the tune name ("长相思·山一程" -> "长相思") and its lines tidied;
    None for a poem whose title names no tune (with the tune in its own field, every poem has one)."""
    name = str(poem.get(title, "")).strip()
    if title != "rhythmic":
        if "·" not in name:
            return None
        name = name.split("·")[0].strip()
    return {title: name, lines: [ci_line(str(line)) for line in poem.get(lines) or ()]}


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
    if corpus.ci:
        tidied = (ci_poem(poem, corpus.title, corpus.lines) for poem in poems)
        poems = [poem for poem in tidied if poem is not None]
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


def _quiet(message: str) -> None:
    pass


def _payload(
    name: str,
    timeout: float,
    download: Callable[[str, float], bytes],
    source: Path | None,
    report: Callable[[str], None],
) -> bytes:
    """Corpus ``name``'s text, not yet verified; ``source``: the file it is made from, instead of downloading."""
    corpus = CORPORA[name]
    if isinstance(corpus, DerivedCorpus):
        origin = CORPORA[corpus.source]
        text = source.read_bytes() if source else _payload(corpus.source, timeout, download, None, report)
        cleaning = corpus.derive(_verified(corpus.source, text, origin.sha256).decode("utf-8"))
        report(f"{name}: {cleaning.summary()}")
        return cleaning.text.encode("utf-8")
    if isinstance(corpus, PoetryCorpus):
        tarball = source.read_bytes() if source else download(POETRY_TARBALL, timeout)
        if base64.b64encode(hashlib.sha512(tarball).digest()).decode() != POETRY_SHA512:
            raise FetchError(f"{source or 'the downloaded ' + POETRY_TARBALL} does not match npm's integrity hash")
        return poetry_text(tarball, corpus).encode("utf-8")
    payload = source.read_bytes() if source else download(corpus.url, timeout)
    if corpus.member is not None:
        try:
            with zipfile.ZipFile(io.BytesIO(payload)) as archive:
                payload = archive.read(corpus.member)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise FetchError(f"downloaded {name} archive is unusable: {exc}") from None
    return payload


def fetch(
    name: str,
    out: Path,
    timeout: float = 120.0,
    download: Callable[[str, float], bytes] = _download,
    source: Path | None = None,
    report: Callable[[str], None] = _quiet,
) -> Path:
    """Download (or make from ``source``) corpus ``name`` to ``out`` unless a verified copy is already there.

    ``source``: the file the corpus is made from, for working offline: the npm tarball for the
    chinese-poetry corpora, the source corpus's text for a derived one, the downloaded file otherwise.
    ``report`` receives what a derived corpus's rewriting removed.
    """
    corpus = CORPORA[name]
    if out.is_file() and hashlib.sha256(out.read_bytes()).hexdigest() == corpus.sha256:
        return out
    try:
        payload = _verified(name, _payload(name, timeout, download, source, report), corpus.sha256)
    except OSError as exc:
        raise FetchError(f"cannot read {source}: {exc}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, lambda p: p.write_bytes(payload))
    return out


def remembering(download: Callable[[str, float], bytes] = _download) -> Callable[[str, float], bytes]:
    """``download`` that fetches each URL once: several chinese-poetry corpora share one 85 MB tarball."""
    return functools.cache(download)
