"""The register line: what a model that learnt the Song ci reads before a Chinese lyric without a tune."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import torch

from charrnn.checkpoint import BASE, load_checkpoint
from charrnn.config import SampleConfig
from charrnn.generation.batching import generate_many
from charrnn.generation.rows import VocabTables, new_row
from charrnn.text.forms import REGISTER_TUNE
from charrnn.text.lyrics import character_reuse
from charrnn.text.words import is_han

EVERYDAY = ("我想你", "窗外的麻雀", "秋风", "离别", "故乡的小河", "春天来了", "一个人走在路上", "我们的爱",
            "下雨天", "毕业", "月光", "回家")
# Words of the Yuan qu's spoken register, never or almost never in the Song ci (each at least 40 times likelier
# in the sung Yuan qu, per character, or a refrain of it: 也么哥).
YUAN_QU = ("也么哥", "俺", "咱", "孩儿", "哥哥", "爹", "甚么", "兀的", "那厮", "您", "哎", "呀", "嫂", "姐", "唬")


def test_the_base_reads_a_tune_name_before_free_chinese_lines_and_nothing_before_english() -> None:
    base = load_checkpoint(BASE)
    assert base.register == REGISTER_TUNE + "\n"  # the base learnt the Song ci, each ci headed by its tune's name
    tables = VocabTables(base.vocab, torch.device("cpu"), base.words, base.register)
    read = [base.vocab.decode(new_row(0, prefix, config, base.vocab, tables).context)
            for prefix, config in [("我想你", SampleConfig(target_length=100)),
                                   ("我想你", SampleConfig(pattern="7，7。")),
                                   ("我想你", SampleConfig(form="菩萨蛮")),
                                   ("我想你", SampleConfig()),  # no shape at all: still the register
                                   ("念奴娇\n大江东去", SampleConfig(target_length=100)),  # its own tune's name
                                   ("我想你", SampleConfig(line_mode=True)),  # a name, a title: a line of its own
                                   ("我想你", SampleConfig(force="天青色")),  # teacher-forced: read as it is
                                   ("The night", SampleConfig(target_length=100))]]
    assert read == ["\n浣溪沙\n我想你", "\n浣溪沙\n我想你", "\n菩萨蛮\n我想你", "\n浣溪沙\n我想你",
                    "\n念奴娇\n大江东去", "\n我想你", "\n我想你", "\nThe night"]
    # A model of other lyrics has no tune names to read; nor has a mixture (it records no corpora of its own:
    # tests/charrnn/test_finetune.py shows a fine-tuned ci model keeping its register).
    for meta in ({}, {"corpora": {"jaychou": "0" * 64}}):
        assert replace(base, meta=meta).register == ""


def test_everyday_openings_stay_in_the_ci_register() -> None:
    """Everyday openings (我想你, 我们的爱) fell into the Yuan qu's spoken register: 也么哥, 儿女婿, 孩儿. Measured
    on these 48 free lyrics of the base: 16 held one of its words without the register line, 0 with it. A
    different CPU's kernels may part a sample at a float near-tie, hence the margins."""
    base = load_checkpoint(BASE)
    requests = [(prefix, SampleConfig(target_length=100, max_length=200, no_repeat_ngram=8, rhyme=True, seed=seed))
                for prefix in EVERYDAY for seed in range(4)]
    spoken = {}
    for register in ("", base.register):
        lyrics = [g.lyric for g in generate_many(base.model, base.vocab, requests, words=base.words, register=register)]
        spoken[register] = sum(any(word in lyric for word in YUAN_QU) for lyric in lyrics)
    assert spoken[""] >= 8 and spoken[base.register] <= 2, spoken


def test_a_ci_does_not_come_back_to_its_words() -> None:
    """Two-character words written again: 6.3% of the base's in these 48 free lyrics of 160 characters, 1.4% with
    ``repeated_word_penalty`` 4 (the bot's, for a model that writes ci; the Song ci's long held-out ci: 0.3%)."""
    base = load_checkpoint(BASE)
    rates = {}
    for penalty in (1.0, 4.0):
        requests = [(prefix, SampleConfig(target_length=160, max_length=320, no_repeat_ngram=8, rhyme=True, seed=seed,
                                          repeated_word_penalty=penalty)) for prefix in EVERYDAY for seed in range(4)]
        generated = generate_many(base.model, base.vocab, requests, words=base.words, register=base.register)
        rates[penalty] = repeated_words([g.continuation for g in generated])
    assert rates[4.0] < 0.5 * rates[1.0] and rates[4.0] < 0.03, rates


def repeated_words(texts: list[str]) -> float:
    """The share of two-character Chinese words that repeat one written earlier in the same text."""
    total = repeats = 0
    for text in texts:
        words = Counter(w for w in (text[i : i + 2] for i in range(len(text) - 1)) if all(map(is_han, w)))
        total += sum(words.values())
        repeats += sum(count - 1 for count in words.values())
    return repeats / max(1, total)


def test_a_ci_does_not_come_back_to_its_characters() -> None:
    """A character's third use or later (a reduplication's second character aside): 11.0% of the base's characters in
    these 24 free lyrics of 160 characters (its words already kept from coming back), 0.7% with
    ``repeated_char_penalty`` 3 (the bot's for free lines, which also ranks each clause among four: 0.9%; the Song
    ci's held-out ci: 0.6%)."""
    base = load_checkpoint(BASE)
    rates = {}
    for penalty in (1.0, 3.0):
        requests = [(prefix, SampleConfig(target_length=160, max_length=320, no_repeat_ngram=8, rhyme=True, seed=seed,
                                          repeated_word_penalty=4.0, repeated_char_penalty=penalty))
                    for prefix in EVERYDAY for seed in range(2)]
        generated = generate_many(base.model, base.vocab, requests, words=base.words, register=base.register)
        rates[penalty] = sum(character_reuse([g.continuation for g in generated])[1:])  # third use or later
    assert rates[3.0] < 0.3 * rates[1.0] and rates[3.0] < 0.02, rates

