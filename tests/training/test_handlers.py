import os

from bts.training.handlers import _link_or_copy


def test_last_checkpoint_survives_rotation_and_is_not_written_through(tmp_path):
    step = tmp_path / "step_2.pt"
    step.write_bytes(b"state of step 2")
    last = tmp_path / "last.pt"
    last.write_bytes(b"older state")
    _link_or_copy(step, last)
    assert last.read_bytes() == b"state of step 2"
    # A later atomic save of the step file (write elsewhere, then replace) must not change last.pt.
    (tmp_path / "new").write_bytes(b"rewritten")
    os.replace(tmp_path / "new", step)
    assert last.read_bytes() == b"state of step 2"
    step.unlink()  # rotation of old step files
    assert last.read_bytes() == b"state of step 2"
    assert not (tmp_path / "last.pt.tmp").exists()
