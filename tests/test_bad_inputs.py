"""Bad or unusual inputs to the API, each with its expected outcome: a clear error naming the
argument, or a documented conversion. No case may crash with an internal error."""

import math

import numpy as np
import pytest
import torch

import sepcore
from sepcore.api import separate_with_info

RATE = 8000
GOOD = (0.3 * np.sin(2 * np.pi * 110 * np.arange(RATE) / RATE)).astype(np.float32)

# (case, keyword arguments, expected exception type, expected message fragment)
ERRORS = [
    ("bool samples", dict(mixture=GOOD > 0), TypeError, "real samples"),
    ("complex samples", dict(mixture=GOOD.astype(np.complex64)), TypeError, "real samples"),
    ("string samples", dict(mixture=np.array(["a", "b"])), TypeError, "numbers"),
    ("a file path", dict(mixture="mix.wav"), TypeError, "load_audio"),
    ("stereo", dict(mixture=np.stack([GOOD, GOOD])), ValueError, "mono"),
    ("empty", dict(mixture=np.zeros(0, np.float32)), ValueError, "empty"),
    ("NaN", dict(mixture=np.full(RATE, np.nan, np.float32)), ValueError, "NaN"),
    ("inf", dict(mixture=np.concatenate([GOOD, [np.inf]]).astype(np.float32)), ValueError, "infinite"),
    ("silence", dict(mixture=np.zeros(RATE, np.float32)), ValueError, "silent"),
    ("sources a bare string", dict(sources="drums"), TypeError, "sequence of names"),
    ("sources empty", dict(sources=[]), ValueError, "empty"),
    ("sources duplicated", dict(sources=["bass", "bass"]), ValueError, "distinct"),
    ("sources not strings", dict(sources=[1, 2]), TypeError, "non-empty string"),
    ("sources with an empty name", dict(sources=["drums", " "]), TypeError, "non-empty string"),
    ("sample_rate 0", dict(sample_rate=0), ValueError, "positive whole number"),
    ("sample_rate negative", dict(sample_rate=-8000), ValueError, "positive whole number"),
    ("sample_rate fractional", dict(sample_rate=8000.5), ValueError, "positive whole number"),
    ("sample_rate a bool", dict(sample_rate=True), ValueError, "positive whole number"),
    ("chunk_seconds inf", dict(chunk_seconds=math.inf), ValueError, "chunk_seconds"),
    ("chunk_seconds negative", dict(chunk_seconds=-1.0), ValueError, "chunk_seconds"),
    ("chunk_seconds zero", dict(chunk_seconds=0.0), ValueError, "chunk_seconds"),
    ("overlap negative", dict(overlap_seconds=-0.5), ValueError, "overlap_seconds"),
    ("overlap NaN", dict(overlap_seconds=math.nan), ValueError, "overlap_seconds"),
    ("seed huge", dict(seed=10**23), ValueError, "seed"),
    ("seed negative", dict(seed=-1), ValueError, "seed"),
    ("seed fractional", dict(seed=1.5), ValueError, "seed"),
    ("unknown method", dict(method="nope"), KeyError, "unknown method"),
    ("unknown knob", dict(method="crossover", knobs=dict(nope=1)), TypeError, "no knob"),
    ("knob out of range", dict(method="crossover", knobs=dict(cutoff_hz=5.0)), ValueError, "must lie in"),
    ("knob NaN", dict(method="crossover", knobs=dict(cutoff_hz=math.nan)), ValueError, "finite"),
    ("knob inf", dict(method="crossover", knobs=dict(cutoff_hz=math.inf)), ValueError, "finite"),
    ("knob wrong type", dict(method="crossover", knobs=dict(cutoff_hz="high")), TypeError, "takes a number"),
    ("knob a bool for a number", dict(method="crossover", knobs=dict(cutoff_hz=True)), TypeError, "takes a number"),
    ("knob not a choice", dict(method="crossover", knobs=dict(low_source=3)), TypeError, "takes a string"),
]


def call(mixture=GOOD, method="average", sources=("drums", "bass"), sample_rate=RATE, knobs=None, **options):
    return separate_with_info(mixture, method, sources, sample_rate=sample_rate, device="cpu", show_progress=False,
                              **options, **(knobs or {}))


@pytest.mark.parametrize("case, kwargs, error, message", ERRORS, ids=[c[0] for c in ERRORS])
def test_bad_input_gives_a_clear_error(case, kwargs, error, message):
    with pytest.raises(error, match=message):
        call(**kwargs)


def test_integer_pcm_is_rescaled_by_its_full_scale():
    pcm = (GOOD * 32768).astype(np.int16)
    estimates, info = call(mixture=pcm)
    assert torch.allclose(estimates[0], torch.from_numpy(pcm / 32768.0).float(), atol=1e-6)
    assert "divided by 32768" in info["input_conversions"][0]
    estimates32, _ = call(mixture=(GOOD * 2**31).astype(np.int32))
    assert estimates32.abs().max() <= 1.0


def test_whole_number_conversions_are_accepted():
    estimates, info = call(sample_rate=8000.0, seed=3.0, sources=["drums", "bass"])
    assert info["sample_rate"] == 8000 and info["seed"] == 3 and estimates.shape == (2, RATE)
    out = sepcore.separate(torch.from_numpy(GOOD).double(), method="crossover", sources=("drums", "bass"),
                           sample_rate=RATE, cutoff_hz=200, device="cpu")             # int for a float knob
    assert out.shape == (2, RATE)


def test_a_checkpoint_for_a_method_without_one_is_refused(tmp_path):
    with pytest.raises(ValueError, match="uses no checkpoint"):
        call(checkpoint=tmp_path / "x.pt")


def test_settings_record_the_resolved_checkpoint_and_its_sha256():
    import hashlib

    from sepcore.utils import REPO_ROOT

    _, info = call(method="latent-bayes", sources=("drums", "bass"), sample_rate=22050, knobs=dict(n_candidates=1),
                   mixture=np.tile(GOOD, 3)[:4096])
    record = info["checkpoint"]
    assert record["path"] == str((REPO_ROOT / "checkpoints" / "latents").resolve())
    digest = hashlib.sha256((REPO_ROOT / "checkpoints" / "latents" / "lqvae.pt").read_bytes()).hexdigest()
    assert record["sha256"]["lqvae.pt"] == digest


def _loader_and_training_cases(tmp_path):
    """(case, callable, expected exception, message) for the loaders and the training entry points."""
    from sepcore.checkpoints import load_model, save_checkpoint
    from sepcore.models.convtasnet import ConvTasNet, ConvTasNetConfig
    from sepcore.train.safe_paths import COMMITTED, refuse_committed_path

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00" * 64)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    small = ConvTasNetConfig.quick()
    sup = save_checkpoint(tmp_path / "sup.pt", ConvTasNet(small))
    return [
        ("missing checkpoint", lambda: load_model(tmp_path / "missing.pt"), Exception, "does not exist"),
        ("corrupt checkpoint", lambda: load_model(corrupt), Exception, "could not be read"),
        ("a folder as checkpoint", lambda: load_model(tmp_path), Exception, "could not be read"),
        ("a plain torch file", lambda: load_model(plain), Exception, "not a sepcore checkpoint"),
        ("the wrong class", lambda: load_model(sup, expect_class=torch.nn.Linear), Exception, "expected a"),
        ("the wrong sample rate", lambda: load_model(sup, expect={"sample_rate": 1}), Exception, "expected sample_rate=1"),
        ("quick training into checkpoints/",
         lambda: refuse_committed_path(COMMITTED / "supervised" / "convtasnet.pt", "quick"), SystemExit, "refusing"),
        ("full training into checkpoints/",
         lambda: refuse_committed_path(COMMITTED / "latents" / "x.pt", "full"), SystemExit, "refusing"),
    ]


LOADER_CASES = ["missing checkpoint", "corrupt checkpoint", "a folder as checkpoint", "a plain torch file",
                "the wrong class", "the wrong sample rate",
                "quick training into checkpoints/", "full training into checkpoints/"]


@pytest.mark.parametrize("case", LOADER_CASES)
def test_loaders_and_training_refuse_bad_input(case, tmp_path):
    table = {c[0]: c[1:] for c in _loader_and_training_cases(tmp_path)}
    action, error, message = table[case]
    with pytest.raises(error, match=message):
        action()
