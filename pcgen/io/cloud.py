"""`PointCloud`: one structure for every point format pcgen reads, lossless for LAS/LAZ.

A cloud read from LAS/LAZ keeps laspy's packed point record (the raw integer coordinates
and every byte of the point record). ``xyz`` and ``attributes`` are decoded from it on first
use; on write only what changed is packed back, so unchanged points leave bit-exact. Clouds
from PLY/PCD/XYZ (or built by hand) have no record and are packed against a header on write.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, MutableMapping
from typing import Sequence

import laspy
import numpy as np

from pcgen.errors import InputError, OutputError

_COORD_FIELDS = ("X", "Y", "Z")


def _to_array(value) -> np.ndarray:
    """Materialize a laspy view (sub-field or scaled extra bytes) as a plain numpy array."""
    if isinstance(value, np.ndarray):
        return value
    return np.array(value)


class PointAttributes(MutableMapping):
    """Per-point attributes by laspy dimension name, decoded lazily from a packed record.

    Behaves like ``dict[str, np.ndarray]``. Values taken from the record are views where
    laspy gives views (whole fields) and copies for bit sub-fields and scaled extra bytes;
    copies that the caller edits in place are still written back (compared on pack).
    """

    def __init__(self, record: laspy.PackedPointRecord | None = None, n: int | None = None):
        self._record = record
        self._n = len(record) if record is not None else n
        self._cache: dict[str, np.ndarray] = {}
        self._set: set[str] = set()  # names assigned by the caller (always packed)
        self._deleted: set[str] = set()

    def _record_names(self) -> list[str]:
        if self._record is None:
            return []
        return [n for n in self._record.point_format.dimension_names if n not in _COORD_FIELDS]

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self._cache:
            return self._cache[name]
        if name in self._deleted or self._record is None or name not in self._record_names():
            raise KeyError(name)
        value = _to_array(self._record[name])
        self._cache[name] = value
        return value

    def __setitem__(self, name: str, value) -> None:
        value = np.asarray(value)
        if self._n is None:
            self._n = len(value)
        if value.ndim == 0 or len(value) != self._n:
            raise ValueError(f"attribute {name!r} has {value.shape[0] if value.ndim else 0} "
                             f"values for {self._n} points")
        self._cache[name] = value
        self._set.add(name)
        self._deleted.discard(name)

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._cache.pop(name, None)
        self._set.discard(name)
        self._deleted.add(name)

    def __iter__(self) -> Iterator[str]:
        seen = set()
        for name in self._record_names():
            if name not in self._deleted:
                seen.add(name)
                yield name
        for name in list(self._cache):
            if name not in seen:
                yield name

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, name) -> bool:
        if name in self._cache:
            return True
        return name not in self._deleted and name in self._record_names()

    def __repr__(self) -> str:
        return f"PointAttributes({list(self)})"

    def _select(self, index, record, n: int) -> "PointAttributes":
        """The same attributes for the points at ``index`` (``record`` already selected)."""
        out = PointAttributes(record, n=n)
        out._cache = {name: value[index] for name, value in self._cache.items()}
        out._set = set(self._set)
        out._deleted = set(self._deleted)
        return out


class PointCloud:
    """Points with float64 real-world ``xyz`` (N, 3), named ``attributes`` and a laspy ``header``.

    Args:
        xyz: (N, 3) real-world coordinates; omit when ``record`` is given.
        attributes: name -> (N,) or (N, k) array, laspy dimension names (``intensity``,
            ``classification``, ``gps_time``, ``red``, extra-bytes names, ...).
        header: ``laspy.LasHeader`` with scales, offsets, CRS, VLRs/EVLRs; None for clouds that
            never came from LAS (one is made on LAS write).
        record: laspy packed point record in ``header``'s scales/offsets (internal, lossless path).
    """

    def __init__(self, xyz=None, attributes=None, header: laspy.LasHeader | None = None, *,
                 record: laspy.PackedPointRecord | None = None, crs=None):
        self.header = header
        self._record = record
        self._crs = crs
        self._crs_parsed = crs is not None
        if record is not None:
            if header is None:
                raise ValueError("a packed record needs its header")
            self._record_scales = np.array(header.scales, dtype=np.float64)
            self._record_offsets = np.array(header.offsets, dtype=np.float64)
            self._n = len(record)
            self._xyz = None
            self._xyz_set = False
            self.attributes = PointAttributes(record)
        else:
            if xyz is None:
                raise ValueError("PointCloud needs xyz or a record")
            xyz = np.asarray(xyz, dtype=np.float64)
            if xyz.ndim != 2 or xyz.shape[1] != 3:
                raise ValueError(f"xyz must be (N, 3), got {xyz.shape}")
            self._n = len(xyz)
            self._xyz = xyz
            self._xyz_set = True
            self.attributes = PointAttributes(None, n=self._n)
        for name, value in (attributes or {}).items():
            self.attributes[name] = value

    # -- coordinates ---------------------------------------------------------------------------
    @property
    def xyz(self) -> np.ndarray:
        """(N, 3) float64 real-world coordinates (raw integers × scale + offset for LAS)."""
        if self._xyz is None:
            arr = self._record.array
            xyz = np.empty((self._n, 3), dtype=np.float64)
            for i, f in enumerate(_COORD_FIELDS):
                np.multiply(arr[f], self._record_scales[i], out=xyz[:, i])
                xyz[:, i] += self._record_offsets[i]
            self._xyz = xyz
        return self._xyz

    @xyz.setter
    def xyz(self, value) -> None:
        value = np.asarray(value, dtype=np.float64)
        if value.shape != (self._n, 3):
            raise ValueError(f"xyz must be ({self._n}, 3), got {value.shape}")
        self._xyz = value
        self._xyz_set = True

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
        self._crs = value
        self._crs_parsed = True
        if self.header is not None and value is not None:
            self.header = copy.deepcopy(self.header)
            self.header.add_crs(value)

    # -- selection and extension ---------------------------------------------------------------
    def select(self, index) -> "PointCloud":
        """A new cloud holding the points at ``index`` (int array, slice or boolean mask)."""
        if isinstance(index, np.ndarray) and index.dtype == bool and len(index) != self._n:
            raise ValueError(f"mask has {len(index)} entries for {self._n} points")
        record = None
        if self._record is not None:
            record = laspy.PackedPointRecord(self._record.array[index], self._record.point_format)
        out = PointCloud.__new__(PointCloud)
        out.header = self.header
        out._record = record
        out._crs, out._crs_parsed = self._crs, self._crs_parsed
        if record is not None:
            out._record_scales, out._record_offsets = self._record_scales, self._record_offsets
        out._xyz = None if self._xyz is None else self._xyz[index]
        out._xyz_set = self._xyz_set
        out._n = len(record) if record is not None else len(out._xyz)
        out.attributes = self.attributes._select(index, record, out._n)
        return out

    def add_extra_dimension(self, name: str, dtype, values, description: str = "") -> None:
        """Add a per-point dimension, stored as a LAS extra-bytes dimension on write.

        Args:
            name: dimension name (must not exist yet).
            dtype: numpy dtype of the stored values, e.g. ``"u4"``, ``np.float32``.
            values: (N,) values.
            description: short text kept in the extra-bytes VLR (max 32 chars).
        """
        if name in self.attributes or name.lower() in ("x", "y", "z"):
            raise ValueError(f"dimension {name!r} already exists")
        values = np.asarray(values).astype(dtype, copy=False)
        if values.shape[:1] != (self._n,):
            raise ValueError(f"{name!r} has {values.shape[:1]} values for {self._n} points")
        if self._record is not None:
            header = copy.deepcopy(self.header)
            header.add_extra_dims([laspy.ExtraBytesParams(name=name, type=np.dtype(dtype),
                                                          description=description[:31])])
            new = np.zeros(self._n, dtype=header.point_format.dtype())
            for field in self._record.array.dtype.names:
                new[field] = self._record.array[field]
            self.header = header
            self._record = laspy.PackedPointRecord(new, header.point_format)
            self.attributes._record = self._record
            self.attributes[name] = values
            self.attributes._set.discard(name)
            self._record.array[name] = values
        else:
            self.attributes[name] = values
            self._extra_descriptions = {**getattr(self, "_extra_descriptions", {}), name: description}

    # -- packing -------------------------------------------------------------------------------
    def to_record(self, header: laspy.LasHeader | None = None) -> laspy.PackedPointRecord:
        """Pack the cloud into a laspy record in ``header``'s point format, scales and offsets.

        Unchanged LAS points are returned byte-for-byte; edited attributes and moved points are
        packed (coordinates rounded to the header's scale grid).

        Raises:
            OutputError: a coordinate does not fit the header's 32-bit integer grid.
        """
        header = header or self.header
        if header is None:
            raise ValueError("to_record needs a header")
        fmt = header.point_format
        rec = self._record
        same_layout = rec is not None and rec.array.dtype == fmt.dtype()
        if same_layout:
            out = rec.array
            copied = False
        else:
            out = np.zeros(self._n, dtype=fmt.dtype())
            copied = True
            if rec is not None:
                for field in out.dtype.names:
                    if field in rec.array.dtype.names:
                        out[field] = rec.array[field]
        scales = np.asarray(header.scales, dtype=np.float64)
        offsets = np.asarray(header.offsets, dtype=np.float64)
        same_grid = rec is not None and np.array_equal(scales, self._record_scales) and \
            np.array_equal(offsets, self._record_offsets)
        need_xyz = self._xyz_set or not same_grid or (rec is None)
        if not need_xyz and self._xyz is not None:
            # xyz was decoded and maybe edited in place: pack it back if it moved.
            need_xyz = not np.array_equal(self._xyz, self._decode_xyz())
        if need_xyz:
            ints = np.round((self.xyz - offsets) / scales)
            lo, hi = np.iinfo(np.int32).min, np.iinfo(np.int32).max
            if ints.size and (not np.isfinite(ints).all() or ints.min() < lo or ints.max() > hi):
                raise OutputError("coordinates do not fit the LAS integer grid "
                                  f"(scales {scales.tolist()}, offsets {offsets.tolist()})")
            if not copied:
                out = out.copy()
                copied = True
            for i, f in enumerate(_COORD_FIELDS):
                out[f] = ints[:, i]
        record = laspy.PackedPointRecord(out, fmt)
        names = set(fmt.dimension_names)
        attrs = self.attributes
        for name, value in attrs._cache.items():
            if name not in names:
                continue
            if rec is not None and name not in attrs._set:
                if np.may_share_memory(value, rec.array):
                    continue  # a view: in-place edits already live in the record
                if same_layout and np.array_equal(value, _to_array(rec[name])):
                    continue
            if not copied:
                out = out.copy()
                record = laspy.PackedPointRecord(out, fmt)
                copied = True
            record[name] = value
        if rec is not None:
            for name in attrs._deleted:
                if name in names and name in rec.array.dtype.names and same_layout:
                    if not copied:
                        out = out.copy()
                        record = laspy.PackedPointRecord(out, fmt)
                        copied = True
                    out[name] = 0
        return record

    def _decode_xyz(self) -> np.ndarray:
        arr = self._record.array
        return np.stack([arr[f] * self._record_scales[i] + self._record_offsets[i]
                         for i, f in enumerate(_COORD_FIELDS)], axis=1)


def parse_crs(header: laspy.LasHeader | None):
    """pyproj CRS of a LAS header, or None when absent, empty or unparseable."""
    if header is None:
        return None
    try:
        return header.parse_crs()
    except Exception:  # broken GeoKeys / empty WKT are common in the wild; treat as "no CRS"
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
    header = first.header
    for c in clouds[1:]:
        missing = [n for n in c.attributes if n not in header.point_format.dimension_names
                   and n not in first.attributes]
        if missing:
            raise InputError(f"cannot concatenate: dimensions {missing} are not in the first "
                             "cloud's point format")
    arrays = [c.to_record(header).array for c in clouds]
    record = laspy.PackedPointRecord(np.concatenate(arrays), header.point_format)
    return PointCloud(header=header, record=record)
