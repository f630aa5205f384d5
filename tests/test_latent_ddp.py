"""The one training loop under torchrun: data-parallel replicas stay in sync and rank 0 alone writes; the VQ-VAE loop validates and resumes."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from sepcore.models.transformer import PriorConfig, TransformerPrior
from sepcore.models.vqvae import VQVAE, VQVAEConfig
from sepcore.train import distributed as ddp
from sepcore.train.fit import FitPlan, fit
from sepcore.train.vqvae import VQVAETrainConfig, fit_vqvae, validation_pairs


class NoiseStems:
    """Rank-dependent data (each rank's generator differs), so only DDP can keep replicas equal."""

    data = "test noise"

    def random_crops(self, n, length, generator=None):
        return 0.3 * torch.randn(n, length, generator=generator)


def _worker(rank, world, port, tmp):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    config = VQVAETrainConfig.quick().replace(batch_size=4, segment_length=512, lin_weight=1.0)
    model_config = VQVAEConfig.quick().replace(codebook_size=8, width=8, code_dim=4)
    sources = {"drums": NoiseStems(), "bass": NoiseStems()}
    plan = FitPlan(steps=4, warmup_steps=1, eval_every=2, checkpoint_every=2, weight_decay=0.0)
    vqvae, result = fit_vqvae(config, plan, f"{tmp}/vq.pt", model_config=model_config, val_pairs=2, device="cpu",
                              sources=sources, val_sources=sources, log=lambda line: None)
    # a prior through the same loop: rank-dependent windows, the DDP wrapper in loss_fn
    prior = TransformerPrior(PriorConfig.quick().replace(vocab_size=8, n_embd=16, block_size=32))
    wrapped = ddp.wrap(prior, torch.device("cpu"))
    generator = torch.Generator().manual_seed(rank)

    def prior_loss(step):
        codes = torch.randint(0, 8, (2, 16), generator=generator)
        logits, _ = wrapped(prior.with_start(codes), use_cache=False)
        return torch.nn.functional.cross_entropy(logits.reshape(-1, 8), codes.reshape(-1))

    calls = []
    fit(prior, prior_loss, lambda: float(rank), FitPlan(steps=3, warmup_steps=1, eval_every=1, checkpoint_every=1),
        state_path=f"{tmp}/p.state.pt", config={}, on_checkpoint=lambda model, info: calls.append(info["step"]),
        log=lambda line: None)
    torch.save({"vq": vqvae.state_dict(), "prior": prior.state_dict(), "steps": result.steps_done,
                "curve": result.curve, "checkpoints": calls}, f"{tmp}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_two_gloo_replicas_stay_in_sync_through_the_one_training_loop(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True, start_method="fork")
    a, b = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for part in ("vq", "prior"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key} differs between ranks"
    torch.manual_seed(0)                                    # fit_vqvae's initial weights
    initial = VQVAE(VQVAEConfig.quick().replace(codebook_size=8, width=8, code_dim=4)).state_dict()
    assert not torch.equal(initial["encoder.net.0.weight"], a["vq"]["encoder.net.0.weight"])   # it trained
    assert a["steps"] == b["steps"] == 4
    assert [row["val_loss"] for row in a["curve"]] == [row["val_loss"] for row in b["curve"]]  # rank 0's validation
    assert a["checkpoints"] == [1, 2, 3, 3] and b["checkpoints"] == []     # only rank 0 writes checkpoints
    assert (tmp_path / "vq.pt").exists() and (tmp_path / "p.state.pt").exists()


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
