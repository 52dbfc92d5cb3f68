"""Fine-tune from a spec file, in one process or, under torchrun, in several (one per GPU):

    torchrun --nproc_per_node=N -m mlcore.training.launch SPEC OUTDIR [--checkpoint PATH]
    python -m mlcore.training.launch SPEC OUTDIR [--checkpoint PATH]       # one process, no torchrun

Every process reads SPEC (``mlcore.training.spec``), joins the process group torchrun describes
(``mlcore.training.distributed.joined_process_group``: NCCL and the GPU of its LOCAL_RANK on CUDA, gloo on the CPU) and
calls ``mlcore.training.finetune.train``. Rank 0 alone:

- prints one line per event to stdout, ``EVENT_MARK`` then JSON (``parse_event`` reads it back): ``started``,
  ``progress`` after every batch (the fields of ``train``'s progress), ``finished``;
- stops every process at the next batch once the file ``OUTDIR/cancel`` exists;
- writes the checkpoint (``OUTDIR/model.pt`` and its heads, or ``--checkpoint``) and ``OUTDIR/result.json``: the
  checkpoint and heads paths, history, seconds, images_per_s, device, processes and backend.

Exit status: 0 trained; 2 a bad spec, bad arguments or an unusable device (one line on stderr); 3 cancelled; 1 any
other failure (traceback on stderr; under torchrun also in its summary of the failed process).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import record

from mlcore.training.distributed import Ranks, joined_process_group
from mlcore.training.finetune import TrainingCancelled, TrainResult, train
from mlcore.training.spec import SpecError, read_spec

EVENT_MARK = "@train_launch "
RESULT_NAME = "result.json"
CANCEL_NAME = "cancel"
EXIT_BAD_INPUT, EXIT_CANCELLED = 2, 3


def parse_event(line: str) -> dict | None:
    """The event a rank-0 output line carries, or None for any other line (warnings, a library's output)."""
    _, mark, payload = line.partition(EVENT_MARK)
    if not mark:
        return None
    try:
        event = json.loads(payload)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "event" in event else None


@record  # under torchrun, puts the exception of a failed process in torchrun's summary
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlcore.training.launch",
                                     description="Fine-tune a galaxy model from a spec file (under torchrun: on "
                                                 "several processes).")
    parser.add_argument("spec", type=Path, help="the training spec (mlcore.training.spec.write_spec)")
    parser.add_argument("outdir", type=Path, help="where rank 0 writes result.json (and the checkpoint)")
    parser.add_argument("--checkpoint", type=Path, help="the checkpoint to write (default OUTDIR/model.pt)")
    arguments = parser.parse_args(argv)
    try:
        spec = read_spec(arguments.spec)
        with joined_process_group(spec.config.device) as (ranks, device):
            # The spec names the kind of device; which one is this process's (its LOCAL_RANK's GPU).
            spec.config.device = str(device)
            return _train(spec, ranks, arguments.outdir, arguments.checkpoint or arguments.outdir / "model.pt")
    except (SpecError, ValueError) as exc:
        # ValueError: a device that is not there, or data the run cannot use (batches too small to share).
        print(f"train_launch: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TrainingCancelled as exc:
        print(f"train_launch: {exc}", file=sys.stderr)
        return EXIT_CANCELLED


def _train(spec, ranks: Ranks, outdir: Path, checkpoint: Path) -> int:
    cancel_file = outdir / CANCEL_NAME
    if ranks.is_main:
        outdir.mkdir(parents=True, exist_ok=True)
        _emit({"event": "started", "processes": ranks.world, "device": spec.config.device,
               "backend": _backend()})
    result = train(spec.data, backbone=spec.backbone, weights=spec.weights, config=spec.config,
                   progress=(lambda step: _emit({"event": "progress", **step})) if ranks.is_main else None,
                   should_cancel=cancel_file.exists if ranks.is_main else None, checkpoint_path=checkpoint)
    if ranks.is_main:
        path = _write_result(outdir / RESULT_NAME, result)
        _emit({"event": "finished", "result": str(path)})
    return 0


def _backend() -> str | None:
    return dist.get_backend() if dist.is_initialized() else None


def _emit(event: dict) -> None:
    print(EVENT_MARK + json.dumps(event), flush=True)


def _write_result(path: Path, result: TrainResult) -> Path:
    content = {"checkpoint": str(result.checkpoint), "heads": str(result.heads), "history": result.history,
               "seconds": result.seconds, "images_per_s": result.images_per_s, "device": result.device,
               "processes": result.processes, "backend": _backend()}
    # Written beside its final name and moved into place: whoever waits for the file never reads half of it.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        json.dump(content, out, indent=1)
    os.replace(temporary, path)
    return path


if __name__ == "__main__":
    sys.exit(main())
