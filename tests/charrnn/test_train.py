import contextlib
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from charrnn.checkpoint import load_checkpoint
from charrnn.data import ConsecutiveSampling, RandomSampling
from charrnn.evaluate import evaluate
from charrnn.model import CharRNN, ModelConfig
from charrnn.pipeline import train_model
from charrnn.train import Trainer
from charrnn.train_events import EvalEvent, SampleEvent, StepEvent, TrainEvent
from charrnn.vocab import Vocab
from tests.helpers.models import LYRICS, TINY, fast


def test_overfitting_a_short_string_drives_the_loss_near_zero() -> None:
    text = "hello world, hello lyrics\n"
    vocab = Vocab.build(text)
    ids = torch.tensor(vocab.encode(text * 40))
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=len(vocab), cell="lstm", layers=1, embed=16, hidden=64, dropout=0.0))
    config = fast(epochs=60, lr=1e-2, weight_decay=0.0, sampling="consecutive")
    Trainer(model, ConsecutiveSampling(ids, 4, 26), ids[:200], config).run()
    # The first character of a period is unpredictable from no context; everything else is learnt.
    assert evaluate(model, ids[:520]).nll < 0.05


def test_uniform_model_perplexity_equals_vocabulary_size() -> None:
    model = CharRNN(ModelConfig(vocab_size=37, layers=1, embed=8, hidden=8, tie_weights=False))
    with torch.no_grad():
        model.decoder.weight.zero_()
        model.decoder.bias.zero_()
    result = evaluate(model, torch.randint(0, 37, (5000,)))
    assert math.isclose(result.ppl, 37.0, rel_tol=1e-5)
    assert math.isclose(result.bpc, math.log2(37), rel_tol=1e-5)
    assert result.chars == 4999


def test_evaluation_does_not_depend_on_stream_split() -> None:
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=9, layers=1, embed=8, hidden=8))
    ids = torch.randint(0, 9, (3001,))
    one = evaluate(model, ids, stream_chars=10_000)
    many = evaluate(model, ids, stream_chars=500, seq_len=64)
    assert one.chars == many.chars == 3000
    assert abs(one.nll - many.nll) < 0.01


def test_fixed_seed_repeats_on_cpu() -> None:
    """The README's promise: on one machine, the same seed trains the same weights, bit for bit (same
    process, so the same kernels and thread count; across CPUs only the loss curve is close)."""
    a, model_a, _ = train_model(LYRICS, TINY, fast())
    b, model_b, _ = train_model(LYRICS, TINY, fast())
    assert a.best_val_nll == b.best_val_nll
    for pa, pb in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    c, _, _ = train_model(LYRICS, TINY, fast(seed=1))
    assert c.best_val_nll != a.best_val_nll


def test_resume_continues_exactly(tmp_path: Path) -> None:
    config = fast(epochs=6, sampling="consecutive", weight_decay=0.0)
    model_config = replace(TINY, dropout=0.3)  # dropout makes the RNG state part of what must resume
    straight, model_straight, _ = train_model(LYRICS, model_config, config)

    class Crash(Exception):
        pass

    def crash_after_epoch_3(event: TrainEvent) -> None:
        if isinstance(event, EvalEvent) and event.epoch == 3:
            raise Crash

    with pytest.raises(Crash):
        train_model(LYRICS, model_config, config, out_dir=tmp_path, callback=crash_after_epoch_3, checkpoint_every_s=0)
    resumed, model_resumed, _ = train_model(LYRICS, model_config, config, out_dir=tmp_path, resume=True)
    assert resumed.steps == straight.steps and resumed.epochs_run == 6
    for pa, pb in zip(model_straight.parameters(), model_resumed.parameters(), strict=True):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("sampling", ["random", "consecutive"])
def test_resume_mid_epoch_skips_consumed_batches(sampling: str) -> None:
    vocab = Vocab.build(LYRICS)
    ids = torch.tensor(vocab.encode(LYRICS))

    def make() -> Trainer:
        torch.manual_seed(0)
        model = CharRNN(ModelConfig(vocab_size=len(vocab), cell="lstm", layers=1, embed=8, hidden=16, dropout=0.2))
        source = RandomSampling(ids, 4, 16, seed=0) if sampling == "random" else ConsecutiveSampling(ids, 4, 16)
        return Trainer(model, source, ids[:100], fast(epochs=2))

    full = make()
    full.run()
    half = make()
    stop_after = 5

    class Stop(Exception):
        pass

    def interrupt(event: TrainEvent) -> None:
        if isinstance(event, StepEvent) and event.step == stop_after:
            raise Stop

    with contextlib.suppress(Stop):
        half.run(interrupt)
    tensors, meta = half.state_dict()
    weights = {k: v.clone() for k, v in half.model.state_dict().items()}
    again = make()
    again.model.load_state_dict(weights)
    again.load_state_dict(tensors, meta)
    again.run()
    for pa, pb in zip(full.model.parameters(), again.model.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_early_stopping_and_time_budget() -> None:
    stopped, _, _ = train_model(LYRICS, TINY, fast(epochs=500, patience=2, lr=3e-2))
    assert stopped.stopped == "early_stop" and stopped.epochs_run < 500
    budget, _, _ = train_model(LYRICS, TINY, fast(epochs=100_000, max_minutes=0.02))
    assert budget.stopped == "time_budget" and budget.epochs_run < 100_000


def test_callback_sees_steps_evals_and_samples_and_best_checkpoint_is_best(tmp_path: Path) -> None:
    events: list[TrainEvent] = []
    config = fast(epochs=6, sample_every=2, sample_prefixes=("我",), sample_length=10)
    result, _, _ = train_model(LYRICS, TINY, config, out_dir=tmp_path, callback=events.append)
    steps = [e for e in events if isinstance(e, StepEvent)]
    evals = [e for e in events if isinstance(e, EvalEvent)]
    samples = [e for e in events if isinstance(e, SampleEvent)]
    assert len(evals) == 6 and evals[-1].final
    assert all(s.chars_per_s > 0 and math.isfinite(s.loss) for s in steps)
    assert [s.epoch for s in samples] == [2, 4, 6] and samples[0].samples["我"].startswith("我")
    best = load_checkpoint(tmp_path / "best")
    assert math.isclose(best.metrics["val_nll"], min(e.val.nll for e in evals))
    assert math.isclose(best.metrics["val_nll"], result.best_val_nll)
