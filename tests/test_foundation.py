"""The lead's foundation: atomic output, the sample-data finder, and the CLI's one-line errors."""

from __future__ import annotations

import pytest

from pcgen import cli, datadir
from pcgen.atomic import atomic_dir, atomic_path
from pcgen.errors import InputError, OutputError


def test_atomic_path_renames_only_on_success(tmp_path):
    target = tmp_path / "out.laz"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".laz" and tmp.parent == tmp_path
        tmp.write_bytes(b"done")
        assert not target.exists()
    assert target.read_bytes() == b"done"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.laz"]


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.laz"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_existing_only_when_complete(tmp_path):
    target = tmp_path / "tiles"
    target.mkdir()
    (target / "old.laz").write_bytes(b"old")
    with pytest.raises(ValueError):
        with atomic_dir(target) as tmp:
            (tmp / "new.laz").write_bytes(b"half")
            raise ValueError
    assert [p.name for p in target.iterdir()] == ["old.laz"]
    with atomic_dir(target) as tmp:
        (tmp / "new.laz").write_bytes(b"new")
    # old.laz is not pcgen's (no manifest lists it): it stays; the next run replaces new.laz only
    assert sorted(p.name for p in target.iterdir()) == [".pcgen-manifest.json", "new.laz", "old.laz"]
    with atomic_dir(target) as tmp:
        (tmp / "newer.laz").write_bytes(b"newer")
    assert sorted(p.name for p in target.iterdir()) == [".pcgen-manifest.json", "newer.laz", "old.laz"]
    assert (target / "old.laz").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiles"]


def test_atomic_path_unwritable_parent_is_output_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot create output folder"):
        with atomic_path(blocker / "sub" / "out.laz"):
            pass


def test_atomic_path_never_replaces_a_read_only_file(tmp_path):
    # the rename needs only the folder's permission, even when not run as root
    target = tmp_path / "survey.laz"
    target.write_bytes(b"original")
    target.chmod(0o444)
    with pytest.raises(OutputError, match="survey.laz: output file is read-only; it is not replaced"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"new")
    assert target.read_bytes() == b"original"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["survey.laz"]


def test_atomic_path_where_no_file_can_be_made_is_output_error():
    with pytest.raises(OutputError, match="/proc/x.laz: cannot write"):
        with atomic_path("/proc/x.laz"):
            pass


def test_datadir_prefers_env_then_shared(tmp_path, monkeypatch):
    (tmp_path / "lidar").mkdir()
    monkeypatch.setenv("PCGEN_DATA", str(tmp_path))
    assert datadir.data_dir() == tmp_path.resolve()
    monkeypatch.setenv("PCGEN_DATA", str(tmp_path / "missing"))
    # falls back to ../shared/data beside the repository
    assert (datadir.data_dir() / "lidar" / "Megaplot.laz").is_file()


def test_datadir_lists_the_real_lidar_files(lidar_files):
    names = {p.name for p in lidar_files}
    assert {"Megaplot.laz", "Topography.laz", "simple.las", "test1_4.las"} <= names
    assert len(names) == 12


def test_lidar_file_missing_is_input_error():
    with pytest.raises(InputError, match="not found"):
        datadir.lidar_file("nope.laz")


def test_cli_user_error_is_one_line_exit_2(monkeypatch, capsys):
    module = type("M", (), {})()
    module.add_arguments = lambda parser: parser.add_argument("path")

    def run(args):
        raise InputError("not a LAS file", path=args.path)

    module.run = run
    monkeypatch.setitem(cli.SUBCOMMANDS, "fake", ("fake_module", "x"))
    monkeypatch.setattr(cli.importlib, "import_module", lambda name: module)
    assert cli.main(["fake", "in.las"]) == 2
    err = capsys.readouterr().err
    assert err == "pcgen fake: error: in.las: not a LAS file\n"


def test_readme_test_command_is_what_ci_runs():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text().splitlines()
    i = readme.index("# 2. install, then run the test suite")
    assert "pytest" in readme[i + 1]
    assert "README.md" in (root / ".ci" / "run").read_text()


def test_atomic_outputs_get_umask_permissions(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "a.png") as tmp:
            tmp.write_bytes(b"x")
        with atomic_dir(tmp_path / "d"):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755
