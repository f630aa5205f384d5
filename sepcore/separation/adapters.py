"""Registry factories for separators written against their own constructors.

Each ``make_<name>`` follows the registry's factory contract (:mod:`sepcore.api`):
``factory(sources, *, checkpoint, sample_rate, device, seed, **knobs) -> separate`` with
``separate(mixture (time,)) -> (n_sources, time)``. The separators' modules are imported
inside the factories, so this module imports nothing heavy, and the registry entry's
``requires`` says which module a method needs.
"""

from __future__ import annotations

from collections.abc import Sequence


def _blind(method: str):
    def factory(sources: Sequence[str], *, sample_rate: int | None = None, **_unused):
        from sepcore.separation.blind import BlindSeparator

        return BlindSeparator(method, tuple(sources), sample_rate or 22050)

    factory.__name__ = factory.__qualname__ = f"make_{method}"
    factory.__doc__ = f"Registry factory for the blind baseline {method!r} (sepcore.separation.blind)."
    return factory


make_rpca = _blind("rpca")
make_ica = _blind("ica")
make_hpss = _blind("hpss")
make_repet = _blind("repet")
make_repet_sim = _blind("repet_sim")
make_ft2d = _blind("ft2d")
make_nmf = _blind("nmf")


def make_convtasnet(sources: Sequence[str], *, checkpoint=None, sample_rate: int | None = None, device="auto",
                    **_unused):
    """Registry factory for the supervised Conv-TasNet (checkpoint checked for its sample rate)."""
    from sepcore.separation.supervised import load_supervised

    return load_supervised(checkpoint, tuple(sources), sample_rate or 22050, device)
