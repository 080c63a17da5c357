"""Shared fixtures: where the project's real test inputs live."""

import os
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parent.parent


def shared_data() -> Path:
    """`../shared/data` beside the repository (or $EAU2_SHARED_DATA); tests use it in place."""
    path = Path(os.environ.get("EAU2_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        raise RuntimeError(f"the shared test data is missing: {path} (set EAU2_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return shared_data()


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
