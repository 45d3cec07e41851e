"""The corpus converter, offline: a small tarball shaped like the chinese-poetry package."""

import io
import json
import tarfile
from pathlib import Path

import pytest

from charrnn.fetch import CORPORA, FetchError, PoetryCorpus, fetch, poetry_text, to_blocks

from ..conftest import real_corpus


def tarball(files: dict[str, object]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            data = json.dumps(content, ensure_ascii=False).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_blocks_are_title_then_stripped_lines_and_empty_poems_are_left_out() -> None:
    poems = [
        {"title": " 关雎 ", "content": ["关关雎鸠，在河之洲。 ", "", "  窈窕淑女，君子好逑。"]},
        {"title": "尾・只有标题", "content": []},
        {"title": "葛覃", "content": ["葛之覃兮"]},
    ]
    expected = "关雎\n关关雎鸠，在河之洲。\n窈窕淑女，君子好逑。\n\n葛覃\n葛之覃兮\n"
    assert to_blocks(poems, "title", "content") == expected


def test_songci_files_are_read_in_numeric_order_and_others_ignored() -> None:
    package = tarball({
        "package/dist/songci/ci.song.1000.json": [{"rhythmic": "二", "paragraphs": ["b。"]}],
        "package/dist/songci/ci.song.200.json": [{"rhythmic": "一", "paragraphs": ["a。"]}],
        "package/dist/songci/ci.song.2019y.json": [{"rhythmic": "不要", "paragraphs": ["x。"]}],
        "package/dist/songci/宋词三百首.json": [{"rhythmic": "不要", "paragraphs": ["y。"]}],
        "package/dist/yuanqu/yuanqu.json": [{"title": "曲", "paragraphs": ["c。"]}],
    })
    songci = CORPORA["songci"]
    assert isinstance(songci, PoetryCorpus)
    assert poetry_text(package, songci) == "一\na。\n\n二\nb。\n"
    yuanqu = CORPORA["yuanqu"]
    assert isinstance(yuanqu, PoetryCorpus)
    assert poetry_text(package, yuanqu) == "曲\nc。\n"


def test_a_tarball_that_is_not_npms_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    fake = tarball({"package/dist/shijing/shijing.json": [{"title": "t", "content": ["l"]}]})
    with pytest.raises(FetchError, match="integrity"):
        fetch("shijing", tmp_path / "shijing.txt", download=lambda url, timeout: fake)
    assert not (tmp_path / "shijing.txt").exists()
    with pytest.raises(FetchError, match="unusable"):
        poetry_text(b"not a tarball", CORPORA["shijing"])  # type: ignore[arg-type]


def test_a_verified_copy_is_not_downloaded_again(tmp_path: Path) -> None:
    def no_network(url: str, timeout: float) -> bytes:
        raise AssertionError("downloaded although a verified copy was there")

    source = real_corpus("shijing.txt")  # the real file: its SHA-256 is the pinned one
    out = tmp_path / "shijing.txt"
    out.write_bytes(source.read_bytes())
    assert fetch("shijing", out, download=no_network) == out
