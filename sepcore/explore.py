"""The Explore chapter's machinery: widgets and a static grid, both built from the method registry.

Nothing here names a method: the method menu lists every registered method
(:func:`sepcore.api.list_methods`) that is available and accepts the chosen sources, and the
knob controls come from each method's knobs (:meth:`sepcore.api.MethodSpec.knobs`). A method
or a knob added to the registry therefore appears in the explorer and in the static grid
without touching this module or the chapter.

- :func:`compatible_methods`: which methods can run here, and why the others cannot.
- :func:`knob_widget`: an ipywidgets control for one :class:`~sepcore.api.Knob`.
- :func:`settings_grid`: the settings the static fallback shows (each method at its defaults,
  plus the ends of each ranged knob).
- :func:`run_setting` / :func:`score`: separate one mixture and score it (SDR of
  :mod:`sepcore.metrics`, the same as every table in the book).
- :class:`Explorer`: the live widget (needs a kernel; the rendered book shows the grid).
- :func:`default_examples`: drums/bass chunks of the embedded Slakh-format dataset when the
  data package provides it, else toy mixtures.
- :class:`ExploreChapterConfig`, :func:`registry_table`, :func:`chapter_grid` and
  :func:`grid_summary`: the Explore chapter's settings per profile, its menu table, its static
  grid and the grid's mean scores per setting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from sepcore import api
from sepcore.metrics import sdr, si_sdr
from sepcore.profiles import ProfileConfig


@dataclass
class Example:
    """One mixture to explore: ``mixture (time,)``, ``references (n_sources, time)`` or ``None``."""

    name: str
    mixture: torch.Tensor
    sample_rate: int
    classes: tuple[str, ...]
    references: torch.Tensor | None = None


def toy_examples(profile: str, n: int, waveforms: tuple[str, ...] = ("sine", "sawtooth")) -> list[Example]:
    """``n`` toy test mixtures of two waveform classes (paper 002's toy data)."""
    from sepcore.data.toy import ToyConfig, ToyDataset

    dataset = ToyDataset(ToyConfig.for_profile(profile, waveforms=waveforms), "test")
    return [Example(f"toy {i}", dataset[i]["mixture"], dataset.sample_rate, dataset.classes, dataset[i]["sources"])
            for i in range(min(n, len(dataset)))]


def default_examples(profile: str, data_root, n: int, seconds: float, classes=("drums", "bass")
                     ) -> tuple[list[Example], str, str | None]:
    """The explorer's mixtures: ``(examples, description, manifest_hash)``.

    Test chunks of the embedded Slakh-format dataset (:mod:`sepcore.data.slakh`, rendered
    on first use), cut to their first ``seconds``, when the data package is installed; else
    toy mixtures. Both are deterministic for the profile.
    """
    try:
        from sepcore.data.slakh import SlakhMixtures, resolve_root
    except ImportError:
        examples = toy_examples(profile, n)
        return examples, "toy mixtures (sine + sawtooth, paper 002's toy data)", None
    dataset = SlakhMixtures(resolve_root(profile, data_root), classes=classes, split="test", max_chunks=n)
    length = int(seconds * dataset.sample_rate)
    examples = []
    for i in range(len(dataset)):
        item = dataset[i]
        examples.append(Example(item["id"], item["mixture"][:length], dataset.sample_rate, dataset.classes,
                                item["sources"][:, :length]))
    description = f"{' + '.join(dataset.classes)} test chunks of the embedded Slakh-format dataset"
    return examples, description, dataset.manifest_hash


def compatible_methods(classes: Sequence[str], sample_rate: int, checkpoints: Mapping[str, str] | None = None,
                       ) -> tuple[list[str], dict[str, str]]:
    """Methods that build for these sources here, and ``{name: reason}`` for the others.

    A method is skipped when its factory does not import, when it needs a checkpoint that is
    neither given in ``checkpoints`` nor committed, or when its factory rejects the sources.
    """
    usable, skipped = [], {}
    checkpoints = dict(checkpoints or {})
    for spec in api.list_methods():
        available, reason = spec.availability()
        if not available:
            skipped[spec.name] = reason
            continue
        try:
            api.build_separator(spec.name, classes, checkpoint=checkpoints.get(spec.name),
                                sample_rate=spec.sample_rate or sample_rate, device="cpu")
        except Exception as error:  # any refusal is a reason to leave the method out, shown to the reader
            skipped[spec.name] = f"{type(error).__name__}: {error}"
            continue
        usable.append(spec.name)
    return usable, skipped


def settings_grid(methods: Sequence[str], points: int = 2) -> list[dict]:
    """``[{"method", "knobs", "label"}]``: each method at its defaults, then each ranged knob at its ends."""
    grid = []
    for name in methods:
        knobs = api.get_method(name).knobs()
        grid.append({"method": name, "knobs": {}, "label": f"{name} (defaults)"})
        for knob_name, knob in knobs.items():
            if knob.low is None or knob.high is None or points < 2:
                continue
            for i in range(points):
                value = knob.low + (knob.high - knob.low) * i / (points - 1)
                value = int(round(value)) if isinstance(knob.default, int) and not isinstance(knob.default, bool) else value
                if value == knob.default:
                    continue
                grid.append({"method": name, "knobs": {knob_name: value}, "label": f"{name} {knob_name}={value:g}"})
    return grid


def run_setting(example: Example, method: str, knobs: Mapping | None = None, seed: int = 0,
                checkpoint=None, device="auto") -> tuple[torch.Tensor, dict]:
    """Separate ``example`` with one setting: ``(n_sources, time)`` estimates and the settings used."""
    return api.separate_with_info(example.mixture, method, example.classes, checkpoint=checkpoint,
                                  sample_rate=example.sample_rate, device=device, seed=seed,
                                  show_progress=False, **dict(knobs or {}))


def score(example: Example, estimates: torch.Tensor) -> dict[str, float]:
    """SDR and SI-SDR per source (dB) against the references; empty without references."""
    if example.references is None:
        return {}
    values_sdr = sdr(example.references, estimates, example.sample_rate)
    values_si = si_sdr(example.references, estimates)
    row = {}
    for k, name in enumerate(example.classes):
        row[f"sdr_{name}"] = float(values_sdr[k])
        row[f"si_sdr_{name}"] = float(values_si[k])
    return row


def grid_table(examples: Sequence[Example], grid: Sequence[dict], seed: int = 0, device="auto"
               ) -> tuple[pd.DataFrame, dict[tuple[str, str], torch.Tensor]]:
    """Run every setting on every example: one row per (example, setting), and the estimates."""
    rows, estimates = [], {}
    for example in examples:
        for setting in grid:
            result, info = run_setting(example, setting["method"], setting["knobs"], seed=seed, device=device)
            estimates[(example.name, setting["label"])] = result
            rows.append({"mixture": example.name, "setting": setting["label"], "method": setting["method"],
                         **score(example, result), "seconds": info["seconds"]})
    return pd.DataFrame(rows), estimates


@dataclass
class ExploreChapterConfig(ProfileConfig):
    """``n_examples`` mixtures of ``clip_seconds`` each for the chapter's grid."""

    n_examples: int = 3
    clip_seconds: float = 3.0

    @classmethod
    def quick(cls):
        return cls(n_examples=1, clip_seconds=2.0)


def registry_table(usable: Sequence[str], skipped: Mapping[str, str]) -> pd.DataFrame:
    """One row per registered method: description, whether it runs here (or why not), its knobs with
    their defaults, whether it needs a checkpoint and its sample rate. ``usable`` and ``skipped`` are
    :func:`compatible_methods`' answer."""
    return pd.DataFrame([{
        "method": spec.name,
        "description": spec.description,
        "runs here": "yes" if spec.name in usable else "no: " + skipped.get(spec.name, "")[:80],
        "knobs": ", ".join(f"{k}={v.default!r}" for k, v in spec.knobs().items()) if spec.availability()[0] else "",
        "checkpoint": "needed" if spec.needs_checkpoint else "-",
        "sample rate": spec.sample_rate or "any",
    } for spec in api.list_methods()]).set_index("method")


def chapter_grid(methods: Sequence[str]) -> list[dict]:
    """The static grid: methods with trained models (seconds to minutes per mixture) at their defaults
    only, every knob of the fast ones swept to its ends (:func:`settings_grid`)."""
    generative = [m for m in methods if api.get_method(m).needs_checkpoint]
    return settings_grid([m for m in methods if m not in generative]) + settings_grid(generative, points=0)


def grid_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """:func:`grid_table`'s rows averaged over the mixtures: one row per setting."""
    return scores.drop(columns=["mixture"]).groupby(["setting", "method"], sort=False).mean().reset_index()


def knob_widget(name: str, knob: api.Knob):
    """An ipywidgets control for ``knob``: slider for ranged numbers, dropdown for choices, else a text box."""
    import ipywidgets as widgets

    style = {"description_width": "initial"}
    if knob.choices:
        return widgets.Dropdown(options=list(knob.choices), value=knob.default, description=name, style=style)
    if isinstance(knob.default, bool):
        return widgets.Checkbox(value=knob.default, description=name)
    if isinstance(knob.default, int) and knob.low is not None and knob.high is not None:
        return widgets.IntSlider(value=knob.default, min=int(knob.low), max=int(knob.high),
                                 step=int(knob.step or 1), description=name, style=style)
    if isinstance(knob.default, (int, float)) and knob.low is not None and knob.high is not None:
        return widgets.FloatSlider(value=float(knob.default), min=knob.low, max=knob.high,
                                   step=knob.step or (knob.high - knob.low) / 100, description=name, style=style)
    if isinstance(knob.default, int):
        return widgets.IntText(value=knob.default, description=name, style=style)
    if isinstance(knob.default, float):
        return widgets.FloatText(value=knob.default, description=name, style=style)
    return widgets.Text(value=str(knob.default), description=name, style=style)


class Explorer:
    """Choose a mixture, a method and its knobs; hear and see the result.

    ``Explorer(examples, methods).widget`` is an ipywidgets box. Its output shows audio
    players (mixture, each estimate, each reference) and spectrograms, and the SDR per source.
    """

    def __init__(self, examples: Sequence[Example], methods: Sequence[str], seed: int = 0, device="auto",
                 max_seconds: float = 4.0):
        import ipywidgets as widgets

        self.examples = {example.name: example for example in examples}
        self.seed, self.device, self.max_seconds = seed, device, max_seconds
        self.mixture = widgets.Dropdown(options=list(self.examples), description="mixture")
        self.method = widgets.Dropdown(options=list(methods), description="method")
        self.knobs = widgets.VBox()
        self.run = widgets.Button(description="Separate", button_style="primary")
        self.output = widgets.Output()
        self.method.observe(lambda _: self._show_knobs(), names="value")
        self.run.on_click(lambda _: self.separate())
        self._show_knobs()
        self.widget = widgets.VBox([widgets.HBox([self.mixture, self.method]), self.knobs, self.run, self.output])

    def _show_knobs(self) -> None:
        knobs = api.get_method(self.method.value).knobs() if self.method.value else {}
        self.knobs.children = [knob_widget(name, knob) for name, knob in knobs.items()]

    def current_knobs(self) -> dict:
        knobs = api.get_method(self.method.value).knobs()
        values = {}
        for control in self.knobs.children:
            default = knobs[control.description].default
            values[control.description] = type(default)(control.value) if default is not None else control.value
        return values

    def separate(self) -> torch.Tensor:
        """Run the chosen setting and redraw the output area; returns ``(n_sources, time)``."""
        import matplotlib.pyplot as plt
        from IPython.display import display

        from sepcore import viz

        example = self.examples[self.mixture.value]
        estimates, _ = run_setting(example, self.method.value, self.current_knobs(), seed=self.seed, device=self.device)
        self.output.clear_output(wait=True)
        with self.output:
            row = {"mixture": example.mixture, **{f"{n} (estimate)": estimates[k] for k, n in enumerate(example.classes)}}
            if example.references is not None:
                row.update({f"{n} (reference)": example.references[k] for k, n in enumerate(example.classes)})
                display(pd.DataFrame([score(example, estimates)]).round(2))
            display(viz.audio_table({example.name: row}, example.sample_rate, max_seconds=self.max_seconds))
            figure = viz.spectrogram_grid(row, example.sample_rate, ncols=len(example.classes) + 1)
            display(figure)
            plt.close(figure)
        return estimates
