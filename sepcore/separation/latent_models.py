"""The committed latent models and the settings chosen for them on validation.

* :func:`load_latent_models`: a codec (``<folder>/<kind>.pt``: the waveform ``vqvae`` or
  ``lqvae``, or the phase-free ``spectral`` codec) and one prior per source
  (``<folder>/prior_<kind>_<source>.pt``), each prior checked to be of its class;
* :func:`spectral_lass_defaults`: the settings the LASS audio chapter chose on validation for the
  spectral codec (``checkpoints/lass/lass_spectral_settings.json``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

SPECTRAL_SETTINGS = "lass_spectral_settings.json"


def load_latent_models(kind: str, sources: Sequence[str], folder, device):
    """``(codec, [prior per source])`` of ``kind`` in ``folder``, on ``device``."""
    from sepcore.checkpoints import load_model
    from sepcore.models.spectral_codec import SpectralCodec
    from sepcore.models.transformer import TransformerPrior
    from sepcore.models.vqvae import VQVAE

    folder = Path(folder)
    codec_class = SpectralCodec if kind == "spectral" else VQVAE
    codec = load_model(folder / f"{kind}.pt", expect_class=codec_class, device=device)
    priors = [load_model(folder / f"prior_{kind}_{s}.pt", expect={"source_class": s}, expect_class=TransformerPrior,
                         device=device) for s in sources]           # each prior must be of the class it is loaded for
    return codec, priors


def spectral_lass_defaults(folder) -> dict:
    """The settings chosen on validation by the LASS audio chapter
    (``<folder>/../lass/lass_spectral_settings.json``, ``folder`` the latent checkpoints): the
    counts' weight lambda, the mask power, and, when chosen, the magnitude likelihood's weight
    (0: counts alone), the beam count and the estimate (``map``: the best beam; ``mean`` / ``wiener``:
    the mean of the masks, or the Wiener filter of the mean powers, of ``sampler_rows`` rows drawn by
    ``sampler`` at ``sampler_temperature``, with the power ``posterior_power``, the mask power when
    none was chosen, averaged over ``shifts`` frame grids), and whether the magnitude likelihood
    scores with pair features fitted on training frames (``fitted_pairs``). lambda = 3, p = 2,
    counts alone, 10 beams and the best beam when the file is absent."""
    defaults = {"likelihood_weight": 3.0, "mask_power": 2.0, "magnitude_weight": 0.0, "spectral_beams": 10,
                "estimate": "map", "sampler": "beam", "sampler_rows": 10, "sampler_temperature": 1.0,
                "posterior_power": 0.0, "shifts": 1, "fitted_pairs": False}
    path = Path(folder).parent / "lass" / SPECTRAL_SETTINGS
    if path.exists():
        saved = json.loads(path.read_text())
        defaults.update({k: type(v)(saved[k]) for k, v in defaults.items() if k in saved})
    if defaults["posterior_power"] <= 0:
        defaults["posterior_power"] = defaults["mask_power"]
    return defaults
