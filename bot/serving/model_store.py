"""Where the models live: one immutable directory per version in ``MODEL_DIR``, verified on every load.

Which version serves a style is not kept here: it is the style's row (``styles.active_version``, an alias as MLflow
and Vertex call it), changed by one conditional UPDATE, so a rollback is a pointer flip that two replicas cannot
both win, and a version directory appears whole (``os.replace``) before any row can name it.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from dataclasses import replace
from pathlib import Path

from bot.db.repos.training import VersionRecord
from bot.serving.generation import LoadedModel
from charrnn.checkpoint import BASE, load_checkpoint, pretrained_path, read_meta
from charrnn.data import demo_corpus_path, load_corpus
from charrnn.deadline import Deadline
from charrnn.model import ModelConfig
from charrnn.pipeline import train_model
from charrnn.sizing import size_for_text
from charrnn.train_config import TrainConfig, select_device
from charrnn.train_events import Callback
from charrnn.transfer import TransferConfig, transfer
from charrnn.vocab import Vocab

log = logging.getLogger(__name__)
LEGACY_ACTIVE = "ACTIVE"
VERSION_NAME = re.compile(r"[A-Za-z0-9][\w.-]{0,63}")  # a directory name in MODEL_DIR, never a path


class ModelStore:
    def __init__(self, model_dir: Path, device: str = "auto") -> None:
        self.model_dir = model_dir
        self.device = device

    def legacy_active(self) -> str | None:
        """The version a model directory from before migration 0012 served: its ``ACTIVE`` file names it. The
        default style's row adopts it on the first start (``StyleService.ensure_default``); nothing writes it now."""
        try:
            name = (self.model_dir / LEGACY_ACTIVE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name if VERSION_NAME.fullmatch(name) and (self.model_dir / name / "meta.json").is_file() else None

    def forget_legacy_active(self) -> None:
        """Once the default style's row names the version, the old pointer would only mislead whoever reads it."""
        (self.model_dir / LEGACY_ACTIVE).unlink(missing_ok=True)

    def load(self, version: str) -> LoadedModel:
        """Load and verify (checksums, no pickle) a version, ready for serving."""
        ckpt = load_checkpoint(self.model_dir / version, device=select_device(self.device))
        ckpt.model.eval()
        return LoadedModel(ckpt.model, ckpt.vocab, version, ckpt.words, ckpt.register)

    def corpus_text(self, corpus_path: Path | None) -> str:
        return load_corpus(corpus_path or demo_corpus_path())

    def install_base(self) -> str:
        """Copy the pretrained model shipped with the package into a version directory (once), verified."""
        source = load_checkpoint(pretrained_path())  # checksums verified here
        version = f"{BASE}-{source.weights_sha256[:12]}"
        self.copy_in(pretrained_path(), version)
        load_checkpoint(self.model_dir / version)
        return version

    def copy_in(self, source: Path, version: str) -> None:
        """Copy a version directory from elsewhere in as ``version``, whole or not at all; nothing if it is here.

        The bot and its workers may all start on one empty shared volume: each copies to a name of its own, the
        first rename wins, the others find the version there and drop their copy.
        """
        target = self.model_dir / version
        if (target / "meta.json").is_file():
            return
        self.model_dir.mkdir(parents=True, exist_ok=True)
        partial = self.model_dir / f".{version}.{os.getpid()}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        try:
            shutil.copytree(source, partial)
            os.replace(partial, target)  # appears whole or not at all
        except OSError:
            if not (target / "meta.json").is_file():
                raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)

    def train_first(
        self,
        corpus_path: Path | None,
        minutes: float,
        model_config: ModelConfig | None = None,
        train_config: TrainConfig | None = None,
        callback: Callback | None = None,
        from_base: bool = False,
        prefix: str = "v",
        deadline: Deadline | None = None,
    ) -> str:
        """Train a model on the corpus into a new version directory; the caller points a style at it.

        ``from_base``: transfer from the shipped pretrained model (``charrnn.transfer``: a mixture of a
        corpus model started from the base's embeddings and the base fine-tuned) instead of random weights.
        ``prefix`` starts the directory's name, so a style's versions are told apart on disk.
        ``deadline`` (default: ``minutes`` from now): when all of it, the version in place, is done; a command
        that started its clock earlier (``lyricbot train``) passes its own, so the budget covers the command.
        The work directory (training state, the components' last checkpoints) is removed, finished or not.
        """
        deadline = deadline or Deadline.after(60 * minutes)
        text = self.corpus_text(corpus_path)
        version = time.strftime(f"{prefix}%Y%m%d-%H%M%S", time.gmtime())
        work = self.model_dir / "runs" / version
        config = replace(train_config or TrainConfig(), max_minutes=minutes, device=self.device)
        if not from_base and model_config is None:  # sized to the corpus and the budget, as `charrnn train` is
            sizing = size_for_text(text, minutes, select_device(self.device).type)
            log.info("%s", sizing.describe())
            model_config = sizing.model_config()
            if train_config is None:
                config = sizing.train_config(config)
        log.info(
            "training a model on %s (%d characters, %.1f min, %s)",
            corpus_path or "the demo corpus",
            len(text),
            minutes,
            "from the pretrained base" if from_base else "from scratch",
        )
        try:
            if from_base:
                base = load_checkpoint(BASE, device=select_device(self.device))
                recipe = TransferConfig(minutes=minutes, device=self.device, corpus_model=model_config)
                result = transfer(text, base, work, recipe, callback=callback, deadline=deadline)
                result.checkpoint.rename(self.model_dir / version)
            else:
                train_model(text, model_config, config, out_dir=work, callback=callback, deadline=deadline)
                (work / "best").rename(self.model_dir / version)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return version


def version_line(v: VersionRecord, feedback: dict[str, tuple[float | None, int]], active: str | None) -> str:
    """One line of /models: the held-out perplexities (one scoring rule for every version), ratings, use."""
    stars, count = feedback.get(v.version, (None, 0))
    rating = f"{stars:.1f}\u2605" if stars is not None else "no ratings"
    old = f"{v.old_ppl:.1f}" if v.old_ppl is not None else "?"
    new = f"{v.new_ppl:.1f}" if v.new_ppl is not None else "?"
    mark = " (active)" if v.version == active else ""
    return f"{v.version}{mark}: old-text ppl {old}, new-text ppl {new}, {rating}, {count} requests"


def style_corpus_path(model_dir: Path, name: str) -> Path:
    """Where ``lyricbot train --style`` keeps the style's own corpus: its fine-tunes replay it and guard against
    forgetting it, as the default style's do with ``CORPUS_PATH``. On the shared volume, beside the versions."""
    return model_dir / "styles" / name / "corpus.txt"


def version_vocab(model_dir: Path, version: str) -> Vocab:
    """A version's vocabulary without loading its weights (a mixture keeps its own with its components)."""
    meta = read_meta(model_dir / version)
    if "vocab" in meta:
        return Vocab.from_json(meta["vocab"])
    return load_checkpoint(model_dir / version).vocab
