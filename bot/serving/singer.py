"""Songs made off the event loop: the tune model and the renderers live in worker processes.

A melody is a batch of the tune model (``charrnn.music.sing``) and three renderings (lead sheet PNG, OGG Opus,
ABC); all of it is CPU work that would stall every chat if it ran on the event loop, and a thread would hold
the GIL through Verovio's and libopus's Python callers. So a ``ProcessPoolExecutor`` of ``workers`` processes
(started on the first song, so a bot nobody asks to sing never pays for it), each loading the tune model and
the renderers once. Requests that arrive together are sung together: the feeder takes what waits (up to
``max_batch``) as one batch, one run of the tune model, then renders each song as a task of its own, which both
workers share and which is sent as soon as it is done; ten people pressing at once cost one generation, not ten,
and the next batch is composed while this one renders. A full queue refuses at once
(``SingerBusy``), a lyric that cannot be sung says why (``SingError``); neither loses anything. One song that
fails fails alone (``Failed``); a worker that dies fails its batch and the pool is rebuilt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
from collections.abc import Coroutine
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from charrnn.music.sing import Choices, Song

log = logging.getLogger(__name__)


INTERNAL = "something went wrong on my side while singing it"
BATCH_WINDOW_S = 0.05


class SingerBusy(RuntimeError):
    """Too many songs are waiting (or the singer is closing); the person is told to try again shortly."""


@dataclass(frozen=True)
class SongFiles:
    """What a person receives: the lead sheet, the voice message, the ABC for musicians."""

    title: str
    key: str  # "C major"
    tempo: str  # "♩ = 96", "♩. = 64" in 6/8
    png: bytes
    ogg: bytes
    abc: str
    seconds: float  # how long the tune plays
    sung: int = 0  # of the lyric's ``of`` lines, the first ``sung`` (a lyric longer than a lead sheet holds)
    of: int = 0


@dataclass(frozen=True)
class SongAsk:
    lyric: str
    title: str
    seed: int | None = None
    choices: Choices = field(default_factory=Choices)  # the person's key, meter, tempo; empty: the lyric's mood


@dataclass(frozen=True)
class Failed:
    """A lyric the worker could not sing, and why (a ``SingError``'s words, and its code and params for the
    person's language; no code: our own failure)."""

    reason: str
    code: str = ""
    params: dict[str, object] = field(default_factory=dict)


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


def _compose(asks: list[SongAsk]) -> list[Song | Failed]:
    """The melodies of a batch, in one run of the tune model; a lyric that cannot be sung says why."""
    from charrnn.music.sing import SingError, SongRequest, melody_request, sing

    worker = _WORKER[0]
    out: list[Song | Failed] = [Failed("") for _ in asks]
    ready: list[tuple[int, SongRequest]] = []
    for i, ask in enumerate(asks):
        try:
            ready.append((i, melody_request(ask.lyric, ask.choices, title=ask.title)))
        except SingError as error:
            out[i] = Failed(str(error), error.code, error.params)
    try:
        songs = sing(worker.model, worker.vocab, [r for _, r in ready],  # type: ignore[arg-type]
                     seeds=[asks[i].seed for i, _ in ready])
    except Exception:  # a bug: said in the log, and to each person as a failure, not a dead worker
        logging.getLogger(__name__).exception("the tune model failed on a batch of %d", len(ready))
        return [Failed(INTERNAL) if isinstance(o, Failed) and not o.reason else o for o in out]
    for (i, _), song in zip(ready, songs, strict=True):
        out[i] = song
    return out


def _picture(song: Song) -> bytes:
    from charrnn.music.render import Renderer

    renderer: Renderer = _WORKER[0].renderer  # type: ignore[assignment]
    return renderer.png(song)


def _voice(song: Song) -> bytes:
    from charrnn.music.render import Renderer

    renderer: Renderer = _WORKER[0].renderer  # type: ignore[assignment]
    return renderer.ogg(song)


# --- the bot side ------------------------------------------------------------------------------------


class Singer:
    """Sings lyrics in worker processes, batching the requests that wait together."""

    def __init__(self, checkpoint: str, workers: int = 1, max_batch: int = 16, queue_size: int = 32,
                 threads: int = 1) -> None:
        self.checkpoint, self.workers, self.max_batch, self.threads = checkpoint, workers, max_batch, threads
        self._queue: asyncio.Queue[tuple[SongAsk, asyncio.Future[SongFiles | Failed]]] = asyncio.Queue(queue_size)
        self._pool: ProcessPoolExecutor | None = None
        self._feeders: list[asyncio.Task[None]] = []
        self._renders: set[asyncio.Future[None]] = set()

    def _ensure_started(self) -> None:
        if self._pool is not None:
            return
        self._pool = self._new_pool()
        self._feeders = [asyncio.create_task(self._feed(), name="singer")]
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
        """Each batch: what waits after a short window, its melodies in one task, then each song's rendering in
        tasks of its own, so that both workers render and every song is sent the moment it is ready. The feeder
        does not wait for a batch: the next one is composed on the other worker meanwhile."""
        while True:
            batch = [await self._queue.get()]
            await asyncio.sleep(BATCH_WINDOW_S)  # presses a moment apart (ten people at once) share a batch
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            live = [(ask, future) for ask, future in batch if not future.done()]  # a caller gone: not sung
            if live:
                self._track(self._sing(self._pool, live))

    def _track(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(work)
        self._renders.add(task)
        task.add_done_callback(self._renders.discard)

    async def _sing(self, pool: ProcessPoolExecutor | None,
                    live: list[tuple[SongAsk, asyncio.Future[SongFiles | Failed]]]) -> None:
        try:
            composed = await asyncio.get_running_loop().run_in_executor(pool, _compose, [ask for ask, _ in live])
        except asyncio.CancelledError:
            _fail(live, SingerBusy("the singer is closing"))
            raise
        except Exception as error:
            self._failed(pool, live, error)
            return
        for item, song in zip(live, composed, strict=True):
            if isinstance(song, Failed):
                if not item[1].done():
                    item[1].set_result(song)
            else:
                self._track(self._render(pool, song, item))

    async def _render(self, pool: ProcessPoolExecutor | None, song: Song,
                      item: tuple[SongAsk, asyncio.Future[SongFiles | Failed]]) -> None:
        """The picture and the voice as two tasks, so that the workers share a batch's work evenly."""
        from charrnn.music.render import timed_notes

        loop = asyncio.get_running_loop()
        try:
            png, ogg = await asyncio.gather(loop.run_in_executor(pool, _picture, song),
                                            loop.run_in_executor(pool, _voice, song))
        except asyncio.CancelledError:
            _fail([item], SingerBusy("the singer is closing"))
            raise
        except BrokenProcessPool as error:
            self._failed(pool, [item], error)
            return
        except Exception:  # this song's alone: the worker and the others carry on
            log.exception("rendering a song failed")
            if not item[1].done():
                item[1].set_result(Failed(INTERNAL))
            return
        notes = timed_notes(song)
        files = SongFiles(song.title, song.key_name, song.tempo_mark, png, ogg, song.abc,
                          notes[-1].end if notes else 0.0, song.sung, song.of)
        if not item[1].done():
            item[1].set_result(files)

    def _failed(self, pool: ProcessPoolExecutor | None,
                items: list[tuple[SongAsk, asyncio.Future[SongFiles | Failed]]], error: Exception) -> None:
        """A worker died (killed, out of memory) or the pool was shut: these fail, and a pool that broke is
        rebuilt for the next songs, once (another task may have rebuilt it already)."""
        log.error("the singer failed on %d song(s): %r", len(items), error)
        _fail(items, error)
        if isinstance(error, BrokenProcessPool) and self._pool is pool:
            self._restart()

    def _restart(self) -> None:
        pool = self._pool
        self._pool = self._new_pool()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the bot's process holds an event loop, threads and open connections.
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_worker, initargs=(self.checkpoint, self.threads))

    async def close(self) -> None:
        tasks = [*self._feeders, *self._renders]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._feeders = []
        while not self._queue.empty():  # nobody is left waiting on a song that will never come
            _fail([self._queue.get_nowait()], SingerBusy("the singer is closing"))
        if self._pool is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown)
            self._pool = None


def _fail(items: list[tuple[SongAsk, asyncio.Future[SongFiles | Failed]]], error: BaseException) -> None:
    for _, future in items:
        if not future.done():
            future.set_exception(error)
