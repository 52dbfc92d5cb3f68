"""Commands show progress as one bar at a time on a terminal, and as plain lines without control characters in a
log (`make demo > demo.log`), through labeling.management.progress."""

import io
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from tqdm import tqdm

from labeling.management.progress import PhaseBars

COMMANDS = Path(__file__).resolve().parents[2] / "labeling" / "management" / "commands"
CONTROL = re.compile(r"[\r\x1b\x08]")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _import_phases(progress, datasets=("galaxy10", "sdss", "gz2")) -> None:
    """What the demo's imports report: per dataset "checking images" then "writing", then a vote table whose row
    count is unknown (0) while it is read."""
    for n in (110, 83, 12)[:len(datasets)]:
        for done in range(n + 1):
            progress(done, n, "checking images")
        for done in range(0, n + 1, 5):
            progress(done, n, "writing")
        progress(n, n, "writing")
    for done in range(0, 20000, 1000):
        progress(done, 0, "reading")


def test_in_a_log_it_writes_plain_lines_a_first_and_last_one_per_phase():
    log = io.StringIO()
    with PhaseBars(unit="img", stream=log) as bars:
        _import_phases(bars)

    text = log.getvalue()
    assert not CONTROL.search(text)
    lines = text.splitlines()
    assert lines[0] == "checking images: 0/110 img (0%)"
    assert re.fullmatch(r"checking images: 110/110 img \(100%\), done in \d+\.\d s", lines[1])
    assert sum(line.startswith("checking images: 0/") for line in lines) == 3  # each dataset's phase starts anew
    assert sum("done in" in line for line in lines) == 6
    assert lines[-1] == "reading: 19000 img"  # close() reports where an open-ended phase got to
    assert len(lines) < 20


def test_in_a_log_a_long_phase_gets_a_line_per_tenth(monkeypatch):
    clock = iter(range(0, 10_000, 2))  # every call two seconds after the last
    monkeypatch.setattr("labeling.management.progress.time.monotonic", lambda: next(clock))
    log = io.StringIO()
    with PhaseBars(unit="%", stream=log, every=1000) as bars:
        for done in range(101):
            bars(done, 100, f"training: epoch {done // 20 + 1}/6, loss 0.5")

    lines = log.getvalue().splitlines()
    assert [line.split(" %")[0] for line in lines] == [f"training: {p}/100" for p in range(0, 101, 10)]
    assert lines[3] == "training: 30/100 % (30%), epoch 2/6, loss 0.5"


def test_in_a_log_control_characters_in_a_message_are_replaced():
    log = io.StringIO()
    with PhaseBars(stream=log) as bars:
        bars(1, 2, "checking: bad\rname\x1b[2J")
    assert log.getvalue() == "checking: 1/2 row (50%), bad name [2J\n"


def test_on_a_terminal_only_one_bar_is_open_at_a_time(monkeypatch):
    open_bars = []
    original = PhaseBars.__call__

    def counting(self, done, total, phase=""):
        original(self, done, total, phase)
        open_bars.append(len(tqdm._instances))

    monkeypatch.setattr(PhaseBars, "__call__", counting)
    terminal = FakeTerminal()
    bars = PhaseBars(unit="img", stream=terminal)
    _import_phases(bars)
    bars.close()

    assert max(open_bars) == 1
    assert len(tqdm._instances) == 0
    assert "\r" in terminal.getvalue()  # it drew a bar, the terminal way


def test_a_commands_stderr_wrapper_is_written_to_directly():
    """Django's OutputWrapper adds a newline to every write; the bar writes to the stream it wraps."""
    from django.core.management.base import OutputWrapper

    log = io.StringIO()
    with PhaseBars(stream=OutputWrapper(log)) as bars:
        bars(1, 1, "writing")
    assert log.getvalue().count("\n") == 1


def test_the_demo_command_writes_no_control_characters_to_a_log(monkeypatch):
    from labeling.services.demo.load import DemoReport

    def fake_demo_load(*, progress, include_stripe82, analyse):
        _import_phases(progress)
        report = DemoReport()
        report.add("dataset 'x': 205 galaxies")
        return report

    monkeypatch.setattr("labeling.management.commands.demo.demo_load", fake_demo_load)
    out, err = io.StringIO(), io.StringIO()
    call_command("demo", "--no-stripe82", stdout=out, stderr=err)

    assert not CONTROL.search(err.getvalue() + out.getvalue())
    assert err.getvalue().startswith("checking images: 0/110 row (0%)\n")
    assert "dataset 'x': 205 galaxies" in out.getvalue()


@pytest.mark.django_db
def test_an_import_command_writes_no_control_characters_to_a_log(demo_data):
    err = io.StringIO()
    call_command("import_galaxies", demo_data / "gz2_examples", "--dataset", "examples", "--format", "folder",
                 "--schema", "gz2-class", stdout=io.StringIO(), stderr=err)
    assert not CONTROL.search(err.getvalue())
    assert err.getvalue().splitlines()[1].startswith("checking images: 12/12 img (100%), done in")


@pytest.mark.parametrize("command", sorted(p.name for p in COMMANDS.glob("*.py")))
def test_no_command_draws_its_own_progress(command):
    source = (COMMANDS / command).read_text()
    assert "tqdm" not in source and "\\r" not in source, "report progress through labeling.management.progress"
