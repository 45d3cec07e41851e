import math
from dataclasses import replace

import pytest
import torch

from charrnn.config import MAX_LENGTH, SampleConfig
from charrnn.generation.batching import BatchGenerator, generate_many
from charrnn.generation.processors import process, repeated_words
from charrnn.generation.rows import Batch, VocabTables, new_row
from charrnn.generation.sample import generate, serving_dtype
from charrnn.vocab import UNK, Vocab
from tests.helpers.models import (
    BFLOAT16_TIE_TOLERANCE,
    LYRICS,
    Tiny,
    assert_same_greedy_text,
    constant_model,
    tiny_untrained,
)

GREEDY = SampleConfig(greedy=True, repetition_penalty=1.0, max_length=40, stop_at_blank_line=False)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"temperature": 0},
        {"temperature": -1},
        {"temperature": math.nan},
        {"temperature": math.inf},
        {"max_length": 0},
        {"max_length": 5_000_000},
        {"top_p": 0},
        {"top_k": -3},
        {"repetition_penalty": 0.5},
        {"repeated_word_penalty": 0.9},
        {"repeated_word_penalty": math.nan},
        {"repeated_char_penalty": 0.5},
        {"repeated_char_penalty": math.inf},
    ],
)
def test_bad_sampling_values_are_clear_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError) as info:
        SampleConfig(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_prefix_is_part_of_the_answer(tiny_trained: Tiny) -> None:
    out = generate(tiny_trained.model, tiny_trained.vocab, "天青色", GREEDY)
    assert out.text.startswith("天青色") and out.text == out.prefix + out.continuation
    assert len(out.continuation) <= 40 and out.finish_reason == "length"
    assert out.text.split("\n")[-1] in LYRICS.split("\n")  # the limit ends it at a line's end, never within


def test_trained_model_continues_the_pattern_greedily(tiny_trained: Tiny) -> None:
    out = generate(tiny_trained.model, tiny_trained.vocab, "天青色等", GREEDY)
    assert out.continuation.startswith("烟雨")


def test_fixed_seed_repeats_and_different_seeds_differ(tiny_trained: Tiny) -> None:
    cfg = SampleConfig(temperature=1.5, max_length=60, seed=7, stop_at_blank_line=False)
    a = generate(tiny_trained.model, tiny_trained.vocab, "我", cfg)
    b = generate(tiny_trained.model, tiny_trained.vocab, "我", cfg)
    outputs = {
        generate(
            tiny_trained.model,
            tiny_trained.vocab,
            "我",
            SampleConfig(temperature=1.5, max_length=60, seed=s, stop_at_blank_line=False),
        ).text
        for s in range(5)
    }
    assert a == b
    assert len(outputs) > 1


def test_low_temperature_and_top_k_one_equal_greedy(tiny_trained: Tiny) -> None:
    greedy = generate(tiny_trained.model, tiny_trained.vocab, "而我", GREEDY)
    cold = generate(
        tiny_trained.model,
        tiny_trained.vocab,
        "而我",
        SampleConfig(
            temperature=1e-4, top_p=1.0, repetition_penalty=1.0, max_length=40, seed=1, stop_at_blank_line=False
        ),
    )
    top1 = generate(
        tiny_trained.model,
        tiny_trained.vocab,
        "而我",
        SampleConfig(
            temperature=2.0, top_k=1, top_p=1.0, repetition_penalty=1.0, max_length=40, seed=2, stop_at_blank_line=False
        ),
    )
    assert cold.continuation == greedy.continuation == top1.continuation


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_batched_greedy_equals_one_by_one(cell: str) -> None:
    tiny = tiny_untrained(cell)
    prefixes = ["", "我", "天青色等烟雨", "the night", "隔江千万里\n炊烟"]
    configs = [
        SampleConfig(greedy=True, repetition_penalty=1.0, max_length=20 + 7 * i, stop_at_blank_line=False)
        for i in range(5)
    ]
    alone = [generate(tiny.model, tiny.vocab, p, c) for p, c in zip(prefixes, configs, strict=True)]
    together = generate_many(tiny.model, tiny.vocab, list(zip(prefixes, configs, strict=True)))
    for batched, single in zip(together, alone, strict=True):
        assert_same_greedy_text(tiny.model, tiny.vocab, batched.text, single.text)


def test_batched_greedy_equals_one_by_one_on_a_trained_model(tiny_trained: Tiny) -> None:
    """Every prefix alone and all together in one batch: the same greedy text, up to a float near tie."""
    prefixes = ["", "我", "天青色等烟雨", "the night", "隔江千万里\n炊烟", "而我", "I sing"]
    configs = [SampleConfig(greedy=True, repetition_penalty=1.0, max_length=60, stop_at_blank_line=False)] * 7
    model, vocab = tiny_trained.model, tiny_trained.vocab
    alone = [generate(model, vocab, p, c).text for p, c in zip(prefixes, configs, strict=True)]
    together = generate_many(tiny_trained.model, tiny_trained.vocab, list(zip(prefixes, configs, strict=True)))
    for batched, single in zip(together, alone, strict=True):
        assert_same_greedy_text(tiny_trained.model, tiny_trained.vocab, batched.text, single)


def test_seeded_sample_does_not_depend_on_batch_company(tiny_trained: Tiny) -> None:
    cfg = SampleConfig(temperature=1.0, max_length=50, seed=11, stop_at_blank_line=False)
    alone = generate(tiny_trained.model, tiny_trained.vocab, "我", cfg)
    crowd = generate_many(
        tiny_trained.model, tiny_trained.vocab, [("the", SampleConfig(seed=i)) for i in range(6)] + [("我", cfg)]
    )
    assert crowd[-1].text == alone.text


def test_requests_join_and_leave_between_steps(tiny_trained: Tiny) -> None:
    gen = BatchGenerator(tiny_trained.model, tiny_trained.vocab, max_batch=8)
    first = gen.submit("我", SampleConfig(greedy=True, max_length=5, stop_at_blank_line=False))
    long = gen.submit("而我", SampleConfig(greedy=True, max_length=30, stop_at_blank_line=False))
    finished: dict[int, str] = {}
    for _ in range(3):
        finished.update({rid: g.text for rid, g in gen.step()})
    assert gen.active == 2
    late = gen.submit("天青色", GREEDY)  # joins the running batch
    for _ in range(3):
        finished.update({rid: g.text for rid, g in gen.step()})
    assert first in finished and gen.active == 2  # the short one left, the late one joined
    while not gen.idle():
        finished.update({rid: g.text for rid, g in gen.step()})
    model, vocab = tiny_trained.model, tiny_trained.vocab
    assert_same_greedy_text(model, vocab, finished[late], generate(model, vocab, "天青色", GREEDY).text)
    alone = generate(model, vocab, "而我", SampleConfig(greedy=True, max_length=30, stop_at_blank_line=False)).text
    assert_same_greedy_text(model, vocab, finished[long], alone)


def test_queue_beyond_max_batch_waits_its_turn(tiny_trained: Tiny) -> None:
    gen = BatchGenerator(tiny_trained.model, tiny_trained.vocab, max_batch=3)
    ids = [gen.submit("我", SampleConfig(max_length=4, seed=i)) for i in range(7)]
    gen.step()
    assert gen.active == 3 and gen.pending == 4
    assert set(gen.run()) == set(ids)


def test_cancel_removes_a_running_request(tiny_trained: Tiny) -> None:
    gen = BatchGenerator(tiny_trained.model, tiny_trained.vocab)
    keep = gen.submit("我", SampleConfig(max_length=10, seed=1))
    drop = gen.submit("我", SampleConfig(max_length=10, seed=2))
    gen.step()
    assert gen.cancel(drop) and not gen.cancel(drop)
    assert set(gen.run()) == {keep}


def test_unseen_prefix_characters_are_skipped_not_fatal(tiny_trained: Tiny) -> None:
    out = generate(tiny_trained.model, tiny_trained.vocab, "😀火星我", SampleConfig(max_length=10, seed=0))
    assert out.text.startswith("😀火星我")
    assert out.skipped == ("😀", "火", "星")
    assert "\N{REPLACEMENT CHARACTER}" not in out.continuation


def test_empty_and_huge_prefixes(tiny_trained: Tiny) -> None:
    empty = generate(tiny_trained.model, tiny_trained.vocab, "", SampleConfig(max_length=10, seed=0))
    assert 0 < len(empty.continuation) <= 10
    huge = generate(tiny_trained.model, tiny_trained.vocab, "我不要再想你\n" * 2000, SampleConfig(max_length=5, seed=0))
    assert len(huge.continuation) <= 5


def test_never_emits_unk(tiny_trained: Tiny) -> None:
    results = generate_many(
        tiny_trained.model,
        tiny_trained.vocab,
        [("", SampleConfig(temperature=5.0, top_p=1.0, max_length=80, seed=i)) for i in range(8)],
    )
    assert all("\N{REPLACEMENT CHARACTER}" not in g.text for g in results)


def test_never_writes_a_lost_characters_placeholder() -> None:
    """"□" marks a character the source lost (1,266 lines of the Song ci have one): a model that learned it
    puts mass on it, and a lyric showing it reads as a broken font. Here it is the likeliest character."""
    vocab = Vocab.build("□□□□□□□□月风花雨")
    probs = [0.001] * len(vocab)
    probs[vocab.encode("□")[0]] = 0.9
    model = constant_model(vocab, [p / sum(probs) for p in probs])
    for text in [generate(model, vocab, "月", SampleConfig(max_length=30, seed=s)).text for s in range(4)] + [
        g.text for g in generate_many(model, vocab, [("", SampleConfig(max_length=30, seed=s)) for s in range(4)])
    ]:
        assert "□" not in text and len(text) > 5


def test_line_mode_and_line_limit(tiny_trained: Tiny) -> None:
    one = generate(tiny_trained.model, tiny_trained.vocab, "", SampleConfig(line_mode=True, max_length=100, seed=3))
    assert "\n" not in one.text and one.finish_reason == "lines"
    config = SampleConfig(stop_after_lines=3, max_length=500, seed=3, stop_at_blank_line=False)
    three = generate(tiny_trained.model, tiny_trained.vocab, "我", config)
    assert three.text.count("\n") == 2 and three.finish_reason == "lines"


def test_no_repeat_ngram_blocks_loops(tiny_trained: Tiny) -> None:
    # The training text repeats every ~90 characters, so 200 greedy characters loop.
    looping = generate(tiny_trained.model, tiny_trained.vocab, "", replace(GREEDY, max_length=200))
    blocked = generate(tiny_trained.model, tiny_trained.vocab, "", replace(GREEDY, max_length=200, no_repeat_ngram=4))
    loop_grams = [looping.text[i : i + 4] for i in range(len(looping.text) - 3)]
    assert len(loop_grams) > len(set(loop_grams))
    grams = [blocked.text[i : i + 4] for i in range(len(blocked.text) - 3)]
    assert len(grams) == len(set(grams))
    assert blocked.text != looping.text


def test_line_mode_invents_names_like_the_dinosaur_seed() -> None:
    """Trained on a list of names, line mode gives one new name per sample."""
    from charrnn.model import ModelConfig
    from charrnn.pipeline import train_model
    from charrnn.train_config import TrainConfig

    stems = ["saur", "don", "raptor", "ceratops", "mimus", "venator"]
    heads = ["tyranno", "stego", "veloci", "tricera", "ornitho", "allo", "brachio", "diplo", "pachy", "spino"]
    # Two thirds of the combinations are seen; a model that generalises invents some of the others.
    names = "".join(f"{h}{s}\n" for i, h in enumerate(heads) for j, s in enumerate(stems) if (i + j) % 3)
    config = TrainConfig(
        epochs=300,
        batch_size=16,
        seq_len=16,
        lr=1e-2,
        warmup_steps=5,
        patience=0,
        unk_min_count=1,
        device="cpu",
        val_fraction=0.1,
        split="lines",
    )
    _, model, vocab = train_model(names, ModelConfig(vocab_size=1, layers=1, embed=16, hidden=64, dropout=0.0), config)
    samples = generate_many(
        model,
        vocab,
        [
            ("", SampleConfig(line_mode=True, temperature=1.0, max_length=30, repetition_penalty=1.0, seed=i))
            for i in range(20)
        ],
    )
    texts = [g.text for g in samples]
    assert all(t and "\n" not in t for t in texts)
    assert sum(t.endswith(tuple(stems)) for t in texts) >= 14  # it learnt the name endings
    assert any(t not in names.split("\n") for t in texts)  # and invents some names of its own


def test_model_is_left_in_eval_mode_for_sampling(tiny_trained: Tiny) -> None:
    tiny_trained.model.train()
    generate(tiny_trained.model, tiny_trained.vocab, "我", SampleConfig(max_length=3, seed=0))
    assert not tiny_trained.model.training


def test_max_length_limit_constant() -> None:
    assert SampleConfig(max_length=MAX_LENGTH).max_length == MAX_LENGTH
    assert torch.get_default_dtype() == torch.float32


@pytest.mark.skipif(serving_dtype(torch.device("cpu")) != torch.bfloat16, reason="no native bfloat16 on this CPU")
def test_bfloat16_serving_keeps_batched_equal_to_single(tiny_trained: Tiny) -> None:
    prefixes = ["我", "天青色", "the night", ""]
    config = replace(GREEDY, max_length=60)
    model, vocab = tiny_trained.model, tiny_trained.vocab
    alone = [BatchGenerator(model, vocab, max_batch=1, dtype=torch.bfloat16) for _ in prefixes]
    texts = []
    for generator, prefix in zip(alone, prefixes, strict=True):
        rid = generator.submit(prefix, config)
        texts.append(generator.run()[rid].text)
    together = BatchGenerator(tiny_trained.model, tiny_trained.vocab, dtype=torch.bfloat16)
    ids = [together.submit(p, config) for p in prefixes]
    results = together.run()
    for rid, text in zip(ids, texts, strict=True):
        assert_same_greedy_text(model, vocab, results[rid].text, text, tolerance=BFLOAT16_TIE_TOLERANCE)
    assert next(tiny_trained.model.parameters()).dtype == torch.float32  # the caller's model is untouched


def test_the_repetition_penalty_spares_letters_but_not_han_characters() -> None:
    """A Chinese character is a unit of meaning; an English letter repeats in every word."""
    config = SampleConfig(greedy=True, repetition_penalty=3.0, max_length=10, stop_at_blank_line=False)
    latin = Vocab((UNK, "a", "b", "c", "d"))
    han = Vocab((UNK, "我", "你", "他", "她"))
    probs = [0.01, 0.5, 0.4, 0.05, 0.04]
    # Ten a's just written: "a" is still the likeliest (read off the rules: a sample of letters alone is one
    # unfinished word, which the length limit drops).
    tables = VocabTables(latin, torch.device("cpu"))
    written = Batch.of([new_row(0, "a" * 10, config, latin, tables)], tables)
    assert int(process(torch.tensor([probs]).log(), written).argmax()) == latin.encode("a")[0]
    # 我 just written is penalised below 你; once both are recent, both are, and 我 leads again.
    assert generate(constant_model(han, probs), han, "我", config).continuation == "你" + "我" * 9


def test_an_english_lyric_writes_no_speakers_colon() -> None:
    """Tiny Shakespeare ends each speaker's name with a colon, and 4 of 40 English lyrics of the base wrote one ("I
    WARWICK: what you have"); an English row writes none, a Chinese row's punctuation is its own."""
    han = "春花秋月何时了往事知多少小楼昨夜又东风故国不堪回首明中"
    vocab = Vocab((UNK, "\n", " ", ":", "：", "，", *"abcdefghijklmnopqrstuvwxyz", *han))
    model = constant_model(vocab, [1e-6] + [1.0 / (len(vocab) - 1)] * (len(vocab) - 1))
    config = SampleConfig(top_p=1.0, repetition_penalty=1.0, max_length=60, stop_at_blank_line=False)
    english = generate_many(model, vocab, [("the night", replace(config, seed=s)) for s in range(8)])
    assert not [g.continuation for g in english if ":" in g.continuation or "：" in g.continuation]
    chinese = generate_many(model, vocab, [("春花", replace(config, seed=s)) for s in range(8)])
    assert any("：" in g.continuation for g in chinese)


@pytest.mark.heavy  # 21 s on plain kernels: make test runs it, the portable pass not
def test_a_lyric_keeps_to_its_openings_script_where_the_model_can_write_it(tiny_trained: Tiny) -> None:
    """The base learnt Shakespeare beside the ci, and 5 of 64 of its lyrics after everyday Chinese openings wrote
    Latin letters ("I莫与他家…"); held to one script, none do, and English openings write no Han character. A
    Chinese-only model after an English opening still writes Chinese: it has no English to keep to."""
    from charrnn.checkpoint import BASE, load_checkpoint
    from charrnn.text.words import script_of

    assert [script_of(t) for t in ("我想你", "The night", "我 love 你", "…")] == ["zh", "en", "", ""]
    base = load_checkpoint(BASE)
    config = SampleConfig(no_repeat_ngram=8, rhyme=True, target_length=120)
    openings = ["我想你", "我在", "我们的爱", "秋天的雨", "明天", "你说", "离开", "回家", "夜里", "天青色", "窗外",
                "想念", "今天", "春风", "妈妈", "朋友"]
    chinese = generate_many(base.model, base.vocab, [(p, replace(config, seed=s)) for p in openings for s in range(4)],
                            words=base.words)
    assert not [g.continuation for g in chinese if any(c.isascii() and c.isalpha() for c in g.continuation)]
    english = generate_many(base.model, base.vocab, [(p, replace(config, seed=s)) for p in ("I miss you", "The night")
                                                     for s in range(4)], words=base.words)
    assert not [g.continuation for g in english if any("\u4e00" <= c <= "\u9fff" for c in g.continuation)]
    tiny = generate_many(tiny_trained.model, tiny_trained.vocab,
                         [("The night", replace(config, seed=s, temperature=1.0)) for s in range(4)])
    assert any("\u4e00" <= c <= "\u9fff" for g in tiny for c in g.continuation), [g.continuation for g in tiny]
    # A tune counts Han characters: after an English opening it is written in Chinese, not held to English.
    (tune,) = generate_many(base.model, base.vocab, [("I miss you", replace(config, form="浣溪沙", seed=1))],
                            words=base.words)
    assert tune.finish_reason == "lines" and sum("\u4e00" <= c <= "\u9fff" for c in tune.continuation) >= 35


@pytest.mark.parametrize(
    ("symbols", "probs", "penalty", "expected"),
    [
        # 相 is the likeliest every step; once 相相 is written, 相 after 相 is a quarter as likely (0.0875) and 思
        # (0.3) comes instead; once 相思 is written too, 天 (0.2), then 年 (0.15): each word after 相 a new one.
        ("相思天年", [0.35, 0.3, 0.2, 0.1499], {"repeated_word_penalty": 4.0}, "相相思相天相年相"),
        # A character written n times is 2**n times less likely again, right after itself 2**(n-1): 月 (0.4) twice
        # (the second costs nothing more than the first), then 风 (0.3 beats 月's 0.1) twice, then 花 twice; then 月
        # at a quarter (0.1 beats 云's 0.0999), and again right after itself at a quarter; then 月 at a sixteenth,
        # 风 and 花 at a quarter, and 云 (0.0999) is the likeliest.
        ("月风花云", [0.4, 0.3, 0.2, 0.0999], {"repeated_char_penalty": 2.0}, "月月风风花花月月云云"),
    ],
    ids=["two-character words", "characters"],
)
def test_what_a_lyric_has_written_is_less_likely_again(
    symbols: str, probs: list[float], penalty: dict[str, float], expected: str
) -> None:
    """Greedy on a model that always likes the same characters: without the penalty the first forever; with it,
    the exact text below."""
    han = Vocab((UNK, *symbols))
    model = constant_model(han, [0.0001, *probs])
    config = SampleConfig(greedy=True, repetition_penalty=1.0, max_length=len(expected), stop_at_blank_line=False)
    assert generate(model, han, "我", config).continuation == symbols[0] * len(expected)
    penalised = generate(model, han, "我", replace(config, **penalty)).continuation
    assert penalised == expected, penalised


@pytest.mark.parametrize(("prefix", "times"), [("我月", 2), ("我月月", 3), ("我风", 3)])
def test_a_characters_use_just_before_is_forgiven_right_after_itself_once(prefix: str, times: int) -> None:
    """A character written three times: 2**2 times less likely right after itself (its use just before forgiven),
    2**3 after a third in a row or after another character. Read off the processor: the other logits untouched."""
    han = Vocab((UNK, "我", "月", "风"))
    tables = VocabTables(han, torch.device("cpu"))
    row = new_row(0, prefix, SampleConfig(repeated_char_penalty=2.0), han, tables)
    row.char_uses = {han.encode("月")[0]: 3}
    logits = torch.zeros(1, len(han))
    penalised = process(logits, Batch.of([row], tables), (repeated_words,))
    moon = han.encode("月")[0]
    assert penalised[0, moon].item() == pytest.approx(-times * math.log(2.0), abs=1e-6)
    assert torch.count_nonzero(penalised).item() == 1
