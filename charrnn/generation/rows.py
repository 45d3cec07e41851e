"""A request while it is generated (``Row``), the batch of them a step works on (``Batch``), what the rules
need to know of a vocabulary (``VocabTables``), and a row's life: started (``new_row``), advanced a character at
a time under the stop rules (``advance``).

The rules themselves are ``charrnn.generation.processors``; ``generate`` and ``BatchGenerator`` drive rows
through them the same way, alone or in a crowd.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch

from charrnn.config import FinishReason, SampleConfig
from charrnn.generation.shape import Shape, hint_for, start_shape
from charrnn.generation.shape_rules import ShapeTables
from charrnn.generation.word_trie import WordCursor, word_tables
from charrnn.model import State
from charrnn.music.melody import MelodyCursor, parse_melody
from charrnn.text.forms import PHRASE_ENDS
from charrnn.text.rhyme import THIRTEEN_CLASSES, han_key
from charrnn.text.themes import clashes
from charrnn.text.topics import keyword_plan
from charrnn.text.words import is_alphabetic_letter, is_han, script_of
from charrnn.vocab import UNK_ID, Vocab

CLASSES = tuple(THIRTEEN_CLASSES)
# Where a source lost a character: the Song ci and Yuan qu mark it "□"; decoding errors leave U+FFFD.
PLACEHOLDERS = frozenset({"□", "\ufffd"})
# Brackets: in the Yuan qu they held role markers and stage directions ("(正末唱)", "［生上］"), not lyrics. The middle
# dots that join a title's parts (木兰花・忆秦娥): in the corpora only on title lines; the bot wrote "・清平乐" as a
# line of a long lyric.
NEVER_WRITTEN = PLACEHOLDERS | frozenset("()（）【】〔〕［］・·")
PLANNED_LINES = 8  # lines of a keyword plan (charrnn.text.topics); a longer lyric uses its words again, in turn
SCRIPT_MIN = 20  # characters of a script a vocabulary needs before a row may be held to it
PLAN_SEED = 0x7091C5  # the keyword plan's own random stream, so the plan does not shift the sample's


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
    seen_words: dict[int, set[int]] = field(default_factory=dict)  # the Chinese two-character words it wrote
    char_uses: dict[int, int] = field(default_factory=dict)  # how often it wrote each Chinese character
    forced: list[int] = field(default_factory=list)  # SampleConfig.force's ids: read, not sampled
    word: WordCursor | None = None  # where it is in the corpus's word trie (charrnn.generation.word_trie)
    shape: Shape | None = None  # its plan, rhyme and target length (charrnn.shape); None: free text
    keywords: list[tuple[int, int]] = field(default_factory=list)  # its keyword plan's words, as ids, one a line
    script: str = ""  # "zh" or "en": the prefix's script, the only one written (SampleConfig.one_script); "": any
    melody: MelodyCursor | None = None  # a tune row's place in its melody plan (charrnn.music.melody)
    # Sample-and-rank by phrase (charrnn.generation.phrases): the request's siblings, this one's index among them,
    # and the log-probabilities of what it wrote since its clause began.
    fork: Fork | None = None
    sibling: int = 0
    phrase: list[float] = field(default_factory=list)

    def note_ngrams(self, since: int = 0) -> None:
        """Record, for the n-gram ban, the n-grams of the context that end at or after position ``since``."""
        n = self.config.no_repeat_ngram
        for end in range(max(n, since), len(self.context) + 1) if n else ():
            gram = tuple(self.context[end - n : end])
            self.seen_ngrams.setdefault(gram[:-1], set()).add(gram[-1])

@dataclass
class Waiting:
    """A sibling that ended its clause: its state after reading the ending (None when it ended the lyric)."""

    row: Row
    reason: FinishReason | None
    state: State | None
    logits: torch.Tensor | None  # (1, V)


@dataclass
class Fork:
    """One request's siblings between two clause ends (``charrnn.generation.phrases``)."""

    size: int
    waiting: dict[int, Waiting] = field(default_factory=dict)  # by sibling index

    @property
    def complete(self) -> bool:
        return len(self.waiting) == self.size


class VocabTables:
    """What the processors need to know about a vocabulary, computed once per vocabulary."""

    def __init__(
        self, vocab: Vocab, device: torch.device, words: frozenset[str] | None = None, register: str = ""
    ) -> None:
        self.vocab = vocab
        self.register = register  # read before a Chinese lyric without a tune (Checkpoint.register)
        self.size = len(vocab)
        self.device = device
        self.line_break = vocab.encode("\n")[0] if "\n" in vocab else UNK_ID
        self.phrase_ends = frozenset(i for i, s in enumerate(vocab.symbols) if s in PHRASE_ENDS)
        self.han_ids = frozenset(i for i, s in enumerate(vocab.symbols) if is_han(s))
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
        # The model's English words as a trie (charrnn.generation.word_trie); None for a model without them:
        # nothing is constrained.
        self.words = word_tables(words, vocab, device) if words is not None else None
        self.shape = ShapeTables(vocab, device, self.class_masks, corpus=words, ci=bool(register))
        self.symbols = frozenset(vocab.symbols)
        self.ids = {s: i for i, s in enumerate(vocab.symbols)}
        # What a row of each script may not write (SampleConfig.one_script): the other script, where the
        # vocabulary has its own (a Chinese-only model after an English opening still writes Chinese).
        latin = [i for i, s in enumerate(vocab.symbols) if len(s) == 1 and s.isascii() and s.isalpha()]
        cased = [i for i, s in enumerate(vocab.symbols) if is_alphabetic_letter(s)]  # Latin, Cyrillic, Greek...
        han = [i for i, s in enumerate(vocab.symbols) if is_han(s)]
        # The ASCII apostrophe too: English words start with it ('tis), and a Chinese lyric's quotes are ‘’. And an
        # English lyric writes no colon: in its corpus a colon ends a speaker's name ("I WARWICK: what you have",
        # 4 of 40 English lyrics), a play's line, not a song's.
        apostrophe = [i for i, s in enumerate(vocab.symbols) if s == "'"]
        colon = [i for i, s in enumerate(vocab.symbols) if s in ":："]
        self.script_bans = {
            script: torch.tensor(ids, dtype=torch.long, device=device)
            for script, ids, own in (("zh", cased + apostrophe, han), ("en", han + colon, latin))
            if ids and len(own) >= SCRIPT_MIN
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



def advance(row: Row, token: int, logprob: float, tables: VocabTables) -> FinishReason | None:
    """Append the chosen character and apply the stop rules; the reason when the request is finished.

    A row with a plan or a target length ends where its shape says (``charrnn.shape``), not at a blank
    line or ``max_length``; the line break that ends it is not part of the text."""
    cfg = row.config
    row.context.append(token)
    row.note_ngrams(since=len(row.context))
    if cfg.repeated_word_penalty > 1.0 and token in tables.han_ids and row.context[-2] in tables.han_ids:
        row.seen_words.setdefault(row.context[-2], set()).add(token)
    # A chorus the shape writes again (pending) is the song's return, not the model's repetition.
    if cfg.repeated_char_penalty > 1.0 and token in tables.han_ids and (row.shape is None or not row.shape.pending):
        row.char_uses[token] = row.char_uses.get(token, 0) + 1
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
    one starts a song), then its hint (``hint_for``: a tune's name, or the model's register) and the prefix's
    known characters; unknown ones are skipped and reported."""
    shape = start_shape(prefix, config, tables.symbols)
    read = hint_for(prefix, config, tables.register) + prefix
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
        fits = (lambda text: not clashes(text)) if config.one_theme else None  # one season, one mood
        words = keyword_plan(prefix, PLANNED_LINES, random.Random(seed ^ PLAN_SEED), allowed=tables.symbols, fits=fits)
        row.keywords = [(a, b) for a, b in (vocab.encode(word) for word in words)]
    row.note_ngrams()
    return row
