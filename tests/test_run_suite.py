"""The suite runner (tests/run_suite.py): its argument split, its reading of pytest's reports, the exit status,
and a real private PostgreSQL cluster that must be gone afterwards."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests import run_suite


def _bare_pytest(folder: Path) -> list[str]:
    """pytest arguments for a quick inner run: its own empty config, without the Django and Hypothesis plugins
    (their start-up is most of an inner run's time)."""
    ini = folder / "pytest.ini"
    ini.write_text("[pytest]\n")
    return ["-c", str(ini), "-q", "-p", "no:django", "-p", "no:hypothesispytest", "-p", "no:cacheprovider"]


def test_it_keeps_its_own_flags_and_passes_the_rest_to_pytest_in_order():
    flags, pytest_args = run_suite.split_args(["-k", "votes", "--require-postgres", "-x", "--sqlite-only"])

    assert flags == {"--require-postgres", "--sqlite-only"}
    assert pytest_args == ["-k", "votes", "-x"]


def test_it_passes_everything_after_a_double_dash_to_pytest_verbatim():
    flags, pytest_args = run_suite.split_args(["--postgres-only", "--", "--sqlite-only", "-q"])

    assert flags == {"--postgres-only"}
    assert pytest_args == ["--sqlite-only", "-q"]


def test_it_counts_passed_failed_errors_and_skipped_from_a_real_pytest_report(tmp_path):
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n"
        "@pytest.fixture\n"
        "def broken():\n"
        "    raise RuntimeError('fixture fails')\n"
        "def test_ok(): pass\n"
        "def test_ok_too(): pass\n"
        "def test_fails(): assert 1 == 2\n"
        "def test_errors(broken): pass\n"
        "@pytest.mark.skip(reason='not today')\n"
        "def test_skipped(): pass\n"
    )
    report = tmp_path / "report.xml"
    process = subprocess.run([sys.executable, "-m", "pytest", *_bare_pytest(tmp_path), f"--junitxml={report}",
                              str(tmp_path)], cwd=tmp_path, capture_output=True, text=True)

    assert process.returncode == 1, process.stdout
    assert run_suite.junit_counts(report) == {"passed": 2, "failed": 1, "errors": 1, "skipped": 1}


def test_it_reports_no_counts_when_pytest_wrote_no_report(tmp_path):
    assert run_suite.junit_counts(tmp_path / "missing.xml") is None
    (tmp_path / "truncated.xml").write_text("<testsuites><testsuite")
    assert run_suite.junit_counts(tmp_path / "truncated.xml") is None


def test_it_fails_when_pytest_collects_no_tests(tmp_path, capsys):
    (tmp_path / "empty").mkdir()

    status = run_suite.main(["--sqlite-only", *_bare_pytest(tmp_path), str(tmp_path / "empty")])

    assert status == 1
    assert "NO TESTS COLLECTED" in capsys.readouterr().out


def test_it_refuses_to_require_postgres_while_running_sqlite_only():
    assert run_suite.main(["--sqlite-only", "--require-postgres"]) == 2


def test_it_uses_test_database_url_when_set(monkeypatch):
    monkeypatch.setenv("TEST_DATABASE_URL", "postgres://zoo@db.example:6543/galaxies")

    with run_suite.postgres_server(force_private=False) as (label, url):
        assert url == "postgres://zoo@db.example:6543/galaxies"
        assert "db.example:6543" in label


def test_it_rejects_a_test_database_url_that_is_not_postgres(monkeypatch):
    monkeypatch.setenv("TEST_DATABASE_URL", "sqlite:///var/db.sqlite3")

    with pytest.raises(SystemExit, match="TEST_DATABASE_URL"), run_suite.postgres_server(force_private=False):
        pass


def test_a_private_cluster_answers_while_open_and_is_gone_afterwards():
    bin_dir = run_suite.postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl) on this machine")
    psycopg = pytest.importorskip("psycopg")

    with run_suite.private_cluster(bin_dir) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres") as connection:
            assert connection.execute("select current_setting('fsync')").fetchone() == ("off",)
            workdir = Path(connection.execute("show unix_socket_directories").fetchone()[0])
        assert workdir.is_dir()

    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    assert not workdir.exists()


@pytest.mark.parametrize(("done", "expected"), [("1", "2 passed, 17 deselected"), ("", "19 passed")])
def test_the_postgresql_pass_leaves_out_the_mlcore_tests_the_sqlite_pass_ran(done, expected):
    env = {**os.environ, run_suite.DATABASE_FREE_DONE: done}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/mlcore/votes/test_tree.py",
                          "tests/labeling/test_settings.py::test_env_bool_falls_back_to_the_default_when_unset",
                          "tests/labeling/test_settings.py::test_env_int_reads_integers_and_defaults"],
                         cwd=run_suite.REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert expected in run.stdout, run.stdout[-2000:]
