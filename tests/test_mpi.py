"""The same case on 1 and 2 MPI ranks gives the same quantities (to 1e-8 relative)."""

import pytest

from tests.conftest import read_quantities, scalebridge

CASES = {
    "two_layer_wall": [],
    "heated_plate": ["--set", "time.end=600"],
    "slab_cooling": [],
}


@pytest.mark.mpi
@pytest.mark.parametrize("name", list(CASES))
def test_one_and_two_ranks_agree(tmp_path, name):
    results = {}
    for ranks in (1, 2):
        out = tmp_path / f"np{ranks}"
        process = scalebridge(
            "run", f"cases/{name}.toml", "-o", out, "-q", *CASES[name], ranks=ranks
        )
        assert process.returncode == 0, process.stderr
        results[ranks] = read_quantities(out)
    serial, parallel = results[1], results[2]
    assert serial.keys() == parallel.keys()
    assert len(serial["time_s"]) == len(parallel["time_s"]) >= 1
    for column, values in serial.items():
        for a, b in zip(values, parallel[column], strict=True):
            scale = max(abs(a), abs(b), 1e-12 * max(map(abs, values), default=1.0), 1e-300)
            assert abs(a - b) / scale < 1e-8, (column, a, b)
