"""Checkpoints that describe themselves and load without pickle.

A checkpoint is a directory::

    meta.json                       model config, vocabulary, training config, metrics, corpus
                                    SHA-256, parent, the corpus's English words (``charrnn.text.words``;
                                    absent in older checkpoints), and the name + SHA-256 of every
                                    file below
    weights-<sha12>.safetensors     model weights
    trainstate-<sha12>.safetensors  optional: optimizer, RNG (for exact resume)

Data files are content-addressed and written before ``meta.json``, which is replaced atomically
(temp file, fsync, rename, fsync the directory). A crash at any point therefore leaves either the old
checkpoint or the new one, never a mix; stale files are swept after the switch.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from charrnn.files import _sha256_file, write_atomic
from charrnn.mixture import MixtureLM
from charrnn.model import CharRNN, ModelConfig
from charrnn.text.forms import REGISTER_TUNE
from charrnn.text.words import words_from_json, words_to_json
from charrnn.vocab import Vocab

FORMAT = "charrnn-checkpoint"
VERSION = 1
META = "meta.json"
BASE = "base"  # wherever a checkpoint is expected, the pretrained model shipped with the package
TUNE = "tune"  # the shipped tune model, which sets lyrics to melodies (charrnn.music)
MIXTURE = "mixture"  # meta "kind" of a mixture: one subdirectory (a checkpoint) per component
REGISTER = "register"  # meta: the register line a fine-tuned model keeps from its parent (Checkpoint.register)


def pretrained_path(name: str = BASE) -> Path:
    """A shipped model's directory: ``base`` (``make pretrained`` writes it) or ``tune`` (``make pretrained-tune``)."""
    return Path(str(resources.files("charrnn") / "pretrained" / name))


def resolve(name: str | Path) -> Path:
    """``base`` and ``tune`` are the shipped models; anything else is a checkpoint directory (``./base`` for a
    local one)."""
    return pretrained_path(str(name)) if str(name) in (BASE, TUNE) else Path(name)


class CheckpointError(ValueError):
    """A checkpoint that is missing, incomplete, tampered with or of another format."""


@dataclass(frozen=True)
class Checkpoint:
    model: CharRNN | MixtureLM
    vocab: Vocab
    meta: dict[str, Any]
    path: Path
    train_state: tuple[dict[str, torch.Tensor], dict[str, Any]] | None = field(default=None, repr=False)
    # The English words of the corpora it learnt (charrnn.text.words); None: not recorded (an older checkpoint),
    # its English is not constrained.
    words: frozenset[str] | None = field(default=None, repr=False)

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.meta.get("metrics", {}))

    @property
    def register(self) -> str:
        """What the model reads before a Chinese lyric without a tune of its own (``charrnn.text.forms.REGISTER_TUNE``):
        a tune's name line for a model that learnt the Song ci (``corpora`` names it, or its parent's, recorded as
        ``register`` when it was fine-tuned), '' for any other (a mixture or a model of modern lyrics has no tune
        names to read)."""
        if REGISTER in self.meta:
            return str(self.meta[REGISTER])
        return REGISTER_TUNE + "\n" if "songci" in (self.meta.get("corpora") or {}) else ""

    @property
    def weights_sha256(self) -> str:
        """The weights' SHA-256; for a mixture, one over its components' and its weights."""
        if self.meta.get("kind") == MIXTURE:
            return str(self.meta["fingerprint"])
        return str(self.meta["files"]["weights"]["sha256"])

    @property
    def single(self) -> CharRNN:
        """The model, when it is one network (what fine-tuning and vocabulary growth need)."""
        if not isinstance(self.model, CharRNN):
            raise CheckpointError(f"{self.path} is a mixture of models, not one model")
        return self.model








def _save_tensors(directory: Path, stem: str, tensors: dict[str, torch.Tensor]) -> dict[str, str]:
    """Write tensors under a name derived from their content, so a new file never overwrites the old."""
    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
    sha = hashlib.sha256(data).hexdigest()
    name = f"{stem}-{sha[:12]}.safetensors"
    write_atomic(directory / name, lambda p: p.write_bytes(data))
    return {"name": name, "sha256": sha}


def save_checkpoint(
    directory: str | Path,
    model: CharRNN,
    vocab: Vocab,
    *,
    train_config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    corpus_sha256: str | None = None,
    parent: str | None = None,
    train_state: tuple[dict[str, torch.Tensor], dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    weights: dict[str, torch.Tensor] | None = None,
    half: bool = False,
    words: Collection[str] | None = None,
) -> Path:
    """Write (or atomically replace) the checkpoint in ``directory``; returns the directory.

    ``weights`` stores a saved ``state_dict`` of the same architecture instead of ``model``'s current one.
    ``half`` stores floating-point weights as float16 (half the size; loading widens them back to float32).
    ``words``: the English words of its corpora (``charrnn.text.words.corpus_words``); None records none.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if len(vocab) != model.config.vocab_size:
        raise ValueError(f"vocabulary has {len(vocab)} symbols, model has {model.config.vocab_size}")
    # Tied weights are one tensor under two names; safetensors refuses shared storage, so store one.
    state = weights if weights is not None else model.state_dict()
    state = {k: v for k, v in state.items() if not (model.config.tie_weights and k == "decoder.weight")}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    files = {"weights": _save_tensors(directory, "weights", state)}
    if train_state is not None:
        tensors, _state_meta = train_state
        files["train_state"] = _save_tensors(directory, "trainstate", tensors)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model_config": model.config.to_json(),
        "vocab": vocab.to_json(),
        "train_config": train_config or {},
        "metrics": _json_safe(metrics or {}),
        "corpus_sha256": corpus_sha256,
        "parent": parent,
        "files": files,
        "train_state": _json_safe(train_state[1]) if train_state is not None else None,
        **(extra or {}),
        **({"words": words_to_json(words)} if words is not None else {}),
    }
    write_atomic(directory / META, lambda p: p.write_text(json.dumps(meta, ensure_ascii=False, indent=1)))
    keep = {f["name"] for f in files.values()} | {META}
    for stale in directory.glob("*.safetensors"):
        if stale.name not in keep:
            stale.unlink(missing_ok=True)
    return directory


def resave(checkpoint: Checkpoint, directory: str | Path, half: bool = False) -> Path:
    """Write a loaded single-model checkpoint elsewhere, its description (metrics, lineage, ...) kept."""
    meta = checkpoint.meta
    own = {"format", "version", "created", "model_config", "vocab", "train_config", "metrics", "corpus_sha256",
           "parent", "files", "train_state", "words"}
    return save_checkpoint(directory, checkpoint.single, checkpoint.vocab, train_config=meta.get("train_config"),
                           metrics=meta.get("metrics"), corpus_sha256=meta.get("corpus_sha256"),
                           parent=meta.get("parent"), extra={k: v for k, v in meta.items() if k not in own},
                           half=half, words=checkpoint.words)


def _json_safe(value: Any) -> Any:
    """JSON has no NaN or infinity; store them as null rather than writing invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def read_meta(directory: str | Path) -> dict[str, Any]:
    """The checkpoint's ``meta.json``, checked for format; no tensor is read."""
    directory = resolve(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint not found: {directory} is not a directory")
    try:
        meta = json.loads((directory / META).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"not a charrnn checkpoint: {directory / META} is missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"corrupted checkpoint: {directory / META} is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"not a charrnn checkpoint: {directory / META} has the wrong format")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"checkpoint version {meta.get('version')} is not supported (expected {VERSION})")
    return meta


def _words(directory: Path, meta: dict[str, Any]) -> frozenset[str] | None:
    if "words" not in meta:
        return None
    try:
        return words_from_json(meta["words"])
    except ValueError as exc:
        raise CheckpointError(f"corrupted checkpoint: {directory / META}: {exc}") from None


def add_words(directory: str | Path, words: Collection[str]) -> frozenset[str]:
    """Add English words to a checkpoint's own (``meta.json`` replaced atomically; no other file changes);
    returns them all. How a checkpoint written before words were recorded gets its corpora's."""
    directory = resolve(directory)
    load_checkpoint(directory)  # a checkpoint that is whole, before it is changed
    meta = read_meta(directory)
    merged = _words(directory, meta) or frozenset()
    merged |= frozenset(words)
    meta["words"] = words_to_json(merged)
    write_atomic(directory / META, lambda p: p.write_text(json.dumps(meta, ensure_ascii=False, indent=1)))
    return merged


def _load_verified(directory: Path, entry: dict[str, Any]) -> dict[str, torch.Tensor]:
    name = str(entry.get("name", ""))
    if not name or "/" in name or name.startswith("."):
        raise CheckpointError(f"corrupted checkpoint: bad file name {name!r} in {directory / META}")
    path = directory / name
    if not path.is_file():
        raise CheckpointError(f"incomplete checkpoint: {path} is missing")
    if _sha256_file(path) != entry.get("sha256"):
        raise CheckpointError(f"corrupted checkpoint: {path} does not match its SHA-256")
    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"corrupted checkpoint: {path}: {exc}") from None


def load_checkpoint(
    directory: str | Path, device: torch.device | str = "cpu", with_train_state: bool = False
) -> Checkpoint:
    """Load and verify a checkpoint: checksums first, then safetensors (which runs no code).

    ``directory`` may be ``base``, the shipped model. Float16 weights are widened to the model's float32.
    """
    directory = resolve(directory)
    meta = read_meta(directory)
    if meta.get("kind") == MIXTURE:
        return _load_mixture(directory, meta, device)
    try:
        config = ModelConfig.from_json(meta["model_config"])
        vocab = Vocab.from_json(meta["vocab"])
        weights_entry = meta["files"]["weights"]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"corrupted checkpoint: {directory / META}: {exc}") from None
    if len(vocab) != config.vocab_size:
        raise CheckpointError(f"corrupted checkpoint: vocabulary of {len(vocab)} for a model of {config.vocab_size}")
    weights = _load_verified(directory, weights_entry)
    if config.tie_weights:
        weights["decoder.weight"] = weights.get("embedding.weight", torch.empty(0))
    try:
        model = CharRNN(config)
        model.load_state_dict(weights, strict=True)
    except (RuntimeError, ValueError) as exc:
        reason = str(exc).splitlines()[0]
        raise CheckpointError(f"corrupted checkpoint: weights do not fit the config: {reason}") from None
    model.to(device)
    train_state = None
    if with_train_state and meta.get("files", {}).get("train_state"):
        train_state = (_load_verified(directory, meta["files"]["train_state"]), meta["train_state"])
    return Checkpoint(model=model, vocab=vocab, meta=meta, path=directory, train_state=train_state,
                      words=_words(directory, meta))


def save_mixture(
    directory: str | Path,
    components: Sequence[tuple[str, Checkpoint]],
    weights: Sequence[float],
    *,
    train_config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    corpus_sha256: str | None = None,
    parent: str | None = None,
    extra: dict[str, Any] | None = None,
    words: Collection[str] | None = None,
) -> Path:
    """Write a mixture: each component as a checkpoint in a subdirectory of its name, then ``meta.json``
    (which names them, with their SHA-256) atomically, last. ``words``: as ``save_checkpoint``'s."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    mixture = MixtureLM([c.single for _, c in components], [c.vocab for _, c in components], weights)
    entries = []
    for name, component in components:
        if not name.isidentifier():
            raise ValueError(f"bad component name {name!r}")
        target = directory / name
        if component.path.resolve() != target.resolve():
            resave(component, target)
        entries.append({"name": name, "sha256": load_checkpoint(target).weights_sha256})
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "kind": MIXTURE,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "vocab": mixture.vocab.to_json(),
        "weights": list(mixture.config.weights),
        "components": entries,
        "fingerprint": mixture.fingerprint([e["sha256"] for e in entries]),
        "train_config": train_config or {},
        "metrics": _json_safe(metrics or {}),
        "corpus_sha256": corpus_sha256,
        "parent": parent,
        **(extra or {}),
        **({"words": words_to_json(words)} if words is not None else {}),
    }
    write_atomic(directory / META, lambda p: p.write_text(json.dumps(meta, ensure_ascii=False, indent=1)))
    return directory


def _load_mixture(directory: Path, meta: dict[str, Any], device: torch.device | str) -> Checkpoint:
    try:
        entries = [(str(e["name"]), str(e["sha256"])) for e in meta["components"]]
        weights = [float(w) for w in meta["weights"]]
        union = Vocab.from_json(meta["vocab"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"corrupted checkpoint: {directory / META}: {exc}") from None
    parts = []
    for name, sha256 in entries:
        if not name.isidentifier():
            raise CheckpointError(f"corrupted checkpoint: bad component name {name!r}")
        part = load_checkpoint(directory / name, device=device)
        if part.weights_sha256 != sha256:
            raise CheckpointError(f"corrupted checkpoint: component {name} does not match its SHA-256")
        parts.append(part)
    try:
        model = MixtureLM([p.single for p in parts], [p.vocab for p in parts], weights, union=union)
    except ValueError as exc:
        raise CheckpointError(f"corrupted checkpoint: {exc}") from None
    if model.fingerprint([sha for _, sha in entries]) != meta.get("fingerprint"):
        raise CheckpointError(f"corrupted checkpoint: {directory / META} does not match its fingerprint")
    return Checkpoint(model=model.to(device), vocab=union, meta=meta, path=directory, words=_words(directory, meta))
