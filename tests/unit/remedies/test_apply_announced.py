"""`apply._announced`: what runs right after keyfix's write (the pipeline opens the
notification window there) runs only when the write changed something, and its failure
never turns a made write into a failed one (issue #16)."""

from __future__ import annotations

from keyfix.remedies.apply import _announced


def test_runs_after_a_change_only():
    seen: list[int] = []
    change = {"added_sids": ["keyfix-x"]}
    assert _announced(change, lambda: seen.append(1)) is change
    assert _announced(None, lambda: seen.append(2)) is None  # already present: nothing written
    assert seen == [1]


def test_its_failure_leaves_the_write_standing(caplog):
    def broken() -> None:
        raise RuntimeError("table unreachable")

    change = {"grant_id": "g-1"}
    assert _announced(change, broken) is change
    assert "could not record it for notifications" in caplog.text


def test_nothing_to_run():
    assert _announced({"a": 1}, None) == {"a": 1}
