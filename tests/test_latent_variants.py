"""Latent variants' bookkeeping: a prior's learning curve across its promoted continuations."""

import pandas as pd

from sepcore.experiments.latent_variants import prior_training_curve


def test_a_prior_curve_joins_the_curves_of_the_checkpoints_runs_only(tmp_path):
    import pytest

    def write(name, vals):
        pd.DataFrame({"step": [250 * (k + 1) for k in range(len(vals))], "cpu_s": [60.0 * (k + 1) for k in range(len(vals))],
                      "train_loss": vals, "val_loss": vals}).to_csv(tmp_path / f"{name}.csv", index=False)

    write("prior_x", [2.0, 1.5])
    write("prior_x_continued", [1.6, 1.7])          # not promoted
    write("prior_x_dropout", [1.45, 1.4])           # promoted: the checkpoint's second run
    write("prior_x_continued2", [1.38, 1.3])        # lower still, but never promoted: left out
    runs = [{"best_val": 1.5}, {"best_val": 1.4}]
    curve = prior_training_curve(tmp_path, "prior_x", runs)
    assert list(curve.val_loss) == [2.0, 1.5, 1.45, 1.4]
    assert list(curve.step) == [250, 500, 750, 1000] and list(curve.cpu_s) == [60.0, 120.0, 180.0, 240.0]
    on_gpu = prior_training_curve(tmp_path, "prior_x", [{"best_val": 1.5, "device": None}, {"best_val": 1.4, "device": "cuda"}])
    assert list(on_gpu.device) == ["cpu", "cpu", "cuda", "cuda"]           # a run that recorded None ran on the CPU
    with pytest.raises(ValueError, match="expected exactly one"):
        prior_training_curve(tmp_path, "prior_x", [{"best_val": 1.2}])


def test_training_runs_lists_every_run_oldest_first():
    from sepcore.checkpoints import training_runs

    last = {"step": 3, "continued_from": [{"step": 1}, {"step": 2}]}
    assert [r["step"] for r in training_runs(last)] == [1, 2, 3]
    assert [r["step"] for r in training_runs({"step": 5, "continued_from": {"step": 4}})] == [4, 5]
    assert training_runs({"step": 7}) == [{"step": 7}]



def test_training_totals_add_every_run_and_fall_back_to_wall_time():
    from sepcore.checkpoints import training_totals

    last = {"step": 30, "cpu_seconds": 600.0,
            "continued_from": [{"steps_done": 10, "wall_time_s": 120.0}, {"step": 20, "cpu_seconds": 300.0}]}
    assert training_totals(last) == (60, 1020.0)
    steps, seconds = training_totals({"step": 5})
    assert steps == 5 and seconds != seconds                    # no time recorded: NaN
    on_gpu = {"step": 40, "cpu_seconds": 50.0, "device": "cuda",      # an older record may say device None: the CPU
              "continued_from": [{"step": 10, "cpu_seconds": 100.0}, {"step": 20, "cpu_seconds": 200.0, "device": None}]}
    assert training_totals(on_gpu, "cpu") == (30, 300.0)
    assert training_totals(on_gpu, "cuda") == (40, 50.0)
    assert training_totals(on_gpu) == (70, 350.0)
