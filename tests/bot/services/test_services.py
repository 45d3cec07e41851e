"""Services without Telegram: quality filter, rate limits, input parsing, the worker, log redaction."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from bot.db.migrate import head_revision
from bot.ops.logs import RedactTokens
from bot.services.admission import RateLimiter
from bot.services.preferences import PreferencesService
from bot.services.quality import CopyGuard, rank, repetition, word_threshold
from bot.serving.generation import (
    GenerationJob,
    GenerationResult,
    LoadedModel,
    Loader,
    LocalGenerationWorker,
    QueueFull,
)
from bot.settings import Settings
from bot.telegram.delivery import fit
from charrnn.checkpoint import load_checkpoint
from charrnn.generation.result import Generation
from charrnn.model import CharRNN, ModelConfig
from charrnn.vocab import Vocab
from tests.helpers.bot import trained_version
from tests.helpers.models import tiny_untrained


def test_copy_guard_catches_runs_reaching_into_the_continuation() -> None:
    guard = CopyGuard("天青色等烟雨而我在等你炊烟袅袅升起", threshold=6)
    assert guard.copied_run("", "我写的新歌词") is None
    assert guard.copied_run("", "啊烟雨而我在等") is not None
    assert guard.copied_run("天青色等烟雨", "啦啦") is None  # quoting a song in the prefix is the person's right
    assert guard.copied_run("天青色等", "烟雨而") is not None  # but the model may not carry on with it


def test_copy_guard_counts_english_in_words_whatever_the_case_and_punctuation() -> None:
    """12 Han characters make a copy; so do 8 English words (about as many syllables), not 12 letters."""
    guard = CopyGuard("The night is long,\nthe road is gone; I sing along, my love, until the dawn", threshold=12)
    assert guard.words == word_threshold(12) == 8
    # "he night is " was 12 copied characters: a phrase every English corpus holds, not a copy
    assert guard.copied_run("The night", " is dark and cold") is None
    assert guard.copied_run("", "the night is long the road is") is None  # seven words
    assert guard.copied_run("", "oh, THE night is long. the road is gone i") is not None  # eight, case and marks aside
    assert guard.copied_run("the night is long, the road is gone", " I sing") is not None  # carrying on a quote
    assert guard.copied_run("the night is long, the road is gone, I sing", "") is None  # the person's own quote


def test_rank_drops_copies_and_prefers_fresh_likely_text() -> None:
    guard = CopyGuard("the quick brown fox jumps over", threshold=4)
    candidates = [
        Generation("the", " quick brown fox", (), -5.0, "length"),  # a copy
        Generation("la", " la la la la la la la", (), -2.0, "length"),  # likely but a loop
        Generation("we", " sing in the rain", (), -20.0, "length"),
    ]
    ranked = rank(candidates, guard)
    assert [r.text for r in ranked] == ["we sing in the rain", "la la la la la la la la"]
    assert repetition("abcabcabcabc") > 0.5 > repetition("abcdefghijkl")


def test_rank_puts_a_lyric_of_several_lines_before_a_likelier_single_line() -> None:
    candidates = [
        Generation("天青色等烟雨", "。", (), -0.5, "stop"),  # very likely, but it ends the poem at once
        Generation("天青色等烟雨", "。\n若是便知家气，不比西湖。", (), -30.0, "stop"),
    ]
    assert [r.text for r in rank(candidates, None)] == ["天青色等烟雨。\n若是便知家气，不比西湖。", "天青色等烟雨。"]


def test_rank_puts_a_lyric_that_keeps_one_season_before_a_likelier_one_that_mixes_two() -> None:
    candidates = [
        Generation("西风", "瘦，黄花满地。\n东风吹落海棠。", (), -2.0, "stop"),  # likelier, autumn then spring
        Generation("西风", "瘦，黄花满地。\n一夜雁声寒。", (), -20.0, "stop"),
    ]
    assert [r.text for r in rank(candidates, None)] == [
        "西风瘦，黄花满地。\n一夜雁声寒。", "西风瘦，黄花满地。\n东风吹落海棠。"]


def test_rate_limiter_window() -> None:
    limiter = RateLimiter(per_minute=2)
    assert limiter.check(1, now=0.0) == 0 and limiter.check(1, now=1.0) == 0
    assert limiter.check(1, now=2.0) == pytest.approx(58.0)
    assert limiter.check(2, now=2.0) == 0  # per person
    assert limiter.check(1, now=60.5) == 0


@pytest.mark.parametrize("text", ["abc", "-1", "0", "nan", "inf", "-inf", "1e9", "", "0.09", "2.01", "1,5,1"])
def test_bad_temperatures_are_refused(text: str) -> None:
    service = PreferencesService(Settings(_env_file=None), None, None)  # type: ignore[arg-type,call-arg]
    assert service.parse_temperature(text) is None


def test_good_temperatures_and_lengths() -> None:
    service = PreferencesService(Settings(_env_file=None), None, None)  # type: ignore[arg-type,call-arg]
    assert service.parse_temperature("0.8") == 0.8 and service.parse_temperature(" 1,5 ") == 1.5
    assert service.parse_length("200") == 200
    assert service.parse_length("2") is None and service.parse_length("1e3") is None


def test_rhyme_and_form_parse_as_typed_and_as_buttons_carry_them() -> None:
    """/rhyme's words and the panel's 0/1 mean the same; a form is a known tune or free lines ("-"), nothing else."""
    service = PreferencesService(Settings(_env_file=None), None, None)  # type: ignore[arg-type,call-arg]
    words = ("on", " OFF ", "开", "关", "1", "0")
    assert [service.parse_rhyme(w) for w in words] == [True, False, True, False, True, False]
    assert service.parse_rhyme("2") is None and service.parse_rhyme("yes") is None
    assert service.parse_form("-") == "" and service.parse_form("浣溪沙") == "浣溪沙"
    assert service.parse_form("no such tune") is None and service.parse_form("") is None


def test_messages_never_exceed_telegram_limit() -> None:
    assert len(fit("x" * 10_000)) == 4096 and fit("short") == "short"
    emoji = fit("😀" * 3000)  # 6000 UTF-16 code units
    assert len(emoji.encode("utf-16-le")) // 2 <= 4096 and emoji.endswith("…")


def test_token_is_redacted_from_messages_and_tracebacks() -> None:
    token = "123456789:AAH-secret_Token-value-1234567890"
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "POST https://api/bot%s/getMe", (token,), None)
    assert RedactTokens().filter(record) and token not in record.getMessage()
    try:
        raise RuntimeError(f"failed https://api.telegram.org/bot{token}/sendMessage")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    RedactTokens().filter(record)
    assert record.exc_text is not None and token not in record.exc_text


def _tiny_loaded(version: str) -> LoadedModel:
    tiny = tiny_untrained("gru", seed=1)
    return LoadedModel(tiny.model, tiny.vocab, version)


def _recording_loader(loads: list[str]) -> Loader:
    """A loader of tiny models that notes each version it was asked for."""

    def loader(version: str) -> LoadedModel:
        loads.append(version)
        return _tiny_loaded(version)

    return loader


def test_worker_hot_swap_finishes_running_requests_on_the_old_model() -> None:
    """A promotion: the new version is loaded ahead (``warm``) while a request runs on the old one, which it
    finishes on; the next request, naming the new version, waits for no load."""
    loads: list[str] = []
    loader = _recording_loader(loads)

    async def scenario() -> None:
        worker = LocalGenerationWorker(None, queue_size=8, max_batch=8, loader=loader)
        worker.start_thread()
        try:
            job = GenerationJob("我", 1.0, 400, candidates=2, version="old")
            running = asyncio.create_task(worker.generate(job, timeout=30))
            await asyncio.sleep(0.05)
            await worker.warm("new")
            assert loads == ["old", "new"]  # loaded off the worker thread, before anyone asked for it
            fresh = await worker.generate(GenerationJob("你", 1.0, 5, version="new"), timeout=30)
            first = await running
            assert first.model_version == "old" and fresh.model_version == "new"
            assert loads == ["old", "new"]  # the new version's first request found it loaded
            await worker.warm("old")  # a quick rollback: the old version is still in memory, nothing is loaded
            assert loads == ["old", "new"]
            with pytest.raises(LookupError, match="names no model version"):  # this worker has no model of its own
                await worker.generate(GenerationJob("你", 1.0, 5), timeout=30)
        finally:
            worker.stop()

    asyncio.run(scenario())


def test_worker_serves_the_version_a_job_names_and_keeps_few_models() -> None:
    """How a promotion reaches a Celery worker: tasks name versions, loaded on first use, LRU-dropped."""
    loads: list[str] = []

    def loader(version: str) -> LoadedModel:
        if version == "deleted":
            raise FileNotFoundError("no model version deleted")
        loads.append(version)
        return _tiny_loaded(version)

    async def scenario() -> None:
        worker = LocalGenerationWorker(_tiny_loaded("v1"), queue_size=8, max_batch=8, loader=loader, max_lanes=2)
        worker.start_thread()
        try:
            # A version named for the first time is loaded; jobs that name none get the worker's own (v1), which
            # naming another version never changes.
            for version, served in (("v2", "v2"), ("v1", "v1"), (None, "v1"), ("v3", "v3"), ("v2", "v2")):
                result = await worker.generate(GenerationJob("我", 1.0, 5, version=version), timeout=30)
                assert result.model_version == served
            # v2 stayed while two models fit (v1, the worker's own, and one more), was dropped when v3 came (least
            # recently used), and was loaded again when asked for; v1 was never dropped.
            assert loads == ["v2", "v3", "v2"]
            with pytest.raises(FileNotFoundError):
                await worker.generate(GenerationJob("我", 1.0, 5, version="deleted"), timeout=30)
            assert (await worker.generate(GenerationJob("我", 1.0, 5), timeout=30)).model_version == "v1"
        finally:
            worker.stop()

    asyncio.run(scenario())


def test_a_rollback_made_elsewhere_does_not_make_styles_reload_each_other() -> None:
    """Two styles, so two lanes (``StyleService.reserve_lanes``). Another replica rolls the default back: this
    bot's lane of the old default is the least recently used and goes, and the two versions now asked for,
    taking turns, are loaded once each (a model the bot had pinned would have made them reload each other)."""
    loads: list[str] = []
    loader = _recording_loader(loads)

    async def scenario() -> None:
        worker = LocalGenerationWorker(None, queue_size=8, max_batch=8, loader=loader)
        worker.reserve_lanes(2)
        worker.start_thread()
        try:
            await worker.warm("default-v1")
            for version in ["default-v1", "jay-v1", *["default-v0", "jay-v1"] * 3]:
                result = await worker.generate(GenerationJob("我", 1.0, 5, version=version), timeout=30)
                assert result.model_version == version
            assert loads == ["default-v1", "jay-v1", "default-v0"]
        finally:
            worker.stop()

    asyncio.run(scenario())


def test_worker_refuses_when_full_and_times_out_cleanly() -> None:
    # No line break in the vocabulary: nothing ends these requests early but the timeout.
    vocab = Vocab.build("abcdefgh ")
    model = CharRNN(ModelConfig(vocab_size=len(vocab), layers=1, embed=8, hidden=8)).eval()

    async def scenario() -> None:
        worker = LocalGenerationWorker(LoadedModel(model, vocab, "v"), queue_size=2, max_batch=2)
        worker.start_thread()
        try:
            long_jobs = [
                asyncio.create_task(worker.generate(GenerationJob("a", 1.0, 100_000), timeout=0.5)) for _ in range(2)
            ]
            await asyncio.sleep(0.01)
            with pytest.raises(QueueFull) as busy:
                await worker.generate(GenerationJob("a", 1.0, 5), timeout=5)
            assert busy.value.wait_s >= 1
            for job in long_jobs:
                with pytest.raises(TimeoutError):
                    await job
            ok = await worker.generate(GenerationJob("b", 1.0, 5), timeout=60)  # the timed-out rows were freed
            assert ok.candidates[0].text.startswith("b") and ok.candidates[0].finish_reason == "length"
        finally:
            worker.stop()

    asyncio.run(scenario())


def test_sandbox_and_db_commands_from_the_terminal(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    model_dir, corpus = trained_store
    env = {
        "MODEL_DIR": str(model_dir),
        "CORPUS_PATH": str(corpus),
        "DEVICE": "cpu",
        "PATH": "",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "TELEGRAM_BOT_TOKEN": "",
    }
    production_models = sorted(p.name for p in model_dir.iterdir())
    chat = subprocess.run(
        [sys.executable, "-m", "bot", "sandbox"],
        input="/write 我不要\n!4\n/temp nan\n/quit\n",
        capture_output=True,
        text=True,
        timeout=600,  # a ceiling for a busy machine: each line is answered in seconds
        env=env,
        cwd=tmp_path,
    )
    assert chat.returncode == 0, chat.stderr[-2000:]
    assert "bot> 我不要" in chat.stdout and "★4" in chat.stdout and "/temp <0.1" in chat.stdout

    def current(*sandbox: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot", *sandbox, "db", "current"], capture_output=True,
                              text=True, timeout=300, env=env, cwd=tmp_path)

    # The sandbox kept to its own database: DATABASE_URL's was never created, var/sandbox.db was migrated.
    assert current().returncode == 0 and "database revision: None" in current().stdout
    sandbox_db = current("--sandbox")
    assert sandbox_db.returncode == 0 and f"database revision: {head_revision()}" in sandbox_db.stdout
    assert "sandbox.db" in sandbox_db.stderr
    assert sorted(p.name for p in model_dir.iterdir()) == production_models  # nothing written into production's
    assert load_checkpoint(model_dir / str(trained_version(model_dir))).vocab


def test_env_example_documents_and_parses_every_setting() -> None:
    example = Path(__file__).resolve().parents[3] / ".env.example"
    names = {line.split("=", 1)[0] for line in example.read_text().splitlines() if line and not line.startswith("#")}
    assert names == {field.upper() for field in Settings.model_fields}
    settings = Settings(_env_file=example)  # type: ignore[call-arg]
    assert settings.token is None and settings.admin_ids == frozenset()


def test_a_timeout_after_a_swap_cancels_only_its_own_rows() -> None:
    """Row ids restart in every generator: job A (old model) timing out must not cancel job B (new)."""
    vocab = Vocab.build("abcdefgh ")
    model = CharRNN(ModelConfig(vocab_size=len(vocab), layers=1, embed=8, hidden=8)).eval()

    async def scenario() -> None:
        worker = LocalGenerationWorker(LoadedModel(model, vocab, "old"), queue_size=4, max_batch=4,
                                       loader=lambda version: LoadedModel(model, vocab, version))
        worker.start_thread()
        try:
            doomed = asyncio.create_task(worker.generate(GenerationJob("a", 1.0, 100_000), timeout=0.5))
            await asyncio.sleep(0.1)
            await worker.warm("new")
            job = GenerationJob("b", 1.0, 3000, version="new")
            survivor = asyncio.create_task(worker.generate(job, timeout=600))
            with pytest.raises(TimeoutError):
                await doomed
            result = await survivor
            # (the length limit ends it at its last whole word: a few characters short of 3000)
            assert result.model_version == "new" and 2900 < len(result.candidates[0].continuation) <= 3000
        finally:
            worker.stop()

    asyncio.run(scenario())


def test_a_generation_error_fails_the_request_row(tmp_path: Path, trained_store: tuple[Path, Path]) -> None:
    from tests.helpers.bot import ask, bot_running, eventually

    async def scenario() -> None:
        async with bot_running(tmp_path, trained_store) as h:
            h.fake.add_user(5, "Err", "en")
            lyrics = h.app.bot_data.services.lyrics

            class Broken:
                async def generate(self, job: object, timeout: float) -> object:
                    raise RuntimeError("the GPU caught fire")

            real, lyrics.backend = lyrics.backend, Broken()
            apology = await ask(h, "/write 我", chat=5, user=5)
            assert "error" in apology["text"]
            await eventually(
                lambda: h.rows("SELECT status, error FROM requests") == [("failed", "internal error: RuntimeError")]
            )
            lyrics.backend = real
            assert (await ask(h, "/write 我", chat=5, user=5))["text"].startswith("我")

    asyncio.run(scenario())


class _Poisoned(torch.nn.Module):
    """An embedding that fails on one character in a prefix: a request that breaks the model while priming.
    (Generation steps read one character a time and pass.)"""

    def __init__(self, embedding: torch.nn.Embedding, poison: int) -> None:
        super().__init__()
        self.inner, self.poison = embedding, poison

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.shape[-1] > 1 and bool((ids == self.poison).any()):
            raise RuntimeError("poisoned character")
        return self.inner(ids)  # type: ignore[no-any-return]


def test_a_bad_job_fails_alone() -> None:
    vocab = Vocab.build("abcdefgh z")
    model = CharRNN(ModelConfig(vocab_size=len(vocab), layers=1, embed=8, hidden=8)).eval()
    model.embedding = _Poisoned(model.embedding, vocab.encode("z")[0])  # type: ignore[assignment]

    async def scenario() -> None:
        worker = LocalGenerationWorker(LoadedModel(model, vocab, "v"), queue_size=8, max_batch=8)
        worker.start_thread()
        try:
            jobs = [GenerationJob("ab", 1.0, 20), GenerationJob("az", 1.0, 20), GenerationJob("ba", 1.0, 0),
                    GenerationJob("cd", 1.0, 20, candidates=3)]
            outcomes = await asyncio.gather(*(worker.generate(j, timeout=30) for j in jobs), return_exceptions=True)
            assert isinstance(outcomes[1], RuntimeError) and "poisoned" in str(outcomes[1])
            assert isinstance(outcomes[2], ValueError)  # length 0: refused when it joined
            for outcome, prefix in ((outcomes[0], "ab"), (outcomes[3], "cd")):
                assert isinstance(outcome, GenerationResult)
                assert all(c.text.startswith(prefix) and c.finish_reason == "length" for c in outcome.candidates)
        finally:
            worker.stop()

    asyncio.run(scenario())


def test_the_worker_survives_a_second_error_while_recovering(monkeypatch: pytest.MonkeyPatch) -> None:
    """A step fails (its job fails), then building the replacement fails too: the worker still serves."""
    from bot.serving import generation

    real_lane, real_step = generation.Lane, generation.Lane.step
    faults = {"step": 1, "lane": 1}

    def failing_step(self: Any) -> Any:
        if faults["step"]:
            faults["step"] -= 1
            raise RuntimeError("step fault")
        return real_step(self)

    class FragileLane(real_lane):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any) -> None:
            if built["count"] >= 1 and faults["lane"]:  # the first lane is fine; the replacement is not
                faults["lane"] -= 1
                raise RuntimeError("recovery fault")
            built["count"] += 1
            super().__init__(*args)

    built = {"count": 0}
    monkeypatch.setattr(generation.Lane, "step", failing_step)
    monkeypatch.setattr(generation, "Lane", FragileLane)

    async def scenario() -> None:
        worker = LocalGenerationWorker(_tiny_loaded("v"), queue_size=8, max_batch=8)
        worker.start_thread()
        try:
            with pytest.raises(RuntimeError, match="step fault"):
                await worker.generate(GenerationJob("我", 1.0, 10), timeout=30)
            result = await worker.generate(GenerationJob("我", 1.0, 10), timeout=30)
            assert result.candidates[0].text.startswith("我") and faults == {"step": 0, "lane": 0}
        finally:
            worker.stop()

    asyncio.run(scenario())


def test_the_wait_estimate_counts_the_rows_jobs_hold_not_the_jobs() -> None:
    """Two /writes of four candidates with ranked clauses (16 rows each) wait longer than two one-row jobs."""
    vocab = Vocab.build("abcdefgh ")
    model = CharRNN(ModelConfig(vocab_size=len(vocab), layers=1, embed=8, hidden=8)).eval()

    async def waits(job: GenerationJob) -> float:
        worker = LocalGenerationWorker(LoadedModel(model, vocab, "v"), queue_size=4, max_batch=8)
        worker.start_thread()
        try:
            idle = worker.estimated_wait_s()
            held = [asyncio.create_task(worker.generate(job, timeout=600)) for _ in range(2)]
            await asyncio.sleep(0)  # both accepted: counted the moment generate() runs
            busy = worker.estimated_wait_s()
            for task in held:
                task.cancel()
            await asyncio.gather(*held, return_exceptions=True)
            return busy / idle
        finally:
            worker.stop()

    small = asyncio.run(waits(GenerationJob("a", 1.0, 100_000)))
    large = asyncio.run(waits(GenerationJob("a", 1.0, 100_000, candidates=4, phrases=4)))
    assert small == pytest.approx(1 + 2 / 8)  # two rows ahead in a batch of eight, then one's own turn
    assert large == pytest.approx(1 + 32 / 8)
    assert GenerationJob("a", 1.0, 5, candidates=4, phrases=4).rows == 4  # shorter than a line: no clause siblings


def test_a_worker_takes_two_batches_worth_of_tasks_unless_told() -> None:
    def settings(**values: object) -> Settings:
        return Settings(_env_file=None, **values)  # type: ignore[arg-type]

    assert settings().tasks_per_worker == 6  # 2 * (64 rows // (4 candidates x 4 clause siblings + 4 titles))
    assert settings(phrase_candidates=1).tasks_per_worker == 16  # 2 * (64 // (4 + 4))
    assert settings(max_batch=512, title_candidates=0).tasks_per_worker == 64
    assert settings(max_batch=4).tasks_per_worker == 2  # a request larger than the batch still runs, one at a time
    assert settings(worker_concurrency=5).tasks_per_worker == 5
