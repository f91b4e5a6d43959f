"""The same case on 1 and 2 MPI ranks gives the same quantities (to 1e-8 relative)."""

import pytest

from tests.conftest import assert_same_quantities, runs_on_ranks

CASES = {
    "two_layer_wall": [],
    "heated_plate": ["--set", "time.end=600"],
    "slab_cooling": [],
}


@pytest.mark.mpi
@pytest.mark.parametrize("name", list(CASES))
def test_one_and_two_ranks_agree(tmp_path, name):
    serial, parallel = runs_on_ranks(f"cases/{name}.toml", tmp_path, *CASES[name])
    assert len(serial["time_s"]) == len(parallel["time_s"]) >= 1
    assert_same_quantities(serial, parallel)
