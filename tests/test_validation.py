"""Issue 14, classes 3-4: nonsense values are refused where they enter, in one line, exit 2.

Explicit regression cases for the reported values, and hypothesis fuzzing (a small profile:
``PCGEN_FUZZ_EXAMPLES``, default 25) over the CLI's numeric options and the LAS header's
scale, offset and bounding-box fields.
"""

from __future__ import annotations

import importlib
import math
import os
import shutil
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pcgen.io as pio
from pcgen import datadir
from pcgen.cli import SUBCOMMANDS, _Parser, main
from pcgen.errors import InputError

FUZZ = settings(max_examples=int(os.environ.get("PCGEN_FUZZ_EXAMPLES", "25")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# byte offsets of the LAS public header's doubles (identical in LAS 1.0-1.4 and LAZ)
SCALE, OFFSET = 131, 155
BOUNDS = 179  # max x, min x, max y, min y, max z, min z


def _one_line_error(capsys, argv, must_say):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"pcgen {argv[0]}") and ": error: " in err, err
    assert must_say in err, err
    return err


def _patched(tmp_path, at, values, name="bad.las"):
    path = tmp_path / name
    shutil.copy(datadir.lidar_file("simple.las"), path)
    data = bytearray(path.read_bytes())
    data[at:at + 8 * len(values)] = struct.pack(f"<{len(values)}d", *values)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("at, values, says", [
    (SCALE, [0.0, 0.01, 0.01], "header X scale 0.0"),
    (SCALE, [0.01, math.nan, 0.01], "header Y scale nan"),
    (SCALE, [0.01, 0.01, -0.01], "header Z scale -0.01"),
    (SCALE, [1e-300, 0.01, 0.01], "header X scale 1e-300"),
    (OFFSET, [math.inf, 0.0, 0.0], "header X offset inf"),
    (BOUNDS, [math.nan] * 6, "header bounding box"),
])
def test_bad_header_fields(tmp_path, capsys, at, values, says):
    bad = _patched(tmp_path, at, values)
    with pytest.raises(InputError, match=says):
        pio.read(bad)
    with pytest.raises(InputError, match=says):
        with pio.open_chunks(bad):
            pass
    before = sorted(os.listdir(tmp_path))
    _one_line_error(capsys, ["fill", str(bad), str(tmp_path / "o.las"), "--baseline", "mirror"], says)
    assert sorted(os.listdir(tmp_path)) == before


@pytest.mark.parametrize("argv, says", [
    (["fill", "{las}", "{out}/o.las", "--seed", "-1"], "argument --seed: must be >= 0"),
    (["eval-fill", "{las}", "--out", "{out}/e", "--seed", "-1"], "argument --seed: must be >= 0"),
    (["eval-fill", "{las}", "--out", "{out}/e", "--max-tiles", "-1"], "argument --max-tiles: must be >= 0"),
    (["eval-fill", "{las}", "--out", "{out}/e", "--gap-size", "nan"], "argument --gap-size: must be a finite"),
    (["eval-fill", "{las}", "--out", "{out}/e", "--samples", "1000001"], "argument --samples: must be <= 1000"),
    (["eval-fill", "{las}", "--out", "{out}/e", "--set", "=1"], "override '=1' has no key (key=value)"),
    (["fill", "{las}", "{out}/o.las", "--set", "a..b=1"], "override 'a..b=1' is not key=value"),
    (["fill", "{las}", "{out}/o.las", "--exclude-classes", "1,,2"], "--exclude-classes wants integers, got '1,,2'"),
    (["fill", "{las}", "{out}/o.las", "--set", "gaps.density_ratio=[1,2"],
     "override 'gaps.density_ratio=[1,2' is not key=value (no viable alternative at input '[1,2')"),
    (["fill", "{las}", "{out}/o.las", "--set", "samples=abc"],
     "bad fill config: samples: Value 'abc' of type 'str' could not be converted to Integer"),
    (["eval-fill", "{las}", "--out", "{out}/e", "--cuts", "99999999999999999999"], "argument --cuts: must be <= 10000"),
    (["image", "train", "--images", "{out}", "--out", "{out}/r", "--ldm-steps", "99999999999999999999"],
     "argument --ldm-steps: must be <= 10000000"),
    (["eval-fill", "{las}", "--out", "{out}/e", "--set", "seed=5"], "--set seed=5: eval-fill does not use seed"),
    (["eval-fill", "{las}", "--out", "{out}/e", "--set", "output.class_code=3"], "does not use output.class_code"),
    (["eval-fill", "{las}", "--out", "{out}/e", "--set", "output.attributes=nearest"],
     "output.attributes must be one of neighbours, source, got 'nearest'"),
    (["eval-fill", "{metres}", "{feet}", "--out", "{out}/e"], "4_6_crop.las: its CRS is in US ft, that of"),
    (["tile", "{las}", "{out}/t", "--max-memory", "nan"], "argument --max-memory: must be a finite number"),
    (["tile", "{las}", "{out}/t", "--dask", "notanaddress"], "argument --dask: not a Dask scheduler"),
    (["image", "sample", "--ckpt", "x", "--out", "{out}/s", "--guidance", "nan"], "argument --guidance"),
    (["image", "train", "--images", "{out}", "--out", "{out}/r", "--ae-steps", "-1"], "argument --ae-steps"),
    (["image", "rasterize", "{las}", "{out}/r", "--max-height", "0"], "argument --max-height: must be > 0"),
    (["augment", "{out}/a", "--tile-size", "inf"], "argument --tile-size: must be a finite"),
    (["eval-augment", "--reference", "{las}", "--train", "{las}", "--out", "{out}/ea", "--points", "-5"],
     "argument --points: must be >= 16"),
    (["tile", "{las}", "{out}/t", "--voxel", "1e9"], "--voxel 1e+09 is larger than a tile (--size 50)"),
    (["tile", "{las}", "{out}/t", "--max-memory", "1e-300"], "argument --max-memory: must be >= 0.01"),
    (["tile", "{las}", "{out}/t", "--dask", "tcp://127.0.0.1:1", "--workers", "2"],
     "--workers 2 starts local processes; with --dask"),
    (["fill", "{las}", "{out}/o.las", "--dask", "tcp://127.0.0.1:1", "--workers", "2"],
     "--workers 2 starts local processes; with --dask"),
    (["eval-fill", "{las}", "--out", "{out}/e", "--dask", "tcp://127.0.0.1:1", "-j", "2"],
     "--workers 2 starts local processes; with --dask"),
    (["eval-fill", "{las}", "--out", "{out}/e", "-j", "0"], "argument --workers/-j: must be >= 1"),
    (["eval-fill", "{las}", "--out", "{out}/e", "--dask", "notanaddress"], "argument --dask: not a Dask scheduler"),
    (["eval-fill", "{las}", "--out", "{out}/e", "--no-model", "--gap-size", "1e-300"],
     "no tile is large and dense enough for 1e-300 m cuts"),
    (["eval-fill", "{las}", "--out", "{out}/e", "--set", "gaps.cell_size=1"], "does not use gaps.cell_size"),
    (["demo", "{out}/d", "--gap-size", "1e-9"], "argument --gap-size: must be >= 1"),
    (["tile", "{las}", ""], "argument OUT_DIR: empty value"),
    (["eval-fill", "{las}", "--out", ""], "argument --out: empty value"),
    (["demo", "{out}/d", "--ckpt", ""], "argument --ckpt: empty value"),
    (["eval-fill", "{las}", "--out", "{out}/e", "--tau", ""], "argument --tau: empty value"),
    (["fill", "{las}", "{out}/o.las", "--set", "output.generated_dim=X"],
     "output.generated_dim 'X' is a standard LAS dimension"),
    (["fill", "{las}", "{out}/o.las", "--set", "output.uncertainty_dim=generated"],
     "output.generated_dim and output.uncertainty_dim are both 'generated'"),
    (["fill", "{las}", "{out}/o.las", "--set", "output.generated_dim=" + "a" * 40],
     "output.generated_dim must be at most 32 characters"),
    (["fill", "{las}", "{out}/o.las", "--baseline", "mirror", "--set", "gaps.cell_size=0.001"],
     "gaps.cell_size=0.001 cuts this"),
])
def test_bad_numeric_options(tmp_path, capsys, argv, says):
    las = datadir.lidar_file("simple.las")
    argv = [a.format(las=las, out=tmp_path, metres=datadir.lidar_file("MixedConifer.laz"),
                     feet=datadir.lidar_file("4_6_crop.las")) for a in argv]
    _one_line_error(capsys, argv, says)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("argv, says", [
    (["eval-fill", "{empty}", "--out", "{out}/e", "--no-model"], "empty.las: 0 points: too few to cut gaps from"),
    (["augment", "{out}/a", "--n", "1", "--condition", "{empty}"], "empty.las: 0 points: too few to re-imagine"),
    (["fill", "{empty}", "{out}/f.las", "--baseline", "mirror"], "empty.las: 0 points: nothing around any gap"),
])
def test_a_file_without_points(tmp_path, capsys, argv, says):
    import laspy

    header = laspy.LasHeader(point_format=1, version="1.2")
    header.scales, header.offsets = np.array([0.01, 0.01, 0.01]), np.zeros(3)
    (tmp_path / "in").mkdir()
    laspy.LasData(header).write(tmp_path / "in" / "empty.las")
    (tmp_path / "out").mkdir()
    argv = [a.format(empty=tmp_path / "in" / "empty.las", out=tmp_path / "out") for a in argv]
    _one_line_error(capsys, argv, says)
    assert os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize("setting, says", [
    ("gaps.density_ratio=0", "gaps.density_ratio must be > 0"),
    ("gaps.density_ratio=-1", "gaps.density_ratio must be > 0"),
    ("gaps.density_ratio=nan", "gaps.density_ratio must be a finite number"),
    ("gaps.rim_ratio=-0.1", "gaps.rim_ratio must be >= 0"),
    ("gaps.outline_radius_cells=-1", "gaps.outline_radius_cells must be >= 0"),
    ("gaps.outline_radius_cells=50", "gaps.outline_radius_cells"),
    ("gaps.cell_size=0", "gaps.cell_size must be > 0"),
    ("gaps.min_expected_points=nan", "gaps.min_expected_points"),
    ("gaps.neighbourhood_cells=0", "gaps.neighbourhood_cells must be >= 1"),
    ("gaps.min_gap_cells=-1", "gaps.min_gap_cells must be >= 1"),
    ("context.scale=inf", "context.scale"),
    ("context.max_points=8", "context.max_points (8) must be >= context.min_points"),
    ("density_ratio=0.1", "no key 'density_ratio' to override; did you mean gaps.density_ratio?"),
])
def test_bad_gap_detection_settings(tmp_path, capsys, setting, says):
    las = datadir.lidar_file("simple.las")
    _one_line_error(capsys, ["fill", str(las), str(tmp_path / "o.las"), "--gaps-only", "--set", setting], says)
    _one_line_error(capsys, ["eval-fill", str(las), "--out", str(tmp_path / "e"), "--no-model",
                             "--set", setting], says)
    assert os.listdir(tmp_path) == []


def test_a_config_folder_that_does_not_parse(tmp_path, capsys):
    (tmp_path / "conf" / "task").mkdir(parents=True)
    (tmp_path / "conf" / "task" / "fill.yaml").write_text("gaps: [unclosed\n")
    las = datadir.lidar_file("simple.las")
    _one_line_error(capsys, ["fill", str(las), str(tmp_path / "o.las"), "--baseline", "mirror",
                             "--config-dir", str(tmp_path / "conf")],
                    f"{tmp_path / 'conf' / 'task' / 'fill.yaml'}, line 2: not valid YAML (expected ',' or ']'")
    assert os.listdir(tmp_path) == ["conf"]


def test_a_header_counting_more_points_than_the_file_holds(tmp_path, capsys):
    """A count of 2^32 - 1 in the header is refused before a reader allocates for it."""
    bad = tmp_path / "in" / "bomb.las"
    bad.parent.mkdir()
    shutil.copy(datadir.lidar_file("simple.las"), bad)
    data = bytearray(bad.read_bytes())
    data[107:111] = struct.pack("<I", 2 ** 32 - 1)  # legacy point count of the LAS 1.2 header
    bad.write_bytes(bytes(data))
    for argv in (["fill", str(bad), str(tmp_path / "o.las"), "--baseline", "mirror"],
                 ["eval-fill", str(bad), "--out", str(tmp_path / "e"), "--no-model"]):
        _one_line_error(capsys, argv, "bomb.las: truncated: header says 4294967295 points, file holds 1065")
    assert os.listdir(tmp_path) == ["in"]


@pytest.mark.parametrize("text, says", [
    ("gaps: [unclosed\n", "not valid YAML"),
    ("- just\n- a list\n", "must hold a YAML mapping"),
    ("gaps:\n  density_ratio: 0\n", "gaps.density_ratio must be > 0"),
])
def test_bad_config_file(tmp_path, capsys, text, says):
    cfg = tmp_path / "fill.yaml"
    cfg.write_text(text)
    las = datadir.lidar_file("simple.las")
    _one_line_error(capsys, ["fill", str(las), str(tmp_path / "o.las"), "--gaps-only", "--config", str(cfg)],
                    says)
    assert os.listdir(tmp_path) == ["fill.yaml"]


# (command, option, predicate a value that parses must satisfy)
NUMERIC_OPTIONS = [
    ("tile", "--size", lambda v: 0 < v < math.inf),
    ("tile", "--buffer", lambda v: 0 <= v < math.inf),
    ("tile", "--voxel", lambda v: 0 < v < math.inf),
    ("tile", "--max-memory", lambda v: 0 < v < math.inf),
    ("tile", "--min-points", lambda v: v >= 0),
    ("tile", "--workers", lambda v: v >= 1),
    ("fill", "--seed", lambda v: 0 <= v < 2 ** 32),
    ("fill", "--workers", lambda v: v >= 1),
    ("eval-fill", "--gap-size", lambda v: 0 < v < math.inf),
    ("eval-fill", "--cuts", lambda v: v >= 1),
    ("eval-fill", "--max-tiles", lambda v: v >= 0),
    ("augment", "--gap-fraction", lambda v: 0 < v <= 1),
    ("augment", "--n", lambda v: v >= 1),
    ("eval-augment", "--n", lambda v: v >= 2),
    ("demo", "--cuts", lambda v: v >= 1),
    ("image", "--guidance", lambda v: 0 <= v < math.inf),
    ("image", "--eta", lambda v: 0 <= v <= 1),
    ("image", "--res", lambda v: 0 < v < math.inf),
]
REQUIRED = {"tile": ["a.las", "out"], "fill": ["a.las", "o.las"], "eval-fill": ["a.las", "--out", "o"],
            "augment": ["o"], "eval-augment": ["--reference", "a", "--train", "a", "--out", "o"],
            "demo": ["o"]}
IMAGE = {"--guidance": ["sample", "--ckpt", "c", "--out", "o"], "--eta": ["sample", "--ckpt", "c", "--out", "o"],
         "--res": ["rasterize", "a.las", "o"]}

values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-2 ** 70, max_value=2 ** 70).map(str),
    st.sampled_from(["nan", "-nan", "inf", "-inf", "1e309", "-0", "0", "0x10", "", " ", "1,5", "abc", "1e-400"]),
)


@FUZZ
@given(case=st.sampled_from(NUMERIC_OPTIONS), text=values)
def test_fuzz_numeric_options(capsys, case, text):
    """Any text either parses to an in-range finite value or is refused in one line naming the option."""
    command, option, ok = case
    parser = _Parser(prog=f"pcgen {command}")
    importlib.import_module(SUBCOMMANDS[command][0]).add_arguments(parser)
    argv = (IMAGE[option] if command == "image" else REQUIRED[command]) + [f"{option}={text}"]
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        err = capsys.readouterr().err.strip()
        assert exc.code == 2 and len(err.splitlines()) == 1 and f"argument {option}" in err, err
        return
    value = getattr(args, option.lstrip("-").replace("-", "_"))
    assert isinstance(value, (int, float)) and math.isfinite(value) and ok(value), (text, value)


header_values = st.floats(allow_nan=True, allow_infinity=True, width=64)


@FUZZ
@given(field=st.sampled_from(["scale", "offset", "bounds"]), index=st.integers(0, 5), value=header_values)
def test_fuzz_las_header_fields(tmp_path_factory, field, index, value):
    """A flipped header field is either refused as InputError or read into finite, sane coordinates."""
    tmp = tmp_path_factory.mktemp("hdr")
    at = {"scale": SCALE + 8 * (index % 3), "offset": OFFSET + 8 * (index % 3), "bounds": BOUNDS + 8 * index}[field]
    path = _patched(tmp, at, [value])
    try:
        cloud = pio.read(path)
    except InputError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    xyz = np.asarray(cloud.xyz)
    assert np.all(np.isfinite(xyz)) and np.all(np.abs(xyz) <= 1e16)
    assert len(np.unique(xyz[:, index % 3])) > 1  # coordinates did not collapse
