"""torchrun-style DistributedDataParallel training: 2 CPU processes (gloo) stay in sync."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from sepcore.models.transformer import PriorConfig
from sepcore.models.vqvae import VQVAE, VQVAEConfig
from sepcore.train.prior import PriorTrainConfig, train_prior
from sepcore.train.vqvae import VQVAETrainConfig, train_vqvae


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
