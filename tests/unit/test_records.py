"""Records on disk (store/records.py): what one reader keeps in memory never hides another writer's change."""

from __future__ import annotations

from pathlib import Path

from rvssh.store.records import StateStore, ViewerRecord


def session(session_id: str, status: str = "starting", created_at: float = 1.0) -> ViewerRecord:
    return ViewerRecord(session_id=session_id, connection_id="me@gpu:22", host="gpu", ssh_port=22, username="me",
                        local_port=40000, remote_port=40001, remote_root="/r", remote_pid=7, created_at=created_at,
                        status=status)  # type: ignore[arg-type]


def test_a_reader_sees_every_write_of_another_process(tmp_path: Path) -> None:
    reader, writer = StateStore(tmp_path, 5), StateStore(tmp_path, 5)  # two processes: two memories
    assert reader.viewers.all() == [] and reader.viewers.get("a") is None
    writer.viewers.put("a", session("a"))
    assert [record.status for record in reader.viewers.all()] == ["starting"]
    for status in ("running", "error", "running"):
        writer.viewers.put("a", session("a", status))
        assert reader.viewers.get("a").status == status  # type: ignore[union-attr]
        assert [record.status for record in reader.viewers.all()] == [status]
    writer.viewers.put("b", session("b", created_at=2.0))
    assert [record.session_id for record in reader.viewers.all()] == ["a", "b"]
    writer.viewers.delete("a")
    assert [record.session_id for record in reader.viewers.all()] == ["b"]
    assert reader.viewers.get("a") is None


def test_each_read_is_a_record_of_its_own(tmp_path: Path) -> None:
    state = StateStore(tmp_path, 5)
    state.viewers.put("a", session("a"))
    first = state.viewers.get("a")
    assert first is not None
    first.status = "running"  # a writer changing its copy before it puts it
    assert state.viewers.get("a").status == "starting"  # type: ignore[union-attr]
    assert state.viewers.all()[0].status == "starting"


def test_files_that_are_not_records_are_skipped(tmp_path: Path) -> None:
    state = StateStore(tmp_path, 5)
    state.viewers.put("a", session("a"))
    (tmp_path / "viewers" / "broken.json").write_text("{not json")
    (tmp_path / "viewers" / ".a.json.123.tmp").write_text("{}")
    assert [record.session_id for record in state.viewers.all()] == ["a"]


def test_reads_of_a_recent_listing_see_their_own_writes_at_once_and_others_within_its_age(tmp_path: Path) -> None:
    reader, writer = StateStore(tmp_path, 5), StateStore(tmp_path, 5)
    reader.viewers.put("a", session("a"))
    assert [record.session_id for record in reader.viewers.recent(max_age=60)] == ["a"]
    writer.viewers.put("b", session("b", created_at=2.0))  # another process
    assert [record.session_id for record in reader.viewers.recent(max_age=60)] == ["a"]  # not yet: the listing is young
    assert [record.session_id for record in reader.viewers.recent(max_age=0)] == ["a", "b"]
    reader.viewers.delete("a")  # its own write: at once, whatever the age
    assert [record.session_id for record in reader.viewers.recent(max_age=60)] == ["b"]
    listed = reader.viewers.recent(max_age=60)[0]
    listed.status = "running"
    assert reader.viewers.recent(max_age=60)[0].status == "starting"  # each read is a record of its own


def test_a_recent_read_can_ask_for_one_record_by_its_fields(tmp_path: Path) -> None:
    state = StateStore(tmp_path, 5)
    state.viewers.put("b", session("b", created_at=2.0))
    state.viewers.put("a", session("a"))
    for _listed_anew_then_from_memory in range(2):
        assert [record.session_id for record in state.viewers.recent(session_id="b")] == ["b"]
        assert state.viewers.recent(session_id="nope") == []
        assert [record.session_id for record in state.viewers.recent(status="starting")] == ["a", "b"]
    mine = state.viewers.recent(session_id="a")[0]
    mine.status = "running"  # each caller's records are its own
    assert state.viewers.recent(session_id="a")[0].status == "starting"
