"""The embedded default: with no Dask client, eau2 starts a local cluster and closes it."""

import eau2_dask
from eau2.examples import Demo
from tests.dask_clusters import assert_no_new_processes, children


def test_run_without_a_client_starts_and_closes_an_embedded_cluster(capsys):
    before = children()
    assert eau2_dask.run(Demo)[2] == {"result": "SUCCESS"}
    assert "started a local cluster of 3 nodes; dashboard: http://127.0.0.1:" in capsys.readouterr().err
    assert_no_new_processes(before)
