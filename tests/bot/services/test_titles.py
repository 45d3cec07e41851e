"""Every lyric gets a title from its own words, shown as its first line: fitted in the worker's batch, per candidate."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from bot.serving.celery_app import decode_result, encode_result
from bot.serving.generation import GenerationJob, LocalGenerationWorker
from bot.serving.model_store import ModelStore
from charrnn.text.titles import is_title, titled
from tests.helpers.bot import USER, ask, bot_running, trained_version

CHAT_ZH, CHAT_EN = USER, USER + 1


def split_title(text: str) -> tuple[str, str]:
    """(title, lyric) of a shown lyric: the first line, a blank line, the rest."""
    first, blank, rest = text.split("\n", 2)
    assert blank == "", text
    return first, rest


def words_of(text: str) -> str:
    """A text's letters and characters alone, lower-cased: where a title's words are found."""
    return re.sub(r"[\W_]", "", text).lower()


def test_the_worker_titles_each_candidate_by_its_own_words_fitted_in_the_same_batch(
    trained_store: tuple[Path, Path],
) -> None:
    model_dir, _ = trained_store
    worker = LocalGenerationWorker(ModelStore(model_dir, device="cpu").load(str(trained_version(model_dir))),
                                   queue_size=8, max_batch=16)

    async def main() -> None:
        await worker.start()
        try:
            titled, plain = await asyncio.gather(
                worker.generate(GenerationJob("窗外", 0.8, 30, candidates=3, seed=1, titles=4), timeout=30),
                worker.generate(GenerationJob("窗外", 0.8, 30, candidates=3, seed=1), timeout=30),
            )
        finally:
            await worker.close()
        assert len(titled.titles) == len(titled.candidates) == 3 and plain.titles == ()
        assert all(t is None or is_title(t) for t in titled.titles), titled.titles
        assert any(t is not None for t in titled.titles)
        for title, generation in zip(titled.titles, titled.candidates, strict=True):  # each from its own lyric
            assert title is None or words_of(title) in words_of(generation.lyric), (title, generation.lyric)
        # Fit rows come after the lyric rows: the lyrics are what they are without titles.
        assert [g.text for g in titled.candidates] == [g.text for g in plain.candidates]
        # Titles travel through Celery's JSON as they are.
        assert decode_result(encode_result(titled, "w1")).titles == titled.titles

    asyncio.run(main())


def test_a_lyric_is_shown_under_its_title_and_the_row_keeps_it(
    tmp_path: Path, trained_store: tuple[Path, Path]
) -> None:
    async def main() -> None:
        async with bot_running(tmp_path, trained_store, title_candidates=4) as h:
            h.fake.add_user(CHAT_ZH, "Lin", "zh")
            h.fake.add_user(CHAT_EN, "Ann", "en")
            chinese = await ask(h, "/write 窗外", chat=CHAT_ZH, user=CHAT_ZH)
            english = await ask(h, "/write the night", chat=CHAT_EN, user=CHAT_EN)
            rows = dict(h.rows("SELECT prefix, title FROM requests"))
            outputs = dict(h.rows("SELECT prefix, output FROM requests"))

            # The tiny test model writes what it writes; how good titles are is charrnn's test (the shipped base).
            for prefix, answer in (("窗外", chinese), ("the night", english)):
                title, lyric = split_title(answer["text"])
                assert lyric.startswith(prefix) and rows[prefix]
                assert answer["text"] == titled(lyric, rows[prefix]) == outputs[prefix]  # the row holds what was seen
                assert title in (rows[prefix], f"《{rows[prefix]}》")
                assert words_of(rows[prefix]) in words_of(lyric)  # the lyric's own words

    asyncio.run(main())
