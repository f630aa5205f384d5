"""The explorer is driven by the registry: new methods and knobs appear without code changes."""

import math

import pytest
import torch

from sepcore import api, explore
from sepcore.mixing import mix

RATE = 4000


@pytest.fixture
def scaled_method():
    """A method with an int and a float knob, registered for one test only."""

    def factory(sources, *, gain: float = 1.0, repeats: int = 1, **_unused):
        return lambda m: torch.stack([gain * repeats * m / len(sources)] * len(sources))

    api.register_method("scaled", factory, description="test", needs_checkpoint=False,
                        knobs={"gain": api.Knob(1.0, 0.5, 2.0, 0.1), "repeats": api.Knob(1, 1, 3)})
    yield "scaled"
    api._REGISTRY.pop("scaled", None)


def example(n_sources=2):
    t = torch.arange(RATE) / RATE
    sources = torch.stack([torch.sin(2 * math.pi * (100 + 300 * k) * t) for k in range(n_sources)]) * 0.5
    return explore.Example("ex", mix(sources), RATE, tuple(f"s{k}" for k in range(n_sources)), sources)


def test_a_registered_method_and_its_ranged_knobs_enter_the_grid(scaled_method):
    usable, skipped = explore.compatible_methods(("a", "b"), RATE)
    assert {"average", "crossover", "scaled"} <= set(usable)
    assert all(reason for reason in skipped.values())               # every left-out method says why
    grid = [s for s in explore.settings_grid(usable) if s["method"] == "scaled"]
    assert [s["knobs"] for s in grid] == [{}, {"gain": 0.5}, {"gain": 2.0}, {"repeats": 3}]   # defaults skipped
    assert isinstance(grid[-1]["knobs"]["repeats"], int)


def test_methods_that_refuse_the_sources_are_skipped_with_the_reason():
    usable, skipped = explore.compatible_methods(("a", "b", "c"), RATE)
    assert "average" in usable and "crossover" not in usable
    assert "exactly two sources" in skipped["crossover"]


def test_grid_scores_match_a_direct_computation(scaled_method):
    ex = example()
    grid = [{"method": "average", "knobs": {}, "label": "avg"}, {"method": "scaled", "knobs": {"gain": 2.0}, "label": "x2"}]
    table, estimates = explore.grid_table([ex], grid, device="cpu")
    assert list(table["setting"]) == ["avg", "x2"]
    # average under mean mixing returns the mixture: SDR = 10 log10(|s0|^2 / |m - s0|^2)
    s0, m = ex.references[0].double(), ex.mixture.double()
    expected = 10 * math.log10(float(s0.pow(2).sum() / (m - s0).pow(2).sum()))
    assert table.loc[0, "sdr_s0"] == pytest.approx(expected, abs=1e-3)
    assert torch.allclose(estimates[("ex", "x2")], ex.mixture.expand(2, -1), atol=1e-6)   # 2 * m / 2


def test_knob_widgets_follow_the_knob_type(scaled_method):
    widgets = pytest.importorskip("ipywidgets")
    knobs = api.get_method("scaled").knobs()
    assert isinstance(explore.knob_widget("gain", knobs["gain"]), widgets.FloatSlider)
    assert isinstance(explore.knob_widget("repeats", knobs["repeats"]), widgets.IntSlider)
    assert isinstance(explore.knob_widget("low_source", api.get_method("crossover").knobs()["low_source"]), widgets.Text)
    assert isinstance(explore.knob_widget("mode", api.Knob("a", choices=("a", "b"))), widgets.Dropdown)


def test_explorer_builds_knob_controls_and_separates(scaled_method):
    pytest.importorskip("ipywidgets")
    ex = example()
    explorer = explore.Explorer([ex], ["average", "scaled"], device="cpu")
    assert explorer.knobs.children == ()
    explorer.method.value = "scaled"
    assert [c.description for c in explorer.knobs.children] == ["gain", "repeats"]
    explorer.knobs.children[0].value = 2.0
    assert explorer.current_knobs() == {"gain": 2.0, "repeats": 1}
    estimates = explorer.separate()
    assert torch.allclose(estimates, ex.mixture.expand(2, -1), atol=1e-6)


def test_same_seed_gives_identical_tables():
    """The grid's numbers (all but wall time) are a pure function of the data, settings and seed."""
    ex = example()
    grid = explore.settings_grid(["average", "crossover"])
    first, _ = explore.grid_table([ex], grid, seed=1, device="cpu")
    second, _ = explore.grid_table([ex], grid, seed=1, device="cpu")
    assert first.drop(columns="seconds").equals(second.drop(columns="seconds"))


def test_default_examples_fall_back_to_toy_without_the_data_package(tmp_path):
    try:
        import sepcore.data.slakh  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("the Slakh reader is installed; the chapter uses it")
    examples, description, manifest_hash = explore.default_examples("quick", tmp_path, n=2, seconds=1.0)
    assert [e.classes for e in examples] == [("sine", "sawtooth")] * 2 and "toy" in description
    assert all(torch.allclose(mix(e.references), e.mixture) for e in examples)


def test_chapter_grid_sweeps_fast_methods_only_and_the_summary_averages_mixtures(scaled_method):
    factory = api.get_method("scaled").factory
    api.register_method("scaled_trained", factory, description="test", needs_checkpoint=True,
                        knobs={"gain": api.Knob(1.0, 0.5, 2.0, 0.1)})
    try:
        grid = explore.chapter_grid(["scaled", "scaled_trained"])
    finally:
        api._REGISTRY.pop("scaled_trained", None)
    assert [(s["method"], s["knobs"]) for s in grid] == [
        ("scaled", {}), ("scaled", {"gain": 0.5}), ("scaled", {"gain": 2.0}), ("scaled", {"repeats": 3}),
        ("scaled_trained", {})]                                  # a method with a checkpoint: defaults only
    examples = [example(), explore.Example("ex2", example().mixture * 0.5, RATE, ("s0", "s1"), example().references * 0.5)]
    scores, _ = explore.grid_table(examples, grid[:2], device="cpu")
    summary = explore.grid_summary(scores)
    assert list(summary.setting) == [grid[0]["label"], grid[1]["label"]]
    first = scores[scores.setting == grid[1]["label"]]
    assert summary.loc[1, "sdr_s0"] == pytest.approx(first.sdr_s0.mean())


def test_registry_table_says_why_a_method_cannot_run():
    usable, skipped = explore.compatible_methods(("a", "b", "c"), RATE)
    table = explore.registry_table(usable, skipped)
    assert table.loc["average", "runs here"] == "yes"
    assert table.loc["crossover", "runs here"].startswith("no: ") and "two sources" in table.loc["crossover", "runs here"]
    assert set(table.index) == {spec.name for spec in api.list_methods()}
