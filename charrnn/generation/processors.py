"""Sampling rules as a chain of small logits processors, shared by ``generate`` and ``BatchGenerator``.

Each processor takes the next-character logits of a batch of requests, ``(B, V)``, with the requests'
state, and returns adjusted logits; ``choose`` then picks one character per request (argmax, or one
inverse-CDF draw from the request's own random stream) and ``advance`` (``charrnn.generation.rows``) applies
the stop rules. A new rule is one more function here, in ``SHAPING`` or ``SAMPLING``; a request alone and a
request in a crowd go through exactly the same code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from charrnn.generation.rows import Batch, Row
from charrnn.generation.shape import visible
from charrnn.generation.shape_rules import constrain
from charrnn.generation.word_trie import WordTables
from charrnn.vocab import UNK_ID

# The keyword plan (topic_words): how much likelier a line's keyword gets (after the temperature), and how many
# lines are planned (a longer lyric uses the words again, in turn). Its own random stream, so the plan does not
# shift the sample's. Measured on the base, 16 lyrics of 80 characters at 0.8: lines with their keyword 0% without
# a plan, 45% at 100x, 56% at 300x (this, with 1200x for the second character: the strength the blind readers
# read), 78% at 1000x; mean log-likelihood per character -4.06 without, -4.05 with.
FIRST_CHAR_BOOST = math.log(300.0)
SECOND_CHAR_BOOST = math.log(1200.0)
# Below this temperature the factors grow as the sample sharpens: at 0.5 the same factors put the keyword in 44% of
# lines against 67% at 0.8, so they are scaled as at 0.8 (85% at 0.5); blind readers of ci at 0.5 preferred the
# stronger plan in 29 of 40 readings (fluency +0.28, sense +0.17, craft +0.23, each +-0.15).
PLAN_TEMPERATURE_FLOOR = 0.8


Processor = Callable[[torch.Tensor, Batch], torch.Tensor]


def ban_unknown(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """``<unk>`` is a modelling device (the mass of every rare character), never an answer; nor is a lost
    character's placeholder (the Song ci corpus has 1,266 lines with "□"), which reads as a broken font."""
    logits[:, batch.tables.never] = -math.inf
    return logits


def one_script(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """A Chinese lyric writes no Latin letter, an English one no Han character, nor a speaker's colon
    (``SampleConfig.one_script``)."""
    for script, banned in batch.tables.script_bans.items():
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


def repeated_words(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """A Chinese two-character word the lyric has written already is ``repeated_word_penalty`` times less likely
    again: 相思, 何处, 梦魂 came back three times in one lyric, two-character words repeated ten times as often as
    in the Song ci, and blind readers named the loops among the first faults. A character it has written ``n``
    times is ``repeated_char_penalty ** n`` times less likely again, right after itself ``** (n - 1)`` (悠悠 costs
    nothing more than 悠; a third in a row is not forgiven): free lines wrote a character for the third time 15
    times as often as the Song ci, for the fourth or more 30 times (月 five times in one lyric)."""
    rows: list[np.ndarray] = []
    columns: list[np.ndarray] = []
    amounts: list[np.ndarray] = []
    for i, row in enumerate(batch.rows):
        again = row.seen_words.get(row.context[-1]) if row.seen_words else None
        if again and row.config.repeated_word_penalty > 1.0:
            rows.append(np.full(len(again), i))
            columns.append(np.fromiter(again, dtype=np.int64, count=len(again)))
            amounts.append(np.full(len(again), -math.log(row.config.repeated_word_penalty)))
        if row.char_uses and row.config.repeated_char_penalty > 1.0:
            count = len(row.char_uses)
            chars = np.fromiter(row.char_uses.keys(), dtype=np.int64, count=count)
            uses = np.fromiter(row.char_uses.values(), dtype=np.float64, count=count)
            last = row.context[-1]
            if len(row.context) < 2 or row.context[-2] != last:
                uses[chars == last] -= 1  # a reduplication's second character: its first is forgiven
            rows.append(np.full(count, i))
            columns.append(chars)
            amounts.append(-math.log(row.config.repeated_char_penalty) * uses)
    if rows:  # one indexed write for the batch, not one a row; numpy arrays, not lists, build it (64 rows of ci)
        index = (torch.from_numpy(np.concatenate(rows)).to(logits.device),
                 torch.from_numpy(np.concatenate(columns)).to(logits.device))
        values = torch.from_numpy(np.concatenate(amounts)).to(device=logits.device, dtype=logits.dtype)
        logits.index_put_(index, values, accumulate=True)
    return logits


def topic_words(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Steer each line of a planned row (``SampleConfig.topics``) towards its keyword (``charrnn.topics``): its
    first character likelier while the phrase has room for the word, its second much likelier right after the
    first. A nudge, not a rule: the shape's rules come after and still decide. The boosts are scaled by the
    row's temperature, so that after it they are the stated factors, and more below ``PLAN_TEMPERATURE_FLOOR``."""
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
        boosts.append(boost * max(row.config.temperature, PLAN_TEMPERATURE_FLOOR))
    if rows:
        index = (torch.tensor(rows, device=logits.device), torch.tensor(columns, device=logits.device))
        logits.index_put_(index, torch.tensor(boosts, device=logits.device, dtype=logits.dtype), accumulate=True)
    return logits


def line_shape(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """The shape processor: each row's plan, rhyme and length rules (see the module's docstring)."""
    tables = batch.tables.shape
    for i, row in enumerate(batch.rows):
        if row.shape is not None:
            constrain(row.shape, logits[i], tables)
    return logits


def real_words(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Only corpus words: inside an English word, letters that keep it the start of one; an end only at a
    whole one. Rows that are teacher-forced, or of a model without words, are left as they are.

    Only what can change is touched: the letter columns, and the whole row of one inside a word that may not
    end yet (a full (B, V) mask and ``torch.where`` cost more than the rest of the rule together).
    """
    tables = batch.tables.words
    if tables is None or not tables.can_end:
        return logits
    nodes = torch.tensor([_word_node(row, tables) for row in batch.rows], device=logits.device)
    letters = logits.index_select(1, tables.letter_ids)  # (B, W)
    typed = [i for i, row in enumerate(batch.rows) if row.word is not None and row.word.typed_whole]
    ending = tables.may_end[nodes]
    if typed:  # the person's whole word may end where it is, even a word of English the corpus lacks ("hi")
        ending = ending.clone()
        ending[typed] = True
    inner = (~ending).nonzero().squeeze(1)  # rows in a word not whole yet: only its letters
    if len(inner):
        logits.index_fill_(0, inner, -math.inf)
    allowed = tables.allowed[nodes][:, tables.letter_edges]  # (B, W)
    going_on = torch.where(allowed, letters, -math.inf)
    if typed:  # the person's whole last word ends as typed, unless the rules before let it only go on
        rows = torch.tensor(typed, device=logits.device)
        may_end = logits[rows].index_fill(1, tables.letter_ids, -math.inf).amax(dim=1) > -math.inf
        going_on[rows[may_end]] = -math.inf
    logits.index_copy_(1, tables.letter_ids, going_on)
    stuck = logits.amax(dim=1) == -math.inf  # (B,); isfinite().any() costs 20 times as much on a CPU
    if bool(stuck.any()):
        # The rules before this one (the n-gram ban, a line's ceiling) ruled out every letter that goes on with
        # the word: the word still comes first, among its own letters as likely as each other.
        usable = tables.masks(nodes[stuck])
        usable[:, batch.tables.never] = False
        logits[stuck] = torch.where(usable, 0.0, -math.inf)
    return _keeping_case(logits, batch, tables)


def _keeping_case(logits: torch.Tensor, batch: Batch, tables: WordTables) -> torch.Tensor:
    """No capital right after a small letter ("havE"), nor after a word's first capital ("WARWICK", a speaker's
    name in the corpus: "Warwick"), where a small letter is left; after two capitals (a word the person began in
    them: "I LOVE YOU"), capitals may go on."""
    lower, upper = tables.lower_ids, tables.upper_set
    after_small = [i for i, row in enumerate(batch.rows) if not row.forced and row.context
                   and (row.context[-1] in lower
                        or (row.context[-1] in upper and (len(row.context) < 2 or row.context[-2] not in upper)))]
    if not after_small or not len(tables.upper_ids):
        return logits
    rows = torch.tensor(after_small, device=logits.device)
    cased = logits[rows].index_fill(1, tables.upper_ids, -math.inf)
    keep = cased.amax(dim=1) > -math.inf
    logits[rows[keep]] = cased[keep]
    return logits


def _word_node(row: Row, tables: WordTables) -> int:
    """The row's node now, following the characters it read since the last step."""
    if row.forced:
        return tables.free
    cursor = row.word
    if cursor is None:
        cursor = row.word = tables.start(row.prefix)
        cursor.read = len(row.context) - len(row.generated)
    for token in row.context[cursor.read :]:
        cursor.node = tables.follow(cursor.node, token)
        cursor.typed_whole = False
    cursor.read = len(row.context)
    return cursor.node


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
    ban_unknown, repetition_penalty, one_script, no_repeat_ngram, repeated_words, topic_words, line_shape, real_words,
    melody_grammar,
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


def _sorted_descending(probs: torch.Tensor) -> torch.Tensor:
    """Row-wise descending values; NumPy's value-only sort is ~10x faster than torch.sort on the CPU."""
    if probs.device.type == "cpu" and probs.dtype == torch.float32:
        return torch.from_numpy(-np.sort(-probs.numpy(), axis=-1))
    return probs.sort(dim=-1, descending=True).values

