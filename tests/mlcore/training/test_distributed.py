"""Training in several processes (mlcore/training/distributed.py, spec.py, launch.py): a step on two
processes is the step on the whole batch, rank 0's cancel stops both, and the launcher under torchrun writes one
checkpoint and a result, or refuses a bad spec clearly. Two CPU processes with gloo; no GPU is needed."""

import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing

import mlcore.training.finetune
from mlcore.training.distributed import Ranks, check_shares_fit, rank_share
from mlcore.training.finetune import TrainData, TrainingCancelled, train
from mlcore.training.galaxy_model import GalaxyModel, load_model
from mlcore.training.launch import CANCEL_NAME, EXIT_BAD_INPUT, EXIT_CANCELLED, main, parse_event
from mlcore.training.spec import TrainSpec, read_spec, write_spec
from tests.mlcore.training.test_finetune import CLASSES, config, disks, labelled_data

REPO_ROOT = Path(__file__).resolve().parents[3]
PROCESSES = 2
# torchrun's error recorder (on the launcher's main) cannot install its fault handler under pytest's captured stderr.
pytestmark = pytest.mark.filterwarnings("ignore:Unable to enable fault handler")


class PerImageNormModel(GalaxyModel):
    """GalaxyModel with every BatchNorm replaced by GroupNorm(1, C), which normalises each image on its own.

    A batch's loss is then a sum over its images, so how the batch is split between processes cannot change the
    step; with BatchNorm the CPU processes (which cannot use SyncBatchNorm) normalise over their own halves.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _swap_batch_norm(self.backbone)


def _swap_batch_norm(module: torch.nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, torch.nn.BatchNorm2d):
            setattr(module, name, torch.nn.GroupNorm(1, child.num_features))
        else:
            _swap_batch_norm(child)


def mixed_data() -> TrainData:
    """15 drawable galaxies: 7 labelled, 9 with votes (one has both), one with nothing. Odd counts, so the two
    processes' halves (8 and 7 images) cannot hold equal numbers of labelled or voted galaxies: a mean per process,
    averaged, would not be the batch's mean."""
    images, labels = disks(16)
    hard = torch.where(torch.arange(16) < 7, labels, torch.full((16,), -1))
    votes = torch.zeros(16, 5)
    votes[6:15] = torch.tensor([30.0, 10.0, 4.0, 3.0, 3.0])
    votes[6:15:2, :2] = torch.tensor([5.0, 35.0])
    return TrainData(images=images, hard=hard, hard_weight=torch.ones(16), votes=votes,
                     question_slices=[(0, 2), (2, 5)], classes=CLASSES)


def one_step_config():
    # One batch of the 15 drawable galaxies in one shuffled pass (no class-balanced draws with replacement), no
    # augmentation: a single step whose inputs both runs agree on.
    return config(batch_size=16, balance=False, augment=False, soft_vote_weight=1.0)


def step_outcome(result) -> dict:
    return {"state": {key: value.clone() for key, value in result.model.state_dict().items()},
            "grads": {name: parameter.grad.clone() for name, parameter in result.model.named_parameters()},
            "history": result.history, "processes": result.processes}


def _on_each_process(rank: int, folder: str) -> None:
    """What each of the two processes does; the outcome goes to rank<N>.pt for the test to read."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=PROCESSES,
                            timeout=datetime.timedelta(seconds=60))  # a process left waiting fails the test
    try:
        outcome = {}
        asked = []

        def cancel_before_second_batch() -> bool:
            asked.append(True)
            return len(asked) == 2

        # Rank 1's own answer is never True: only rank 0's broadcast answer can stop it.
        try:
            train(labelled_data(), config=config(epochs=2),
                  should_cancel=cancel_before_second_batch if rank == 0 else lambda: asked.append(True) or False)
        except TrainingCancelled as exc:
            outcome["cancelled"] = str(exc)
        outcome["asked"] = len(asked)
        mlcore.training.finetune.GalaxyModel = PerImageNormModel
        outcome["step"] = step_outcome(train(mixed_data(), config=one_step_config()))
        torch.save(outcome, Path(folder) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> list[dict]:
    folder = tmp_path_factory.mktemp("ddp")
    context = torch.multiprocessing.start_processes(_on_each_process, args=(str(folder),), nprocs=PROCESSES,
                                                    join=False, start_method="spawn")
    deadline = time.monotonic() + 240
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.terminate()
            pytest.fail("the two training processes did not finish within 240 s")
    return [torch.load(folder / f"rank{rank}.pt", weights_only=True) for rank in range(PROCESSES)]


def test_each_process_takes_a_disjoint_share_and_together_the_whole_batch():
    rows = torch.tensor([9, 4, 4, 7, 1, 3, 0])  # drawn with replacement: a galaxy may come twice

    shares = [rank_share(rows, Ranks(rank, 3)) for rank in range(3)]

    assert [share.tolist() for share in shares] == [[9, 4, 4], [7, 1], [3, 0]]
    assert torch.equal(rank_share(rows, Ranks()), rows)


def test_batches_too_small_for_two_images_per_process_are_refused():
    check_shares_fit(8, Ranks(0, 4))
    check_shares_fit(1, Ranks())
    with pytest.raises(ValueError, match="4 processes need batches of at least 8 images"):
        check_shares_fit(7, Ranks(3, 4))


def test_a_step_on_two_processes_with_half_the_batch_each_equals_the_step_on_the_whole_batch(two_processes,
                                                                                           monkeypatch):
    monkeypatch.setattr(mlcore.training.finetune, "GalaxyModel", PerImageNormModel)
    before = PerImageNormModel("resnet18", n_classes=2, question_slices=[(0, 2), (2, 5)], seed=0).state_dict()

    single = step_outcome(train(mixed_data(), config=one_step_config()))

    steps = [outcome["step"] for outcome in two_processes]
    assert [step["processes"] for step in steps] == [2, 2] and single["processes"] == 1
    gradient = torch.cat([grad.flatten() for grad in single["grads"].values()])
    # AdamW's first step moves each weight by about lr (1e-3) whatever the gradient's scale, so the weights alone would
    # hide a gradient off by a factor of 2; the gradients show it. Where a gradient is near AdamW's eps, rounding
    # changes the move, hence a weight tolerance of 2% of lr.
    weight_tolerance = 2e-5
    for step in steps:
        difference = torch.cat([(step["grads"][name] - grad).flatten() for name, grad in single["grads"].items()])
        assert difference.norm() <= 1e-5 * gradient.norm()
        for key, value in single["state"].items():
            torch.testing.assert_close(step["state"][key], value, rtol=0, atol=weight_tolerance)
        assert step["history"][0]["loss"] == pytest.approx(single["history"][0]["loss"], rel=1e-5)
        assert step["history"][0]["train_accuracy"] == single["history"][0]["train_accuracy"]
    # The typical weight with a gradient moved far more than the tolerance, so the comparison can tell a wrong step
    # from a right one. (Most of layer4's kernels get none: at 32 px its 3x3 kernels see 1x1 maps and padding.)
    moved = torch.cat([(single["state"][name] - before[name]).abs()[grad != 0] for name, grad in
                       single["grads"].items()])
    assert moved.median() > 10 * weight_tolerance


def test_rank_0s_cancel_stops_both_processes_at_the_same_batch(two_processes):
    assert [outcome.get("cancelled") for outcome in two_processes] == [
        "training cancelled at epoch 1, batch 2 of 2"] * 2
    assert [outcome["asked"] for outcome in two_processes] == [2, 0]


def run_launcher(*arguments: str, processes: int = PROCESSES) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", "mlcore.training.launch", *arguments]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_the_launcher_under_torchrun_trains_on_two_processes_and_writes_one_checkpoint_and_a_result(tmp_path):
    spec = write_spec(tmp_path / "spec.pt", TrainSpec(data=labelled_data(), config=config(epochs=2),
                                                      backbone="resnet18", weights="random"))
    out = tmp_path / "out"

    done = run_launcher(str(spec), str(out))

    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(path.name for path in out.iterdir()) == ["model.pt", "model.pt.heads.pt", "result.json"]
    result = json.loads((out / "result.json").read_text())
    assert result["processes"] == 2 and result["backend"] == "gloo" and len(result["history"]) == 2
    model, info = load_model(result["checkpoint"])
    assert info["classes"] == CLASSES and info["history"] == result["history"] and model.n_classes == 2
    events = [event for event in map(parse_event, done.stdout.splitlines()) if event is not None]
    # Rank 0 alone reports: one progress event per batch (2 epochs of 2), not one per process.
    assert [event["event"] for event in events] == ["started"] + ["progress"] * 4 + ["finished"]
    assert events[0]["processes"] == 2 and events[-2]["batch"] == 2 and events[-2]["epoch"] == 2


def test_a_missing_spec_under_torchrun_fails_with_the_reason_on_stderr(tmp_path):
    done = run_launcher(str(tmp_path / "nowhere.pt"), str(tmp_path / "out"), processes=1)

    assert done.returncode != 0
    assert f"train_launch: {tmp_path / 'nowhere.pt'}: no such training spec file" in done.stderr


@pytest.mark.parametrize(("content", "message"), [
    (b"not a torch file", "unreadable training spec"),
    ({"format": "something else"}, "not a training spec"),
    ({"format": "galaxy-labeling/train-spec", "version": 99}, "version 99; this code reads up to 1"),
    ({"format": "galaxy-labeling/train-spec", "version": 1, "backbone": "resnet18"}, "inconsistent.*KeyError"),
])
def test_a_bad_spec_is_refused_naming_the_file_and_the_problem(tmp_path, capsys, content, message):
    spec = tmp_path / "spec.pt"
    if isinstance(content, bytes):
        spec.write_bytes(content)
    else:
        torch.save(content, spec)

    assert main([str(spec), str(tmp_path / "out")]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err.startswith(f"train_launch: {spec}: ")
    with pytest.raises(ValueError, match=message):
        read_spec(spec)


def test_spec_data_that_does_not_hold_together_is_refused(tmp_path, capsys):
    spec = write_spec(tmp_path / "spec.pt", TrainSpec(data=labelled_data(), config=config(), backbone="resnet18",
                                                      weights="random"))
    content = torch.load(spec, weights_only=True)
    content["data"]["hard"] = content["data"]["hard"][:3]
    torch.save(content, spec)

    assert main([str(spec), str(tmp_path / "out")]) == EXIT_BAD_INPUT
    assert r"hard must have shape (16,)" in capsys.readouterr().err


def test_a_cancel_file_stops_the_launcher_before_any_checkpoint(tmp_path, capsys):
    spec = write_spec(tmp_path / "spec.pt", TrainSpec(data=labelled_data(), config=config(), backbone="resnet18",
                                                      weights="random"))
    out = tmp_path / "out"
    out.mkdir()
    (out / CANCEL_NAME).touch()

    assert main([str(spec), str(out)]) == EXIT_CANCELLED
    assert "training cancelled at epoch 1, batch 1" in capsys.readouterr().err
    assert sorted(path.name for path in out.iterdir()) == [CANCEL_NAME]
