"""sepcore: unsupervised music source separation with deep generative priors.

Audio tensors use one layout throughout the package: ``(batch, n_sources, time)``;
a single mixture is ``(time,)`` and a single set of sources ``(n_sources, time)``.
"""

__version__ = "0.1.0"

from sepcore.mixing import get_mixing, mix, set_mixing  # noqa: E402,F401
