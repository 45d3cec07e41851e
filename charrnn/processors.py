"""Sampling rules as a chain of small logits processors, shared by ``generate`` and ``BatchGenerator``.

Each processor takes the next-character logits of a batch of requests, ``(B, V)``, with the requests'
state, and returns adjusted logits; ``choose`` then picks one character per request (argmax, or one
inverse-CDF draw from the request's own random stream) and ``advance`` applies the stop rules. A new
rule is one more function in ``PROCESSORS``; a request alone and a request in a crowd go through exactly
the same code.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from charrnn.music.melody import MelodyCursor, parse_melody
from charrnn.rhyme import THIRTEEN_CLASSES, han_key, is_han
from charrnn.shape import Shape, start_shape, visible
from charrnn.shape_rules import ShapeTables, line_shape
from charrnn.topics import keyword_plan
from charrnn.vocab import UNK_ID, Vocab
from charrnn.words import WordCursor, real_words, word_tables

if TYPE_CHECKING:
    from charrnn.sample import SampleConfig

FinishReason = Literal["length", "lines", "cancelled"]
CLASSES = tuple(THIRTEEN_CLASSES)
# Where a source lost a character: the Song ci and Yuan qu mark it "□"; decoding errors leave U+FFFD.
PLACEHOLDERS = frozenset({"□", "\ufffd"})
# Brackets: in the Yuan qu they held role markers and stage directions ("(正末唱)", "［生上］"), not lyrics.
NEVER_WRITTEN = PLACEHOLDERS | frozenset("()（）【】〔〕［］")
# The keyword plan (topic_words): how much likelier a line's keyword gets (after the temperature), and how many
# lines are planned (a longer lyric uses the words again, in turn). Its own random stream, so the plan does not
# shift the sample's. Measured on the base, 16 lyrics of 80 characters at 0.8: lines with their keyword 0% without
# a plan, 45% at 100x, 56% at 300x (this, with 1200x for the second character: the strength the blind readers
# read), 78% at 1000x; mean log-likelihood per character -4.06 without, -4.05 with.
FIRST_CHAR_BOOST = math.log(300.0)
SECOND_CHAR_BOOST = math.log(1200.0)
PLANNED_LINES = 8
SCRIPT_MIN = 20  # characters of a script a vocabulary needs before a row may be held to it
PLAN_SEED = 0x7091C5


@dataclass
class Row:
    """One request while it is being generated."""

    rid: int
    prefix: str
    config: SampleConfig
    context: list[int]  # ids the model has read, prefix included
    skipped: tuple[str, ...]  # prefix characters the vocabulary lacks (left out of the context)
    rng: random.Random
    generated: list[int] = field(default_factory=list)
    logprob: float = 0.0  # of the generated characters under the untempered model
    logprobs: list[float] = field(default_factory=list)  # each character's (a sample cut short drops some)
    lines: int = 0  # line breaks generated so far
    seen_ngrams: dict[tuple[int, ...], set[int]] = field(default_factory=dict)
    forced: list[int] = field(default_factory=list)  # SampleConfig.force's ids: read, not sampled
    word: WordCursor | None = None  # where it is in the corpus's word trie (charrnn.words)
    shape: Shape | None = None  # its plan, rhyme and target length (charrnn.shape); None: free text
    keywords: list[tuple[int, int]] = field(default_factory=list)  # its keyword plan's words, as ids, one a line
    script: str = ""  # "zh" or "en": the prefix's script, the only one written (SampleConfig.one_script); "": any
    melody: MelodyCursor | None = None  # a tune row's place in its melody plan (charrnn.music.melody)

    def note_ngrams(self, since: int = 0) -> None:
        """Record, for the n-gram ban, the n-grams of the context that end at or after position ``since``."""
        n = self.config.no_repeat_ngram
        for end in range(max(n, since), len(self.context) + 1) if n else ():
            gram = tuple(self.context[end - n : end])
            self.seen_ngrams.setdefault(gram[:-1], set()).add(gram[-1])


def is_alphabetic_letter(symbol: str) -> bool:
    """A letter of a script with cases (Latin, Greek, Cyrillic...): Han, kana and hangul have none."""
    return symbol.isalpha() and symbol.lower() != symbol.upper()


class VocabTables:
    """What the processors need to know about a vocabulary, computed once per vocabulary."""

    def __init__(self, vocab: Vocab, device: torch.device, words: frozenset[str] | None = None) -> None:
        self.vocab = vocab
        self.size = len(vocab)
        self.device = device
        self.line_break = vocab.encode("\n")[0] if "\n" in vocab else UNK_ID
        # Never written: <unk>, the placeholders corpora put where their source lost a character, brackets.
        self.never = torch.tensor([UNK_ID] + [i for i, s in enumerate(vocab.symbols) if s in NEVER_WRITTEN],
                                  dtype=torch.long, device=device)
        # Never penalised for repeating: <unk> padding, whitespace (line breaks are supposed to repeat), and
        # the letters of alphabetic scripts. A Chinese character is a unit of meaning and repeating it is
        # what the penalty is for; an English letter repeats in every word: penalising the letters of the
        # last 16 characters misspelt the base's English (70% Shakespeare words instead of 84%).
        self.exempt = torch.tensor(
            [UNK_ID] + [i for i, s in enumerate(vocab.symbols) if s.isspace() or is_alphabetic_letter(s)],
            dtype=torch.long, device=device,
        )
        classes = [han_key(s) for s in vocab.symbols]
        self.class_masks = torch.zeros(len(CLASSES), self.size, dtype=torch.bool, device=device)
        for index, name in enumerate(classes):
            if name is not None:
                self.class_masks[CLASSES.index(name), index] = True
        # The model's English words (charrnn.words); None for a model without them: nothing is constrained.
        self.words = word_tables(words, vocab, device) if words is not None else None
        self.shape = ShapeTables(vocab, device, self.class_masks, corpus=words)
        self.symbols = frozenset(vocab.symbols)
        self.ids = {s: i for i, s in enumerate(vocab.symbols)}
        # What a row of each script may not write (SampleConfig.one_script): the other script, where the
        # vocabulary has its own (a Chinese-only model after an English opening still writes Chinese).
        latin = [i for i, s in enumerate(vocab.symbols) if len(s) == 1 and s.isascii() and s.isalpha()]
        cased = [i for i, s in enumerate(vocab.symbols) if is_alphabetic_letter(s)]  # Latin, Cyrillic, Greek...
        han = [i for i, s in enumerate(vocab.symbols) if is_han(s)]
        self.other_script = {
            script: torch.tensor(ids, dtype=torch.long, device=device)
            for script, ids, own in (("zh", cased, han), ("en", han, latin)) if ids and len(own) >= SCRIPT_MIN
        }


@dataclass
class Batch:
    """The requests of one step, with their settings as tensors (rebuilt only when rows change)."""

    rows: list[Row]
    tables: VocabTables
    temperature: torch.Tensor  # (B, 1)
    top_k: torch.Tensor  # (B, 1), the vocabulary size where off
    top_p: torch.Tensor  # (B, 1)
    greedy: torch.Tensor  # (B,)
    penalty: torch.Tensor  # (B, 1)

    @classmethod
    def of(cls, rows: list[Row], tables: VocabTables) -> Batch:
        configs = [row.config for row in rows]
        device = tables.device

        def column(values: list[float] | list[int]) -> torch.Tensor:
            return torch.tensor(values, device=device)[:, None]

        return cls(
            rows=rows,
            tables=tables,
            temperature=column([c.temperature for c in configs]),
            top_k=column([c.top_k or tables.size for c in configs]),
            top_p=column([c.top_p for c in configs]),
            greedy=torch.tensor([c.greedy for c in configs], device=device),
            penalty=column([c.repetition_penalty for c in configs]),
        )


Processor = Callable[[torch.Tensor, Batch], torch.Tensor]


def ban_unknown(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """``<unk>`` is a modelling device (the mass of every rare character), never an answer; nor is a lost
    character's placeholder (the Song ci corpus has 1,266 lines with "□"), which reads as a broken font."""
    logits[:, batch.tables.never] = -math.inf
    return logits


def one_script(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """A Chinese lyric writes no Latin letter, an English one no Han character (``SampleConfig.one_script``)."""
    for script, banned in batch.tables.other_script.items():
        rows = [i for i, row in enumerate(batch.rows) if row.script == script]
        if rows:
            logits[torch.tensor(rows, device=logits.device)[:, None], banned[None, :]] = -math.inf
    return logits


def repetition_penalty(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """CTRL's penalty: divide (or multiply, when negative) the logit of recently used characters."""
    rows = batch.rows
    window = max(row.config.repetition_window for row in rows)
    if window == 0 or all(row.config.repetition_penalty == 1.0 for row in rows):
        return logits
    # One tensor from one list: building it row by row costs more than the model step at B=64.
    recent = torch.tensor(
        [
            (row.context[-row.config.repetition_window :] if row.config.repetition_window else [])
            + [UNK_ID] * (window - min(len(row.context), row.config.repetition_window))
            for row in rows
        ],
        device=logits.device,
    )
    # CTRL's rule (divide a positive logit, multiply a negative one) depends on where zero is. It is applied
    # around each row's mean finite logit, so that a model whose outputs are log-probabilities (a mixture,
    # an adaptive softmax: all below zero) is penalised as one with raw logits, likely repeats the most.
    finite = torch.isfinite(logits)
    centre = torch.where(finite, logits, 0.0).sum(1, keepdim=True) / finite.sum(1, keepdim=True).clamp(min=1)
    # Work on the (B, window) recent positions only, not on the whole (B, V) vocabulary.
    values = logits.gather(1, recent) - centre
    penalised = torch.where(values > 0, values / batch.penalty, values * batch.penalty)
    exempt = torch.isin(recent, batch.tables.exempt)  # <unk> padding and whitespace
    logits.scatter_(1, recent, torch.where(exempt, values, penalised) + centre)
    return logits


def no_repeat_ngram(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Forbid a character that would repeat an n-gram already in the text (the loop people complain of)."""
    for i, row in enumerate(batch.rows):
        n = row.config.no_repeat_ngram
        if n and len(row.context) >= n - 1:
            banned = row.seen_ngrams.get(tuple(row.context[len(row.context) - n + 1 :]) if n > 1 else ())
            if banned and len(banned) < logits.shape[1] - 1:
                logits[i, list(banned)] = -math.inf
    return logits


def topic_words(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Steer each line of a planned row (``SampleConfig.topics``) towards its keyword (``charrnn.topics``): its
    first character likelier while the phrase has room for the word, its second much likelier right after the
    first. A nudge, not a rule: the shape's rules come after and still decide. The boosts are scaled by the
    row's temperature, so that after it they are the stated factors whatever the temperature."""
    rows: list[int] = []
    columns: list[int] = []
    boosts: list[float] = []
    symbols = batch.tables.vocab.symbols
    for i, row in enumerate(batch.rows):
        shape = row.shape
        if not row.keywords or shape is None or shape.done or shape.pending:
            continue
        first, second = row.keywords[row.lines % len(row.keywords)]  # one word a line, the prefix's line first
        text = shape.text
        if symbols[first] + symbols[second] in text:
            continue
        if text and text[-1] == symbols[first]:
            target, boost = second, SECOND_CHAR_BOOST
        else:
            clause = shape.current_clause()
            fixed = clause is not None and clause.fixed
            room = clause.low - shape.count if clause is not None and fixed else shape.bounds[1] - visible(text)
            if room < 2:  # no room for the word in this phrase
                continue
            target, boost = first, FIRST_CHAR_BOOST
        rows.append(i)
        columns.append(target)
        boosts.append(boost * row.config.temperature)
    if rows:
        index = (torch.tensor(rows, device=logits.device), torch.tensor(columns, device=logits.device))
        logits.index_put_(index, torch.tensor(boosts, device=logits.device, dtype=logits.dtype), accumulate=True)
    return logits


def melody_grammar(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """A tune row (``SampleConfig.melody``) writes only what keeps its melody fitting its lyric: one note a
    syllable, whole bars, long clause ends, the tonic last (``charrnn.music.melody``). Last of the masks: the
    rules before it may not take away what the melody needs."""
    ids = batch.tables.ids
    for i, row in enumerate(batch.rows):
        if row.melody is not None:
            allowed = [ids[c] for c in row.melody.allowed() if c in ids]
            keep = logits[i, allowed].clone()
            logits[i] = -math.inf
            logits[i, allowed] = torch.where(torch.isfinite(keep), keep, 0.0)  # never a dead end
    return logits


def temperature(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    return logits / batch.temperature


def top_k_top_p(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Keep the top-k characters, then the smallest set of them holding top-p of the probability.

    The cut is found as a probability threshold from the sorted *values* alone: sorting indices of a
    (64, V) batch costs more than the model step on a CPU.
    """
    probs = torch.softmax(logits, dim=-1)  # (B, V)
    values = _sorted_descending(probs)
    ranks = torch.arange(values.shape[1], device=logits.device)[None, :]
    in_top_k = ranks < batch.top_k
    kept = values * in_top_k
    normalised = kept / kept.sum(dim=-1, keepdim=True)
    mass_before = normalised.cumsum(dim=-1) - normalised
    keep_count = (in_top_k & ((mass_before < batch.top_p) | (ranks == 0))).sum(dim=-1, keepdim=True)
    threshold = values.gather(1, keep_count - 1)  # the least likely character still kept
    return torch.where(probs >= threshold, logits, -math.inf)


# The order matters: bans and rewards act on the model's own scale, temperature then reshapes, and the
# nucleus is cut from the final distribution. The shape comes after the bans so that it can fall back when
# they leave none of its characters; the corpus-word rule last of them: it sees whether the rules before it
# left a word anywhere to go (the shape's English rhymes are corpus words already).
SHAPING: tuple[Processor, ...] = (
    ban_unknown, repetition_penalty, one_script, no_repeat_ngram, topic_words, line_shape, real_words, melody_grammar
)
SAMPLING: tuple[Processor, ...] = (temperature, top_k_top_p)  # after the look-ahead (charrnn.lookahead), if any
PROCESSORS: tuple[Processor, ...] = SHAPING + SAMPLING


def process(logits: torch.Tensor, batch: Batch, processors: Sequence[Processor] = PROCESSORS) -> torch.Tensor:
    logits = logits.clone()
    for processor in processors:
        logits = processor(logits, batch)
    return logits


def choose(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """One character per row: the argmax for greedy rows, else one inverse-CDF draw from the row's stream.

    Every row draws exactly one number per character from its own ``random.Random``, so what a request
    writes does not depend on the rows that share its batch.
    """
    greedy = batch.greedy
    if bool(greedy.all()):
        return logits.argmax(dim=-1)
    weights = torch.softmax(logits, dim=-1)
    cdf = weights.cumsum(dim=-1)
    u = torch.tensor([[row.rng.random()] for row in batch.rows], device=logits.device, dtype=cdf.dtype)
    pick = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).clamp_(max=weights.shape[1] - 1)
    # Float rounding at the very end of the CDF must not land on a zero-weight character.
    landed = weights.gather(1, pick) > 0
    if not bool(landed.all()):
        pick = torch.where(landed, pick, weights.argmax(dim=-1, keepdim=True))
    drawn = pick.squeeze(1)
    return torch.where(greedy, logits.argmax(dim=-1), drawn) if bool(greedy.any()) else drawn


def advance(row: Row, token: int, logprob: float, tables: VocabTables) -> FinishReason | None:
    """Append the chosen character and apply the stop rules; the reason when the request is finished.

    A row with a plan or a target length ends where its shape says (``charrnn.shape``), not at a blank
    line or ``max_length``; the line break that ends it is not part of the text."""
    cfg = row.config
    row.context.append(token)
    row.note_ngrams(since=len(row.context))
    if row.melody is not None:  # a tune ends where its plan does, never at a length
        row.generated.append(token)
        row.logprob += logprob
        row.logprobs.append(logprob)
        return "lines" if row.melody.observe(tables.vocab.symbols[token]) else None
    shape = row.shape
    if shape is not None and shape.observe(tables.vocab.symbols[token]) and shape.owns_end:
        if token != tables.line_break:
            row.generated.append(token)
            row.logprob += logprob
        return "lines"
    owns_end = shape is not None and shape.owns_end
    if token == tables.line_break:
        row.lines += 1
        blank_line = len(row.context) >= 2 and row.context[-2] == tables.line_break and bool(row.generated)
        if not row.forced and not owns_end and (
            cfg.line_mode
            or (cfg.stop_after_lines and row.lines >= cfg.stop_after_lines)
            or (cfg.stop_at_blank_line and blank_line)
        ):
            if blank_line:
                row.generated = row.generated[:-1]
            return "lines"
    row.generated.append(token)
    row.logprob += logprob
    row.logprobs.append(logprob)
    limit = len(row.forced) if row.forced else shape.limit if shape is not None and owns_end else cfg.max_length
    if len(row.generated) >= limit:
        return "length"
    return None


def forced_or(row: Row, chosen: int) -> int:
    """The row's next character: the forced one for a teacher-forced row, else the one sampled."""
    return row.forced[len(row.generated)] if row.forced else chosen


def new_row(rid: int, prefix: str, config: SampleConfig, vocab: Vocab, tables: VocabTables) -> Row:
    """A request's starting state: the model reads a line break first (a prefix starts a line, an empty
    one starts a song), then its shape's hint (a tune's name) and the prefix's known characters; unknown
    ones are skipped and reported."""
    shape = start_shape(prefix, config, tables.symbols)
    read = (shape.hint if shape is not None else "") + prefix
    context = [tables.line_break] + [i for i in vocab.encode(read) if i != UNK_ID]
    seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2**63)
    row = Row(rid, prefix, config, context, tuple(vocab.unknown_chars(prefix)), random.Random(seed))
    row.forced = [i for i in vocab.encode(config.force) if i != UNK_ID]
    row.shape = shape
    if config.melody:
        row.melody = MelodyCursor(parse_melody(config.melody))
    if config.one_script:
        row.script = script_of(prefix)
        form = shape.plan if shape is not None else None
        if row.script == "en" and form is not None and any(c.fixed for line in form.lines for c in line.clauses):
            row.script = ""  # a tune or a pattern counts Han characters: an English opening is followed by Chinese
    if config.topics and shape is not None and not shape.latin:
        words = keyword_plan(prefix, PLANNED_LINES, random.Random(seed ^ PLAN_SEED), allowed=tables.symbols)
        row.keywords = [(a, b) for a, b in (vocab.encode(word) for word in words)]
    row.note_ngrams()
    return row


def script_of(text: str) -> str:
    """"zh" for text with Han characters and no Latin letter, "en" for the other way round, else ""."""
    han = any(is_han(c) for c in text)
    latin = any(c.isascii() and c.isalpha() for c in text)
    return "zh" if han and not latin else "en" if latin and not han else ""


def _sorted_descending(probs: torch.Tensor) -> torch.Tensor:
    """Row-wise descending values; NumPy's value-only sort is ~10x faster than torch.sort on the CPU."""
    if probs.device.type == "cpu" and probs.dtype == torch.float32:
        return torch.from_numpy(-np.sort(-probs.numpy(), axis=-1))
    return probs.sort(dim=-1, descending=True).values

