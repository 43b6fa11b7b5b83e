from __future__ import annotations

from pathlib import Path

import pytest

from tuning.record.location import Location


def test_a_path_becomes_absolute_and_a_uri_loses_its_trailing_slash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert Location.parse("runs").uri == f"{tmp_path.as_posix()}/runs"
    assert Location.parse(f"file://{tmp_path}/runs").uri == f"{tmp_path.as_posix()}/runs"
    assert Location.parse("s3://bucket/runs/").uri == "s3://bucket/runs"
    assert Location.parse("gs://bucket").is_local is False
    assert Location.parse("runs").is_local


@pytest.mark.parametrize("uri, fix", [
    ("ftp://host/runs", "use a local path or a URI of s3, gs"),
    ("s3:///runs", "write it as s3://bucket/path"),
    ("s3://bucket/runs?endpoint_override=localhost", "through the environment"),
])
def test_a_uri_ray_cannot_write_to_is_refused_with_the_fix(uri: str, fix: str) -> None:
    with pytest.raises(ValueError, match=fix):
        Location.parse(uri)


def test_parts_of_a_cloud_location() -> None:
    experiment = Location.parse("s3://bucket/runs/exp")
    assert experiment.name == "exp"
    assert experiment.parent.uri == "s3://bucket/runs"
    assert (experiment / "trial_a/train/").uri == "s3://bucket/runs/exp/trial_a/train"


def test_paths_ray_reports_without_a_scheme_get_the_experiments_back() -> None:
    experiment = Location.parse("s3://bucket/runs/exp")
    assert experiment.from_fs_path("bucket/runs/exp/trial_a").uri == "s3://bucket/runs/exp/trial_a"
    assert experiment.from_fs_path("s3://bucket/x").uri == "s3://bucket/x"
    assert Location.parse("/data/exp").from_fs_path("/data/exp/t").uri == "/data/exp/t"


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    if request.param == "local":
        return Location.parse(tmp_path / "root")
    return Location.parse(request.getfixturevalue("s3_bucket")) / "root"


def test_written_files_read_back_and_are_listed_with_their_sizes(root: Location) -> None:
    (root / "a/b.txt").write_text("hello")
    (root / "c.bin").write_bytes(b"\0" * 10)
    assert (root / "a/b.txt").read_text() == "hello"
    assert (root / "a/b.txt").is_file() and root.exists() and not root.is_file()
    assert sorted(root.files()) == [("a/b.txt", 5), ("c.bin", 10)]
    assert (root / "missing").files() == []


def test_rewriting_a_file_replaces_it_whole(root: Location) -> None:
    target = root / "leaderboard.json"
    target.write_text("first")
    target.write_text("second")
    assert target.read_text() == "second"
    assert root.files() == [("leaderboard.json", 6)], "no temporary file is left beside it"


def test_remove_deletes_a_tree_or_a_file_and_ignores_what_is_gone(root: Location) -> None:
    (root / "tree/x").write_text("x")
    (root / "file").write_text("y")
    (root / "tree").remove()
    (root / "file").remove()
    (root / "never").remove()
    assert not (root / "tree/x").exists() and not (root / "file").exists()


def test_download_copies_a_cloud_file_and_leaves_a_local_one_in_place(
    root: Location, tmp_path: Path
) -> None:
    source = root / "trial/checkpoint.ckpt"
    source.write_bytes(b"weights")
    local = source.download(tmp_path / "downloads")
    assert local.read_bytes() == b"weights"
    if root.is_local:
        assert local == Path(source.uri)
    else:
        assert local == tmp_path / "downloads" / "checkpoint.ckpt"
        assert [p.name for p in local.parent.iterdir()] == ["checkpoint.ckpt"]
