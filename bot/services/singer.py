"""Songs made off the event loop: the tune model and the renderers live in worker processes.

A melody is a batch of the tune model (``charrnn.music.sing``) and three renderings (lead sheet PNG, OGG Opus,
ABC); all of it is CPU work that would stall every chat if it ran on the event loop, and a thread would hold
the GIL through Verovio's and libopus's Python callers. So a ``ProcessPoolExecutor`` of ``workers`` processes
(started on the first song, so a bot nobody asks to sing never pays for it), each loading the tune model and
the renderers once. Requests that arrive together are sung together: each worker's feeder takes every waiting
request (up to ``max_batch``) as one batch, one tune-model batch and then the renderings, so ten people pressing
at once cost one generation, not ten. A full queue refuses at once (``SingerBusy``), a lyric that cannot be sung
says why (``SingError``); neither loses anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

log = logging.getLogger(__name__)


class SingerBusy(RuntimeError):
    """Too many songs are waiting; the person is told to try again shortly."""


@dataclass(frozen=True)
class SongFiles:
    """What a person receives: the lead sheet, the voice message, the ABC for musicians."""

    title: str
    key: str  # "C major"
    tempo: int
    png: bytes
    ogg: bytes
    abc: str
    seconds: float  # how long the tune plays


@dataclass(frozen=True)
class SongAsk:
    lyric: str
    title: str
    seed: int | None = None


@dataclass(frozen=True)
class Failed:
    """A lyric the worker could not sing, and why (a ``SingError``'s words)."""

    reason: str


# --- the worker process --------------------------------------------------------------------------------


@dataclass
class _Worker:
    model: object
    vocab: object
    renderer: object


# The worker state of a child process, set once by its initializer: the pool's way to keep a loaded model
# between calls (nothing in the bot's own process ever touches it).
_WORKER: list[_Worker] = []


def _start_worker(checkpoint: str, threads: int) -> None:
    import torch

    from charrnn.checkpoint import load_checkpoint
    from charrnn.music.render import Renderer

    torch.set_num_threads(threads)
    loaded = load_checkpoint(checkpoint, device="cpu")
    _WORKER.append(_Worker(loaded.model, loaded.vocab, Renderer()))


def _sing_batch(asks: list[SongAsk]) -> list[SongFiles | Failed]:
    from charrnn.music.render import Renderer, timed_notes
    from charrnn.music.sing import SingError, SongRequest, melody_request, sing

    worker = _WORKER[0]
    requests: list[SongRequest | Failed] = []
    for ask in asks:
        try:
            requests.append(melody_request(ask.lyric, title=ask.title))
        except SingError as error:
            requests.append(Failed(str(error)))
    ready = [(i, r) for i, r in enumerate(requests) if not isinstance(r, Failed)]
    songs = sing(worker.model, worker.vocab, [r for _, r in ready],  # type: ignore[arg-type]
                 seeds=[asks[i].seed for i, _ in ready])
    out: list[SongFiles | Failed] = [r if isinstance(r, Failed) else Failed("") for r in requests]
    renderer: Renderer = worker.renderer  # type: ignore[assignment]
    for (i, _), song in zip(ready, songs, strict=True):
        notes = timed_notes(song)
        out[i] = SongFiles(song.title, song.key_name, song.tempo, renderer.png(song), renderer.ogg(song), song.abc,
                           notes[-1].end if notes else 0.0)
    return out


def _ping() -> bool:
    return bool(_WORKER)


# --- the bot side ------------------------------------------------------------------------------------


class Singer:
    """Sings lyrics in worker processes, batching the requests that wait together."""

    def __init__(self, checkpoint: str, workers: int = 1, max_batch: int = 16, queue_size: int = 32,
                 threads: int = 1) -> None:
        self.checkpoint, self.workers, self.max_batch, self.threads = checkpoint, workers, max_batch, threads
        self._queue: asyncio.Queue[tuple[SongAsk, asyncio.Future[SongFiles | Failed]]] = asyncio.Queue(queue_size)
        self._pool: ProcessPoolExecutor | None = None
        self._feeders: list[asyncio.Task[None]] = []

    def _ensure_started(self) -> None:
        if self._pool is not None:
            return
        # spawn, not fork: the bot's process holds an event loop, threads and open connections.
        self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start_worker, initargs=(self.checkpoint, self.threads))
        self._feeders = [asyncio.create_task(self._feed(), name=f"singer-{i}") for i in range(self.workers)]
        log.info("singer started: %d worker(s), tune model %s", self.workers, self.checkpoint)

    async def sing(self, ask: SongAsk) -> SongFiles | Failed:
        """The song, or why not; ``SingerBusy`` at once when the queue is full."""
        self._ensure_started()
        future: asyncio.Future[SongFiles | Failed] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((ask, future))
        except asyncio.QueueFull:
            raise SingerBusy(f"{self._queue.qsize()} songs are waiting") from None
        return await future

    async def _feed(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            live = [(ask, future) for ask, future in batch if not future.done()]  # a caller gone: not sung
            if not live:
                continue
            try:
                results = await loop.run_in_executor(self._pool, _sing_batch, [ask for ask, _ in live])
            except Exception as error:  # a worker that died: these fail, the pool is rebuilt for the next
                log.exception("the singer's worker failed on %d song(s)", len(live))
                for _, future in live:
                    if not future.done():
                        future.set_exception(error)
                await self._restart()
                continue
            for (_, future), result in zip(live, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _restart(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start_worker, initargs=(self.checkpoint, self.threads))

    async def warm_up(self) -> None:
        """Start the workers and wait until one has loaded the model (tests, benchmarks)."""
        self._ensure_started()
        await asyncio.get_running_loop().run_in_executor(self._pool, _ping)

    async def close(self) -> None:
        for task in self._feeders:
            task.cancel()
        for task in self._feeders:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._feeders = []
        if self._pool is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown)
            self._pool = None
