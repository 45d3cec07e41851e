import pytest

from charrnn.vocab import UNK, UNK_ID, Vocab


def test_round_trip_keeps_newlines_and_unicode() -> None:
    text = "分开\nI sing\n分开 again\n"
    vocab = Vocab.build(text)
    assert vocab.decode(vocab.encode(text)) == text
    assert "\n" in vocab


def test_unk_is_index_zero_and_unknown_chars_map_to_it() -> None:
    vocab = Vocab.build("abc")
    assert vocab.symbols[0] == UNK
    assert vocab.encode("aZb") == [vocab.encode("a")[0], UNK_ID, vocab.encode("b")[0]]
    assert vocab.unknown_chars("aZbZ€") == ["Z", "€"]
    assert "Z" not in vocab and UNK not in vocab


def test_build_is_deterministic_most_frequent_first() -> None:
    vocab = Vocab.build("ccbbbax")
    assert vocab.symbols == (UNK, "b", "c", "a", "x")
    assert Vocab.build("ccbbbax") == vocab


def test_rare_characters_stay_unknown() -> None:
    vocab = Vocab.build("aaab", min_count=2)
    assert "a" in vocab and "b" not in vocab
    assert vocab.encode("b") == [UNK_ID]


def test_extend_is_append_only() -> None:
    old = Vocab.build("hello world")
    new = old.extend("héllo wörld 新")
    assert new.symbols[: len(old)] == old.symbols
    assert set(new.symbols[len(old) :]) == {"é", "ö", "新"}
    assert new.encode("hello") == old.encode("hello")


def test_json_round_trip_and_validation() -> None:
    vocab = Vocab.build("abc\n")
    assert Vocab.from_json(vocab.to_json()) == vocab
    with pytest.raises(ValueError):
        Vocab.from_json(["a", "b"])  # no <unk> first
    with pytest.raises(ValueError):
        Vocab.from_json([UNK, "a", "a"])
    with pytest.raises(ValueError):
        Vocab.from_json([UNK, "ab"])
