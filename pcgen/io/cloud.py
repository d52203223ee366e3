"""`PointCloud`: one structure for every point format pcgen reads, lossless for LAS/LAZ.

A cloud read from LAS/LAZ is a laspy header and laspy's ``ScaleAwarePointRecord`` (the raw
integer coordinates and every byte of each point), as in ``laspy.LasData``. ``xyz`` and
``attributes`` read from that record; edits go back into it, and coordinates are re-quantized
only for the points that moved, so untouched points leave bit-exact. Clouds from PLY/PCD/XYZ
(or built by hand) have no record and are packed against a header on write.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, MutableMapping, Sequence

import laspy
import numpy as np

from pcgen.errors import ConfigError, InputError, OutputError

_COORDS = ("X", "Y", "Z")
# Names an extra-bytes dimension may not take: every standard field of LAS point formats 0-10
# (a file of another format would gain a field that means something else), any case.
_STANDARD_NAMES = frozenset(n.lower() for f in range(11) for n in laspy.PointFormat(f).dimension_names)
EXTRA_NAME_BYTES = 32  # the name field of a LAS extra-bytes record


def extra_dimension_problem(name) -> str | None:
    """Why ``name`` cannot be an extra-bytes dimension of a LAS file, or None if it can."""
    if not isinstance(name, str) or not name:
        return f"wants a dimension name, got {name!r}"
    if not name.isascii() or not name.isprintable():
        return f"must be printable ASCII, got {name!r}"
    if len(name) > EXTRA_NAME_BYTES:
        return f"must be at most {EXTRA_NAME_BYTES} characters, got {len(name)} ({name[:12]}...)"
    if name.lower() in _STANDARD_NAMES:
        return f"{name!r} is a standard LAS dimension; pick another name"
    return None


class PointAttributes(MutableMapping):
    """Per-point attributes by laspy dimension name: the record's dimensions, then the others.

    Behaves like ``dict[str, np.ndarray]``. Whole record fields are numpy views into the
    record, so in-place edits land in it. Bit sub-fields (``classification`` of formats 0-5,
    ``return_number``...) and scaled extra bytes exist in laspy only as its own view classes,
    which lack much of the ndarray interface; they are handed out as decoded copies, and
    `write_back` packs the copies that were edited in place. Assigning a record dimension
    writes it into the record at once. Names the record lacks (every name without a record)
    are held apart, and a LAS write stores them as extra-bytes dimensions.
    """

    def __init__(self, points: laspy.ScaleAwarePointRecord | None = None, n: int | None = None):
        self.points = points
        self._n = len(points) if points is not None else n
        self._names = () if points is None else tuple(
            d for d in points.point_format.dimension_names if d not in _COORDS)
        self._outside: dict[str, np.ndarray] = {}
        self._copies: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self._outside:
            return self._outside[name]
        if name not in self._names:
            raise KeyError(name)
        if name in self._copies:
            return self._copies[name]
        value = self.points[name]
        if isinstance(value, np.ndarray):
            return value
        value = self._copies[name] = np.asarray(value)
        return value

    def __setitem__(self, name: str, value) -> None:
        value = np.asarray(value)
        if self._n is None:
            self._n = len(value)
        if value.ndim == 0 or len(value) != self._n:
            raise ValueError(f"attribute {name!r} has {value.shape[0] if value.ndim else 0} "
                             f"values for {self._n} points")
        if name in self._names:
            check_fits(name, value, self.points.point_format)
            self._copies.pop(name, None)
            self.points[name] = value
        else:
            self._outside[name] = value

    def __delitem__(self, name: str) -> None:
        if name in self._names:
            raise ValueError(f"{name!r} is a dimension of the LAS point format and cannot be "
                             "deleted")
        del self._outside[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._names
        yield from list(self._outside)

    def __len__(self) -> int:
        return len(self._names) + len(self._outside)

    def __contains__(self, name) -> bool:
        return name in self._outside or name in self._names

    def __repr__(self) -> str:
        return f"PointAttributes({list(self)})"

    def outside_record(self) -> dict[str, np.ndarray]:
        """The attributes that are not dimensions of the record (all of them without one)."""
        return dict(self._outside)

    def write_back(self) -> None:
        """Pack the decoded copies that were edited in place into the record."""
        for name, value in self._copies.items():
            if not np.array_equal(np.asarray(self.points[name]), value):
                check_fits(name, value, self.points.point_format)
                self.points[name] = value


def add_extra_dims(header: laspy.LasHeader, params: list[laspy.ExtraBytesParams]) -> None:
    """``header.add_extra_dims(params)``, keeping the file's own extra-bytes definitions.

    laspy rebuilds the ExtraBytes VLR from the dimensions it parsed, which lose each one's
    ``no_data`` and, with a second ExtraBytes VLR, its names; the file's definitions are put
    back in front of the new ones (the point bytes are the same either way)."""
    from laspy.vlrs.known import ExtraBytesVlr

    own = [copy.deepcopy(s) for v in header.vlrs if isinstance(v, ExtraBytesVlr)
           for s in v.extra_bytes_structs]
    header.add_extra_dims(params)
    (vlr,) = header.vlrs.get("ExtraBytesVlr")
    if own and len(vlr.extra_bytes_structs) == len(own) + len(params):
        vlr.extra_bytes_structs[:len(own)] = own


class PointCloud:
    """Points with float64 real-world ``xyz`` (N, 3), named ``attributes`` and a laspy ``header``.

    Args:
        xyz: (N, 3) real-world coordinates; with ``points``, the (possibly moved) coordinates
            of the record's points, else omit it.
        attributes: name -> (N,) or (N, k) array, laspy dimension names (``intensity``,
            ``classification``, ``gps_time``, ``red``, extra-bytes names, ...).
        header: ``laspy.LasHeader`` with scales, offsets, CRS, VLRs/EVLRs; None for clouds that
            never came from LAS (one is made on LAS write).
        points: laspy point record in ``header``'s point format (the lossless path); a plain
            ``PackedPointRecord`` is taken to be in ``header``'s scales and offsets.
        crs: the CRS, when known already (else parsed from ``header`` on first use): a pyproj
            CRS or anything ``pyproj.CRS.from_user_input`` takes (``"EPSG:2992"``, 2992, WKT).
    """

    def __init__(self, xyz=None, attributes=None, header: laspy.LasHeader | None = None, *,
                 points: laspy.PackedPointRecord | None = None, crs=None):
        self.header = header
        if points is not None:
            if header is None:
                raise ValueError("a point record needs its header")
            if not isinstance(points, laspy.ScaleAwarePointRecord):
                points = laspy.ScaleAwarePointRecord(points.array, points.point_format,
                                                     header.scales, header.offsets)
            n = len(points)
        elif xyz is None:
            raise ValueError("PointCloud needs xyz or a point record")
        if xyz is not None:
            xyz = np.asarray(xyz, dtype=np.float64)
            if xyz.ndim != 2 or xyz.shape[1] != 3 or (points is not None and len(xyz) != n):
                raise ValueError(f"xyz must be ({n if points is not None else 'N'}, 3), "
                                 f"got {xyz.shape}")
            n = len(xyz)
        self._points = points
        self._xyz = xyz
        self._n = n
        self._descriptions: dict[str, str] = {}
        self._crs, self._crs_parsed = as_crs(crs), crs is not None
        self.attributes = PointAttributes(points, n)
        for name, value in (attributes or {}).items():
            self.attributes[name] = value

    # -- coordinates ---------------------------------------------------------------------------
    @property
    def xyz(self) -> np.ndarray:
        """(N, 3) float64 real-world coordinates (raw integers × scale + offset for LAS)."""
        if self._xyz is None:
            self._xyz = _decode_xyz(self._points)
        return self._xyz

    @xyz.setter
    def xyz(self, value) -> None:
        value = np.asarray(value, dtype=np.float64)
        if value.shape != (self._n, 3):
            raise ValueError(f"xyz must be ({self._n}, 3), got {value.shape}")
        self._xyz = value

    @property
    def points(self) -> laspy.ScaleAwarePointRecord | None:
        """The laspy point record, with the edits made through ``xyz`` and ``attributes``
        written in (moved points re-quantized); None for a cloud that never came from LAS.

        Raises:
            OutputError: a moved point does not fit the record's 32-bit integer grid.
        """
        if self._points is not None:
            self.attributes.write_back()
            if self._xyz is not None:
                moved = np.flatnonzero((self._xyz != _decode_xyz(self._points)).any(axis=1))
                if len(moved):
                    ints = _quantize(self._xyz[moved], self._points.scales, self._points.offsets)
                    for i, dim in enumerate(_COORDS):
                        self._points[dim][moved] = ints[:, i]
        return self._points

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"PointCloud({self._n} points, attributes={list(self.attributes)})"

    # -- CRS -----------------------------------------------------------------------------------
    @property
    def crs(self):
        """pyproj CRS parsed from the header (GeoKeys or WKT VLR); None when absent or unparseable."""
        if not self._crs_parsed:
            self._crs = parse_crs(self.header)
            self._crs_parsed = True
        return self._crs

    @crs.setter
    def crs(self, value) -> None:
        from pcgen.io.crs import clear_crs, store_crs

        value = as_crs(value)
        if self.header is not None:
            header = copy.deepcopy(self.header)
            if value is None:
                clear_crs(header)
            else:
                try:
                    store_crs(header, value)
                except ValueError as exc:
                    raise ConfigError(f"cannot set the CRS: {exc}") from None
            self.header = header
        self._crs = value
        self._crs_parsed = True

    # -- selection and extension ---------------------------------------------------------------
    def select(self, index) -> PointCloud:
        """A new cloud holding copies of the points at ``index`` (int array, slice or mask)."""
        if isinstance(index, slice):
            index = np.arange(self._n)[index]  # a copy, never a view shared with this cloud
        index = np.asarray(index)
        if index.size == 0 and index.dtype != bool:
            index = index.astype(np.int64)  # [] is a float array to numpy: no points, not an error
        if index.ndim != 1 or index.dtype.kind not in "biu":
            raise ValueError(f"index must be a 1-D integer array, boolean mask or slice, got {index.dtype} "
                             f"{index.shape}")
        if index.dtype == bool and len(index) != self._n:
            raise ValueError(f"mask has {len(index)} entries for {self._n} points")
        xyz = None if self._xyz is None else self._xyz[index]
        attrs = self.attributes.outside_record()
        if self._points is None:
            attrs = dict(self.attributes)
        else:
            self.attributes.write_back()
        out = PointCloud(xyz, {k: v[index] for k, v in attrs.items()}, self.header,
                         points=None if self._points is None else self._points[index])
        out._crs, out._crs_parsed = self._crs, self._crs_parsed
        out._descriptions = dict(self._descriptions)
        return out

    def add_extra_dimension(self, name: str, dtype, values, description: str = "") -> None:
        """Add a per-point dimension, stored as a LAS extra-bytes dimension on write.

        Args:
            name: dimension name (must not exist yet).
            dtype: numpy dtype of the stored values, e.g. ``"u4"``, ``np.float32``.
            values: (N,) values.
            description: short text kept in the extra-bytes VLR (max 31 chars).
        Raises:
            ValueError: the name exists, or the count is not N.
            ConfigError: values an integer ``dtype`` would wrap or truncate.
        """
        if name in self.attributes or name.lower() in ("x", "y", "z"):
            raise ValueError(f"dimension {name!r} already exists")
        raw, target = np.asarray(values), np.dtype(dtype)
        if target.kind in "iu" and raw.dtype.kind in "iuf" and raw.size:  # numpy wraps 300 to 44 in u1
            if raw.dtype.kind == "f" and (~np.isfinite(raw) | (raw != np.round(raw))).any():
                bad = raw[~np.isfinite(raw) | (raw != np.round(raw))].flat[0]
                raise ConfigError(f"dimension {name!r} holds {bad:g}, not an integer {target} can store")
            info = np.iinfo(target)
            if raw.min() < info.min or raw.max() > info.max:
                worst = raw.min() if raw.min() < info.min else raw.max()
                raise ConfigError(f"dimension {name!r} holds {worst:g}, outside the "
                                  f"{info.min}..{info.max} of {target}")
        values = raw.astype(target, copy=False)
        if values.shape[:1] != (self._n,):
            raise ValueError(f"{name!r} has {values.shape[:1]} values for {self._n} points")
        self.attributes[name] = values
        self._descriptions[name] = description

    # -- packing -------------------------------------------------------------------------------
    def las_header(self, base: laspy.LasHeader | None = None) -> laspy.LasHeader:
        """``base`` (default: ``header``) with an extra-bytes dimension for every attribute its
        point format lacks; ``base`` itself when it lacks none, else a deep copy.

        Raises:
            OutputError: an attribute whose dtype LAS cannot store (not int/float, > 2-D).
        """
        base = self.header if base is None else base
        if base is None:
            raise ValueError("las_header needs a header")
        names = set(base.point_format.dimension_names)
        params = []
        for name, value in self.attributes.outside_record().items():
            if name in names:
                continue
            if value.dtype.kind not in "iuf" or value.ndim > 2:
                raise OutputError(f"attribute {name!r} of dtype {value.dtype} cannot be stored "
                                  "in LAS")
            dtype = value.dtype if value.ndim == 1 else np.dtype((value.dtype, value.shape[1]))
            params.append(laspy.ExtraBytesParams(
                name=name, type=dtype, description=self._descriptions.get(name, "")[:31]))
        if not params:
            return base
        header = copy.deepcopy(base)
        add_extra_dims(header, params)
        return header

    def to_record(self, header: laspy.LasHeader | None = None) -> laspy.ScaleAwarePointRecord:
        """The cloud as a laspy record in ``header``'s point format, scales and offsets
        (default: `las_header`).

        In the record's own layout and grid this is `points` itself (no copy): unchanged points
        byte-for-byte. Otherwise fields are copied by name and coordinates re-quantized.

        Raises:
            OutputError: a coordinate does not fit the header's 32-bit integer grid.
        """
        if header is None:
            if self.header is None:
                raise ValueError("to_record needs a header")
            header = self.las_header()
        fmt = header.point_format
        scales = np.asarray(header.scales, dtype=np.float64)
        offsets = np.asarray(header.offsets, dtype=np.float64)
        points = self.points
        same_grid = points is not None and np.array_equal(points.scales, scales) \
            and np.array_equal(points.offsets, offsets)
        if same_grid and points.array.dtype == fmt.dtype():
            return laspy.ScaleAwarePointRecord(points.array, fmt, scales, offsets)
        out = laspy.ScaleAwarePointRecord.zeros(self._n, point_format=fmt, scales=scales,
                                                offsets=offsets)
        if points is not None:
            _copy_fields(out, points)
        if not same_grid:
            # laspy's change_scaling re-quantizes too, but without a range check: values past
            # int32 would wrap silently
            ints = _quantize(self.xyz, scales, offsets)
            for i, dim in enumerate(_COORDS):
                out[dim] = ints[:, i]
        for name, value in self.attributes.outside_record().items():
            if name in fmt.dimension_names:
                check_fits(name, value, fmt)
                out[name] = value
        return out


def check_fits(name: str, value: np.ndarray, fmt: laspy.PointFormat) -> None:
    """Refuse values an integer LAS dimension would wrap or truncate (laspy stores intensity
    70000 as 4464 and classification 300 as 44 without a word).

    Raises:
        ConfigError: naming the attribute, its offending value and the dimension's range.
    """
    dim = fmt.dimension_by_name(name)
    kind = laspy.DimensionKind
    if dim.kind == kind.FloatingPoint or dim.scales is not None or value.size == 0:
        return
    if dim.kind == kind.BitField:
        lo, hi = 0, 2 ** dim.num_bits - 1
    else:
        info = np.iinfo(dim.dtype.base)
        lo, hi = int(info.min), int(info.max)
    if value.dtype.kind == "f":
        bad = ~np.isfinite(value) | (value != np.round(value))
        if bad.any():
            raise ConfigError(f"attribute {name!r} holds {value[bad].flat[0]:g}, "
                              "not an integer its LAS dimension can store (scale or round it first)")
    if value.dtype.kind in "iuf" and (value.min() < lo or value.max() > hi):
        worst = value.min() if value.min() < lo else value.max()
        raise ConfigError(f"attribute {name!r} holds {worst:g}, outside the {lo}..{hi} "
                          "its LAS dimension stores")


def _decode_xyz(points: laspy.ScaleAwarePointRecord) -> np.ndarray:
    """(N, 3) real-world coordinates, laspy's formula (raw × scale + offset) in one buffer."""
    xyz = np.empty((len(points), 3), dtype=np.float64)
    for i, dim in enumerate(_COORDS):
        np.multiply(points[dim], points.scales[i], out=xyz[:, i])
        xyz[:, i] += points.offsets[i]
    return xyz


def _quantize(xyz: np.ndarray, scales, offsets) -> np.ndarray:
    """Raw LAS integers of ``xyz`` (laspy's rounding), refusing what int32 cannot hold."""
    ints = np.round((xyz - np.asarray(offsets)) / np.asarray(scales))
    lo, hi = np.iinfo(np.int32).min, np.iinfo(np.int32).max
    if ints.size and (not np.isfinite(ints).all() or ints.min() < lo or ints.max() > hi):
        raise OutputError("coordinates do not fit the LAS integer grid "
                          f"(scales {np.asarray(scales).tolist()}, "
                          f"offsets {np.asarray(offsets).tolist()})")
    return ints


def _copy_fields(dst: laspy.PackedPointRecord, src: laspy.PackedPointRecord) -> None:
    """Copy ``src``'s dimensions into ``dst``: raw fields by name within one point format id
    (bit-exact, twice as fast as laspy's per-dimension copy), laspy's `copy_fields_from`
    across formats, where the packed bit fields differ."""
    if dst.point_format.id != src.point_format.id:
        dst.copy_fields_from(src)
        return
    names = set(dst.array.dtype.names)
    for name in src.array.dtype.names:
        if name in names:
            dst.array[name] = src.array[name]


def as_crs(value):
    """``value`` as a ``pyproj.CRS`` (None stays None): a CRS, or what ``CRS.from_user_input``
    takes; anything else is a :class:`~pcgen.errors.ConfigError`."""
    if value is None:
        return None
    import pyproj

    if isinstance(value, pyproj.CRS):
        return value
    try:
        return pyproj.CRS.from_user_input(value)
    except (pyproj.exceptions.CRSError, TypeError) as exc:
        raise ConfigError(f"not a CRS: {value!r} ({str(exc).splitlines()[0][:120]})") from None


def parse_crs(header: laspy.LasHeader | None):
    """pyproj CRS of a LAS header, or None when absent, empty or unparseable."""
    if header is None:
        return None
    try:
        return header.parse_crs()
    except Exception:  # noqa: BLE001 - broken GeoKeys / empty WKT are common in the wild; treat as "no CRS"
        return None


def concat(clouds: Sequence[PointCloud]) -> PointCloud:
    """Join clouds into one, in the first cloud's header (point format, scales, offsets).

    Clouds in other formats or grids are packed into the first one's; attributes missing
    from a cloud are zero. Clouds without headers concatenate their common attributes.
    """
    clouds = list(clouds)
    if not clouds:
        raise ValueError("concat needs at least one cloud")
    first = clouds[0]
    if first.header is None or any(c.header is None for c in clouds):
        names = set(first.attributes)
        for c in clouds[1:]:
            names &= set(c.attributes)
        attrs = {n: np.concatenate([c.attributes[n] for c in clouds]) for n in sorted(names)}
        return PointCloud(np.concatenate([c.xyz for c in clouds]), attrs,
                          header=first.header, crs=first.crs)
    header = first.las_header()
    for c in clouds[1:]:
        missing = [n for n in c.attributes if n not in header.point_format.dimension_names]
        if missing:
            raise InputError(f"cannot concatenate: dimensions {missing} are not in the first "
                             "cloud's point format")
    arrays = [c.to_record(header).array for c in clouds]
    return PointCloud(header=header, points=laspy.ScaleAwarePointRecord(
        np.concatenate(arrays), header.point_format, header.scales, header.offsets))
