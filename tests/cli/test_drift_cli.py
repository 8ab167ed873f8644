"""``mlgate drift`` end to end: real CSV and Parquet files, the real entry point.

Most cases call :func:`mlgate.cli.app.main` in-process (the console script's own entry
point, so exit codes and the one-line error handling are the real ones) to avoid a
second-long process start per case; two cases run the installed executable itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from mlgate.monitoring.drift import compare, compare_profile
from mlgate.monitoring.profile import load_profile
from mlgate.monitoring.tabular import read_column_names, read_frame
from tests.cli._in_process import Cli, Run, run_main

MLGATE = Path(sys.executable).parent / "mlgate"
N = 400
XSS = "<script>alert(1)</script>"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    def run(*args: object) -> Run:
        return run_main(capsys, monkeypatch, ["drift"], args)

    return run


def table(seed: int, *, shift: float = 0.0, new_plan: bool = False, n: int = N) -> pa.Table:
    """Four columns, each from its own stream, so a shift in one leaves the others alone."""
    age, plan, visits, other = (np.random.default_rng([seed, k]) for k in range(4))
    plans = ["basic", "plus", "pro"] + (["enterprise"] if new_plan else [])
    return pa.table(
        {
            "age": age.normal(40.0 + shift, 10.0, n),
            "plan": plan.choice(plans, n),
            "visits": visits.integers(0, 4, n),
            XSS: other.normal(0.0, 1.0, n),
        }
    )


def write(tmp_path: Path, name: str, data: pa.Table) -> Path:
    path = tmp_path / name
    if name.endswith(".parquet"):
        pq.write_table(data, path)
    else:
        pacsv.write_csv(data, path)
    return path


def assert_one_error_line(run: Run, *fragments: str) -> None:
    assert run.code == 2, run  # trouble, as diff(1) says it: never confused with drift
    assert "Traceback" not in run.stderr, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run
    for fragment in fragments:
        assert fragment in lines[0], (fragment, run)
    assert run.stdout == "", run


def test_no_drift_prints_a_table_and_exits_0(cli: Cli, tmp_path: Path) -> None:
    ref = write(tmp_path, "ref.csv", table(1))
    run = cli(ref, write(tmp_path, "cur.csv", table(2)))
    assert run.code == 0, run
    for header in ("feature", "kind", "test", "p (adj.)", "decided by", "threshold", "drifted"):
        assert header in run.stdout
    assert "age" in run.stdout and "plan" in run.stdout and XSS in run.stdout
    assert run.stdout.strip().splitlines()[-1].startswith("no drift: 0 of 4 features drifted")
    assert "Benjamini-Hochberg correction at alpha 0.05" in run.stdout


def test_drift_exits_1_and_json_has_the_required_shape(cli: Cli, tmp_path: Path) -> None:
    ref = write(tmp_path, "ref.parquet", table(1))
    cur = write(tmp_path, "cur.parquet", table(2, shift=8.0, new_plan=True))
    run = cli(ref, cur, "--json")
    assert run.code == 1, run
    assert run.stderr == ""
    report = run.json()  # stdout holds the JSON and nothing else
    assert report["drifted"] is True
    assert 0.0 < report["share_drifted"] <= 1.0
    assert set(report["features"]) == {"age", "plan", "visits", XSS}
    for name in ("age", "visits", XSS):
        feature = report["features"][name]
        assert isinstance(feature["drifted"], bool)
        assert isinstance(feature["psi"], float) and isinstance(feature["js"], float)
        assert set(feature["ks"]) == {"statistic", "p_value"}
        assert all(isinstance(v, float) for v in feature["ks"].values())
        assert isinstance(feature["wasserstein"], float)
        assert "chi2" not in feature
    plan = report["features"]["plan"]
    assert isinstance(plan["drifted"], bool) and isinstance(plan["psi"], float)
    assert isinstance(plan["js"], float)
    assert {"statistic", "p_value"} <= set(plan["chi2"])
    assert "ks" not in plan and "wasserstein" not in plan
    assert plan["new_categories"] == ["enterprise"]
    assert report["features"]["age"]["drifted"] is True
    assert plan["drifted"] is True
    # Exactly the engine's report on the same frames.
    expected = compare(read_frame(ref), read_frame(cur)).to_json()
    assert report == json.loads(json.dumps(expected))


def test_table_marks_drift_and_explains_new_categories(cli: Cli, tmp_path: Path) -> None:
    ref = write(tmp_path, "ref.csv", table(1))
    run = cli(ref, write(tmp_path, "cur.csv", table(2, shift=8.0, new_plan=True)))
    assert run.code == 1, run
    assert "\u2713" in run.stdout  # the drifted mark
    assert "plan: 1 category unseen in the reference" in run.stdout
    assert run.stdout.strip().splitlines()[-1].startswith("drift detected: 2 of 4 features")


def test_html_report_has_a_plot_per_feature_and_escapes_names(cli: Cli, tmp_path: Path) -> None:
    ref = write(tmp_path, "ref.csv", table(1))
    cur = write(tmp_path, "cur.csv", table(2, shift=8.0, new_plan=True))
    page_path = tmp_path / "out" / "report.html"
    run = cli(ref, cur, "--html", page_path, "--json")
    assert run.code == 1, run
    run.json()  # still only JSON on stdout; where the page went is said on stderr
    assert f"wrote the HTML report to {page_path}" in run.stderr
    page = page_path.read_text(encoding="utf-8")
    assert page.count("<svg") == 4
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page
    assert "enterprise" in page


def test_rich_markup_in_names_is_printed_literally(cli: Cli, tmp_path: Path) -> None:
    data = pa.table({"[red]x[/]": np.arange(100.0)})
    run = cli(write(tmp_path, "ref.csv", data), write(tmp_path, "cur.csv", data))
    assert run.code == 0, run
    assert "[red]x[/]" in run.stdout


def test_saved_profile_is_a_reference(cli: Cli, tmp_path: Path) -> None:
    ref = write(tmp_path, "ref.parquet", table(1))
    cur = write(tmp_path, "cur.parquet", table(2, shift=8.0))
    profile_path = tmp_path / "profiles" / "ref.json"
    first = cli(ref, cur, "--save-profile", profile_path)
    assert first.code == 1 and f"saved the reference profile to {profile_path}" in first.stdout
    run = cli(profile_path, cur, "--json")
    assert run.code == 1, run
    expected = compare_profile(load_profile(profile_path), read_frame(cur)).to_json()
    assert run.json() == json.loads(json.dumps(expected))
    # Recognised by content when the name says nothing.
    renamed = tmp_path / "reference-profile"
    renamed.write_bytes(profile_path.read_bytes())
    assert cli(renamed, cur, "--json").json() == run.json()
    html = tmp_path / "from-profile.html"
    assert cli(profile_path, cur, "--html", html).code == 1
    assert html.read_text(encoding="utf-8").count("<svg") == 4


def test_kinds_columns_and_test_options(cli: Cli, tmp_path: Path) -> None:
    ref = write(tmp_path, "ref.csv", table(1))
    cur_table = table(2).append_column("extra", pa.array(np.zeros(N)))
    cur = write(tmp_path, "cur.csv", cur_table.drop_columns(["plan"]))
    run = cli(
        ref,
        cur,
        "--json",
        "--columns",
        "visits,age",
        "--kinds",
        "visits=categorical",
        "--alpha",
        "0.01",
        "--correction",
        "bonferroni",
        "--bins",
        "5",
    )
    assert run.code == 0, run
    report = run.json()
    assert list(report["features"]) == ["visits", "age"]
    assert report["features"]["visits"]["kind"] == "categorical"
    assert "chi2" in report["features"]["visits"]
    assert report["method"]["alpha"] == 0.01
    assert report["method"]["correction"] == "bonferroni"
    assert report["method"]["bins"] == 5
    assert report["ignored_columns"] == ["extra"]


def test_read_column_names_reads_only_the_header(tmp_path: Path) -> None:
    assert read_column_names(write(tmp_path, "a.csv", table(1, n=3))) == [
        "age",
        "plan",
        "visits",
        XSS,
    ]
    assert read_column_names(write(tmp_path, "a.parquet", table(1, n=0)))[0] == "age"


def bad_inputs(tmp_path: Path) -> dict[str, tuple[list[object], tuple[str, ...]]]:
    ref = write(tmp_path, "ref.csv", table(1))
    cur = write(tmp_path, "cur.csv", table(2))
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not a parquet file at all")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    header_only = tmp_path / "header.csv"
    header_only.write_text(f"age,plan,visits,{XSS}\n")
    text = tmp_path / "ref.txt"
    text.write_text("age\n1\n")
    lacking = write(tmp_path, "lacking.csv", table(2).drop_columns(["plan"]))
    corrupt = tmp_path / "profile.json"
    corrupt.write_text('{"format": "mlgate.reference_profile", "features": {')
    wrong_profile = tmp_path / "other.json"
    wrong_profile.write_text('{"format": "something else"}')
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    return {
        "missing file": ([tmp_path / "absent.csv", cur], ("no data file at", "absent.csv")),
        "unreadable file": ([garbage, cur], ("cannot read", "garbage.parquet")),
        "unknown format": ([text, cur], ("cannot tell the format of", "ref.txt")),
        "column missing in current": ([ref, lacking], ("lacks 1 reference column", "'plan'")),
        "empty current file": ([ref, empty], ("empty.csv is empty",)),
        "current without rows": ([ref, header_only], ("header.csv has a header but no rows",)),
        "corrupt profile": ([corrupt, cur], ("not valid JSON", "corrupt")),
        "not a profile": ([wrong_profile, cur], ("not a reference profile",)),
        "unknown column": ([ref, cur, "--columns", "nope"], ("--columns names ['nope']",)),
        "kinds for a column not compared": (
            [ref, cur, "--columns", "age", "--kinds", "plan=categorical"],
            ("--kinds names ['plan']",),
        ),
        "unwritable html": (
            [ref, cur, "--html", blocker / "report.html"],
            ("cannot write the HTML report",),
        ),
        "unwritable profile": (
            [ref, cur, "--save-profile", blocker / "p.json"],
            ("cannot save the profile",),
        ),
    }


def test_bad_inputs_give_one_error_line(cli: Cli, tmp_path: Path) -> None:
    for label, (args, fragments) in bad_inputs(tmp_path).items():
        run = cli(*args)
        try:
            assert_one_error_line(run, *fragments)
        except AssertionError as exc:
            raise AssertionError(f"case {label!r}: {exc}") from exc


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--kinds", "age=float"], "--kinds"),
        (["--kinds", "age"], "--kinds"),
        (["--alpha", "1.5"], "--alpha"),
        (["--correction", "holm"], "--correction"),
        (["--bins", "1"], "--bins"),
    ],
)
def test_usage_errors_exit_2(cli: Cli, tmp_path: Path, args: list[str], fragment: str) -> None:
    ref = write(tmp_path, "ref.csv", table(1))
    run = cli(ref, ref, *args)
    assert run.code == 2, run
    assert fragment in run.stderr and run.stdout == ""


def test_profile_only_options_are_usage_errors(cli: Cli, tmp_path: Path) -> None:
    ref = write(tmp_path, "ref.csv", table(1))
    profile = tmp_path / "p.json"
    assert cli(ref, ref, "--save-profile", profile).code == 0
    for args, fragment in (
        (["--save-profile", tmp_path / "q.json"], "--save-profile"),
        (["--bins", "5"], "--bins"),
    ):
        run = cli(profile, ref, *args)
        assert run.code == 2 and fragment in run.stderr, run
    run = cli(profile, ref, "--kinds", "age=categorical")
    assert_one_error_line(run, "--kinds age=categorical does not fit the profile")


def installed(*args: object) -> Run:
    done = subprocess.run(
        [str(MLGATE), "drift", *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def test_the_installed_executable_exits_1_on_drift(tmp_path: Path) -> None:
    ref = write(tmp_path, "ref.csv", table(1))
    run = installed(ref, write(tmp_path, "cur.csv", table(2, shift=8.0)), "--json")
    assert run.code == 1, run
    assert run.json()["features"]["age"]["drifted"] is True


def test_the_installed_executable_reports_errors_on_one_line(tmp_path: Path) -> None:
    ref = write(tmp_path, "ref.csv", table(1))
    assert_one_error_line(installed(tmp_path / "nope.csv", ref), "no data file at")
