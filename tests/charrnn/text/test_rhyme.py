"""Rhyme keys, the rhyme rate, and the rhyme rule in sampling."""

import re
from dataclasses import replace

import pytest
import torch

from charrnn.config import SampleConfig
from charrnn.generation.batching import generate_many
from charrnn.generation.rows import VocabTables
from charrnn.generation.sample import generate
from charrnn.generation.shape_rules import english_rhyme_mask
from charrnn.text.forms import CHINESE_LINE, REGISTER_TUNE
from charrnn.text.rhyme import (
    ending_words,
    english_key,
    free_rhymes,
    han_key,
    han_tone,
    last_unit,
    line_key,
    line_tone,
    rhyme_rate,
    rhyming_words,
    usable,
)
from charrnn.vocab import UNK, Vocab
from tests.helpers.models import constant_model


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


def test_tone_classes_of_characters_and_lines() -> None:
    assert [han_tone(c) for c in "天年雨月"] == ["平", "平", "仄", "仄"]  # tones 1, 2 level; 3, 4 oblique
    assert han_tone("的") is None and han_tone("A") is None and han_tone("，") is None  # neutral tone, not Han
    assert line_tone("春风又绿江南岸。") == "仄" and line_tone("明月何时照我还") == "平"
    assert line_tone("the night") is None


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
    off, on = rhyme_rate(plain), rhyme_rate([text.rsplit("\n", 1)[0] for text in rhymed])  # the cut last line
    assert off is not None and on is not None
    assert off < 0.4 and on == 1.0, (off, on)
    assert all(set(text) <= set(symbols[1:]) | set(prefix) for text in rhymed)
    # Alone or in a batch, the same seed gives the same rhymed text.
    alone = generate(model, vocab, prefix, SampleConfig(**{**config.__dict__, "seed": 3, "rhyme": True}))
    assert alone.text == rhymed[3]


def test_rhyme_holds_where_the_model_would_not_rhyme() -> None:
    """By construction: 雨, the only character on the song's rhyme, ends every line however unlikely."""
    symbols = (UNK, "\n", "天", "年", "雨")
    vocab = Vocab(symbols)
    model = constant_model(vocab, [1e-4, 0.2, 0.4, 0.4 - 2e-4, 1e-4])
    config = SampleConfig(top_p=0.95, repetition_penalty=1.0, rhyme=True, target_length=60, seed=1)
    out = generate(model, vocab, "你说雨\n", config)
    hits, total = free_rhymes(out.lyric)
    assert hits == total >= 3 and all(line.endswith("雨") for line in out.lyric.split("\n")), out.lyric


def test_a_ci_models_free_lines_never_rhyme_twice_on_one_character_while_the_rhyme_has_others() -> None:
    """重韵 in free lines: the base ended 36% of its free lines on a character an earlier line had ended on (处 six
    times in one lyric). Here 雨 is by far the likeliest rhyme, yet each line of a model that writes ci (it has a
    register line) ends on a rhyme not used yet; once all four are used, a line may repeat one (the rhyme has no
    other), rather than run past its ceiling. A model of modern lyrics repeats its finals as it likes."""
    rhymes = ("雨", "语", "去", "许")  # one rhyme group (一七)
    assert len({han_key(c) for c in rhymes}) == 1
    symbols = (UNK, "\n", "天", "年", *rhymes)
    vocab = Vocab(symbols)
    model = constant_model(vocab, [1e-4, 0.2, 0.3, 0.3, 0.2 - 4e-4, 1e-4, 1e-4, 1e-4])
    config = SampleConfig(top_p=0.95, repetition_penalty=1.0, rhyme=True, target_length=150)
    requests = [("你说雨\n", replace(config, seed=s)) for s in range(4)]
    modern = [out.lyric for out in generate_many(model, vocab, requests)]
    assert any(len({line[-1] for line in lyric.split("\n")}) < lyric.count("\n") + 1 for lyric in modern), modern
    for out in generate_many(model, vocab, requests, register=REGISTER_TUNE + "\n"):
        lines = out.lyric.split("\n")
        hits, total = free_rhymes(out.lyric)
        assert hits == total >= 6, out.lyric
        finals = [line[-1] for line in lines]
        assert len(set(finals[:4])) == 4 and set(finals) == set(rhymes), out.lyric  # fresh first, then repeats
        assert all(len(line) <= CHINESE_LINE[1] for line in lines), out.lyric  # a repeat ends it at the ceiling


def test_a_free_chinese_clause_is_never_one_character() -> None:
    """"，空。": a clause of one character is 0.01% of the Song ci's clauses and read as a fragment. A model that
    loves commas and full stops writes none, no empty clause (",，") and no line that starts with one."""
    symbols = (UNK, "\n", "，", "。", "…", ",", "天", "年", "雨", "语", "去", "许")
    vocab = Vocab(symbols)
    model = constant_model(vocab, [1e-4, 0.05, 0.25, 0.15, 0.05, 0.05, 0.15, 0.15, 0.15 - 1e-4, 0.0, 0.0, 0.0])
    config = SampleConfig(top_p=1.0, repetition_penalty=1.0, rhyme=True, target_length=150)
    for out in generate_many(model, vocab, [("你说雨", replace(config, seed=s)) for s in range(4)]):
        lines = out.lyric.split("\n")
        clauses = [c for line in lines for c in re.split("(?<=[，。…,])", line) if c]
        assert len(lines) >= 4 and all(len(c.rstrip("，。…,")) >= 2 for c in clauses), out.lyric


def test_english_lines_end_on_a_rhyming_word() -> None:
    """A model that spells at random: lines end only after a word on the song's rhyme (night: AY T)."""
    vocab = Vocab((UNK, "\n", " ", *"abcdefghijklmnopqrstuvwxyz"))
    model = constant_model(vocab, [1e-3] + [(1 - 1e-3) / (len(vocab) - 1)] * (len(vocab) - 1))
    config = SampleConfig(top_p=1.0, repetition_penalty=1.0, rhyme=True, target_length=200)
    outs = generate_many(model, vocab, [("all through the night\n", replace(config, seed=s)) for s in range(4)])
    for out in outs:
        hits, total = free_rhymes(out.lyric)
        assert hits == total >= 3, out.lyric
        assert all(english_key(last_unit(line)) == "en:AY T" for line in out.lyric.split("\n")), out.lyric
        finals = [last_unit(line).lower() for line in out.lyric.split("\n")]
        assert len(set(finals)) == len(finals), out.lyric  # never the same word twice ("thou ... thou")


def test_the_english_rule_spells_towards_rhyming_words() -> None:
    vocab = Vocab((UNK, "\n", " ", ",", *"abcdefghijklmnopqrstuvwxyz", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    tables = VocabTables(vocab, torch.device("cpu")).shape

    def allowed(line: str) -> set[str]:
        mask = english_rhyme_mask(line, "en:AY T", tables)
        return set() if mask is None else {vocab.symbols[i] for i in mask.nonzero().flatten().tolist()}

    assert {"l", "L", "n", "b"} <= allowed("we walk in the ") and "x" not in allowed("we walk in the ")
    assert allowed("we walk in the ligh") == {"t"} and "\n" in allowed("we walk in the light")
    assert allowed("we walk in the,") == {" "}  # a word after punctuation starts after a space
    assert allowed("we walk in the xyzzy") == {" "}  # a word that starts no rhyme is ended for one that does
    # Each mask is built once per (key, word so far): the words that lead to no rhyme share one, so the cache is
    # bounded by the rhyme words' stems whatever is written; asked again, the same answers come back.
    for word in ("xyzzy", "qqq", "zebra", "kxq"):
        assert allowed(f"we walk in the {word}") == {" "}
    assert sum(1 for key in tables.english_allowed if key[1] == "-") == 1
    assert allowed("we walk in the ligh") == {"t"} and "\n" in allowed("we walk in the light")
    # A word an earlier line ended on is left out while the rhyme has others: "light" again cannot end the line.
    def allowed_after(line: str, used: set[str]) -> set[str]:
        mask = english_rhyme_mask(line, "en:AY T", tables, frozenset(used))
        return set() if mask is None else {vocab.symbols[i] for i in mask.nonzero().flatten().tolist()}

    assert allowed_after("we walk in the light", {"light", "bright"}) == {" "}  # another word, not "light" again
    assert "n" in allowed_after("we walk in the ", {"light"})  # "night" is still there
    assert "\n" in allowed_after("we walk in the light", {"light"} | ending_words("en:AY T"))  # none left: again


def test_free_rhymes_count_every_line_after_the_first() -> None:
    assert free_rhymes("天青色等烟雨\n而我在等你\n月色被打捞起\n天") == (2, 3)
    assert free_rhymes("123\n天青色等烟雨\n你") == (1, 1)  # the first line with a rhyme sets it
    assert free_rhymes("") == (0, 0)
    assert usable("一七") and usable("en:AY T") and not usable("en~ight") and not usable(None)
