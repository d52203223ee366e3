"""PLY / PCD / XYZ through open3d: coordinates, colours, normals, attributes, NaN rejection."""

from __future__ import annotations

import numpy as np
import pytest

import pcgen.io as io
from pcgen.errors import InputError


def _cloud(n=50, seed=0):
    rng = np.random.default_rng(seed)
    xyz = rng.uniform(-5, 5, (n, 3)) + [4.5e5, 5.1e6, 300.0]
    nrm = rng.normal(size=(n, 3)).astype(np.float32)
    attrs = {"red": rng.integers(0, 65536, n).astype(np.uint16),
             "green": rng.integers(0, 65536, n).astype(np.uint16),
             "blue": rng.integers(0, 65536, n).astype(np.uint16),
             "normal_x": nrm[:, 0], "normal_y": nrm[:, 1], "normal_z": nrm[:, 2],
             "intensity": rng.uniform(0, 1, n).astype(np.float32)}
    return io.PointCloud(xyz, attrs)


@pytest.mark.parametrize("suffix", [".ply", ".pcd"])
def test_tensor_formats_round_trip(tmp_path, suffix):
    src = _cloud()
    io.write(src, tmp_path / f"c{suffix}")
    back = io.read(tmp_path / f"c{suffix}")
    np.testing.assert_array_equal(back.xyz, src.xyz)
    for c in ("normal_x", "normal_y", "normal_z", "intensity"):
        np.testing.assert_array_equal(back.attributes[c], src.attributes[c])
    # colours pass through float32 in [0, 1] (PLY) or 8 bits (PCD)
    tol = 1 if suffix == ".ply" else 257
    assert np.abs(back.attributes["red"].astype(int) - src.attributes["red"]).max() <= tol


def test_xyz_text(tmp_path):
    src = _cloud()
    io.write(src, tmp_path / "c.xyz")
    back = io.read(tmp_path / "c.xyz")
    np.testing.assert_allclose(back.xyz, src.xyz, rtol=0, atol=1e-6)


def test_ply_to_las_keeps_attributes(tmp_path):
    from pcgen.errors import OutputError

    src = _cloud()
    # open3d's intensity is a float in [0, 1]; LAS stores integers, and truncation would
    # write zeros
    with pytest.raises(OutputError, match="'intensity' holds 0.352743, not an integer"):
        io.write(src, tmp_path / "c.laz")
    src.attributes["intensity"] = np.round(src.attributes["intensity"] * 65535)
    io.write(src, tmp_path / "c.laz")
    back = io.read(tmp_path / "c.laz")
    np.testing.assert_allclose(back.xyz, src.xyz, atol=0.0005 + 1e-9)
    np.testing.assert_array_equal(back.attributes["red"], src.attributes["red"])
    np.testing.assert_array_equal(back.attributes["normal_z"], src.attributes["normal_z"])


def _ply(path, xyz, binary=True):
    head = ("ply\nformat " + ("binary_little_endian" if binary else "ascii") + " 1.0\n"
            f"element vertex {len(xyz)}\nproperty double x\nproperty double y\n"
            "property double z\nend_header\n").encode()
    body = xyz.astype("<f8").tobytes() if binary else "".join(
        f"{a} {b} {c}\n" for a, b, c in xyz).encode()
    path.write_bytes(head + body)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_in_ply_rejected(tmp_path, bad):
    path = tmp_path / "bad.ply"
    xyz = np.zeros((4, 3))
    xyz[2, 1] = bad
    _ply(path, xyz)
    with pytest.raises(InputError, match="1 points have NaN or inf") as err:
        io.read(path)
    assert err.value.path == str(path)


def test_unparseable_ascii_ply_rejected(tmp_path):
    path = tmp_path / "bad.ply"
    xyz = np.zeros((4, 3))
    xyz[2, 1] = np.inf  # RPly cannot parse "inf" in ASCII and stops early
    _ply(path, xyz, binary=False)
    with pytest.raises(InputError, match="not a readable PLY"):
        io.read(path)


def test_unsupported_suffix(tmp_path):
    with pytest.raises(InputError, match="unsupported file type"):
        io.read(tmp_path / "c.obj")


def test_hand_built_cloud_select_concat_write(tmp_path):
    cloud = io.PointCloud(np.c_[np.arange(10.0), np.zeros(10), np.ones(10)],
                          {"intensity": np.arange(10, dtype=np.uint16),
                           "label": np.arange(10, dtype=np.int32)})
    even = cloud.select(np.arange(10) % 2 == 0)
    joined = io.concat([even, cloud.select(slice(0, 3))])
    np.testing.assert_array_equal(joined.attributes["intensity"], [0, 2, 4, 6, 8, 0, 1, 2])
    io.write(joined, tmp_path / "j.laz")
    back = io.read(tmp_path / "j.laz")
    np.testing.assert_array_equal(back.attributes["label"], [0, 2, 4, 6, 8, 0, 1, 2])
    np.testing.assert_allclose(back.xyz, joined.xyz, atol=5e-4)
    assert back.crs is None


@pytest.mark.parametrize("suffix", [".ply", ".pcd", ".xyz", ".pts"])
def test_an_empty_cloud_in_an_open3d_format_is_refused(tmp_path, suffix):
    from pcgen.errors import OutputError

    with pytest.raises(OutputError, match=f"an empty cloud cannot be written as \\{suffix}"):
        io.write(io.PointCloud(np.zeros((0, 3))), tmp_path / f"e{suffix}")
    assert not list(tmp_path.iterdir())
    io.write(io.PointCloud(np.zeros((0, 3))), tmp_path / "e.laz")
    assert len(io.read(tmp_path / "e.laz")) == 0


def test_a_text_row_that_is_not_a_point_is_refused_not_skipped(tmp_path):
    bad = tmp_path / "a.xyz"
    bad.write_text("1 2 3\nfoo bar baz\n4 5 6\n")
    with pytest.raises(InputError, match=r"a.xyz: row 2 is not a point, x y z numbers \('foo bar baz'\); "
                                         "1 of 3 rows could not be read"):
        io.read(bad)
    ok = tmp_path / "b.xyz"
    ok.write_text("# x y z\n1 2 3\n\n4 5 6\n")  # a comment and a blank row are not points
    assert io.read(ok).xyz.tolist() == [[1, 2, 3], [4, 5, 6]]
