"""The checkpoint registry and its files (app/checkpoint.py): what a stateful part contributes
comes back as it was, the newest ``keep`` checkpoints stay, and a write that fails leaves the
previous checkpoint as the latest complete one."""

import shutil

import numpy as np
import pytest
from mpi4py import MPI

from app.checkpoint import FORMAT, CheckpointFiles, Registry
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


def two_checkpoints(folder) -> CheckpointFiles:
    """A run folder holding checkpoints 1 and 2 of a part with rows and scalars."""
    files = CheckpointFiles(folder, MPI.COMM_SELF)
    for cycle in (1, 2):
        part = Counter(np.full((4, 2), float(cycle)), cycle=cycle)
        files.write({"battery": part.state()}, {"time": float(cycle), "ranks": 1})
    return files


def truncate(path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def flip_a_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda c: truncate(c / "rank-00000.npz"), r"rank-00000\.npz has 100 bytes, \d+ were"),
        (lambda c: (c / "rank-00000.npz").write_bytes(b""), r"rank-00000\.npz has 0 bytes"),
        (
            lambda c: flip_a_byte(c / "rank-00000.npz"),
            r"rank-00000\.npz was changed or damaged after it was written \(CRC-32\)",
        ),
        (  # the same size, another checkpoint's rows: read without a checksum, a silent mix
            lambda c: shutil.copy(c.parent / "checkpoint-000001/rank-00000.npz", c),
            r"rank-00000\.npz was changed or damaged after it was written",
        ),
        (
            lambda c: (c / "state.json").write_text(
                (c / "state.json").read_text().replace('"cycle": 2', '"cycle": 3')
            ),
            r"its state\.json was changed or damaged after it was written",
        ),
        (lambda c: (c / "state.json").write_text("[1, 2]"), "its state.json is not a checkpoint"),
        (lambda c: truncate(c / "state.json"), "cannot read the checkpoint"),
    ],
    ids=["truncated", "empty", "flipped-byte", "other-checkpoint", "edited", "list", "cut-json"],
)
def test_a_damaged_checkpoint_is_refused_by_file_with_the_earlier_one_as_fix(
    tmp_path, damage, problem
):
    two_checkpoints(tmp_path)
    latest = tmp_path / "checkpoints" / "checkpoint-000002"
    damage(latest)
    with pytest.raises(CaseError, match=problem) as refusal:
        CheckpointFiles(tmp_path, MPI.COMM_SELF).read()
    assert refusal.value.path == "--restart"
    assert str(latest) in refusal.value.problem
    assert refusal.value.fix == (
        "remove 'checkpoint-000002' to restart from 'checkpoint-000001', or start a new run"
    )
    earlier = CheckpointFiles(tmp_path, MPI.COMM_SELF).read(1)
    assert earlier.parts["battery"]["cycle"] == 1
    np.testing.assert_array_equal(earlier.parts["battery"]["nested"]["rows"], np.ones((4, 2)))


def test_a_checkpoint_of_another_format_names_both_formats(tmp_path):
    two_checkpoints(tmp_path)
    state = tmp_path / "checkpoints" / "checkpoint-000002" / "state.json"
    state.write_text(state.read_text().replace(f'"format": {FORMAT}', '"format": 1'))
    with pytest.raises(CaseError, match=f"has format 1, this version reads format {FORMAT}"):
        CheckpointFiles(tmp_path, MPI.COMM_SELF).read()
