"""Progress bars for commands: a tqdm bar on stderr per phase of the work, fed by progress(done, total, phase)."""

from tqdm import tqdm


class PhaseBars:
    """A progress callback that draws one tqdm bar per phase ("checking", then "writing"); a total of 0 means
    the total is not known yet. Call close() when the work ends, also when it fails."""

    def __init__(self, unit: str = "row"):
        self.unit = unit
        self.bar = None
        self.phase = None

    def __call__(self, done: int, total: int, phase: str = "") -> None:
        # "training: epoch 2/5, loss 0.41" is the phase "training" with a changing detail, shown after the bar.
        phase, _, detail = phase.partition(": ")
        if phase != self.phase:
            self.close()
            self.bar = tqdm(total=total or None, desc=phase, unit=self.unit, mininterval=0.5)
            self.phase = phase
        if detail:
            self.bar.set_postfix_str(detail, refresh=False)
        if total and self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
