"""The active-learning simulation page in a real Chromium: both charts draw every strategy's mean curve with its
band over the seeds, and the verdict the command printed is on the page, with no error in the console."""

import re

import pytest
from django.core.management import call_command

from tests.browser.test_ml_pages_in_chromium import log_in_as_admin
from tests.labeling.ml_helpers import extracted, galaxy10_subset

pytestmark = pytest.mark.browser


def test_the_simulation_page_draws_mean_curves_with_bands_and_the_verdict(page, tmp_path, admin_user,
                                                                          screenshot_dir, capsys):
    from labeling.models import Simulation

    dataset = galaxy10_subset(tmp_path / "import", per_class=8)
    extracted(dataset)
    call_command("simulate_active_learning", "--dataset", dataset.name, "--oracle",
                 str(tmp_path / "import" / "labels.csv"), "--out", str(tmp_path / "out"), "--initial", "3",
                 "--step", "3", "--rounds", "3", "--seeds", "3", "--strategy", "cluster_margin")
    printed = capsys.readouterr().out
    simulation = Simulation.objects.get()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    log_in_as_admin(page, f"/simulations/{simulation.pk}/")
    page.wait_for_function("() => window.echarts && echarts.getInstanceByDom(document.getElementById('curve-f1'))")

    for chart in ("curve-balanced", "curve-f1"):
        series = page.evaluate(f"""() => echarts.getInstanceByDom(document.getElementById('{chart}'))
            .getOption().series.map(s => [s.name, s.data.length, Boolean(s.areaStyle)])""")
        # Per strategy: its line and the two stacked series of its band, one point per budget each.
        assert sorted({name for name, _, _ in series}) == ["cluster_margin", "random"]
        assert all(length == 4 for _, length, _ in series)
        assert sum(1 for _, _, band in series if band) == 2
    target = f"{simulation.savings['target']:.3f}"
    assert target in printed and target in page.inner_text("#savings")
    assert re.search(r"3 seeds \(0, 1, 2\)", page.inner_text(".page-head"))
    assert page.locator("#final-table tbody tr").count() == 2
    page.screenshot(path=str(screenshot_dir / "simulation.png"), full_page=True)
    assert errors == []
