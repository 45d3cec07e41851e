"""One typed settings object, read from the environment and ``.env`` once in ``main()``."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# charrnn.generation.sample.MIN_TARGET (a test holds them equal): the shortest lyric length the library aims at, a line.
# Not imported: settings are read before torch is (bot.cli times its commands from before the import).
LENGTH_FLOOR = 10

DEFAULT_BASE_URL = "https://api.telegram.org/bot"


class Settings(BaseSettings):
    # Empty values mean "use the default", so .env.example can list every variable blank.
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True)

    # Telegram
    telegram_bot_token: SecretStr | None = None
    telegram_base_url: str = DEFAULT_BASE_URL  # a self-hosted Bot API server, or the tests' fake
    telegram_base_file_url: str | None = None
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()  # empty: nobody is admin

    # Webhook mode (instead of polling): Telegram POSTs updates to WEBHOOK_URL, which a reverse proxy or
    # load balancer forwards to WEBHOOK_LISTEN:WEBHOOK_PORT. Several replicas may then share one database.
    webhook_url: str | None = None  # the public https URL; its path is the path the bot listens on
    webhook_listen: str = "127.0.0.1"  # behind a proxy: never exposed directly
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    # Telegram sends it in X-Telegram-Bot-Api-Secret-Token; other requests get 403. Required in webhook mode.
    webhook_secret: SecretStr | None = None

    # Storage and model
    database_url: str = "sqlite+aiosqlite:///./var/lyricbot.db"
    model_dir: Path = Path("var/models")
    corpus_path: Path | None = None  # None: the demo corpus bundled with charrnn
    device: str = "auto"

    # Where generation and fine-tuning run: "local" (a thread and a spawned process of this bot) or
    # "celery" (`lyricbot worker` processes on other machines, through the broker). With celery, the bot
    # and every worker must see the same MODEL_DIR (and CORPUS_PATH) at the same path: a shared volume.
    generation_backend: Literal["local", "celery"] = "local"
    celery_broker_url: str = "redis://127.0.0.1:6379/0"
    celery_result_backend: str | None = None  # None: the broker's Redis
    # How long a task taken by a worker that then died waits before another worker gets it (Redis has no
    # other way to tell). Longer than any generation; fine-tunes are acknowledged at once and never re-run.
    # Must stay below REQUEST_TIMEOUT_S, or a redelivered task comes after the bot stopped waiting.
    celery_visibility_timeout_s: float = Field(default=30.0, gt=0)
    celery_key_prefix: str = ""  # Redis key prefix for the queues and results (several bots on one Redis)
    # Generation tasks one worker takes at once; None: two batches' worth (see tasks_per_worker).
    worker_concurrency: int | None = Field(default=None, ge=1)
    # Model versions one generation worker keeps loaded: one per style asked for at about the same time. A task
    # for one more evicts the least recently used idle version, which its next task loads again (seconds).
    worker_model_lanes: int = Field(default=3, ge=1, le=64)

    # Limits
    max_prefix_chars: int = Field(default=200, ge=1, le=2000)
    # /len asks for a lyric of about that many visible characters, in whole lines (charrnn's target_length).
    min_length: int = Field(default=20, ge=LENGTH_FLOOR)
    max_length: int = Field(default=600, ge=1, le=3000)
    queue_size: int = Field(default=64, ge=1)
    max_batch: int = Field(default=64, ge=1)
    rate_limit_per_minute: int = Field(default=6, ge=1)
    request_timeout_s: float = Field(default=60.0, gt=0)
    # Telegram stops waiting for an inline answer after about 10 s (the query id then expires): a later one is wasted.
    inline_timeout_s: float = Field(default=8.0, gt=0)
    # How long a request stays its process's own without a heartbeat (renewed every third of it): after a crash,
    # another replica takes over its requests once this has run out. Above any clock skew between replicas.
    request_lease_s: float = Field(default=30.0, ge=3)

    # Defaults and quality
    # 0.5 (was 0.8): blind readers of ci, 40 readings in both orders, preferred it in 24; fluency +0.62, sense
    # +0.53 (each +-0.16); English level (docs/charrnn.md, "Temperature"). 0.3 read worse than 0.45.
    default_temperature: float = Field(default=0.5, gt=0)
    min_temperature: float = 0.1
    max_temperature: float = 2.0
    default_length: int = Field(default=160, ge=LENGTH_FLOOR)
    default_rhyme: bool = True  # lines end on the song's rhyme (/rhyme off per person)
    candidates: int = Field(default=4, ge=1, le=16)
    # Each clause of a /write lyric written this many times side by side in the batch, the likeliest kept
    # (charrnn.generation.phrases): blind readers of ci, fluency 2.05 -> 2.55, sense 1.5 -> 1.95; a /write takes
    # about twice as long at 4 as at 1 (off). Inline answers always write each clause once. At most
    # charrnn.config.MAX_PHRASE_CANDIDATES (not imported: settings load without PyTorch).
    phrase_candidates: int = Field(default=4, ge=1, le=16)
    # Titles from each lyric's own words: at most this many are fitted, the best kept (charrnn.text.titles); 0: none.
    title_candidates: int = Field(default=4, ge=0, le=16)
    # Corpus runs of this many Han characters (or 2/3 as many English words: bot.services.quality) are never shown.
    copy_threshold: int = Field(default=12, ge=4)
    torch_threads: int = Field(default=1, ge=1)
    # Melodies (bot.serving.singer): the tune model, its worker processes (started on the first song) and how
    # many songs may wait before a press is told to come back.
    tune_checkpoint: str = "tune"
    sing_workers: int = Field(default=2, ge=1)
    sing_queue: int = Field(default=32, ge=1)
    # auto: bfloat16 where the hardware does it natively (charrnn.generation.sample.serving_dtype), else float32.
    serving_precision: Literal["auto", "float32", "bfloat16"] = "auto"

    # Corpus and fine-tuning
    max_corpus_bytes: int = Field(default=2_000_000, ge=1)
    finetune_cron: str = "0 3 * * *"  # crontab, UTC: nightly at 03:00
    finetune_interval_s: float | None = Field(default=None, gt=0)  # instead of the cron (tests, demos)
    finetune_minutes: float = Field(default=5.0, gt=0)
    finetune_epochs: int = Field(default=10, ge=1)
    finetune_patience: int = Field(default=3, ge=0)  # evaluations without improvement before stopping; 0: never
    finetune_threads: int = Field(default=1, ge=1)  # the training process's CPU threads (it also runs niced)
    max_old_regression: float = Field(default=0.03, ge=0)  # old-text perplexity may worsen by 3% at most
    # Rejected candidates' checkpoints kept on disk, newest first (bot.serving.retention); the served versions
    # and their ancestors are always kept.
    keep_rejected: int = Field(default=3, ge=0)

    log_level: str = "INFO"

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _parse_admin_ids(cls, value: object) -> object:
        """``ADMIN_IDS=1,2`` or a JSON list: ids, never usernames, which can change hands."""
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").strip("[]").split(",")]
            return frozenset(int(p) for p in parts if p)
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _check_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        """Telegram accepts 1-256 of ``A-Za-z0-9_-``; 16 at least, so it cannot be guessed (or redacted badly)."""
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", value.get_secret_value()):
            raise ValueError("WEBHOOK_SECRET must be 16 to 256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @model_validator(mode="after")
    def _check_redelivery(self) -> Settings:
        if self.generation_backend == "celery" and self.celery_visibility_timeout_s >= self.request_timeout_s:
            raise ValueError(
                f"CELERY_VISIBILITY_TIMEOUT_S ({self.celery_visibility_timeout_s:g}) must be below REQUEST_TIMEOUT_S "
                f"({self.request_timeout_s:g}): a killed worker's tasks must come back while the bot still waits"
            )
        return self

    @property
    def secrets(self) -> list[str | None]:
        """Everything logs and error messages must never show."""
        urls = (self.database_url, self.celery_broker_url, self.celery_result_backend or "")
        passwords = [urlsplit(url).password for url in urls]
        return [self.token, self.webhook_secret.get_secret_value() if self.webhook_secret else None, *passwords]

    def allows_temperature(self, value: float) -> bool:
        """Finite and within MIN/MAX_TEMPERATURE: one rule for typed input, buttons and a worker's jobs."""
        return math.isfinite(value) and self.min_temperature <= value <= self.max_temperature

    def allows_length(self, value: int) -> bool:
        return self.min_length <= value <= self.max_length

    @property
    def tasks_per_worker(self) -> int:
        """Generation tasks one Celery worker takes from the queue at once. A worker holds what it takes
        until done, so taking much more than its batch can run leaves tasks waiting in one worker while
        another idles: by default, two batches' worth (requests running, and the next ones ready)."""
        if self.worker_concurrency is not None:
            return self.worker_concurrency
        return 2 * max(1, self.max_batch // self.rows_per_write)

    @property
    def rows_per_write(self) -> int:
        """Batch rows a /write holds (``GenerationJob.rows``): what the capacity estimates count."""
        return self.candidates * self.phrase_candidates + self.title_candidates

    @property
    def token(self) -> str | None:
        return self.telegram_bot_token.get_secret_value() if self.telegram_bot_token else None
