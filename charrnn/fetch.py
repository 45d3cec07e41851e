"""Download the public corpora the benchmarks use, verified by SHA-256.

Only the CLI calls this; the library and the tests never touch the network.
"""

from __future__ import annotations

import hashlib
import io
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from charrnn.checkpoint import write_atomic


class FetchError(RuntimeError):
    """A download that failed or did not match its checksum."""


@dataclass(frozen=True)
class RemoteCorpus:
    url: str
    sha256: str  # of the UTF-8 text, after unzipping
    member: str | None = None  # the file inside a zip archive


CORPORA = {
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
}


def fetch(name: str, out: Path, timeout: float = 60.0) -> Path:
    """Download corpus ``name`` to ``out`` unless a verified copy is already there."""
    corpus = CORPORA[name]
    if out.is_file() and hashlib.sha256(out.read_bytes()).hexdigest() == corpus.sha256:
        return out
    try:
        with urllib.request.urlopen(corpus.url, timeout=timeout) as response:
            payload = response.read()
    except OSError as exc:
        raise FetchError(f"cannot download {name} from {corpus.url}: {exc}") from None
    if corpus.member is not None:
        try:
            with zipfile.ZipFile(io.BytesIO(payload)) as archive:
                payload = archive.read(corpus.member)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise FetchError(f"downloaded {name} archive is unusable: {exc}") from None
    digest = hashlib.sha256(payload).hexdigest()
    if digest != corpus.sha256:
        raise FetchError(f"downloaded {name} has SHA-256 {digest}, expected {corpus.sha256}; not saved")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, lambda p: p.write_bytes(payload))
    return out
