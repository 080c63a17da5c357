"""Shared fixtures: where the project's real test inputs live."""

import os
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parent.parent


SHARED_DATA = Path(os.environ.get("EAU2_SHARED_DATA", REPO.parent / "shared" / "data"))
"""The 2020 corpus: `../shared/data` beside the repository (or $EAU2_SHARED_DATA), read in place."""


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The 2020 corpus; tests over it are skipped, saying so, where it is not."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the 2020 corpus is not here: {SHARED_DATA} (set EAU2_SHARED_DATA)")
    return SHARED_DATA


# The first call of a compiled kernel compiles it (seconds, on a fresh install): no deadlines.
settings.register_profile("eau2", deadline=None)
settings.load_profile("eau2")


@pytest.fixture(scope="module")
def client():
    """A Dask client of an embedded cluster of 3 eau2 nodes, for one test module; it is
    closed after the module, and no process of it may be left behind."""
    import eau2_dask
    from tests.dask_clusters import assert_no_new_processes, children

    before = children()
    with eau2_dask.embedded_cluster(3, quiet=True) as dask_client:
        yield dask_client
    assert_no_new_processes(before)


@pytest.fixture(scope="session")
def words(tmp_path_factory):
    """150 MB of text: enough that WordCount is still at work a few seconds in."""
    from eau2.examples.generate import generate_text

    path = tmp_path_factory.mktemp("words") / "words.txt"
    generate_text(path, 150_000_000)
    return path
