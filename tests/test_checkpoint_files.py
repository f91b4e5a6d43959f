"""The checkpoint registry and its files (app/checkpoint.py): what a stateful part contributes
comes back as it was, the newest ``keep`` checkpoints stay, and a write that fails leaves the
previous checkpoint as the latest complete one."""

import numpy as np
import pytest
from mpi4py import MPI

from app.checkpoint import CheckpointFiles, Registry
from app.errors import CaseError, OutputFailed


class Counter:
    """A stateful part as another component would add one: scalars and per-rank rows."""

    def __init__(self, rows: np.ndarray, cycle: int):
        self.rows, self.cycle = rows, cycle

    def state(self) -> dict:
        return {"cycle": self.cycle, "nested": {"rows": self.rows}}

    def restore(self, state: dict) -> None:
        self.cycle, self.rows = state["cycle"], state["nested"]["rows"]


def test_a_part_comes_back_as_it_was_and_old_checkpoints_go(tmp_path):
    registry = Registry()
    part = Counter(np.arange(6.0).reshape(3, 2), cycle=4)
    registry.add("battery", part)
    files = CheckpointFiles(tmp_path, MPI.COMM_SELF, keep=2)
    for _ in range(3):
        files.write(registry.state(), {"time": 1.5, "ranks": 1})

    assert files.numbers() == [2, 3]
    assert files.latest.name == "checkpoint-000003"
    fresh = Counter(np.zeros((0, 2)), cycle=0)
    again = Registry()
    again.add("battery", fresh)
    again.restore(CheckpointFiles(tmp_path, MPI.COMM_SELF).read().parts)
    assert fresh.cycle == 4
    np.testing.assert_array_equal(fresh.rows, part.rows)


def test_a_part_registered_twice_is_refused():
    registry = Registry()
    registry.add("loop", Counter(np.zeros(1), 0))
    with pytest.raises(ValueError, match="checkpoint part 'loop' is registered twice"):
        registry.add("loop", Counter(np.zeros(1), 0))


def test_a_checkpoint_without_a_part_is_refused_by_name(tmp_path):
    files = CheckpointFiles(tmp_path, MPI.COMM_SELF)
    files.write({"loop": {"t": 0.0}}, {"time": 0.0, "ranks": 1})
    registry = Registry()
    registry.add("loop", Counter(np.zeros(1), 0))
    registry.add("battery", Counter(np.zeros(1), 0))
    with pytest.raises(CaseError, match="the checkpoint holds no state of battery"):
        registry.restore(files.read().parts)


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path):
    files = CheckpointFiles(tmp_path, MPI.COMM_SELF)
    first = files.write({"loop": {"t": 1.0}}, {"time": 1.0, "ranks": 1})

    def no_room(size: int) -> None:
        raise OutputFailed(f"the checkpoint needs {size} B and the disk has 0 B free")

    files = CheckpointFiles(tmp_path, MPI.COMM_SELF, room=no_room)
    with pytest.raises(OutputFailed, match="the disk has 0 B free"):
        files.write({"loop": {"t": 2.0}}, {"time": 2.0, "ranks": 1})
    partial = tmp_path / "checkpoints" / ".writing-000002"  # as a kill mid-write leaves it
    partial.mkdir()
    (partial / "rank-00000.npz").write_bytes(b"PK\x03")

    latest = CheckpointFiles(tmp_path, MPI.COMM_SELF).read()
    assert latest.path == first
    assert latest.time == 1.0
