"""The corpus converter, offline: a small tarball shaped like the chinese-poetry package."""

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from charrnn.cli import main
from charrnn.fetch import CORPORA, POETRY_TARBALL, FetchError, PoetryCorpus, fetch, poetry_text, remembering, to_blocks
from tests.helpers.corpora import real_corpus


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


def test_ci_anthologies_are_titled_by_their_tune_and_lose_the_editors_marks() -> None:
    package = tarball({
        "package/dist/wudaishici/huajianji/huajianji-0-preface.json": [
            {"rhythmic": "序", "paragraphs": ["武德军节度判官司欧陽炯[1]撰。"]}],
        "package/dist/wudaishici/huajianji/huajianji-x-juan.json": [{"rhythmic": "十", "paragraphs": ["x。"]}],
        "package/dist/wudaishici/huajianji/huajianji-2-juan.json": [
            {"title": "竹枝 其一", "rhythmic": "竹枝",
             "paragraphs": ["门前春水（竹枝）白苹花（女儿），岸上无人小艇斜[2]。", "□□□□，□□□。"]}],
        "package/dist/wudaishici/huajianji/huajianji-1-juan.json": [
            {"title": "菩萨蛮 其一", "rhythmic": "菩萨蛮", "paragraphs": ["小山重叠金明灭。"]}],
        "package/dist/wudaishici/nantang/poetrys.json": [
            {"title": "虞美人·春花秋月何时了", "rhythmic": "虞美人", "paragraphs": ["春花秋月何时了，往事知多少？"]}],
        "package/dist/nalanxingde/纳兰性德诗集.json": [
            {"title": " 长相思·山一程 ", "para": ["山一程，水一程，身向榆关那畔行，夜深千帐灯\xa0"]},
            {"title": "秣陵怀古", "para": ["山色江声共寂寥，十三陵树晚萧萧"]},  # a shi: no tune, left out
            {"title": "浣溪沙·郊游联句", "para": [" 出郭寻春春已阑(陈维崧)， 东风吹面不成寒②?"]},
        ],
    })
    converted = {name: poetry_text(package, CORPORA[name]) for name in ("huajian", "nantang", "nalan")}  # type: ignore[arg-type]
    assert converted["huajian"] == "菩萨蛮\n小山重叠金明灭。\n\n竹枝\n门前春水白苹花，岸上无人小艇斜。\n\n十\nx。\n"
    assert converted["nantang"] == "虞美人\n春花秋月何时了，往事知多少？\n"
    assert converted["nalan"] == (
        "长相思\n山一程，水一程，身向榆关那畔行，夜深千帐灯。\n\n浣溪沙\n出郭寻春春已阑，东风吹面不成寒？\n"
    )


def test_the_sung_yuanqu_is_made_offline_from_a_verified_copy_and_reports_what_went(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "yuanqu-sung.txt"
    assert main(["fetch", "yuanqu-sung", "--from", str(real_corpus("yuanqu.txt")), "--out", str(out)]) == 0
    assert hashlib.sha256(out.read_bytes()).hexdigest() == CORPORA["yuanqu-sung"].sha256
    printed = capsys.readouterr().out
    assert "verse lines 45,509 -> 36,494 (9,015 removed); characters 1,179,035 -> 907,316" in printed
    assert "171,441 characters of spoken dialogue" in printed


def test_a_derived_corpus_refuses_a_source_that_is_not_the_pinned_one(tmp_path: Path) -> None:
    source = tmp_path / "yuanqu.txt"
    source.write_text("曲\n(正末唱)春来也。\n", encoding="utf-8")
    with pytest.raises(FetchError, match="yuanqu has SHA-256"):
        fetch("yuanqu-sung", tmp_path / "out.txt", source=source)
    assert not (tmp_path / "out.txt").exists()
    assert main(["fetch", "huajian", "nalan", "--out", str(tmp_path / "both.txt")]) == 2


def test_several_corpora_download_the_shared_tarball_once() -> None:
    calls: list[str] = []

    def download(url: str, timeout: float) -> bytes:
        calls.append(url)
        return b"tarball"

    remembered = remembering(download)
    assert remembered(POETRY_TARBALL, 1.0) == remembered(POETRY_TARBALL, 1.0) == b"tarball"
    assert calls == [POETRY_TARBALL]
