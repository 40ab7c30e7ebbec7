"""The trainer through `isr_train`: outputs, learning, determinism, resume, and refusals of bad input."""
from __future__ import annotations

import errno
import io
from pathlib import Path

import numpy as np
import pytest
import torch

import isrnet.training.checkpointing as checkpointing
import isrnet.utilities.files as atomic_files
from isrnet.acquisition import simulate_thick_slices
from isrnet.networks import build_network
from isrnet.training.checkpointing import save_checkpoint
from isrnet.training.trainer import Trainer
from isrnet.utilities.files import load_json
from training_support import (FAST_CHECKPOINTS, debug_of, isr_train, load, plan_and_preprocess,
                              single_thread,  # noqa: F401  (fixture)
                              smooth_volume, spheres_phantom, small_plan_overrides, write_target)

pytestmark = pytest.mark.usefixtures("single_thread")

DATASET = "Dataset001_Spheres"


@pytest.fixture
def dataset(folders, monkeypatch, capsys):
    """A planned and preprocessed 12 x 48 x 48 target volume (4 x 1 x 1 mm) with the small test network."""
    volume = simulate_thick_slices(spheres_phantom((48, 48, 48), seed=1), 0, 4, 4.0)[0]  # 12 x 48 x 48
    write_target(folders.raw, DATASET, {"case": volume})
    plan_and_preprocess(monkeypatch, capsys, "-d", "1", "--set", *small_plan_overrides())
    return folders


def train(monkeypatch, capsys, *args, expect_ok=True):
    return isr_train(monkeypatch, capsys, "1", "ssft", "--workers", "0", *args, expect_ok=expect_ok)


def history(folder: Path, name: str = "final") -> dict:
    return load(folder / f"checkpoint_{name}.pth")["history"]


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = load(a)["state_dict"], load(b)["state_dict"]
    assert first.keys() == second.keys()
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=1e-6, msg=key)


# ---- a run and what it leaves behind ---------------------------------------------------------------------

def test_training_writes_every_output_and_the_loss_decreases(dataset, monkeypatch, capsys) -> None:
    n = 60
    train(monkeypatch, capsys, "--from-scratch", "--iterations", str(n), "--lr", "0.003", "--batch-size", "8")
    folder = dataset.results / DATASET / "ssft"
    for name in ("checkpoint_latest.pth", "checkpoint_best.pth", "checkpoint_final.pth", "progress.png",
                 "training_log.txt", "debug.json", "plans.json"):
        assert (folder / name).is_file(), name
    assert not [p.name for p in folder.iterdir() if "partial" in p.name]
    assert (folder / "progress.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert load_json(folder / "plans.json") == load_json(dataset.preprocessed / DATASET / "plans.json")

    debug = debug_of(folder)
    assert debug["iterations"] == debug["iterations_done"] == n
    assert debug["world_size"] == 1
    assert "scratch" in debug["initial_weights"]
    config = debug["config"]
    assert (config["stage"], config["dataset"], config["iterations"]) == ("ssft", DATASET, n)
    assert (config["patch_size"], config["batch_size"], config["lr"], config["workers"]) == (24, 8, 0.003, 0)
    assert config["network"]["kwargs"]["encoder_channels"] == 8 and config["from_scratch"] is True
    log = (folder / "training_log.txt").read_text()
    assert f"finished {n} iterations" in log and "initial weights: from scratch" in log

    final = load(folder / "checkpoint_final.pth")
    assert final["iteration"] == n and final["stage"] == "ssft" and final["dataset"] == DATASET
    losses = np.asarray(final["history"]["loss"])
    assert losses.shape == (n,) and np.isfinite(losses).all()
    quarter = n // 4
    assert losses[-quarter:].mean() < 0.9 * losses[:quarter].mean(), losses
    validation = final["history"]["validation"]
    assert [v["iteration"] for v in validation] == list(range(0, n + 1, 3))
    assert validation[-1]["psnr"] > validation[0]["psnr"] + 0.5  # held-out pairs improve over cubic
    assert validation[0]["psnr"] == pytest.approx(validation[0]["psnr_cubic"], abs=1e-6)  # starts as cubic
    best = load(folder / "checkpoint_best.pth")
    assert best["best_psnr"] == pytest.approx(max(v["psnr"] for v in validation[1:]))


def test_tag_puts_a_variant_beside_the_default_run(dataset, monkeypatch, capsys) -> None:
    train(monkeypatch, capsys, "--from-scratch", "--iterations", "2", "--tag", "quick")
    folder = dataset.results / DATASET / "ssft__quick"
    assert (folder / "checkpoint_final.pth").is_file()
    assert not (dataset.results / DATASET / "ssft").exists()
    assert debug_of(folder)["config"]["tag"] == "quick"


def test_budget_sets_the_iteration_count(dataset, monkeypatch, capsys) -> None:
    from isrnet.training.trainer import THREAD_TRIAL
    train(monkeypatch, capsys, "--from-scratch", "--budget-minutes", "0.1")
    folder = dataset.results / DATASET / "ssft"
    debug = debug_of(folder)
    assert debug["config"]["iterations"] is None and debug["config"]["budget_minutes"] == 0.1
    assert debug["iterations"] == debug["iterations_done"] >= 1 + THREAD_TRIAL
    assert load(folder / "checkpoint_final.pth")["total_iterations"] == debug["iterations"]
    assert "budget 0.1 min" in (folder / "training_log.txt").read_text()


def test_budget_is_re_estimated_when_iterations_slow_down(dataset, monkeypatch, capsys) -> None:
    """A machine that gets busy mid-run: the count shrinks, the run ends within its budget, and the learning
    rate, which follows the current count, ends at (almost) 0 on the last iteration. Validation is set too rare
    to happen before the end (as in a 2-min CPU run): re-estimation must not wait for it."""
    import time

    from isrnet.training.trainer import scheduled_lr
    original = Trainer._train_step

    def slowed(self, model, batch):
        if self.iteration >= 12:
            time.sleep(0.1)
        return original(self, model, batch)
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_train_step", slowed)
        train(monkeypatch, capsys, "--from-scratch", "--budget-minutes", "0.3", "--set",
              "training.validation_every=100000")
    folder = dataset.results / DATASET / "ssft"
    debug = debug_of(folder)
    assert [v["iteration"] for v in load(folder / "checkpoint_final.pth")["history"]["validation"]] == \
        [0, debug["iterations_done"]]  # no validation in between
    estimates = debug["budget_estimates"]
    first, last = estimates[0][1], estimates[-1][1]
    assert last < first and debug["iterations_done"] == debug["iterations"] == last, estimates
    assert debug["seconds_this_command"] <= 0.3 * 60 + 3
    checkpoint = load(folder / "checkpoint_final.pth")
    lrs = checkpoint["history"]["lr"]
    config = debug["config"]
    assert len(lrs) == last and lrs[-1] == pytest.approx(scheduled_lr(config["lr"], last - 1, last,
                                                                      config["warmup_fraction"])), estimates
    assert lrs[-1] < 0.05 * max(lrs) and checkpoint["total_iterations"] == last, (estimates, lrs[-3:])
    assert "s per iteration lately" in (folder / "training_log.txt").read_text()


# ---- determinism and resume ------------------------------------------------------------------------------

def test_seeded_runs_are_identical_whatever_the_worker_count(dataset, monkeypatch, capsys) -> None:
    common = ("--from-scratch", "--iterations", "5", "--seed", "7")
    isr_train(monkeypatch, capsys, "1", "ssft", *common, "--workers", "0", "--tag", "a")
    isr_train(monkeypatch, capsys, "1", "ssft", *common, "--workers", "0", "--tag", "b")
    isr_train(monkeypatch, capsys, "1", "ssft", *common, "--workers", "1", "--tag", "w1")
    isr_train(monkeypatch, capsys, "1", "ssft", *common, "--workers", "2", "--tag", "w2")
    isr_train(monkeypatch, capsys, "1", "ssft", "--from-scratch", "--iterations", "5", "--seed", "8",
              "--workers", "0", "--tag", "other")
    root = dataset.results / DATASET
    a, b = history(root / "ssft__a"), history(root / "ssft__b")
    assert a["loss"] == b["loss"], "two identical seeded runs gave different loss curves"
    assert a["validation"] == b["validation"]
    assert_same_weights(root / "ssft__a/checkpoint_final.pth", root / "ssft__b/checkpoint_final.pth")
    for tag in ("w1", "w2"):
        np.testing.assert_allclose(history(root / f"ssft__{tag}")["loss"], a["loss"], rtol=0, atol=1e-6,
                                   err_msg=f"--workers {tag[1]} differs from --workers 0")
        assert_same_weights(root / "ssft__a/checkpoint_final.pth", root / f"ssft__{tag}/checkpoint_final.pth")
    assert history(root / "ssft__other")["loss"] != a["loss"]  # the seed matters


def test_resume_after_an_interruption_continues_the_same_loss_curve(dataset, monkeypatch, capsys) -> None:
    isr_train(monkeypatch, capsys, "1", "ssft", "--from-scratch", "--iterations", "8", "--workers", "0",
              "--tag", "full", *FAST_CHECKPOINTS)

    original = Trainer._train_step

    def interrupted(self, model, batch):
        if self.iteration == 5:
            raise KeyboardInterrupt
        return original(self, model, batch)
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_train_step", interrupted)
        result = isr_train(monkeypatch, capsys, "1", "ssft", "--from-scratch", "--iterations", "8",
                           "--workers", "0", "--tag", "cut", *FAST_CHECKPOINTS, expect_ok=False)
    assert result.code == 130
    cut = dataset.results / DATASET / "ssft__cut"
    assert load(cut / "checkpoint_latest.pth")["iteration"] == 5
    assert not (cut / "checkpoint_final.pth").exists()
    assert not [p.name for p in cut.iterdir() if "partial" in p.name]

    # --c alone: the initial weights of the interrupted run are not looked for again
    isr_train(monkeypatch, capsys, "1", "ssft", "--c", "--workers", "0", "--tag", "cut", *FAST_CHECKPOINTS)
    full, resumed = history(dataset.results / DATASET / "ssft__full"), history(cut)
    assert len(resumed["loss"]) == 8
    np.testing.assert_allclose(resumed["loss"], full["loss"], rtol=0, atol=1e-6)
    assert [v["iteration"] for v in resumed["validation"]] == [v["iteration"] for v in full["validation"]]
    np.testing.assert_allclose([v["psnr"] for v in resumed["validation"]], [v["psnr"] for v in full["validation"]],
                               rtol=0, atol=1e-6)
    assert_same_weights(dataset.results / DATASET / "ssft__full/checkpoint_final.pth", cut / "checkpoint_final.pth")
    debug = debug_of(cut)
    assert debug["iterations_done"] == 8 and "scratch" in debug["initial_weights"]
    assert "resuming at iteration 5 of 8" in (cut / "training_log.txt").read_text()


def test_continue_extends_a_finished_run(dataset, monkeypatch, capsys) -> None:
    train(monkeypatch, capsys, "--from-scratch", "--iterations", "3")
    train(monkeypatch, capsys, "--c", "--iterations", "5")
    final = load(dataset.results / DATASET / "ssft" / "checkpoint_final.pth")
    assert final["iteration"] == 5 and len(final["history"]["loss"]) == 5
    debug = debug_of(dataset.results / DATASET / "ssft")
    assert debug["iterations_done"] == 5 and debug["command"].endswith("--c --iterations 5")
    # provenance keeps the first command's share of the work
    earlier = [c["command"].split(" 1 ssft ")[1] for c in debug["earlier_commands"]]
    assert earlier == ["--workers 0 --from-scratch --iterations 3"]
    assert debug["earlier_commands"][0]["seconds_this_command"] > 0
    result = train(monkeypatch, capsys, "--c", "--iterations", "4", expect_ok=False)
    assert result.code == 1 and "--iterations 4 is below the 5 already done" in result.error


# ---- initial weights --------------------------------------------------------------------------------------

def _network_config(dataset) -> dict:
    return load_json(dataset.preprocessed / DATASET / "plans.json")["network"]


def test_ssft_starts_from_the_mrft_result(dataset, monkeypatch, capsys) -> None:
    network = _network_config(dataset)
    torch.manual_seed(3)
    model = build_network(network)
    mrft = dataset.results / "Dataset901_Iso" / "mrft" / "checkpoint_final.pth"
    mrft.parent.mkdir(parents=True)
    save_checkpoint({"network": network, "state_dict": model.state_dict()}, mrft)
    train(monkeypatch, capsys, "--iterations", "1")
    debug = debug_of(dataset.results / DATASET / "ssft")
    assert debug["initial_weights"] == "mrft result of dataset 901" and debug["initial_weights_path"] == str(mrft)


def test_init_checkpoint_is_used(dataset, monkeypatch, capsys, tmp_path) -> None:
    network = _network_config(dataset)
    model = build_network(network)
    with torch.no_grad():
        model.decoder[-1].bias.fill_(0.25)
    save_checkpoint({"network": network, "state_dict": model.state_dict()}, tmp_path / "start.pth")
    captured = {}
    original = Trainer._prepare

    def prepare(self):
        original(self)
        captured["bias"] = float(self.network.decoder[-1].bias.detach())
    monkeypatch.setattr(Trainer, "_prepare", prepare)
    train(monkeypatch, capsys, "-init", str(tmp_path / "start.pth"), "--iterations", "1")
    assert captured["bias"] == 0.25
    assert debug_of(dataset.results / DATASET / "ssft")["initial_weights"] == f"-init {tmp_path / 'start.pth'}"


# ---- bad input ----------------------------------------------------------------------------------------------

def test_unknown_stage_lists_the_valid_ones(dataset, monkeypatch, capsys) -> None:
    result = isr_train(monkeypatch, capsys, "1", "sft", expect_ok=False)
    assert result.code == 1
    assert "unknown stage 'sft'" in result.error and "video, mrft, ssft" in result.error


def test_stage_of_another_kind_is_refused(dataset, monkeypatch, capsys) -> None:
    result = isr_train(monkeypatch, capsys, "1", "mrft", expect_ok=False)
    assert result.code == 1 and "kind 'hr_mr'" in result.error and "kind 'target'" in result.error


def test_dataset_not_preprocessed_names_the_command(folders, monkeypatch, capsys) -> None:
    write_target(folders.raw, DATASET, {"case": smooth_volume((6, 24, 24))})
    result = isr_train(monkeypatch, capsys, "1", "ssft", "--from-scratch", expect_ok=False)
    assert result.code == 1 and "isr_plan_and_preprocess -d Dataset001_Spheres" in result.error
    assert "Traceback" not in result.err


def test_interrupted_preprocessing_names_the_command(dataset, monkeypatch, capsys) -> None:
    (dataset.preprocessed / DATASET / "preprocessing_done.json").unlink()
    result = train(monkeypatch, capsys, "--from-scratch", expect_ok=False)
    assert result.code == 1 and "not preprocessed" in result.error and "isr_plan_and_preprocess" in result.error


def test_incompatible_init_checkpoint_says_what_differs(dataset, monkeypatch, capsys, tmp_path) -> None:
    network = _network_config(dataset)
    other = {"name": network["name"], "kwargs": dict(network["kwargs"], encoder_channels=6, mixer_channels=4)}
    save_checkpoint({"network": other, "state_dict": build_network(other).state_dict()}, tmp_path / "other.pth")
    result = train(monkeypatch, capsys, "-init", str(tmp_path / "other.pth"), expect_ok=False)
    assert result.code == 1 and "incompatible" in result.error
    assert "encoder_channels: checkpoint 6 vs plan 8" in result.error
    assert "mixer_channels: checkpoint 4 vs plan 8" in result.error
    assert "fusion_channels" not in result.error  # only what differs
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    result = train(monkeypatch, capsys, "-init", str(tmp_path / "garbage.pth"), expect_ok=False)
    assert result.code == 1 and "cannot be read" in result.error
    result = train(monkeypatch, capsys, "-init", str(tmp_path / "missing.pth"), expect_ok=False)
    assert result.code == 1 and "does not exist" in result.error
    result = train(monkeypatch, capsys, "-init", str(tmp_path / "other.pth"), "--from-scratch", expect_ok=False)
    assert result.code == 1 and "exclude each other" in result.error
    assert not (dataset.results / DATASET / "ssft" / "checkpoint_final.pth").exists()


def test_nothing_to_initialise_from_names_the_options(dataset, monkeypatch, capsys) -> None:
    monkeypatch.setattr("isrnet.training.initialisation.shipped_weights", lambda stage: None)
    result = train(monkeypatch, capsys, expect_ok=False)
    assert result.code == 1 and "nothing to initialise ssft from" in result.error
    assert "-init" in result.error and "--from-scratch" in result.error and "isr_train 901 mrft" in result.error


def test_volume_with_too_few_slices_is_refused(folders, monkeypatch, capsys) -> None:
    write_target(folders.raw, "Dataset002_Thin", {"thin": smooth_volume((3, 24, 24))})
    result = plan_and_preprocess(monkeypatch, capsys, "-d", "2", expect_ok=False)
    assert result.code == 1 and "only 3 slices" in result.error and "at least 4" in result.error
    # a preprocessed array that lost slices (e.g. edited by hand) is refused by the trainer too
    write_target(folders.raw, DATASET, {"case": smooth_volume((6, 24, 24))})
    plan_and_preprocess(monkeypatch, capsys, "-d", "1", "--set", *small_plan_overrides())
    data = folders.preprocessed / DATASET / "data" / "case.npy"
    np.save(data, np.load(data)[:3])
    result = train(monkeypatch, capsys, "--from-scratch", "--iterations", "1", expect_ok=False)
    assert result.code == 1 and "case case: 3 slices are too few" in result.error


def test_finished_run_is_not_overwritten(dataset, monkeypatch, capsys) -> None:
    train(monkeypatch, capsys, "--from-scratch", "--iterations", "1")
    folder = dataset.results / DATASET / "ssft"
    before = (folder / "checkpoint_final.pth").read_bytes()
    result = train(monkeypatch, capsys, "--from-scratch", "--iterations", "1", expect_ok=False)
    assert result.code == 1 and "already holds a finished run" in result.error
    assert "--c" in result.error and "--tag" in result.error
    assert (folder / "checkpoint_final.pth").read_bytes() == before


def test_continue_with_a_changed_network_says_what_differs(dataset, monkeypatch, capsys) -> None:
    train(monkeypatch, capsys, "--from-scratch", "--iterations", "1")
    result = train(monkeypatch, capsys, "--c", "--iterations", "2", "--set", "network.kwargs.encoder_channels=10",
                   expect_ok=False)
    assert result.code == 1 and "incompatible" in result.error
    assert "encoder_channels: checkpoint 8 vs plan 10" in result.error and "Traceback" not in result.err


def test_a_dying_sampling_worker_is_reported(dataset, monkeypatch, capsys) -> None:
    import os
    from isrnet.training.samplers.ssft import SsftSampler
    parent, original = os.getpid(), SsftSampler.sample

    def sample(self, rng, batch_size, patch):
        if os.getpid() != parent:  # only in the background process (validation batches come from the main one)
            raise ValueError("sampler exploded")
        return original(self, rng, batch_size, patch)
    monkeypatch.setattr(SsftSampler, "sample", sample)
    result = isr_train(monkeypatch, capsys, "1", "ssft", "--from-scratch", "--iterations", "3", "--workers", "1",
                       expect_ok=False)
    assert result.code == 1 and "background sampling worker died" in result.error and "--workers 0" in result.error


def test_continue_without_a_checkpoint_is_refused(dataset, monkeypatch, capsys) -> None:
    result = train(monkeypatch, capsys, "--c", expect_ok=False)
    assert result.code == 1 and "no checkpoint_latest.pth" in result.error


class _FullDisk(io.FileIO):
    """A file that accepts a few hundred bytes, then fails like a full disk."""

    def write(self, data) -> int:
        if self.tell() + len(data) > 300:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)


def _inject_save_failure(patcher: pytest.MonkeyPatch, failure: str) -> None:
    """The checkpoint of iteration 3 fails half-written (iterations 1 and 2 save normally)."""
    real_save = torch.save
    if failure == "torch.save raises OSError":
        def save(content, handle, *args, **kwargs):
            if content["iteration"] == 3:
                handle.write(b"PK\x03\x04 half a checkpoint")
                raise OSError(errno.EIO, "Input/output error")
            return real_save(content, handle, *args, **kwargs)
        patcher.setattr(checkpointing.torch, "save", save)
    else:  # the real torch.save writing into a file on a disk that fills up (torch raises RuntimeError)
        calls = {"n": 0}

        def fake_open(path, mode="r", *args, **kwargs):
            if "partial" in str(path) and ".pth" in str(path) and "w" in mode:
                calls["n"] += 1
                if calls["n"] == 3:
                    return _FullDisk(path, "w")
            return open(path, mode, *args, **kwargs)
        patcher.setattr(atomic_files, "open", fake_open, raising=False)


@pytest.mark.parametrize("failure", ["torch.save raises OSError", "disk full during torch.save"])
def test_failed_save_keeps_the_previous_checkpoint(dataset, monkeypatch, capsys, failure) -> None:
    with monkeypatch.context() as patcher:
        _inject_save_failure(patcher, failure)
        result = train(monkeypatch, capsys, "--from-scratch", "--iterations", "6", *FAST_CHECKPOINTS,
                       expect_ok=False)
    assert result.code == 1 and result.error, result.err
    assert "could not save checkpoint" in result.error and "previous checkpoint is still valid" in result.error
    assert "Traceback" not in result.err
    folder = dataset.results / DATASET / "ssft"
    assert sorted(p.name for p in folder.iterdir() if p.suffix == ".pth") == ["checkpoint_latest.pth"]
    assert not [p.name for p in folder.iterdir() if "partial" in p.name]
    latest = load(folder / "checkpoint_latest.pth")
    assert latest["iteration"] == 2 and len(latest["history"]["loss"]) == 2
    # and training can go on from it
    train(monkeypatch, capsys, "--c", *FAST_CHECKPOINTS)
    assert load(folder / "checkpoint_final.pth")["iteration"] == 6


# ---- never worse than the start -----------------------------------------------------------------------------

def test_warm_up_then_decay_follow_the_count() -> None:
    from isrnet.training.trainer import scheduled_lr
    lrs = [scheduled_lr(1e-3, i, 100, 0.1) for i in range(100)]
    assert lrs[0] < 0.2e-3 and max(lrs) == pytest.approx(1e-3, rel=0.1) and int(np.argmax(lrs)) == 10
    assert lrs[-1] < 0.02e-3 and all(b <= a for a, b in zip(lrs[10:], lrs[11:]))
    assert scheduled_lr(1e-3, 0, 100, 0.0) == 1e-3  # no warm-up: from-scratch stages as before


def test_guard_keeps_the_start_when_fine_tuning_fails(dataset, monkeypatch, capsys) -> None:
    train(monkeypatch, capsys, "--from-scratch", "--iterations", "30", "--lr", "0.003", "--tag", "base")
    base = dataset.results / DATASET / "ssft__base" / "checkpoint_final.pth"
    train(monkeypatch, capsys, "-init", str(base), "--iterations", "6", "--lr", "0.5", "--tag", "wild")
    folder = dataset.results / DATASET / "ssft__wild"
    guard = debug_of(folder)["guard"]
    assert guard["kept"] == "start" and guard["final_psnr"] < guard["start_psnr"], guard
    witness = guard["hidden_slices"]  # hidden real slices of the training cases agree: the wrecked weights are worse
    assert witness["final_psnr"] < witness["start_psnr"] and witness["says"] == "start", witness
    assert_same_weights(folder / "checkpoint_final.pth", base)
    assert "guard: kept the starting weights" in (folder / "training_log.txt").read_text()
    from isrnet.benchmarking.benchmark import trained_models
    from isrnet.experiment_planning.plans_file import load_plans
    labels = [m.label for m in trained_models(DATASET, load_plans(DATASET))]
    assert "isrnet ssft wild (guard kept its starting weights)" in labels and "isrnet ssft base" in labels


def _witness_against_fine_tuning(monkeypatch) -> None:
    """The hidden real slices score the run's own (final) weights 1 dB below its start, whatever they are."""
    _witness_scores(monkeypatch, [20.0, 20.5, 19.5], [21.0, 21.5, 20.5])


def _witness_scores(monkeypatch, final: list[float], start: list[float], halfway: list[float] | None = None) -> None:
    """The witness's per-slice PSNRs of the final, the starting and (if asked for) the halfway weights, whatever the
    weights are; the halfway weights score as the final ones unless `halfway` is given."""
    import isrnet.training.hidden_slice_witness as witness
    scores = iter([witness.WitnessScore(float(np.mean(values)), np.array(values))  # the trainer scores the final
                   for values in (final, start, halfway or final)])  # weights first, then the start, then halfway
    monkeypatch.setattr(witness, "hidden_slice_score", lambda network, volumes, device="cpu": next(scores))


def test_guard_keeps_the_start_when_only_the_simulated_pairs_say_better(dataset, monkeypatch, capsys) -> None:
    """Fine-tuning that raises the held-out simulated pairs but lowers the hidden real slices of the training cases:
    the default rule (the witness) keeps the start, so does 'validation+witness'; 'validation' keeps the run's."""
    train(monkeypatch, capsys, "--from-scratch", "--iterations", "30", "--lr", "0.003", "--tag", "base")
    base = dataset.results / DATASET / "ssft__base" / "checkpoint_final.pth"
    for rule, tag in ((None, "default"), ("validation+witness", "both"), ("validation", "simulated")):
        _witness_against_fine_tuning(monkeypatch)
        chosen = ("--set", f"training.guard={rule}") if rule else ()
        train(monkeypatch, capsys, "-init", str(base), "--iterations", "20", "--lr", "0.003", "--tag", tag, *chosen)
        folder = dataset.results / DATASET / f"ssft__{tag}"
        guard = debug_of(folder)["guard"]
        assert guard["final_psnr"] >= guard["start_psnr"], guard  # the simulated pairs say fine-tuning helped
        assert guard["hidden_slices"]["says"] == "start" and guard["rule"] == (rule or "witness"), guard
        if rule is None:  # the halfway weights were scored too (as the final ones here) and turned down as well
            assert guard["hidden_slices"]["halfway"]["says"] == "start" and "halfway weights" in guard["reason"], guard
        if rule != "validation":
            assert guard["kept"] == "start" and "hidden real slices 20.00 dB < the start's 21.00 dB" in guard["reason"]
            assert_same_weights(folder / "checkpoint_final.pth", base)
        else:
            assert guard["kept"] == "fine-tuned", guard
            assert_same_weights(folder / "checkpoint_final.pth", folder / "checkpoint_latest.pth")


def test_the_witness_keeps_the_start_unless_its_lead_clears_the_margin(dataset, monkeypatch, capsys) -> None:
    """A witness lead of 0.1 dB that the hidden slices disagree on (per-slice differences -0.9 .. +1.1 dB) is within
    chance: the start is kept; with training.witness_margin=0 (no margin) the fine-tuned weights are."""
    train(monkeypatch, capsys, "--from-scratch", "--iterations", "30", "--lr", "0.003", "--tag", "base")
    base = dataset.results / DATASET / "ssft__base" / "checkpoint_final.pth"
    start = [20.0, 21.0, 22.0, 20.0]
    for margin, tag, kept in (("1.645", "margin", "start"), ("0", "nomargin", "fine-tuned")):
        _witness_scores(monkeypatch, [20.5, 20.1, 22.9, 19.9], start)  # +0.5, -0.9, +0.9, -0.1: mean +0.1 dB
        train(monkeypatch, capsys, "-init", str(base), "--iterations", "5", "--tag", tag,
              "--set", "training.guard=witness", f"training.witness_margin={margin}")
        guard = debug_of(dataset.results / DATASET / f"ssft__{tag}")["guard"]
        witness = guard["hidden_slices"]
        assert witness["slices"] == 4 and guard["kept"] == kept, guard
        if kept == "start":
            assert witness["margin_db"] > 0.1 and "margin" in guard["reason"], guard
        else:
            assert witness["margin_db"] == 0.0, guard


def test_weights_the_witness_turns_down_get_a_second_chance_halfway_from_the_start(dataset, monkeypatch,
                                                                                   capsys) -> None:
    """The fine-tuned weights lead by 0.1 dB with hidden slices that disagree (turned down by the margin); the
    weights halfway between the start and them lead by 0.3 dB on every slice: the run keeps those (checkpoint_final
    is the mean of start and fine-tuned weights), and says so. With training.halfway_weights=false: the start."""
    train(monkeypatch, capsys, "--from-scratch", "--iterations", "30", "--lr", "0.003", "--tag", "base")
    base = dataset.results / DATASET / "ssft__base" / "checkpoint_final.pth"
    start = [20.0, 21.0, 22.0, 20.0]
    for setting, tag, kept in (("true", "halfway", "halfway"), ("false", "nohalfway", "start")):
        _witness_scores(monkeypatch, [20.5, 20.1, 22.9, 19.9], start, [20.3, 21.3, 22.3, 20.3])
        train(monkeypatch, capsys, "-init", str(base), "--iterations", "5", "--tag", tag,
              "--set", f"training.halfway_weights={setting}")
        folder = dataset.results / DATASET / f"ssft__{tag}"
        guard = debug_of(folder)["guard"]
        assert guard["kept"] == kept and guard["hidden_slices"]["says"] == "start", guard
        if kept == "start":
            assert "halfway" not in guard["hidden_slices"], guard
            assert_same_weights(folder / "checkpoint_final.pth", base)
            continue
        assert guard["hidden_slices"]["halfway"]["psnr"] == pytest.approx(21.05), guard
        assert "halfway weights: hidden real slices 21.05 dB >= the start's 20.75 dB" in guard["reason"], guard
        weights = {name: load(folder / f"checkpoint_{name}.pth")["state_dict"] for name in ("final", "latest")}
        started = load(base)["state_dict"]
        for key, tensor in weights["final"].items():
            torch.testing.assert_close(tensor, (started[key] + weights["latest"][key]) / 2)
        assert not torch.equal(weights["final"]["encoder.0.weight"], started["encoder.0.weight"])
        assert "guard: kept the halfway weights" in (folder / "training_log.txt").read_text()
        from isrnet.runs import RunRecord
        assert RunRecord.load(folder / "debug.json").kept_halfway


def test_a_training_case_whose_own_hidden_slices_prefer_the_start_is_predicted_with_it(folders, monkeypatch,
                                                                                          capsys) -> None:
    """Two training cases; the dataset's witness keeps the fine-tuned weights, but case 'b''s own hidden slices score
    them below the start: `isr_predict -d` predicts 'b' with the starting weights (its sidecar says so) and 'a' with
    the fine-tuned ones. A case of no training run (renamed) gets the fine-tuned weights."""
    from isrnet.imageio import read_volume
    from isrnet.inference import PredictionSettings, PredictOptions, predict_paths
    import isrnet.training.hidden_slice_witness as witness
    cases = {name: simulate_thick_slices(spheres_phantom((48, 48, 48), seed=seed), 0, 4, 4.0)[0]
             for name, seed in (("a", 1), ("b", 2))}
    images = write_target(folders.raw, DATASET, cases) / "imagesTr"
    plan_and_preprocess(monkeypatch, capsys, "-d", "1", "--set", *small_plan_overrides())
    train(monkeypatch, capsys, "--from-scratch", "--iterations", "20", "--lr", "0.003", "--tag", "base")
    base = folders.results / DATASET / "ssft__base" / "checkpoint_final.pth"
    final = witness.WitnessScore(21.0, np.array([23.0, 23.0, 19.0, 19.0]), {"a": 23.0, "b": 19.0}, {"a": 2, "b": 2})
    start = witness.WitnessScore(20.0, np.array([20.0, 20.0, 20.0, 20.0]), {"a": 20.0, "b": 20.0}, {"a": 2, "b": 2})
    scores = iter([final, start])  # the trainer scores the final weights first, then the start
    monkeypatch.setattr(witness, "hidden_slice_score", lambda network, volumes, device="cpu": next(scores))
    train(monkeypatch, capsys, "-init", str(base), "--iterations", "4", "--set", "training.witness_margin=0")
    folder = folders.results / DATASET / "ssft"
    guard = debug_of(folder)["guard"]
    per_case = guard["hidden_slices"]["per_case"]
    assert guard["kept"] == "fine-tuned" and per_case["b"]["says"] == "start" and per_case["a"]["says"] == "fine-tuned"
    assert per_case["b"]["lead_db"] == pytest.approx(-1.0) and "b: fine-tuned -1.00 dB" in \
        (folder / "training_log.txt").read_text()

    def predict(source: Path, output: Path, model: Path) -> dict:
        results = predict_paths(source, output, model, PredictOptions(PredictionSettings(thickness_mm=4.0)))
        assert not any(r.failed for r in results), [r.message for r in results]
        return {r.source.name.split(".")[0]: read_volume(r.output).array for r in results}
    by_run = predict(images, folders.results / "by_run", folder)
    from_start = predict(images, folders.results / "from_start", base)
    from_final = predict(images, folders.results / "from_final", folder / "checkpoint_latest.pth")
    np.testing.assert_array_equal(by_run["b"], from_start["b"])
    np.testing.assert_array_equal(by_run["a"], from_final["a"])
    assert not np.array_equal(from_start["b"], from_final["b"])  # the two weights differ on this case
    sidecar = load_json(folders.results / "by_run" / "b.json")
    assert "its starting weights for b" in sidecar["model"] and "-1.00 dB" in sidecar["model"], sidecar["model"]
    assert "starting weights" not in load_json(folders.results / "by_run" / "a.json")["model"]
    renamed = folders.results / "renamed"
    renamed.mkdir()
    (renamed / "c.nii.gz").write_bytes((images / "b.nii.gz").read_bytes())
    np.testing.assert_array_equal(predict(renamed, folders.results / "by_run_c", folder)["c"], from_final["b"])


def test_a_run_whose_cases_give_no_witness_keeps_its_start(dataset, monkeypatch, capsys) -> None:
    """Cases too short to hide real slices of: nothing real can vouch for the fine-tuned weights, so the default rule
    keeps the start and says why; 'validation' lets the simulated pairs decide."""
    train(monkeypatch, capsys, "--from-scratch", "--iterations", "30", "--lr", "0.003", "--tag", "base")
    base = dataset.results / DATASET / "ssft__base" / "checkpoint_final.pth"
    import isrnet.training.hidden_slice_witness as witness
    monkeypatch.setattr(witness, "hidden_slice_score", lambda network, volumes, device="cpu": None)
    for rule, tag in ((None, "default"), ("validation", "simulated")):
        chosen = ("--set", f"training.guard={rule}") if rule else ()
        train(monkeypatch, capsys, "-init", str(base), "--iterations", "5", "--tag", tag, *chosen)
        folder = dataset.results / DATASET / f"ssft__{tag}"
        guard = debug_of(folder)["guard"]
        assert "hidden_slices" not in guard, guard
        if rule is None:
            assert guard["kept"] == "start" and "too few slices" in guard["reason"], guard
            assert_same_weights(folder / "checkpoint_final.pth", base)
        else:
            said = "start" if guard["final_psnr"] < guard["start_psnr"] else "fine-tuned"
            assert guard["kept"] == said and "too few slices" not in guard["reason"], guard


def test_an_unknown_guard_rule_is_refused_before_training(dataset, monkeypatch, capsys) -> None:
    result = train(monkeypatch, capsys, "--iterations", "2", "--set", "training.guard=oracle", expect_ok=False)
    assert result.code != 0 and "training.guard 'oracle' is unknown" in result.err, result.err
    assert "Traceback" not in result.err and not (dataset.results / DATASET / "ssft").exists()


def test_budgeted_cpu_run_chooses_the_faster_thread_count(dataset, monkeypatch, capsys) -> None:
    """With two threads slowed artificially (a loaded machine), the run goes on with one."""
    original = Trainer._train_step

    def slow_with_two(self, model, batch):
        if torch.get_num_threads() > 1:
            import time
            time.sleep(0.2)
        return original(self, model, batch)
    torch.set_num_threads(2)  # after the single_thread fixture: this test is about choosing
    monkeypatch.setattr(Trainer, "_train_step", slow_with_two)
    train(monkeypatch, capsys, "--from-scratch", "--budget-minutes", "0.1")
    threads = debug_of(dataset.results / DATASET / "ssft")["threads"]
    assert threads["chosen"] == 1 and set(threads["seconds_per_iteration"]) == {"1", "2"}
    assert torch.get_num_threads() == 2  # the caller's setting is restored


def test_cases_preprocessed_before_noise_was_measured_get_a_notice(capsys) -> None:
    from isrnet.training.run import _notice_unmeasured_noise
    cases = [(None, {"case": "old"}), (None, {"case": "new", "noise_sigma": 0.0})]
    _notice_unmeasured_noise("Dataset001_X", {"name": "ssft"}, cases)
    assert "isr_plan_and_preprocess -d Dataset001_X again" in capsys.readouterr().err
    _notice_unmeasured_noise("Dataset001_X", {"name": "ssft", "noise_matching": False}, cases)
    _notice_unmeasured_noise("Dataset001_X", {"name": "ssft"}, cases[1:])
    assert capsys.readouterr().err == ""
