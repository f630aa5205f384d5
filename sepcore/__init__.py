"""sepcore: unsupervised music source separation with deep generative priors.

Audio tensors use one layout throughout the package: ``(batch, n_sources, time)``;
a single mixture is ``(time,)`` and a single set of sources ``(n_sources, time)``.
"""

__version__ = "0.1.0"

from sepcore.mixing import get_mixing, mix, set_mixing  # noqa: E402,F401

#: Names re-exported lazily from sepcore.api, so ``import sepcore`` stays light and cycle-free.
_API_NAMES = ("separate", "list_methods", "register_method", "get_method")


def __getattr__(name: str):
    if name in _API_NAMES:
        from sepcore import api

        return getattr(api, name)
    raise AttributeError(f"module 'sepcore' has no attribute {name!r}")
