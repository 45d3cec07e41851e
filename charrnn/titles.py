"""Titles for lyrics: sampled in line mode at a song's start, then chosen by how well each fits the lyric.

Every lyric corpus the base model learned from puts a song's title on the line after a blank one: the tune
name (词牌) of a Song ci, the title of a Yuan qu or of a song in the Book of Songs. A model asked for one
line after a blank line (``line_mode``) therefore writes a title, but one that knows nothing of the lyric
that will follow, since titles come first. So several are sampled and the one under which the model finds
the lyric's opening most likely (``log p(lyric | title)``) is kept: the title that "predicts" the song.

English corpora have no titles (tiny Shakespeare's blocks open with a speaker's name), so an English lyric
is titled the way pop songs usually are: by its hook, the line it repeats, or else its first words.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from charrnn.lyrics import lines_of
from charrnn.mixture import LanguageModel
from charrnn.sample import SampleConfig
from charrnn.vocab import Vocab

TITLE_CONTEXT = "\n\n"  # a blank line: in every lyric corpus, the title line comes next
MAX_TITLE_CHARS = 12
# Lines in the title position that are not titles: Yuan qu's "the same tune again" and coda markers.
NOT_TITLES = frozenset({"前腔", "幺篇", "么篇", "幺", "么", "尾声", "煞尾", "同前", "尾"})
_TITLE_PUNCTUATION = frozenset("·・、 '-")  # allowed inside a title: 木兰花・忆秦娥, Don't Stop
_ENGLISH_WORDS = 6


def title_config(seed: int | None, max_chars: int = MAX_TITLE_CHARS, temperature: float = 0.8) -> SampleConfig:
    """How a title candidate is sampled: one short line, plain temperature (no rhyme, no line rules)."""
    return SampleConfig(temperature=temperature, max_length=max_chars, line_mode=True, seed=seed,
                        repetition_penalty=1.0)


def is_title(text: str) -> bool:
    """A name, not a sentence: letters (and the joining marks titles use), no sentence punctuation, no
    speaker's colon, not one of the corpora's structural markers."""
    text = text.strip()
    if not text or len(text) > MAX_TITLE_CHARS or text in NOT_TITLES:
        return False
    return all(unicodedata.category(c).startswith("L") or c in _TITLE_PUNCTUATION for c in text)


def is_english(text: str) -> bool:
    """More Latin letters than CJK characters: titled by its hook rather than by a sampled name."""
    latin = sum(1 for c in text if c.isascii() and c.isalpha())
    cjk = sum(1 for c in text if "\u3400" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff")
    return latin > cjk


def hook_title(lyric: str) -> str | None:
    """The hook: the line sung most often (when one repeats), else the first line; its first few words."""
    lines = lines_of(lyric)
    if not lines:
        return None
    counts = Counter(line.lower() for line in lines)
    line, times = counts.most_common(1)[0]
    chosen = next(x for x in lines if x.lower() == line) if times > 1 else lines[0]
    words = re.findall(r"[^\W_]+(?:'[^\W_]+)?", chosen)
    if not words:
        return None
    if is_english(chosen):
        title = " ".join(words[:_ENGLISH_WORDS])
        return title[0].upper() + title[1:]
    return "".join(words)[:MAX_TITLE_CHARS] or None


@torch.inference_mode()
def fit_scores(
    model: LanguageModel, vocab: Vocab, lyrics: Sequence[str], titles: Sequence[str], head_chars: int = 48
) -> torch.Tensor:
    """``scores[i, j]``: log p(first ``head_chars`` known characters of lyric i | title j), nats, one batched pass.

    Characters the model never saw are left out of the lyric's head (they would score as unknown for every
    title alike). Padding goes after each sequence, where a left-to-right model cannot see it.
    """
    heads = [vocab.encode("".join(c for c in lyric if c in vocab)[:head_chars]) for lyric in lyrics]
    starts = [vocab.encode(TITLE_CONTEXT + title + "\n") for title in titles]
    sequences = [(start, head) for head in heads for start in starts]
    length = max(len(start) + len(head) for start, head in sequences)
    device = next(model.parameters()).device
    tokens = torch.zeros(len(sequences), length, dtype=torch.long)
    scored = torch.zeros(len(sequences), length, dtype=torch.bool)  # positions whose next token is the head's
    for k, (start, head) in enumerate(sequences):
        tokens[k, : len(start) + len(head)] = torch.tensor(start + head, dtype=torch.long)
        scored[k, len(start) - 1 : len(start) + len(head) - 1] = True
    model.eval()
    logits, _ = model(tokens.to(device))
    logprobs = F.log_softmax(logits.float(), dim=-1)[:, :-1]
    picked = logprobs.gather(-1, tokens[:, 1:].to(device)[..., None])[..., 0].cpu()
    totals = (picked * scored[:, :-1]).sum(dim=1)
    return totals.reshape(len(lyrics), len(titles))


def choose_titles(
    model: LanguageModel, vocab: Vocab, lyrics: Sequence[str], candidates: Sequence[str]
) -> list[str | None]:
    """One title per lyric: the sampled candidate that fits it best, or its hook (English, or no candidate
    that reads as a title)."""
    # A Chinese lyric gets a Chinese title: a model that learned both languages samples both.
    titles = list(dict.fromkeys(c.strip() for c in candidates if is_title(c) and not is_english(c)))
    chosen: list[str | None] = [hook_title(lyric) for lyric in lyrics]
    sampled = [i for i, lyric in enumerate(lyrics) if not is_english(lyric) and any(c in vocab for c in lyric)]
    if not titles or not sampled:
        return chosen
    scores = fit_scores(model, vocab, [lyrics[i] for i in sampled], titles)
    for row, i in enumerate(sampled):
        chosen[i] = titles[int(scores[row].argmax())]
    return chosen


def titled(lyric: str, title: str | None) -> str:
    """The lyric as shown: its title on the first line (in 《》 where the title is Chinese), a blank line, the lyric."""
    if not title:
        return lyric
    return f"{title if is_english(title) else f'《{title}》'}\n\n{lyric}"
