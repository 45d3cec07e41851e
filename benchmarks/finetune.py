"""Fine-tuning while serving: run time, perplexities before and after, and the bot's answer time.

    python benchmarks/finetune.py [--base-minutes 3] [--rate 2] [--window 40]

The last 5,000 characters of the Jay Chou corpus are held back as "new" text; the default model is
trained on the rest. The bot then runs (real python-telegram-bot, local Bot API server, SQLite) under a
steady /write load: first idle for ``--window`` seconds, then the same load while an admin's
fine-tuning run goes (spawned process, as in production). Reported: the run's time and metrics, and
p95 answer time during the run against idle.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import corpus_path, percentile, print_table

from bot.app import build_application, running
from bot.sandbox import FakeTelegram
from bot.services.run_reports import RunReport
from bot.services.training import TrainingService
from bot.serving.model_store import ModelStore
from bot.settings import Settings
from bot.styles_cli import point_default
from charrnn.data import load_corpus

NEW_CHARS = 5_000


class Load:
    """Poisson /write arrivals from a few people; the k-th answer in a chat answers its k-th request
    (the bot keeps answers in request order), so latencies come from the fake's arrival times."""

    def __init__(self, fake: FakeTelegram, people: list[int], rate: float) -> None:
        self.fake, self.people, self.rate = fake, people, rate
        self.asked: dict[int, list[float]] = {p: [] for p in people}
        self.rng = random.Random(0)

    async def run(self, keep_going: Callable[[], bool]) -> list[tuple[int, int]]:
        made = []
        i = 0
        while keep_going():
            person = self.people[i % len(self.people)]
            made.append((person, len(self.asked[person])))
            self.asked[person].append(time.perf_counter())
            self.fake.send_text(person, person, f"/write {self.rng.choice(['我', '天青色', '窗外', '你说', '夜'])}")
            i += 1
            await asyncio.sleep(self.rng.expovariate(self.rate))
        return made

    async def latencies(self, made: list[tuple[int, int]], timeout: float = 120.0) -> list[float]:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline and any(
            len(self.fake.sent_times(p)) < len(self.asked[p]) for p in self.people
        ):
            await asyncio.sleep(0.05)
        return [self.fake.sent_times(p)[k] - self.asked[p][k] for p, k in made if k < len(self.fake.sent_times(p))]


async def measure(args: argparse.Namespace, model_dir: Path, version: str, corpus: Path, new_text: str, work: Path
                  ) -> None:
    async with FakeTelegram() as fake:
        admin = 1
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, telegram_bot_token=fake.token, telegram_base_url=fake.base_url,
            telegram_base_file_url=fake.base_file_url, database_url=f"sqlite+aiosqlite:///{work / 'ft.db'}",
            model_dir=model_dir, corpus_path=corpus, device="cpu", default_length=120, admin_ids=frozenset({admin}),
            rate_limit_per_minute=10_000, finetune_minutes=args.finetune_minutes, finetune_epochs=args.epochs,
            log_level="WARNING",
        )
        people = [100 + i for i in range(10)]
        for person in [admin, *people]:
            fake.add_user(person, f"P{person}", "zh")
        await point_default(settings.database_url, model_dir, version, settings.device)  # as `lyricbot train` does
        async with running(build_application(settings)) as app:
            service: TrainingService = app.bot_data.services.training
            await service.corpus.add_document(name="held-back.txt", raw=new_text.encode(), added_by=None)
            traffic = Load(fake, people, args.rate)
            until = time.perf_counter() + args.window
            idle = await traffic.latencies(await traffic.run(lambda: time.perf_counter() < until))
            run = asyncio.create_task(service.retrain(trigger="cli"))
            busy_made = await traffic.run(lambda: not run.done())
            report = await run
            busy = await traffic.latencies(busy_made)
    assert isinstance(report, RunReport), report
    m = report.metrics
    print(f"fine-tuning on {len(new_text):,} new characters: {report.status} ({report.detail}), "
          f"{m.get('seconds', float('nan')):.0f} s of training")
    print_table(["held-out perplexity", "before", "after"],
                [("old text (the corpus's held-out songs)", m["old_ppl_before"], m["old_ppl_after"]),
                 ("new text (held-out lines of the 5,000)", m["new_ppl_before"], m["new_ppl_after"])])
    rows = [("idle", len(idle), statistics.median(idle), percentile(idle, 0.95)),
            ("while fine-tuning", len(busy), statistics.median(busy), percentile(busy, 0.95))]
    print_table(["/write load", "answers", "p50 s", "p95 s"], rows)
    print(f"p95 while fine-tuning / idle: {rows[1][3] / rows[0][3]:.2f} (target under 1.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-minutes", type=float, default=3.0, help="training of the base model")
    parser.add_argument("--finetune-minutes", type=float, default=2.0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rate", type=float, default=2.0, help="/write requests per second")
    parser.add_argument("--window", type=float, default=40.0, help="seconds of idle measurement")
    args = parser.parse_args()
    text = load_corpus(corpus_path("jaychou"))
    cut = text.rfind("\n", 0, len(text) - NEW_CHARS) + 1
    base_text, new_text = text[:cut], text[cut:]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus = work / "base.txt"
        corpus.write_text(base_text, encoding="utf-8")
        print(f"training the base model on {len(base_text):,} characters for {args.base_minutes:g} min ...",
              file=sys.stderr)
        version = ModelStore(work / "models", "cpu").train_first(corpus, args.base_minutes)
        asyncio.run(measure(args, work / "models", version, corpus, new_text, work))


if __name__ == "__main__":
    main()
