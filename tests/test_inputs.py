"""pcgen.inputs: the one expansion of files, folders, tile indexes and EPT datasets into paths."""

from __future__ import annotations

import json

import pytest

from pcgen import datadir
from pcgen.errors import InputError, OutputError
from pcgen.inputs import input_kind, list_inputs
from pcgen.io import SUFFIXES

LIDAR = datadir.lidar_dir()
SIMPLE, WARSAW = LIDAR / "simple.las", LIDAR / "warsaw_small.las"
EPT = datadir.data_dir() / "training" / "hawaii_ept"


def _folder(tmp_path, names):
    """A folder of links to shared LiDAR files (no copies), one per ``name: shared file``."""
    folder = tmp_path / "tiles"
    folder.mkdir()
    for name, target in names.items():
        (folder / name).symlink_to(target)
    return folder


def test_files_keep_their_order_and_appear_once():
    assert list_inputs([WARSAW, str(SIMPLE), WARSAW]) == [WARSAW, SIMPLE]


def test_shared_lidar_folder_lists_every_las_laz_by_name():
    assert [p.name for p in list_inputs([LIDAR])] == [
        "4_6_crop.las", "Megaplot.laz", "MixedConifer.laz", "Topography.laz", "autzen_trim.laz",
        "las_with_several_extra_byte_bloc.laz", "lone-star.laz", "mvk-thin.las", "sample_c.las",
        "simple.las", "test1_4.las", "warsaw_small.las"]


def test_folder_lists_only_the_callers_suffixes(tmp_path):
    folder = _folder(tmp_path, {"b.LAZ": LIDAR / "Megaplot.laz", "a.las": SIMPLE, "c.ply": WARSAW,
                                "notes.txt": SIMPLE})
    (folder / "sub.las").mkdir()  # a folder named like a tile is not a tile
    assert list_inputs([folder]) == [folder / "a.las", folder / "b.LAZ"]
    assert list_inputs([folder], suffixes=SUFFIXES) == [folder / "a.las", folder / "b.LAZ",
                                                        folder / "c.ply"]


def test_txt_index_resolves_relative_to_itself(tmp_path):
    folder = _folder(tmp_path, {"t1.laz": LIDAR / "Megaplot.laz", "t2.las": SIMPLE})
    index = tmp_path / "index.txt"
    index.write_text(f"# held-out tiles\ntiles/t2.las\n\n  tiles/t1.laz  \n{WARSAW}\n")
    assert list_inputs([index]) == [folder / "t2.las", folder / "t1.laz", WARSAW]


def test_geojson_index_reads_gdaltindex_and_pcgen_tile_keys(tmp_path):
    _folder(tmp_path, {"t1.laz": LIDAR / "Megaplot.laz", "t2.las": SIMPLE})
    features = [{"type": "Feature", "properties": {"location": "tiles/t1.laz"}},
                {"type": "Feature", "properties": {"name": "tiles/t2.las", "points": 3}},
                {"type": "Feature", "properties": {"other": "x"}}]  # no path: skipped
    index = tmp_path / "index.geojson"
    index.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    assert list_inputs([index]) == [tmp_path / "tiles" / "t1.laz", tmp_path / "tiles" / "t2.las"]


@pytest.mark.parametrize("entry", [EPT, EPT / "ept.json"])
def test_ept_dataset_is_one_input_named_by_its_ept_json(entry):
    assert input_kind(entry) == "ept"
    assert list_inputs([entry]) == [EPT / "ept.json"]


def test_index_may_name_an_ept_dataset(tmp_path):
    index = tmp_path / "index.txt"
    index.write_text(f"{EPT}\n{SIMPLE}\n")
    assert list_inputs([index]) == [EPT / "ept.json", SIMPLE]


def test_input_kinds(tmp_path):
    (tmp_path / "i.json").write_text("{}")
    assert [input_kind(p) for p in (SIMPLE, LIDAR, tmp_path / "i.json", tmp_path / "nope.laz",
                                    tmp_path / "ept.json")] == [
        "file", "folder", "index", "missing", "missing"]


def _error(inputs, **kw) -> str:
    with pytest.raises(InputError) as info:
        list_inputs(inputs, **kw)
    return str(info.value)


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.laz"
    assert _error([SIMPLE, missing]) == f"{missing}: file not found"


def test_empty_folder_is_named(tmp_path):
    _folder(tmp_path, {"c.ply": SIMPLE})
    assert _error([tmp_path / "tiles"]) == \
        f"{tmp_path / 'tiles'}: folder holds no .las/.laz files (nor an EPT ept.json)"


def test_file_with_another_suffix_is_refused(tmp_path):
    ply = _folder(tmp_path, {"c.ply": SIMPLE}) / "c.ply"
    assert _error([ply]) == f"{ply}: not a .las/.laz file"
    assert list_inputs([ply], suffixes=SUFFIXES) == [ply]


def test_index_naming_missing_files_is_named(tmp_path):
    index = tmp_path / "index.txt"
    index.write_text("\n".join(["a.laz", str(SIMPLE), "b.laz", "c.laz", "d.laz"]))
    assert _error([index]) == (f"{index}: tile index names missing files: {tmp_path / 'a.laz'}, "
                               f"{tmp_path / 'b.laz'}, {tmp_path / 'c.laz'} and 1 more")


@pytest.mark.parametrize("name, text, problem", [
    ("empty.txt", "# nothing\n\n", "tile index lists no tiles"),
    ("broken.geojson", '{"features": [', "unreadable tile index (Expecting value"),
    ("list.json", "[1, 2]", "unreadable tile index ('list' object has no attribute 'get')"),
    ("ply.txt", None, "tile index names entries that are not .las/.laz files: "),
])
def test_bad_index_is_named(tmp_path, name, text, problem):
    index = tmp_path / name
    index.write_text(text if text is not None else str(_folder(tmp_path, {"c.ply": SIMPLE}) / "c.ply"))
    assert _error([index]).startswith(f"{index}: {problem}")


def test_fill_pairs_build_on_the_shared_expansion(tmp_path):
    from pcgen.tasks.jobs import expand_inputs

    folder = _folder(tmp_path, {"t1.laz": LIDAR / "Megaplot.laz", "t2.las": SIMPLE, "c.ply": SIMPLE})
    out = tmp_path / "out"
    # a folder lists only LAS/LAZ (every output is LAS/LAZ); one file may be any readable format
    assert expand_inputs(folder, out) == [(folder / "t1.laz", out / "t1.laz"),
                                          (folder / "t2.las", out / "t2.las")]
    assert expand_inputs(folder / "c.ply", out / "c.laz") == [(folder / "c.ply", out / "c.laz")]
    with pytest.raises(OutputError, match="several inputs need an output folder"):
        expand_inputs(folder, out / "x.laz")
    with pytest.raises(InputError, match="file not found"):
        expand_inputs(tmp_path / "nope", out)


def test_training_sources_accept_names_files_and_folders(tmp_path):
    from pcgen.train.datamodule import resolve_sources

    folder = _folder(tmp_path, {"a.laz": LIDAR / "Megaplot.laz"})
    assert resolve_sources(["simple.las", str(folder), str(WARSAW)]) == [
        SIMPLE.resolve(), (LIDAR / "Megaplot.laz").resolve(), WARSAW.resolve()]
    missing = tmp_path / "gone" / "x.laz"
    with pytest.raises(InputError, match="x.laz: file not found"):
        resolve_sources([str(missing)])
