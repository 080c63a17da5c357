"""The synthetic generators: shape, reproducibility, and what the applications need of them."""

import numpy as np
import pytest
from click.testing import CliRunner

from eau2 import read_sor, run_local
from eau2.cli.generate import generate
from eau2.examples import WordCount
from eau2.examples.generate import FULL_SIZE, generate_linus, generate_text
from tests.linus_reference import degrees_of_linus


def test_linus_extract_shape(tmp_path):
    rows = generate_linus(tmp_path, scale=0.001, seed=3)
    assert rows == {"projects": 125_486, "users": 32_412, "commits": 117_937}
    assert rows["commits"] == round(FULL_SIZE["commits"] * 0.001)
    projects = read_sor(tmp_path / "projects.ltgt")
    users = read_sor(tmp_path / "users.ltgt")
    commits = read_sor(tmp_path / "commits.ltgt")
    assert (str(projects.schema), str(users.schema), str(commits.schema)) == ("IS", "IS", "III")
    assert (projects.nrows, users.nrows, commits.nrows) == (125_486, 32_412, 117_937)
    assert (projects.to_arrow().column(0).to_numpy() == np.arange(125_486)).all()  # id = line number
    assert users.get(1, 4967) == "u4967"
    table = commits.to_arrow()
    pids, authors = table.column(0).to_numpy(), table.column(1).to_numpy()
    assert pids.max() < 125_486 and authors.max() < 32_412
    activity = np.bincount(authors, minlength=32_412)
    assert activity[4967] >= np.sort(activity)[-20]  # Linus is among the most active users
    sizes = np.sort(np.bincount(pids))[::-1]
    assert sizes[: len(sizes) // 1000].sum() > 0.05 * len(pids)  # heavy-tailed project sizes


def test_linus_extract_is_reproducible_and_reaches_far(tmp_path):
    generate_linus(tmp_path / "a", scale=0.0005, seed=7)
    generate_linus(tmp_path / "b", scale=0.0005, seed=7)
    for name in ("projects", "users", "commits"):
        assert (tmp_path / "a" / f"{name}.ltgt").read_bytes() == (
            tmp_path / "b" / f"{name}.ltgt"
        ).read_bytes()
    stages = degrees_of_linus(tmp_path / "a", degrees=2)
    assert stages[1]["users"] > stages[0]["users"] > 1


def test_text_is_zipf_and_counts_like_any_text(tmp_path):
    path = tmp_path / "t.txt"
    written = generate_text(path, 2_000_000, seed=1)
    assert abs(written - 2_000_000) < 200_000
    counts = run_local(WordCount, str(path), top=0, nodes=2)[0]["counts"].column("count").to_numpy()
    assert counts[0] > 20 * counts[100]  # most frequent words dominate
    assert generate_text(tmp_path / "u.txt", 2_000_000, seed=1) == written
    assert (tmp_path / "u.txt").read_bytes() == path.read_bytes()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["text", "--size", "3XB"], "'3XB' is not a size"),
        (["text", "--size", "0"], "'0' is not a size of at least 1 byte"),
        (["text", "--out", "{missing}/x.txt"], "there is no folder"),
        (["linus", "--out", "{file}/sub"], "cannot create the folder"),
    ],
)
def test_generate_refuses_bad_sizes_and_paths_in_one_line(tmp_path, arguments, message):
    (tmp_path / "file").write_text("")
    values = {"missing": tmp_path / "missing", "file": tmp_path / "file"}
    arguments = [argument.format(**values) for argument in arguments]
    if "--out" not in arguments:
        arguments += ["--out", str(tmp_path / "x.txt")]
    result = CliRunner().invoke(generate, arguments)
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "missing").exists()
