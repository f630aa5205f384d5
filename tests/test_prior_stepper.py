"""The prior stepper shared by LASS and latent Bayes: cached steps equal the full forward pass."""

import pytest
import torch

from sepcore.models.transformer import PriorConfig, TransformerPrior
from sepcore.separation.prior_stepper import PriorStepper

K = 6


def priors(n=2, block=32):
    torch.manual_seed(0)
    return [TransformerPrior(PriorConfig(vocab_size=K, block_size=block, n_layer=1, n_head=2, n_embd=8)).eval()
            for _ in range(n)]


def full_pass(prior, history):
    """Next-code log-probabilities from scratch: ``history (R, s)`` -> ``(R, K)``."""
    tokens = torch.cat([torch.full((history.shape[0], 1), K), history], 1)      # [start, z_1, ..., z_s]
    logits, _ = prior(tokens, None)
    return logits[:, -1].float().log_softmax(-1)


@pytest.mark.parametrize("batched", [True, False])
def test_cached_steps_with_reordered_rows_equal_the_full_pass(batched):
    models, R, S = priors(), 4, 10
    stepper = PriorStepper(models, R, "cpu", batched=batched)
    generator = torch.Generator().manual_seed(1)
    history = torch.empty(R, 2, 0, dtype=torch.long)
    with torch.no_grad():
        for s in range(S):
            log_p = stepper.log_probs(history)                                  # (N, R, K)
            for n, prior in enumerate(models):
                assert torch.allclose(log_p[n], full_pass(prior, history[:, n]), atol=1e-5)
            parents = torch.randint(0, R, (R,), generator=generator) if s % 3 == 2 else None
            codes = torch.randint(0, K, (2, R), generator=generator)
            if parents is not None:
                history = history[parents]
            history = torch.cat([history, codes.T[:, :, None]], 2)
            stepper.advance(codes, parents)


def test_the_two_paths_agree():
    models, R = priors(3), 5
    steppers = [PriorStepper(models, R, "cpu", batched=b) for b in (True, False)]
    assert steppers[0].batched and not steppers[1].batched
    history = torch.empty(R, 3, 0, dtype=torch.long)
    with torch.no_grad():
        for _ in range(6):
            outs = [st.log_probs(history) for st in steppers]
            assert outs[0].shape == (3, R, K)
            assert torch.allclose(outs[0], outs[1], atol=1e-5)
            codes = torch.randint(0, K, (3, R))
            history = torch.cat([history, codes.T[:, :, None]], 2)
            for st in steppers:
                st.advance(codes)


def test_a_full_block_slides_to_the_last_half():
    models, R, block = priors(1, block=8), 2, 8
    stepper = PriorStepper(models, R, "cpu", batched=False)
    history = torch.randint(0, K, (R, 1, 12))
    with torch.no_grad():
        for s in range(12):
            log_p = stepper.log_probs(history[:, :, :s])
            if s < block:                                         # the cache holds the start token and s codes
                expected = full_pass(models[0], history[:, 0, :s])
            else:                                                 # rebuilt at s = block from the last block/2 - 1 codes
                expected = full_pass(models[0], history[:, 0, block - (block // 2 - 1):s])
            assert torch.allclose(log_p[0], expected, atol=1e-5), s
            stepper.advance(history[:, :, s].T)
