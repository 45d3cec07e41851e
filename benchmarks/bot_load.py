"""The whole bot under load: simulated people send /write through the local Bot API server.

    python benchmarks/bot_load.py [--people 50] [--requests 400] [--rate 6] [--model-dir DIR]

Requests arrive as a Poisson stream at ``--rate`` per second from ``--people`` people, each asking for
120 characters. Everything is real but Telegram: python-telegram-bot, HTTP, the SQLite file, the
generation worker and the model (the default architecture; trained for ``--train-minutes`` on the Jay
Chou corpus unless ``--model-dir`` names a model directory). The same load runs twice in this
process: with continuous batching, and with batching switched off (one sequence at a time).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import corpus_path, percentile, print_table

from bot.app import build_application, running
from bot.fake_telegram import FakeTelegram
from bot.services.models import ModelStore
from bot.settings import Settings


async def one_run(
    model_dir: Path, corpus: Path, work: Path, args: argparse.Namespace, max_batch: int
) -> dict[str, float]:
    db = work / f"load-{max_batch}.db"
    async with FakeTelegram() as fake:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            telegram_bot_token=fake.token,
            telegram_base_url=fake.base_url,
            telegram_base_file_url=fake.base_file_url,
            database_url=f"sqlite+aiosqlite:///{db}",
            model_dir=model_dir,
            corpus_path=corpus,
            device="cpu",
            default_length=args.length,
            max_batch=max_batch,
            queue_size=args.queue_size,
            rate_limit_per_minute=10_000,
            log_level="WARNING",
        )
        people = [10_000 + i for i in range(args.people)]
        for person in people:
            fake.add_user(person, f"P{person}", "zh")
        rng = random.Random(0)
        prefixes = ["我", "天青色", "窗外", "你说", "在", "雨下", "夜", "想"]
        async with running(build_application(settings)):
            sent_at: dict[int, list[float]] = {p: [] for p in people}
            started = time.perf_counter()
            for i in range(args.requests):
                person = people[i % len(people)]
                fake.send_text(person, person, f"/write {rng.choice(prefixes)}")
                sent_at[person].append(time.perf_counter())
                await asyncio.sleep(rng.expovariate(args.rate))
            deadline = time.perf_counter() + args.timeout
            while sum(len(fake.sent(p)) for p in people) < args.requests and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
            finished = time.perf_counter()
            latencies, lyrics, busy, other = [], 0, 0, 0
            for person in people:
                answered = zip(sent_at[person], fake.sent(person), fake.sent_times(person), strict=False)
                for asked, message, arrived in answered:
                    latencies.append(arrived - asked)
                    text = message["text"]
                    if "忙" in text or "busy" in text:
                        busy += 1
                    elif "reply_markup" in message:
                        lyrics += 1
                    else:
                        other += 1
    answers = sum(1 for p in people for _ in fake.sent(p))
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
        answered = conn.execute("SELECT COUNT(*) FROM requests WHERE status = 'answered'").fetchone()[0]
    good = latencies
    return {
        "answers": answers,
        "lyrics": lyrics,
        "busy": busy,
        "other": other,
        "rows": rows,
        "answered_rows": answered,
        "lost": args.requests - answers,
        "seconds": finished - started,
        "throughput": lyrics / (finished - started),
        "p50": statistics.median(good) if good else float("nan"),
        "p95": percentile(good, 0.95),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rate", type=float, default=6.0, help="mean arrivals per second")
    parser.add_argument("--length", type=int, default=120)
    parser.add_argument("--queue-size", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--train-minutes", type=float, default=1.0)
    args = parser.parse_args()
    corpus = corpus_path("jaychou")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_dir = args.model_dir
        if model_dir is None:
            model_dir = work / "models"
            print(
                f"training the default model on the Jay Chou corpus for {args.train_minutes:g} min ...", file=sys.stderr
            )
            ModelStore(model_dir, "cpu").train_first(corpus, args.train_minutes)
        results = {}
        for label, max_batch in (("batching on (64 rows)", 64), ("batching off (1 row)", 1)):
            print(f"running: {label} ...", file=sys.stderr)
            results[label] = asyncio.run(one_run(model_dir, corpus, work, args, max_batch))
    print(
        f"{args.requests} /write requests of {args.length} characters from {args.people} people, "
        f"Poisson arrivals at {args.rate:g}/s, queue size {args.queue_size}"
    )
    keys = ["answers", "lyrics", "busy", "lost", "rows", "answered_rows", "throughput", "p50", "p95", "seconds"]
    print_table(["mode", *keys], [(label, *(r[k] for k in keys)) for label, r in results.items()])
    on, off = results["batching on (64 rows)"], results["batching off (1 row)"]
    print(
        f"batching on vs off: p95 {off['p95'] / on['p95']:.1f}x lower, "
        f"lyrics delivered {on['lyrics']} vs {off['lyrics']}"
    )
    print(f"zero lost: {on['lost'] == 0 and on['rows'] == args.requests}; p95 under 2 s: {on['p95'] < 2.0}")


if __name__ == "__main__":
    main()
