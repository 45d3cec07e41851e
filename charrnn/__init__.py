"""charrnn: character-level RNN, LSTM and GRU language models for lyrics, usable on their own."""

from charrnn.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from charrnn.config import SampleConfig
from charrnn.data import CorpusError, load_corpus, split_corpus
from charrnn.evaluate import EvalResult, evaluate
from charrnn.generation.batching import BatchGenerator, generate_many
from charrnn.generation.result import Generation
from charrnn.generation.sample import generate
from charrnn.model import CharRNN, ModelConfig
from charrnn.train import Trainer
from charrnn.train_config import TrainConfig, select_device
from charrnn.train_events import TrainResult
from charrnn.vocab import UNK, Vocab

__all__ = [
    "UNK",
    "BatchGenerator",
    "CharRNN",
    "Checkpoint",
    "CheckpointError",
    "CorpusError",
    "EvalResult",
    "Generation",
    "ModelConfig",
    "SampleConfig",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "Vocab",
    "evaluate",
    "generate",
    "generate_many",
    "load_checkpoint",
    "load_corpus",
    "save_checkpoint",
    "select_device",
    "split_corpus",
]
