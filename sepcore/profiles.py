"""Named profiles shared by every chapter and training entry point.

- ``quick``: tiny models, few mixtures, minutes on a CPU; used by CI. Numbers are smoke tests.
- ``default``: the embedded reproduction on a CPU; its tables are committed under ``tables/``.
- ``full``: the papers' settings, for a GPU and the real Slakh2100.

Configs are dataclasses that subclass :class:`ProfileConfig` and define ``quick()``,
``default()`` and ``full()`` classmethods; ``Config.for_profile(name)`` picks one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

PROFILES = ("quick", "default", "full")


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    return profile


@dataclass
class ProfileConfig:
    """Base class for configs with named profiles; serialises to and from a plain dict."""

    @classmethod
    def quick(cls):
        return cls()

    @classmethod
    def default(cls):
        return cls()

    @classmethod
    def full(cls):
        return cls.default()

    @classmethod
    def for_profile(cls, profile: str, **overrides):
        config = getattr(cls, check_profile(profile))()
        return config.replace(**overrides) if overrides else config

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"{cls.__name__} got unknown fields {sorted(unknown)}; known: {sorted(known)}")
        converted = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**converted)

    def replace(self, **changes):
        values = asdict(self)
        unknown = set(changes) - set(values)
        if unknown:
            raise ValueError(f"{type(self).__name__} has no fields {sorted(unknown)}")
        values.update(changes)
        return type(self).from_dict(values)
