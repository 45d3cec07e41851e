"""One step of look-ahead before a rhyme: the character before a forced rhyme is chosen for the rhyme to follow.

A tune's rhyme position takes only characters of the song's rhyme (``charrnn.generation.shape_rules``), and readers
found the lines breaking there: under the model the base's line-final characters averaged -5.70 nats with
rhyme on against -4.55 without, in 24 tune lyrics. The phrase was not led towards the rhyme; the last
character was forced onto it. So, one character earlier, each of the row's likeliest next characters ``c``
is weighed by how likely the model then finds the rhyme: ``p(c) * P(next in rhyme | c)``, the exact
probability of ``c`` under the constraint one step ahead (the rest of the vocabulary is left out). It costs
one more batched model step over ``LOOKAHEAD_CANDIDATES`` copies of those rows' state, only at the
characters before a rhyme (one step in five or so of a tune), in ``generate`` and ``BatchGenerator`` alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from charrnn.generation.rows import Row, VocabTables
from charrnn.generation.shape_rules import next_rhyme_mask
from charrnn.mixture import LanguageModel
from charrnn.model import State, select_state

LOOKAHEAD_CANDIDATES = 8


def look_ahead(model: LanguageModel, state: State, logits: torch.Tensor, rows: Sequence[Row],
               tables: VocabTables) -> torch.Tensor:
    """``logits`` (``(B, V)``, through ``SHAPING``: on the model's scale, before the temperature and the nucleus)
    with each row before a rhyme narrowed to its likeliest characters, each weighed by the model's probability
    of the rhyme after it. ``state``: the rows' state after reading their context, as ``model.step`` takes it.
    Other rows, and teacher-forced ones, are left as they are; the song's first rhyme too (any class will do),
    unless its group keeps a tone (then any character of that tone will)."""
    masks: dict[int, torch.Tensor] = {}
    for i, row in enumerate(rows):
        planned = row.shape is not None and row.config.look_ahead and not row.forced
        mask = next_rhyme_mask(row.shape, tables.shape) if row.shape is not None and planned else None
        if mask is not None:
            masks[i] = mask
    if not masks:
        return logits
    index = torch.tensor(sorted(masks), device=logits.device)
    k = min(LOOKAHEAD_CANDIDATES, logits.shape[1])
    top = logits.index_select(0, index).topk(k, dim=-1)  # (R, k): values and character ids
    expanded = select_state(state, index.repeat_interleave(k))
    after, _ = model.step(top.indices.reshape(-1), expanded)
    log_after = F.log_softmax(after.float(), dim=-1).reshape(len(index), k, -1)  # (R, k, V)
    allowed = torch.stack([masks[i] for i in sorted(masks)])  # (R, V)
    rhyme_mass = torch.logsumexp(log_after.masked_fill(~allowed[:, None, :], float("-inf")), dim=-1)  # (R, k)
    weighed = top.values + rhyme_mass
    # Where no candidate can reach the rhyme (all -inf), the row keeps its own choice: the rule then falls back.
    usable = torch.isfinite(weighed).any(dim=-1)
    out = logits.clone()
    narrowed = torch.full((len(index), logits.shape[1]), float("-inf"), device=logits.device, dtype=logits.dtype)
    narrowed.scatter_(1, top.indices, weighed.to(logits.dtype))
    out[index[usable]] = narrowed[usable]
    return out
