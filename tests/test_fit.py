"""The shared long-run training loop: planned schedule, resume with a config check, plateau stop, curves."""

import csv
import math

import pytest
import torch

from sepcore.train.fit import ConfigMismatch, FitPlan, fit, planned_lr
from sepcore.train.safe_paths import COMMITTED, refuse_committed_path


def regression(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    return x, y


def make_model():
    torch.manual_seed(1)
    return torch.nn.Linear(3, 1)


def run(tmp_path, steps=60, plan=None, config=None, model=None, log=None, **kwargs):
    x, y = regression()
    model = model or make_model()
    plan = plan or FitPlan(steps=steps, lr=0.05, warmup_steps=5, eval_every=10, checkpoint_every=10, patience=100)
    lines = []
    result = fit(model, lambda step: (model(x).squeeze(-1) - y).pow(2).mean(),
                 lambda: float((model(x).squeeze(-1) - y).pow(2).mean()), plan,
                 state_path=tmp_path / "m.state.pt", config=config or {"a": 1}, curve_path=tmp_path / "curve.csv",
                 log=log or lines.append, **kwargs)
    return model, result, lines


def test_schedule_warms_up_then_decays_to_the_floor():
    plan = FitPlan(steps=100, lr=1.0, lr_final_ratio=0.1, warmup_steps=10)
    assert planned_lr(0, 100, plan) == pytest.approx(0.1)
    assert planned_lr(9, 100, plan) == pytest.approx(1.0)
    assert planned_lr(10, 100, plan) == pytest.approx(1.0)
    assert planned_lr(100, 100, plan) == pytest.approx(0.1)
    middle = planned_lr(55, 100, plan)
    assert middle == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 0.5)))
    lrs = [planned_lr(s, 100, plan) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_training_lowers_the_loss_and_writes_the_curve(tmp_path):
    model, result, _ = run(tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "curve.csv")))
    assert result.steps_done == 60 and result.best_val < float(rows[0]["val_loss"]) / 5
    assert [int(r["step"]) for r in rows] == list(range(10, 61, 10))
    assert set(rows[0]) == {"step", "wall_s", "cpu_s", "train_loss", "val_loss", "lr"}


def test_resume_continues_where_the_state_stopped(tmp_path):
    straight, _, _ = run(tmp_path / "a", steps=60)
    # the same run cut after 30 steps: the state at 30 is what a resumed run starts from
    plan30 = FitPlan(steps=60, lr=0.05, warmup_steps=5, eval_every=10, checkpoint_every=10, patience=100)
    model = make_model()
    x, y = regression()
    calls = []

    def loss(step):
        calls.append(step)
        if step == 30:
            raise KeyboardInterrupt
        return (model(x).squeeze(-1) - y).pow(2).mean()

    with pytest.raises(KeyboardInterrupt):
        fit(model, loss, lambda: float((model(x).squeeze(-1) - y).pow(2).mean()), plan30,
            state_path=tmp_path / "b" / "m.state.pt", config={"a": 1}, log=lambda *_: None)
    lines = []
    resumed = torch.nn.Linear(3, 1)                                  # other weights: the state replaces them
    fit(resumed, lambda step: (resumed(x).squeeze(-1) - y).pow(2).mean(),
        lambda: float((resumed(x).squeeze(-1) - y).pow(2).mean()), plan30,
        state_path=tmp_path / "b" / "m.state.pt", config={"a": 1}, log=lines.append)
    assert any("resuming at step 30" in line for line in lines)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_a_different_config_is_refused(tmp_path):
    run(tmp_path, steps=20)
    with pytest.raises(ConfigMismatch, match=r"fields \['a'\]"):
        run(tmp_path, steps=20, config={"a": 2})
    with pytest.raises(ConfigMismatch, match="plan.steps"):
        run(tmp_path, steps=30)


def test_plateau_stops_early_and_keeps_the_best_weights(tmp_path):
    plan = FitPlan(steps=1000, lr=0.05, warmup_steps=1, eval_every=5, checkpoint_every=5, patience=2, min_delta=10.0)
    _, result, _ = run(tmp_path, plan=plan)
    assert result.stopped_by.startswith("plateau") and result.steps_done == 15
    assert result.best_step == 15
    # a resumed plateau stop adds no steps
    _, again, lines = run(tmp_path, plan=plan)
    assert again.steps_done == 15 and any("resuming at step 15" in line for line in lines)


def test_cpu_budget_plans_the_step_count_after_calibration(tmp_path):
    plan = FitPlan(steps=10**6, cpu_minutes=1e-4, calibration_steps=5, lr=0.05, warmup_steps=1, eval_every=5,
                   checkpoint_every=5, patience=100)
    _, result, lines = run(tmp_path, plan=plan)
    assert 5 < result.planned_steps < 10**6 and result.steps_done == result.planned_steps
    assert any("CPU-minutes plan" in line for line in lines)


def test_on_checkpoint_receives_the_best_weights(tmp_path):
    seen = []
    run(tmp_path, on_checkpoint=lambda model, info: seen.append((info["step"], info["best_val"])))
    assert seen and seen[-1][0] == 60 and all(b >= seen[-1][1] for _, b in seen)


def test_non_default_profiles_never_write_committed_checkpoints(tmp_path):
    with pytest.raises(SystemExit, match="refusing"):
        refuse_committed_path(COMMITTED / "latents" / "x.pt", "quick")
    refuse_committed_path(COMMITTED / "latents" / "x.pt", "default")
    refuse_committed_path(tmp_path / "x.pt", "quick")


def test_every_training_entry_point_reads_the_data_root_from_one_place(monkeypatch, tmp_path):
    import inspect

    from sepcore.book import default_data_root
    from sepcore.train import flow, variational

    monkeypatch.setenv("SEPCORE_DATA", str(tmp_path))
    assert default_data_root() == tmp_path
    for module in (flow, variational):
        assert 'REPO_ROOT / "data"' not in inspect.getsource(module)


def test_flow_training_goes_through_fit_resumes_and_refuses_another_config(tmp_path):
    from sepcore.checkpoints import load_model
    from sepcore.models.flow import FlowPrior
    from sepcore.train.flow import FlowTrainConfig, fit_flow, flow_plan

    plan = flow_plan(FlowTrainConfig.quick(), steps=4)
    assert (plan.eval_every, plan.warmup_steps) == (1, 1)
    # the committed flows' plan (--cpu-minutes, 100,000 steps at most) is unchanged
    committed = flow_plan(FlowTrainConfig.default(), steps=100000, cpu_minutes=8)
    assert (committed.eval_every, committed.checkpoint_every, committed.warmup_steps, committed.weight_decay) == (200, 200, 100, 0.0)
    out, lines = tmp_path / "toy_sine.pt", []
    kwargs = dict(profile="quick", val_crops=4, log=lines.append, curve_path=tmp_path / "curve.csv")
    first = fit_flow("toy", "sine", plan, out, **kwargs)
    assert first.steps_done == 4 and math.isfinite(first.best_val)
    meta = load_model(out, expect_class=FlowPrior).checkpoint_info["metadata"]
    assert [row["step"] for row in meta["history"]] == [1, 2, 3, 4]
    assert meta["steps_done"] == 4 and meta["wall_seconds"] >= 0 and "nll_clean" in meta["history"][-1]
    again = fit_flow("toy", "sine", plan, out, **kwargs)
    assert any("resuming at step 4" in line for line in lines) and again.best_val == first.best_val
    with pytest.raises(ConfigMismatch, match="plan.lr"):
        fit_flow("toy", "sine", flow_plan(FlowTrainConfig.quick().replace(lr=1e-2), steps=4), out, **kwargs)


def test_flows_trained_on_the_fly_start_over_when_their_config_changed(monkeypatch, tmp_path):
    import sepcore.paths
    from sepcore.train import flow

    monkeypatch.setattr(sepcore.paths, "BUILD", tmp_path)
    calls = []

    def fake_fit(dataset, source, plan, out, **kwargs):
        calls.append(out)
        state = out.with_name(out.name + ".state.pt")
        if len(calls) == 1:
            state.parent.mkdir(parents=True, exist_ok=True)
            state.write_text("stale")
            raise ConfigMismatch("another config")
        assert not state.exists()                       # the stale state was removed before the retry
        assert kwargs["curve_path"] == out.with_suffix(".csv")

    monkeypatch.setattr(flow, "fit_flow", fake_fit)
    path = flow.train_on_the_fly("toy", "sine", "quick", log=lambda *_: None)
    assert path == tmp_path / "quick" / "checkpoints" / "flows" / "toy_sine.pt" and calls == [path, path]


def test_quick_flow_training_never_targets_the_committed_checkpoints(monkeypatch):
    from sepcore.train import flow

    with pytest.raises(SystemExit, match="refusing"):
        flow.main(["--profile", "quick", "--source", "sine", "--out", str(COMMITTED / "flows" / "toy_sine.pt")])


def test_a_state_file_of_another_loop_is_refused_and_restarted_on_the_fly(tmp_path):
    from sepcore.train.fit import restart_on_mismatch

    state = tmp_path / "m.state.pt"                                # the state file of run()
    torch.save({"model": {}, "step": 3}, state)                    # the shape of another loop's state file
    with pytest.raises(ConfigMismatch, match="not written by this training loop"):
        run(tmp_path, steps=20)
    lines = []
    result = restart_on_mismatch(lambda: run(tmp_path, steps=20)[1], state, log=lines.append)
    assert result.steps_done == 20 and any("starting over" in line for line in lines)


def test_a_dict_loss_logs_its_other_terms_and_on_plan_hears_the_planned_steps(tmp_path):
    x, y = regression()
    model = make_model()
    plan = FitPlan(steps=40, lr=0.05, warmup_steps=5, eval_every=10, checkpoint_every=10, patience=100)
    heard = []

    def loss_fn(step):
        error = (model(x).squeeze(-1) - y).pow(2).mean()
        return {"loss": error, "half": error.detach() / 2, "step_seen": torch.tensor(float(step))}

    result = fit(model, loss_fn, lambda: float((model(x).squeeze(-1) - y).pow(2).mean()), plan,
                 state_path=tmp_path / "m.state.pt", config={"a": 1}, curve_path=tmp_path / "curve.csv",
                 on_plan=heard.append, log=lambda *_: None)
    assert heard == [40]
    rows = list(csv.DictReader(open(tmp_path / "curve.csv")))
    assert [float(r["step_seen"]) for r in rows] == [4.5, 14.5, 24.5, 34.5]      # means since the last evaluation
    for row, logged in zip(rows, result.curve):
        assert float(row["half"]) == pytest.approx(float(row["train_loss"]) / 2, rel=1e-3)
        assert logged["half"] == pytest.approx(float(row["half"]))


def test_on_plan_hears_the_step_count_that_the_cpu_budget_fixes(tmp_path):
    heard = []
    plan = FitPlan(steps=10**6, cpu_minutes=1e-4, calibration_steps=5, lr=0.05, warmup_steps=2, eval_every=5,
                   checkpoint_every=5, patience=100)
    _, result, _ = run(tmp_path, plan=plan, on_plan=heard.append)
    assert heard[0] == 10**6 and heard[-1] == result.planned_steps < 10**6
