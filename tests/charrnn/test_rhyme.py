"""Rhyme keys, the rhyme rate, and the rhyme rule in sampling."""

import pytest

from charrnn.batching import generate_many
from charrnn.rhyme import english_key, han_key, last_unit, line_key, rhyme_rate, rhyming_words
from charrnn.sample import SampleConfig, generate
from charrnn.vocab import UNK, Vocab

from .conftest import constant_model


@pytest.mark.parametrize(
    ("a", "b"),
    [("天青色等烟雨", "而我在等你"), ("隔江千万里 ", "炊烟袅袅升起。"), ("明月几时有", "把酒问青天"[:0] + "白云悠悠"),
     ("the night is long", "I sing along"), ("turn off the light,", "all through the night")],
)
def test_rhyming_lines(a: str, b: str) -> None:
    assert line_key(a) is not None and line_key(a) == line_key(b)


@pytest.mark.parametrize(("a", "b"), [("天青色等烟雨", "月色被打捞起晕开了结局"[:-1] + "天"), ("the night", "the day")])
def test_lines_that_do_not_rhyme(a: str, b: str) -> None:
    assert line_key(a) != line_key(b)


def test_keys_of_units() -> None:
    assert han_key("雨") == han_key("你") == "一七" and han_key("天") == han_key("晚") == "言前"
    assert han_key("A") is None and han_key("，") is None
    assert english_key("night") == "en:AY T" and english_key("Light") == english_key("night")
    assert english_key("zzqxt") is None and english_key("flobbight") == "en~ight"  # spelling fallback
    assert last_unit("晕开了结局。  ") == "局" and last_unit("where is the light?!") == "light"
    assert line_key("") is None and line_key("123 !") is None
    assert "light" in rhyming_words("en:AY T") and "day" not in rhyming_words("en:AY T")


def test_rhyme_rate_counts_adjacent_line_pairs() -> None:
    assert rhyme_rate(["天青色等烟雨\n而我在等你\n月色被打捞起\n晕开了结局\n"]) == 1.0
    assert rhyme_rate(["天青色等烟雨\n\n隔江千万里\n天\n"]) == pytest.approx(1 / 2)  # blank lines are skipped
    assert rhyme_rate(["一行"]) is None


def test_the_rhyme_rule_ends_lines_on_the_songs_rhyme_without_inventing_characters() -> None:
    # A model that likes every character equally, line breaks included: lines end anywhere.
    symbols = (UNK, "\n", "天", "年", "花", "家", "风", "中", "月", "夜", "雨", "你")
    vocab = Vocab(symbols)
    model = constant_model(vocab, [0.01] + [0.99 / (len(symbols) - 1)] * (len(symbols) - 1))
    config = SampleConfig(max_length=400, top_p=1.0, repetition_penalty=1.0, stop_at_blank_line=False)
    prefix = "天青色等烟雨\n"  # the first line sets the rhyme: 雨, class 一七 (雨, 你)
    plain = [g.text for g in generate_many(model, vocab, [(prefix, config.__class__(**{**config.__dict__,
                                                                                         "seed": s}))
                                                           for s in range(8)])]
    rhymed = [g.text for g in generate_many(model, vocab, [(prefix, SampleConfig(**{**config.__dict__, "seed": s,
                                                                                      "rhyme": True}))
                                                            for s in range(8)])]
    off, on = rhyme_rate(plain), rhyme_rate(rhymed)
    assert off is not None and on is not None
    assert off < 0.4 and on > 0.8, (off, on)
    assert all(set(text) <= set(symbols[1:]) | set(prefix) for text in rhymed)
    # Alone or in a batch, the same seed gives the same rhymed text.
    alone = generate(model, vocab, prefix, SampleConfig(**{**config.__dict__, "seed": 3, "rhyme": True}))
    assert alone.text == rhymed[3]


def test_rhyme_does_not_force_what_the_model_rules_out() -> None:
    """A rhyming character the model gives almost no chance stays out, however strong the boost."""
    symbols = (UNK, "\n", "天", "年", "雨")
    vocab = Vocab(symbols)
    model = constant_model(vocab, [1e-4, 0.2, 0.4, 0.4 - 2e-4, 1e-4])  # 雨 (the rhyme) is ruled out
    config = SampleConfig(max_length=200, top_p=0.95, repetition_penalty=1.0, rhyme=True, rhyme_boost=8.0, seed=1,
                          stop_at_blank_line=False)
    assert "雨" not in generate(model, vocab, "你说雨\n", config).continuation
