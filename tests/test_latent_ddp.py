"""VQ-VAE / LQ-VAE training: torchrun-style data-parallel replicas stay in sync; the CPU-budgeted loop validates and resumes."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from sepcore.models.transformer import PriorConfig
from sepcore.models.vqvae import VQVAE, VQVAEConfig
from sepcore.train.fit import FitPlan
from sepcore.train.prior import PriorTrainConfig, train_prior
from sepcore.train.vqvae import VQVAETrainConfig, fit_vqvae, train_vqvae, validation_pairs


class NoiseStems:
    """Rank-dependent data (each rank's generator differs), so only DDP can keep replicas equal."""

    data = "test noise"

    def random_crops(self, n, length, generator=None):
        return 0.3 * torch.randn(n, length, generator=generator)


def _worker(rank, world, port, tmp):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    vq_config = VQVAETrainConfig.quick().replace(steps=3, batch_size=4, segment_length=512, lin_weight=1.0,
                                                 checkpoint_every=100)
    model_config = VQVAEConfig.quick().replace(codebook_size=8, width=8, code_dim=4)
    sources = {"drums": NoiseStems(), "bass": NoiseStems()}
    vqvae = train_vqvae(vq_config, f"{tmp}/vq.pt", model_config=model_config, device="cpu", sources=sources)
    codes = torch.randint(0, 8, (6, 32), generator=torch.Generator().manual_seed(rank))
    prior = train_prior(PriorTrainConfig.quick().replace(steps=3, batch_size=2, window=16), codes, f"{tmp}/p.pt",
                        vocab_size=8, prior_config=PriorConfig.quick().replace(n_embd=16, block_size=32), device="cpu")
    torch.save({"vq": vqvae.state_dict(), "prior": prior.state_dict()}, f"{tmp}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_two_gloo_replicas_stay_in_sync(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True, start_method="fork")
    a, b = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for part in ("vq", "prior"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key} differs between ranks"
    torch.manual_seed(0)                                    # train_vqvae's initial weights
    initial = VQVAE(VQVAEConfig.quick().replace(codebook_size=8, width=8, code_dim=4)).state_dict()
    assert not torch.equal(initial["encoder.net.0.weight"], a["vq"]["encoder.net.0.weight"])   # it trained
    assert (tmp_path / "vq.pt").exists() and (tmp_path / "p.pt").exists()


def test_vqvae_training_resumes_from_state(tmp_path):
    config = VQVAETrainConfig.quick().replace(steps=2, batch_size=4, segment_length=256, checkpoint_every=1)
    model_config = VQVAEConfig.quick().replace(codebook_size=8, width=8, code_dim=4)
    sources = {"drums": NoiseStems(), "bass": NoiseStems()}
    first = train_vqvae(config, tmp_path / "vq.pt", model_config=model_config, device="cpu", sources=sources)
    state = torch.load(tmp_path / "vq.pt.state.pt", weights_only=False)
    assert state["step"] == 2
    again = train_vqvae(config, tmp_path / "vq.pt", model_config=model_config, device="cpu", sources=sources)
    for key, value in first.state_dict().items():                # nothing left to do: the saved state is reloaded
        assert torch.equal(value, again.state_dict()[key])
    more = train_vqvae(config.replace(steps=3), tmp_path / "vq.pt", model_config=model_config, device="cpu", sources=sources)
    assert torch.load(tmp_path / "vq.pt.state.pt", weights_only=False)["step"] == 3
    assert not torch.equal(more.encoder.net[0].weight, first.encoder.net[0].weight)


def test_time_budget_stop_saves_resumable_state(tmp_path):
    config = VQVAETrainConfig.quick().replace(steps=50, batch_size=4, segment_length=256, checkpoint_every=100)
    model_config = VQVAEConfig.quick().replace(codebook_size=8, width=8, code_dim=4)
    sources = {"drums": NoiseStems(), "bass": NoiseStems()}
    train_vqvae(config, tmp_path / "vq.pt", model_config=model_config, device="cpu", sources=sources, max_seconds=0)
    assert torch.load(tmp_path / "vq.pt.state.pt", weights_only=False)["step"] == 1
    assert torch.load(tmp_path / "vq.pt", weights_only=False)["metadata"]["steps_done"] == 1


def test_vqvae_resume_refuses_another_config(tmp_path):
    from sepcore.train.fit import ConfigMismatch

    config = VQVAETrainConfig.quick().replace(steps=1, batch_size=4, segment_length=256, checkpoint_every=1)
    model_config = VQVAEConfig.quick().replace(codebook_size=8, width=8, code_dim=4)
    sources = {"drums": NoiseStems(), "bass": NoiseStems()}
    train_vqvae(config, tmp_path / "vq.pt", model_config=model_config, device="cpu", sources=sources)
    with pytest.raises(ConfigMismatch, match="train"):
        train_vqvae(config.replace(lin_weight=0.5), tmp_path / "vq.pt", model_config=model_config, device="cpu",
                    sources=sources)


class ConstantStems:
    """Crops filled with one value, so a crop's class can be read back from the tensor."""

    def __init__(self, value):
        self.value, self.data = value, "test constants"

    def random_crops(self, n, length, generator=None):
        return torch.full((n, length), self.value)


def test_validation_pairs_pair_two_different_classes():
    sources = {"drums": ConstantStems(0.1), "bass": ConstantStems(0.2), "guitar": ConstantStems(0.3)}
    pairs = validation_pairs(sources, 7, 64, seed=0)
    assert pairs.shape == (14, 64)
    first, second = pairs[:7, 0], pairs[7:, 0]
    assert bool((first != second).all())                      # row i and row n+i: two different classes
    assert len({(round(float(a), 1), round(float(b), 1)) for a, b in zip(first, second)}) == 6   # every ordered pair


def test_fit_vqvae_validates_resumes_and_refuses_another_config(tmp_path):
    config = VQVAETrainConfig.quick().replace(batch_size=4, segment_length=256, lin_weight=1.0)
    model_config = VQVAEConfig.quick().replace(codebook_size=8, width=8, code_dim=4)
    sources = {"drums": NoiseStems(), "bass": NoiseStems()}
    plan = FitPlan(steps=4, warmup_steps=1, eval_every=2, checkpoint_every=2, weight_decay=0.0)
    logs = []
    kw = dict(model_config=model_config, val_pairs=4, sources=sources, val_sources=sources, log=logs.append)
    model, result = fit_vqvae(config, plan, tmp_path / "lq.pt", **kw)
    assert result.steps_done == 4 and len(result.curve) == 2
    meta = torch.load(tmp_path / "lq.pt", weights_only=False)["metadata"]
    # the objective is Eq. 1 plus lin_weight x Eq. 8, term by term
    total = meta["val_rec"] + model.config.beta * meta["val_commit"] + model.config.lin_weight * meta["val_lin"]
    assert meta["val_total"] == pytest.approx(total, rel=1e-4, abs=1e-5) and meta["val_lin"] >= 0
    _, again = fit_vqvae(config, plan, tmp_path / "lq.pt", **kw)
    assert any("resuming at step 4" in line for line in logs) and again.steps_done == 4
    with pytest.raises(SystemExit, match="lin_weight"):
        fit_vqvae(config.replace(lin_weight=0.5), plan, tmp_path / "lq.pt", **kw)
