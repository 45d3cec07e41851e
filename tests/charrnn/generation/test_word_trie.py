"""English that is words: the trie, the rule in sampling (alone, batched, with rhyme), where the words come
from (training, fine-tuning, the ``words`` command, the shipped base), and the length limit's clean cut."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from charrnn.checkpoint import BASE, CheckpointError, load_checkpoint, resave, save_checkpoint
from charrnn.cli import main
from charrnn.config import SampleConfig
from charrnn.data import load_corpus
from charrnn.finetune import finetune
from charrnn.generation.batching import generate_many
from charrnn.generation.processors import real_words
from charrnn.generation.rows import Batch, VocabTables, new_row
from charrnn.generation.sample import generate
from charrnn.generation.word_trie import ROOT, WordTables
from charrnn.model import CharRNN, ModelConfig
from charrnn.pipeline import InitFrom, train_model
from charrnn.text.rhyme import line_key, rhyming_words
from charrnn.text.words import corpus_words, whole_lines_end
from charrnn.train_config import TrainConfig
from charrnn.vocab import UNK, Vocab
from tests.helpers.corpora import real_corpus
from tests.helpers.models import LYRICS, constant_model, tiny_untrained

ENGLISH = "O'er the hills the night is long,\n'Tis the road that's gone, I sing along.\nNe'er THE NIGHT!\n" * 6
WORDS = corpus_words(ENGLISH)
WORD = re.compile(r"[A-Za-z']*[A-Za-z][A-Za-z']*")  # what charrnn.text.words calls a word
ENGLISH_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'"
SONG = SampleConfig(max_length=120, top_p=1.0, repetition_penalty=1.0, stop_at_blank_line=False)


def written(texts: list[str]) -> list[str]:
    """Every English word of the texts, lower-cased, the last one of each included."""
    return [word.lower() for text in texts for word in WORD.findall(text)]


def uniform(symbols: str) -> tuple[CharRNN, Vocab]:
    """A model that finds every character equally likely: left alone, it spells nothing."""
    vocab = Vocab((UNK, *symbols))
    return constant_model(vocab, [1e-6] + [1.0] * len(symbols)), vocab


def test_the_words_of_a_text_keep_their_apostrophes_and_lose_their_case() -> None:
    assert {"o'er", "the", "hills", "night", "is", "long", "'tis", "road", "that's", "gone", "i", "sing",
                     "along", "ne'er"} == WORDS
    assert corpus_words("12 '' 天青色 x2") == {"x"}


def test_the_trie_allows_what_continues_a_word_and_ends_only_whole_ones() -> None:
    vocab = Vocab((UNK, "\n", " ", ",", "我", "'", *"theaovnrTHE"))
    tables = WordTables(frozenset({"the", "then", "to", "o'er", "zebra"}), vocab, torch.device("cpu"))
    assert "zebra" not in tables.words  # the vocabulary cannot spell it: the trie must not lead there

    def allowed_at(node: int) -> set[str]:
        mask = tables.masks(torch.tensor([node]))[0]
        return {symbol for symbol, ok in zip(vocab.symbols, mask.tolist(), strict=True) if ok and symbol != UNK}

    def allowed(prefix: str) -> set[str]:
        return allowed_at(tables.start(prefix).node)

    anything_else = {"\n", " ", ",", "我"}
    assert tables.start("").node == tables.start("我 ").node == tables.start("xyzzy.\n").node == ROOT
    assert tables.start("He said '").node == ROOT  # an opening quote, not the start of 'tis
    assert allowed("") == {"t", "o", "T"} | anything_else  # the letters that start a word, in either case
    assert allowed("th") == {"e", "E"}  # "th" is no word: it cannot end here
    assert allowed("The") == {"n"} | anything_else  # "the" may end, or go on to "then"
    # The person's own whole word is marked: the rule in sampling ends it as typed (below).
    assert tables.start("The").typed_whole and tables.start("o'er the").typed_whole
    assert not any(tables.start(p).typed_whole for p in ("", "th", "the ", "Xyz", "我"))
    assert allowed_at(tables.find("o")) == {"'"} and allowed("o'") == {"e", "E"}  # "o" leads on only to "o'er"
    # A word of English this corpus lacks is the person's whole word too ("hi" went on as "hire"): it ends as typed.
    hello = tables.start("hello")
    assert tables.start("o").typed_whole and hello.typed_whole and hello.node == tables.free
    assert not tables.start("o'").typed_whole and not tables.start("th").typed_whole  # being typed; an abbreviation
    assert tables.start("Xyz").node == tables.free and allowed("Xyz") == set(vocab.symbols[1:])  # the person's own


def test_a_word_the_rules_before_left_nowhere_to_go_still_ends_as_a_word() -> None:
    vocab = Vocab((UNK, "\n", " ", *"theon"))
    tables = VocabTables(vocab, torch.device("cpu"), frozenset({"the", "then", "on"}))
    prefixes = ("th", "the", "the", "the", "o", "o")  # "o": no word of this corpus, but one of English
    rows = [new_row(n, prefix, SONG, vocab, tables) for n, prefix in enumerate(prefixes)]
    batch = Batch.of(rows, tables)
    logits = torch.zeros(len(rows), len(vocab))
    logits[:, 0] = -math.inf  # <unk>: never written
    logits[0, vocab.encode("e")] = -math.inf  # the n-gram ban took the one letter that goes on with "th"
    logits[2, vocab.encode("\n ")] = -math.inf  # the rules before let the person's "the" only go on
    logits[3, vocab.encode("\n n")] = -math.inf  # ...or nowhere at all
    logits[5, vocab.encode("\n ")] = -math.inf
    out = real_words(logits, batch)
    finite = [{vocab.symbols[i] for i in torch.isfinite(row).nonzero().flatten().tolist()} for row in out]
    # The person's whole word ends as typed where it may, and goes on where it must; where the rules before left
    # nothing, the trie's own way on, as for any word. The person's "o" ends too, or goes on to "on", a corpus word.
    assert finite == [{"e"}, {"\n", " "}, {"n"}, {"\n", " ", "n"}, {"\n", " "}, {"n"}]


def test_a_word_keeps_its_case_even_where_the_rules_before_left_it_nowhere() -> None:
    """The base wrote "we'll havE heart": a line's ceiling had taken every letter, and the word was finished among
    its letters in either case. No capital comes right after a small letter; after a capital, either case."""
    vocab = Vocab((UNK, "\n", " ", *"haveingHAVEING"))
    tables = VocabTables(vocab, torch.device("cpu"), frozenset({"have", "having"}))
    prefixes = ("we hav", "WE HAV", "we hav", "we H", "WE HAVI")
    rows = [new_row(n, prefix, SONG, vocab, tables) for n, prefix in enumerate(prefixes)]
    logits = torch.zeros(len(rows), len(vocab))
    logits[:, 0] = -math.inf
    logits[:2, vocab.encode("haveingHAVEING")] = -math.inf  # the shape allowed only a space: no letter at all
    out = real_words(logits, Batch.of(rows, tables))
    finite = [{vocab.symbols[i] for i in torch.isfinite(row).nonzero().flatten().tolist()} for row in out]
    # No word of capitals of its own ("WARWICK:", the corpus's speaker names): after a word's first capital, small
    # letters; where the person began a word in capitals, it goes on in them.
    assert finite == [{"e", "i"}, {"e", "i", "E", "I"}, {"e", "i"}, {"a"}, {"n", "N"}]


def test_every_word_is_a_corpus_word_at_any_temperature_alone_and_in_a_batch() -> None:
    model, vocab = uniform("\n ,.'我你abcdefghilnorstuvwEHINOT")
    configs = [replace(SONG, temperature=t, top_p=p, seed=s) for t in (0.5, 1.0, 1.5, 3.0) for p in (0.9, 1.0)
               for s in range(6)]
    prefixes = ["", "The ", "我", "the nig", "O'", "Xyzzy "]
    requests = [(prefixes[i % len(prefixes)], c) for i, c in enumerate(configs)]
    free = generate_many(model, vocab, requests)
    assert sum(w not in WORDS for w in written([g.continuation for g in free])) > 100  # left alone: no words
    constrained = generate_many(model, vocab, requests, words=WORDS)
    words = written([g.text.removeprefix("Xyzzy") for g in constrained])
    assert len(words) > 300 and set(words) <= WORDS
    assert all(g.text.lower().startswith("the night") for g in constrained if g.prefix == "the nig")  # completed
    for index in (0, 13, 47):
        prefix, config = requests[index]
        assert generate(model, vocab, prefix, config, words=WORDS).text == constrained[index].text


def test_a_trained_network_alone_and_in_a_crowd_writes_the_same_words() -> None:
    tiny = tiny_untrained()
    words = corpus_words(LYRICS)
    config = replace(SONG, temperature=1.5, top_p=0.95, seed=5)
    crowd = [("我", replace(config, seed=s)) for s in range(7)] + [("the ", config), ("I s", replace(config, seed=9))]
    together = generate_many(tiny.model, tiny.vocab, crowd, words=words)
    for (prefix, cfg), batched in zip(crowd[-2:], together[-2:], strict=True):
        assert generate(tiny.model, tiny.vocab, prefix, cfg, words=words).text == batched.text
    assert set(written([g.text for g in together])) <= words


def test_rhyme_and_words_together_write_only_corpus_words() -> None:
    model, vocab = uniform("\n ,'abcdefghilnorstuvwyIT")
    tables = VocabTables(vocab, torch.device("cpu"), WORDS)
    assert tables.words is not None and tables.words.among(rhyming_words(str(line_key("so long")))) == {"long",
                                                                                                         "along"}
    rhymed = generate_many(model, vocab, [("the night is long\n", replace(SONG, rhyme=True, seed=s))
                                          for s in range(16)], words=WORDS)
    words = written([g.continuation for g in rhymed])
    assert len(words) > 100 and set(words) <= WORDS


def test_a_checkpoint_without_words_is_not_constrained(tmp_path: Path) -> None:
    tiny = tiny_untrained()
    old = load_checkpoint(save_checkpoint(tmp_path / "old", tiny.model, tiny.vocab))
    assert "words" not in old.meta and old.words is None
    tables = VocabTables(old.vocab, torch.device("cpu"), old.words)
    batch = Batch.of([new_row(0, "the nig", SONG, old.vocab, tables)], tables)
    logits = torch.randn(1, len(old.vocab))
    assert torch.equal(real_words(logits.clone(), batch), logits)
    requests = [("the ", replace(SONG, temperature=2.0, seed=s)) for s in range(4)]
    texts = [g.text for g in generate_many(old.model, old.vocab, requests, words=old.words)]
    assert texts == [g.text for g in generate_many(tiny.model, tiny.vocab, requests)]
    assert not set(written(texts)) <= corpus_words(LYRICS)  # it spells freely


def test_words_are_stored_checked_and_kept_by_export(tmp_path: Path) -> None:
    tiny = tiny_untrained()
    saved = load_checkpoint(save_checkpoint(tmp_path / "c", tiny.model, tiny.vocab, words=WORDS))
    assert saved.words == WORDS
    assert load_checkpoint(resave(saved, tmp_path / "copy", half=True)).words == WORDS
    meta = json.loads((tmp_path / "c" / "meta.json").read_text(encoding="utf-8"))
    meta["words"] = ["the", "Two Words"]
    (tmp_path / "c" / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(CheckpointError, match="words"):
        load_checkpoint(tmp_path / "c")


def test_training_records_the_words_and_fine_tuning_merges_them(tmp_path: Path) -> None:
    config = TrainConfig(epochs=2, batch_size=4, seq_len=16, warmup_steps=1, patience=0, unk_min_count=1,
                         device="cpu", sample_every=0)
    tiny = ModelConfig(vocab_size=1, layers=1, embed=8, hidden=8, dropout=0.0)
    train_model(ENGLISH, tiny, config, out_dir=tmp_path / "a", checkpoint_every_s=0)
    trained = load_checkpoint(tmp_path / "a" / "best")
    assert trained.words == WORDS
    new = "Dreams o' the moon\n" * 8
    result = finetune(trained, new, ENGLISH, config, out_dir=tmp_path / "tuned")
    assert result.words == load_checkpoint(tmp_path / "tuned").words == WORDS | {"dreams", "o'", "moon"}
    again = load_checkpoint(tmp_path / "a" / "best")  # fine-tuning grew the first one in place
    old = load_checkpoint(save_checkpoint(tmp_path / "old", again.single, again.vocab))  # recorded no words
    train_model(new, None, config, out_dir=tmp_path / "b", checkpoint_every_s=0, init=InitFrom(old, "old"))
    assert load_checkpoint(tmp_path / "b" / "best").words is None  # its English is unknown: not narrowed to new's


def test_the_words_command_adds_words_and_leaves_the_weights(tmp_path: Path) -> None:
    tiny = tiny_untrained()
    directory = save_checkpoint(tmp_path / "c", tiny.model, tiny.vocab)
    before = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    weights = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.glob("*.safetensors")}
    (tmp_path / "a.txt").write_text(ENGLISH, encoding="utf-8")
    (tmp_path / "b.txt").write_text("天青色 moon\n", encoding="utf-8")
    for _ in range(2):  # twice: the same words
        assert main(["words", str(directory), str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]) == 0
    after = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    assert after.pop("words") == sorted(WORDS | {"moon"}) and after == before
    assert weights == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.glob("*.safetensors")}
    assert load_checkpoint(directory).words == WORDS | {"moon"}


def test_the_shipped_base_carries_its_corpora_words() -> None:
    """What the Makefile's ``charrnn words`` line recorded: the words of the four corpora, no other."""
    names = ("shijing.txt", "songci.txt", "tinyshakespeare.txt", "yuanqu.txt")
    expected = frozenset().union(*(corpus_words(load_corpus(real_corpus(name))) for name in names))
    assert load_checkpoint(BASE).words == expected


def test_the_shipped_base_writes_only_its_corpus_words() -> None:
    base = load_checkpoint(BASE)
    assert base.words is not None and {"o'er", "'tis", "ne'er"} <= base.words
    requests = [("The ", replace(SampleConfig(max_length=100), temperature=t, seed=s)) for t in (0.8, 1.5)
                for s in range(24)]
    texts = [g.text for g in generate_many(base.model, base.vocab, requests, words=base.words)]
    words = written(texts)
    assert len(words) > 400 and set(words) <= base.words, sorted(set(words) - base.words)  # enough words to tell


@pytest.mark.parametrize(
    ("text", "kept"),
    [("line one\nline tw", "line one"), ("a\n\n", "a\n"), ("the king wa", "the king"), ("the king, ", "the king, "),
     ("天青色等烟雨", "天青色等烟雨"), ("我abc", "我"), ("abc", ""), ("", "")],
)
def test_a_sample_cut_by_the_length_limit_ends_at_a_line_else_a_word(text: str, kept: str) -> None:
    assert text[: whole_lines_end(text)] == kept


@pytest.mark.parametrize("symbols", ["\n abcdefghilnorst", " ,abcdefghilnorst"])
def test_the_length_limit_never_stops_mid_word_or_mid_line(symbols: str) -> None:
    model, vocab = uniform(symbols)
    tiny = tiny_untrained()
    for seed in range(12):
        stream = generate(model, vocab, "the", replace(SONG, max_length=400, seed=seed)).continuation
        for limit in (5, 17, 40):
            cut = generate(model, vocab, "the", replace(SONG, max_length=limit, seed=seed))
            raw = stream[:limit]  # the same seed draws the same characters: what it wrote before the cut
            line_end = raw.rfind("\n")
            assert cut.finish_reason == "length" and raw.startswith(cut.continuation)
            if line_end >= 0:
                assert cut.continuation == raw[:line_end]
            else:  # it dropped a word still being written (and the spaces before it), no more
                assert re.fullmatch(r"\s*[A-Za-z']*", raw[len(cut.continuation) :])
                end = len(cut.continuation)  # where a word ended (0: it dropped the word the prefix started)
                assert not end or cut.continuation[-1] not in ENGLISH_LETTERS or stream[end] not in ENGLISH_LETTERS
            assert cut.logprob == pytest.approx(len(cut.continuation) * math.log(1 / len(symbols)), abs=1e-3)
    # A network's score of what it kept: the same as teacher-forcing the kept text.
    cut = generate(tiny.model, tiny.vocab, "the ", replace(SONG, max_length=30, temperature=2.0, seed=3))
    forced = generate(tiny.model, tiny.vocab, "the ", replace(SONG, force=cut.continuation))
    assert forced.continuation == cut.continuation and forced.logprob == pytest.approx(cut.logprob, rel=1e-5)


def test_a_cut_keeps_the_whole_words_of_a_first_unfinished_line() -> None:
    """The break that ends the prefix's own line is no whole line of the sample: cutting back to it left the
    bot with nothing to show ("I could not write anything worth showing") for an English opening."""
    from charrnn.text.words import whole_lines_end

    for text, kept in [("\nfoo bar ba", "\nfoo bar"), ("ab\ncd ef", "ab"), ("foo bar", "foo"), ("x\n", "x")]:
        assert text[: whole_lines_end(text)] == kept


def test_the_base_leaves_the_persons_last_word_as_typed() -> None:
    """"My heart" is the person's whole word, not the start of "hearts" (the base wrote "My hearts of the solemn"
    and "Rain on the windows" before the rule)."""
    base = load_checkpoint(BASE)
    prefixes = ("My heart", "Rain on the window", "I love")
    requests = [(prefix, SampleConfig(max_length=12, seed=seed)) for prefix in prefixes for seed in range(12)]
    generated = generate_many(base.model, base.vocab, requests, words=base.words)
    assert [g.continuation[:1] for g in generated if g.continuation[:1] in ENGLISH_LETTERS] == []
