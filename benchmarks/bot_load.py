"""The whole bot under load: simulated people send /write through the local Bot API server.

    python benchmarks/bot_load.py [--people 50] [--requests 400] [--rate 6] [--model-dir DIR | --base]
    python benchmarks/bot_load.py --backend celery --workers 1 2 --base --rate 0 --requests 300
    python benchmarks/bot_load.py --inline --base [--requests 200] [--people 50] [--rate 6]

Requests arrive as a Poisson stream at ``--rate`` per second (0: all at once, to measure requests/s
at saturation) from ``--people`` people, each asking for 120 characters. Everything is real but
Telegram: python-telegram-bot, HTTP, the SQLite file, the generation worker and the model (the default
architecture trained for ``--train-minutes`` on the Jay Chou corpus; ``--model-dir`` names a model
directory, ``--base`` serves the shipped base model).

``--backend local`` runs the load twice in this process: with continuous batching, and with batching
switched off (one sequence at a time). ``--backend celery`` runs it on the local backend first (the
baseline of the same run), then once per ``--workers`` count with that many ``lyricbot worker``
processes on the live Redis (each pinned to one core with ``taskset`` where it exists, one torch
thread), so the cost of the broker hop and the gain of a second worker are both visible.

``--inline`` sends inline queries instead (``@Bot first words``, three candidates each, in one batch), Poisson
arrivals at ``--rate``, each person's words drawn from a list, so some repeat and are answered from the bot's
cache (counted apart). Latency is from the query's arrival at the server to the bot's answerInlineQuery; a query
never answered is lost. A query its person's next one supersedes (as typing on does) is answered with no results
and counted apart too: nobody sees it, so it is neither lost nor in the latencies. Every fourth answered query's
first result is chosen, and must become a request row.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import corpus_path, percentile, print_table
from cpu_quota import QuotaUnavailable, cpu_quota, limit

from bot.app import build_application, running
from bot.sandbox import FakeTelegram
from bot.serving.model_store import ModelStore
from bot.settings import Settings
from bot.styles_cli import point_default

REDIS_URL = "redis://127.0.0.1:6379/0"


async def one_run(
    model_dir: Path, corpus: Path, work: Path, args: argparse.Namespace, max_batch: int, **extra: Any
) -> dict[str, float]:
    db = work / f"load-{secrets.token_hex(4)}.db"
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
            request_timeout_s=args.timeout,
            log_level="WARNING",
            **({} if args.titles is None else {"title_candidates": args.titles}),
            **extra,
        )
        people = [10_000 + i for i in range(args.people)]
        for person in people:
            fake.add_user(person, f"P{person}", "zh")
        rng = random.Random(0)
        prefixes = ["我", "天青色", "窗外", "你说", "在", "雨下", "夜", "想"]
        await point_default(settings.database_url, model_dir, args.version, settings.device)
        async with running(build_application(settings)):
            sent_at: dict[int, list[float]] = {p: [] for p in people}
            started = time.perf_counter()
            for i in range(args.requests):
                person = people[i % len(people)]
                fake.send_text(person, person, f"/write {rng.choice(prefixes)}")
                sent_at[person].append(time.perf_counter())
                if args.rate > 0:
                    await asyncio.sleep(rng.expovariate(args.rate))
            deadline = time.perf_counter() + args.timeout
            while fake.sent_count() < args.requests and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
            finished = time.perf_counter()
            latencies, lyrics, busy, other = [], 0, 0, 0
            for person in people:
                answered = zip(sent_at[person], fake.sent(person), fake.sent_times(person), strict=False)
                for asked, message, arrived in answered:
                    latencies.append(arrived - asked)
                    text = message["text"]
                    if "reply_markup" in message:  # a lyric (rating buttons), even one that sings of being 忙
                        lyrics += 1
                    elif "忙" in text or "busy" in text:
                        busy += 1
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
        "throughput": lyrics / (max(arrived for p in people for arrived in fake.sent_times(p)) - started)
        if lyrics else 0.0,
        "p50": statistics.median(good) if good else float("nan"),
        "p95": percentile(good, 0.95),
    }


INLINE_PREFIXES = ["天青色", "窗外", "我不要", "你说", "雨下", "夜", "想", "在", "明月", "春风", "The night",
                   "When I", "O my", "Love is", "The king", "Sweet"]  # fmt: skip


async def inline_run(model_dir: Path, corpus: Path, work: Path, args: argparse.Namespace) -> dict[str, float]:
    """``args.requests`` inline queries from ``args.people`` people through the real Application."""
    db = work / f"inline-{secrets.token_hex(4)}.db"
    async with FakeTelegram() as fake:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, telegram_bot_token=fake.token, telegram_base_url=fake.base_url,
            telegram_base_file_url=fake.base_file_url, database_url=f"sqlite+aiosqlite:///{db}", model_dir=model_dir,
            corpus_path=corpus, device=args.device, default_length=args.length, max_batch=args.max_batch,
            queue_size=args.queue_size, rate_limit_per_minute=10_000, request_timeout_s=args.timeout,
            log_level="WARNING", **({} if args.titles is None else {"title_candidates": args.titles}),
        )  # fmt: skip
        people = [20_000 + i for i in range(args.people)]
        for person in people:
            fake.add_user(person, f"P{person}", "zh" if person % 2 else "en")
        rng = random.Random(0)
        await point_default(settings.database_url, model_dir, args.version, settings.device)
        async with running(build_application(settings)):
            asked: list[tuple[int, str, str]] = []  # (person, words, query id)
            started = time.perf_counter()
            for i in range(args.requests):
                person, words = people[i % len(people)], rng.choice(INLINE_PREFIXES)
                asked.append((person, words, fake.send_inline_query(person, words)))
                if args.rate > 0:
                    await asyncio.sleep(rng.expovariate(args.rate))
            deadline = time.perf_counter() + args.timeout
            while len(fake.inline_answers) < len(asked) and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
            finished = time.perf_counter()
            chosen = 0
            for n, (person, _, query_id) in enumerate(asked):
                results = fake.inline_answers.get(query_id, {}).get("results", [])
                if n % 4 == 0 and results and results[0]["id"] != "hint":
                    fake.choose_inline_result(person, query_id, results[0]["id"])
                    chosen += 1
            rows, rows_deadline = 0, time.perf_counter() + 30
            while time.perf_counter() < rows_deadline:
                with sqlite3.connect(db) as conn:
                    rows = conn.execute("SELECT COUNT(*) FROM requests WHERE source = 'inline'").fetchone()[0]
                if rows >= chosen:
                    break
                await asyncio.sleep(0.1)
    latencies, fresh, hints, cached, superseded = [], [], 0, 0, 0
    seen: set[str] = set()  # result ids already given: a repeat is an answer from the cache
    for _, _, query_id in asked:
        answer = fake.inline_answers.get(query_id)
        if answer is None:
            continue
        ids = [r["id"] for r in answer["results"]]
        if not ids:  # the person's next query took its place: answered with nothing to show
            superseded += 1
            continue
        latency = answer["answered_at"] - fake.inline_asked_at[query_id]
        latencies.append(latency)
        if ids == ["hint"]:
            hints += 1
        elif ids[0] in seen:
            cached += 1
        else:
            fresh.append(latency)
        seen.update(ids)
    return {
        "queries": len(asked),
        "answered": len(latencies),
        "generated": len(fresh),
        "cached": cached,
        "hints": hints,
        "superseded": superseded,
        "lost": len(asked) - len(latencies) - superseded,
        "chosen": chosen,
        "rows": rows,
        "throughput": len(latencies) / (finished - started),
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p95": percentile(latencies, 0.95),
        "p95_generated": percentile(fresh, 0.95),
        "seconds": finished - started,
    }


def process_cpu_s(pid: int) -> float:
    """User plus system CPU seconds of one process (all its threads), from /proc; 0 where there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_cpu_s() -> float:
    import redis

    info = redis.Redis.from_url(REDIS_URL).info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def measured(run: Any, worker_pids: list[int]) -> dict[str, float]:
    """One load run, with the CPU seconds each part spent on it: the bot process (with the local Bot API
    server and the simulated people, which live in it), the workers, and Redis."""
    bot, redis_before = time.process_time(), redis_cpu_s() if worker_pids else 0.0
    workers, wall = sum(process_cpu_s(pid) for pid in worker_pids), time.perf_counter()
    result: dict[str, float] = asyncio.run(run)
    result["wall"] = time.perf_counter() - wall
    result["cpu_bot"] = time.process_time() - bot
    result["cpu_workers"] = sum(process_cpu_s(pid) for pid in worker_pids) - workers
    result["cpu_redis"] = redis_cpu_s() - redis_before if worker_pids else 0.0
    return result


@contextmanager
def celery_workers(
    count: int, model_dir: Path, work: Path, prefix: str, args: argparse.Namespace
) -> Iterator[list[int]]:
    """``count`` real ``lyricbot worker`` processes, worker i pinned to core i where ``taskset`` exists, and
    held to ``args.cpu_quota`` of that core when given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    env.update(GENERATION_BACKEND="celery", CELERY_BROKER_URL=REDIS_URL, CELERY_KEY_PREFIX=prefix,
               MODEL_DIR=str(model_dir), DEVICE=args.device, TORCH_THREADS="1", LOG_LEVEL="INFO",
               MAX_BATCH=str(args.max_batch), REQUEST_TIMEOUT_S=str(args.timeout),
               **({} if args.titles is None else {"TITLE_CANDIDATES": str(args.titles)}))
    cores = os.cpu_count() or 1
    procs, logs = [], []
    quotas = contextlib.ExitStack()
    try:
        for i in range(count):
            log = work / f"{prefix.strip(':')}-{i}.log"
            pin = ["taskset", "-c", str(i % cores)] if shutil.which("taskset") else []
            concurrency = ["--concurrency", str(args.concurrency)] if args.concurrency else []
            command = [*pin, sys.executable, "-m", "bot", "worker", *concurrency]
            handle = log.open("wb")
            logs.append(log)
            procs.append(subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT))
            if args.cpu_quota:  # before the worker has loaded anything: it never runs above its budget
                try:
                    limit(quotas.enter_context(cpu_quota(args.cpu_quota)), procs[-1].pid)
                except QuotaUnavailable as exc:
                    sys.exit(f"--cpu-quota: {exc}")
        deadline = time.monotonic() + 120
        while not all(" ready." in log.read_text(errors="replace") for log in logs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                tails = "\n".join(log.read_text(errors="replace")[-2000:] for log in logs)
                sys.exit(f"a worker did not start:\n{tails}")
            time.sleep(0.2)
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        quotas.close()
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["local", "celery"], default="local")
    parser.add_argument("--inline", action="store_true", help="inline queries instead of /write (local backend)")
    parser.add_argument("--titles", type=int, default=None,
                        help="title candidates per request (TITLE_CANDIDATES; default: the bot's, 4; 0: no titles)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="with --backend celery")
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--requests", type=int, default=None, help="default: 400 /write, 200 inline queries")
    parser.add_argument("--rate", type=float, default=6.0, help="mean arrivals per second; 0: all at once")
    parser.add_argument("--length", type=int, default=120)
    parser.add_argument("--queue-size", type=int, default=64)
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=None,
                        help="tasks one worker takes at once (WORKER_CONCURRENCY; default: the bot's)")
    parser.add_argument("--cpu-quota", type=float, default=None, metavar="CORES",
                        help="with --backend celery: hold each worker to this much of its core (a cgroup CPU "
                             "quota; needs root), leaving the rest of the machine to the bot and Redis")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--version", default=None, help="the version in --model-dir the default style serves")
    parser.add_argument("--base", action="store_true", help="serve the shipped base model")
    parser.add_argument("--train-minutes", type=float, default=1.0)
    args = parser.parse_args()
    args.requests = args.requests or (200 if args.inline else 400)
    corpus = corpus_path("jaychou")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_dir = args.model_dir
        if args.base:
            model_dir = work / "models"
            args.version = ModelStore(model_dir, args.device).install_base()
        elif model_dir is not None:
            if args.version is None:
                parser.error("--model-dir needs --version: which of its versions the default style serves")
        else:
            model_dir = work / "models"
            print(
                f"training the default model on the Jay Chou corpus for {args.train_minutes:g} min ...", file=sys.stderr
            )
            args.version = ModelStore(model_dir, "cpu").train_first(corpus, args.train_minutes)
        if args.inline:
            print("running: inline queries ...", file=sys.stderr)
            report_inline(asyncio.run(inline_run(model_dir, corpus, work, args)), args)
            return
        results = {}
        if args.backend == "local":
            for label, max_batch in (("batching on (64 rows)", 64), ("batching off (1 row)", 1)):
                print(f"running: {label} ...", file=sys.stderr)
                results[label] = asyncio.run(one_run(model_dir, corpus, work, args, max_batch))
        else:
            print("running: local backend ...", file=sys.stderr)
            results["local (in the bot)"] = measured(
                one_run(model_dir, corpus, work, args, args.max_batch, torch_threads=1), [])
            for count in args.workers:
                prefix = f"lyricbot-bench-{secrets.token_hex(4)}:"
                print(f"running: celery, {count} worker(s) ...", file=sys.stderr)
                with celery_workers(count, model_dir, work, prefix, args) as pids:
                    results[f"celery, {count} worker(s)"] = measured(one_run(
                        model_dir, corpus, work, args, args.max_batch, generation_backend="celery",
                        celery_broker_url=REDIS_URL, celery_key_prefix=prefix), pids)
    arrivals = f"Poisson arrivals at {args.rate:g}/s" if args.rate > 0 else "all sent at once"
    print(
        f"{args.requests} /write requests of {args.length} characters from {args.people} people, "
        f"{arrivals}, queue size {args.queue_size}, model {'base' if args.base else model_dir}"
    )
    if args.backend == "celery":
        budget = f"held to {args.cpu_quota:g} of it by a cgroup CPU quota" if args.cpu_quota else "nothing else held"
        print(f"each worker: one core ({budget}), one torch thread; the local backend: not held")
    keys = ["answers", "lyrics", "busy", "lost", "rows", "answered_rows", "throughput", "p50", "p95", "seconds"]
    print_table(["mode", *keys], [(label, *(r[k] for k in keys)) for label, r in results.items()])
    print("throughput: lyrics delivered per second, first request to last answer")
    if args.backend == "local":
        on, off = results["batching on (64 rows)"], results["batching off (1 row)"]
        print(
            f"batching on vs off: p95 {off['p95'] / on['p95']:.1f}x lower, "
            f"lyrics delivered {on['lyrics']} vs {off['lyrics']}"
        )
        print(f"zero lost: {on['lost'] == 0 and on['rows'] == args.requests}; p95 under 2 s: {on['p95'] < 2.0}")
        return
    local = results["local (in the bot)"]
    print(f"CPU seconds per lyric delivered (the machine has {os.cpu_count() or 1} cores):")
    parts = ["cpu_bot", "cpu_workers", "cpu_redis"]
    print_table(["mode", "bot+server+people", "workers", "redis", "cores busy"], [
        (label, *(r[k] / max(1, r["lyrics"]) for k in parts), sum(r[k] for k in parts) / r["wall"])
        for label, r in results.items()])
    if args.cpu_quota:
        print(f"(the local backend is not held to {args.cpu_quota:g} of a core: compare the celery rows together)")
    for label, r in results.items():
        if label.startswith("celery"):
            print(f"{label}: {r['throughput'] / local['throughput']:.2f}x the local backend's requests/s, "
                  f"lost {r['lost']}")
    one = [r for label, r in results.items() if label == "celery, 1 worker(s)"]
    two = [r for label, r in results.items() if label == "celery, 2 worker(s)"]
    if one and two:
        print(f"2 workers vs 1: {two[0]['throughput'] / one[0]['throughput']:.2f}x requests/s")


def report_inline(r: dict[str, float], args: argparse.Namespace) -> None:
    arrivals = f"Poisson arrivals at {args.rate:g}/s" if args.rate > 0 else "all sent at once"
    print(f"{args.requests} inline queries (3 candidates of up to {args.length} characters each) from {args.people} "
          f"people, {arrivals}, model {'base' if args.base else args.model_dir or 'trained'}")  # fmt: skip
    keys = ["queries", "answered", "generated", "cached", "hints", "superseded", "lost", "chosen", "rows",
            "throughput", "p50", "p95", "p95_generated", "seconds"]  # fmt: skip
    print_table(keys, [tuple(r[k] for k in keys)])
    print("throughput: answers per second, first query to last answer; p95_generated: answers that generated; "
          "superseded: dropped for the same person's next query (answered empty, not lost)")  # fmt: skip
    # A busy or timeout hint is an answer, but not lyrics: the verdict counts it as a miss.
    served = r["lost"] == 0 and r["hints"] == 0 and r["rows"] == r["chosen"]
    print(f"nothing lost (every query got lyrics, no hint): {served}; p95 under 1 s: {r['p95'] < 1.0}")


if __name__ == "__main__":
    main()
