"""The training step of a retrain cycle in several processes (``settings.GALAXY_TRAIN_PROCESSES`` > 1), e.g. one per
GPU of a GPU worker.

The training set is written to a spec file in a temporary folder under GALAXY_FEATURES_ROOT, and
``python -m torch.distributed.run --standalone --nproc_per_node=N -m mlcore.training.launch`` trains in a subprocess
(``sys.executable``, so it is the worker's own Python, found without PATH). Its progress lines are forwarded as
they come, a cancellation is passed on through the launcher's cancel file, and the model is read back from the
checkpoint rank 0 wrote. ``train_in_processes`` takes and returns what ``mlcore.training.finetune.train`` does, so the
rest of the cycle (evaluation, the ModelVersion, activation) is the single-process path's.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

# The stderr kept in an error: enough for the failing process's traceback and torchrun's summary of it.
STDERR_TAIL_CHARS = 3000


class TrainingProcessError(RuntimeError):
    """The training subprocess failed; the message ends with the tail of its stderr."""


def temporary_root() -> Path:
    """Where each run's spec and logs live while it trains (removed afterwards)."""
    # A dot folder: no dataset's slug (the feature stores' folders) can start with a dot.
    return Path(settings.GALAXY_FEATURES_ROOT) / ".training"


def launch_command(*, spec: Path, outdir: Path, checkpoint: Path, processes: int) -> list[str]:
    """The torchrun command line that trains ``spec`` on ``processes`` processes of this machine."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", "mlcore.training.launch", str(spec), str(outdir), "--checkpoint", str(checkpoint)]


def train_in_processes(data, *, processes: int, backbone: str, weights: str, config,
                       progress: Callable[[dict], None] | None = None,
                       should_cancel: Callable[[], bool] | None = None, checkpoint_path: Path):
    """``mlcore.training.finetune.train`` run by torchrun on ``processes`` processes.

    Args:
        data, backbone, weights, config, progress, should_cancel, checkpoint_path: as for
            ``mlcore.training.finetune.train`` (``config.device`` names the kind of device; each process takes its own
            GPU).
        processes: how many processes (GPUs) to train on.

    Returns:
        A ``mlcore.training.finetune.TrainResult`` whose model is read back from the checkpoint.

    Raises:
        TrainingCancelled: ``should_cancel()`` said so and the processes stopped.
        TrainingProcessError: the subprocess failed; the message holds its exit status and the tail of its stderr.
    """
    from mlcore.training.finetune import TrainingCancelled, TrainResult
    from mlcore.training.galaxy_model import load_model
    from mlcore.training.launch import CANCEL_NAME, RESULT_NAME
    from mlcore.training.spec import TrainSpec, write_spec

    root = temporary_root()
    root.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="train-", dir=root))
    try:
        spec = write_spec(workdir / "spec.pt", TrainSpec(data=data, config=config, backbone=backbone,
                                                         weights=str(weights)))
        command = launch_command(spec=spec, outdir=workdir, checkpoint=Path(checkpoint_path), processes=processes)
        with open(workdir / "stderr.log", "w+") as stderr:
            cancelled, code = _run(command, stderr, progress, should_cancel, workdir / CANCEL_NAME,
                                   threads=config.threads)
            stderr.seek(0)
            tail = stderr.read()[-STDERR_TAIL_CHARS:].strip()
        result_file = workdir / RESULT_NAME
        if code == 0 and result_file.is_file():
            result = json.loads(result_file.read_text())
            model, _ = load_model(result["checkpoint"])
            return TrainResult(checkpoint=Path(result["checkpoint"]), heads=Path(result["heads"]),
                               history=result["history"], seconds=result["seconds"],
                               images_per_s=result["images_per_s"], device=result["device"], model=model,
                               processes=result["processes"])
        if cancelled:
            raise TrainingCancelled(f"training in {processes} processes cancelled")
        raise TrainingProcessError(f"training in {processes} processes failed (exit status {code}): {tail}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(command: list[str], stderr, progress, should_cancel, cancel_file: Path, *,
         threads: int | None) -> tuple[bool, int]:
    """Run ``command``, forwarding its progress events; returns (whether a cancel was passed on, exit status)."""
    from mlcore.training.launch import parse_event

    # torchrun gives each process 1 OpenMP thread unless told otherwise (and says so in a banner); the config's
    # thread count is what a single-process cycle would use.
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads or 1)}
    # A session of its own, so the whole group (torchrun and its workers) can be stopped if this side fails.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=settings.BASE_DIR,
                               env=environment, start_new_session=True)
    cancelled = False
    try:
        for line in process.stdout:
            event = parse_event(line)
            if event is not None and event["event"] == "progress" and progress is not None:
                progress({key: value for key, value in event.items() if key != "event"})
            if not cancelled and should_cancel is not None and should_cancel():
                cancel_file.touch()  # rank 0 sees it before its next batch and stops every process there
                cancelled = True
        return cancelled, process.wait()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # torchrun passes SIGTERM on to its workers
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        process.stdout.close()
