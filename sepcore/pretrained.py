"""Pretrained models of the ``default`` profile, or models trained for another profile: one policy.

Modelled on demucs' ``get_model``: a chapter or the API asks for a model family by name and gets
the committed checkpoint under ``default`` (:data:`sepcore.paths.CHECKPOINTS`; a missing one raises
with the command that makes it), and a model trained on the fly at the profile's own sizes under
``quick`` and ``full`` or with ``retrain=True``. Only this layer imports :mod:`sepcore.train`:
``models/`` and ``separation/`` never do (a test checks it).

* :func:`get_flow_priors`: the noise-conditioned flow priors of Frank's toy classes or the
  Slakh-format stems (``checkpoints/flows/<dataset>_<source>.pt``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from sepcore.checkpoints import load_model
from sepcore.models.flow import FlowConfig, FlowPrior
from sepcore.models.priors import checkpoint_path


def get_flow_priors(
    sources: Sequence[str],
    profile: str,
    *,
    dataset: str = "toy",
    retrain: bool = False,
    seed: int = 0,
    sample_crops: Callable[[str], Callable] | None = None,
) -> tuple[dict[str, FlowPrior], dict[str, dict]]:
    """``({source: prior}, {source: info})``; ``info`` has ``history``, ``wall_seconds``, ``steps_done``, ``path``.

    Only ``default`` loads the committed checkpoints (a missing one raises with the command to
    make it); ``quick`` and ``full`` (or ``retrain=True``) train with :mod:`sepcore.train.flow` at
    the profile's sizes, so ``full`` never runs on the small default flows.
    """
    from sepcore.train.flow import FlowTrainConfig, crop_sampler, train_flow

    priors, info = {}, {}
    for k, source in enumerate(sources):
        path = checkpoint_path(dataset, source)
        if profile != "default" or retrain:
            sample_rate = 14700 if dataset == "toy" else 22050
            config = FlowConfig.for_profile(profile, source=source, sample_rate=sample_rate)
            train_config = FlowTrainConfig.for_profile(profile)
            sampler = sample_crops(source) if sample_crops else crop_sampler(dataset, source, profile=profile)
            started = time.perf_counter()
            model, history = train_flow(sampler, config, train_config, seed=seed + k, desc=f"{dataset}/{source}")
            info[source] = {"history": history, "wall_seconds": time.perf_counter() - started,
                            "steps_done": history[-1]["step"], "path": None}
        else:
            model = load_model(path, expect={"source": source}, expect_class=FlowPrior)
            meta = model.checkpoint_info["metadata"]
            info[source] = {"history": meta["history"], "wall_seconds": meta["wall_seconds"],
                            "steps_done": meta["steps_done"], "path": path}
        priors[source] = model.eval()
    return priors, info
