"""The CRS of every GeoJSON pcgen writes (tile index, gap reports, masks), named one way.

RFC 7946 GeoJSON assumes WGS84, but LiDAR coordinates are projected, so pcgen names their CRS
in the 2008 ``crs`` member, ``{"type": "name", "properties": {"name": ...}}``, which GDAL and
QGIS still honour. The name is the OGC URN ``urn:ogc:def:crs:EPSG::n`` (the form the 2008
specification recommends) when the CRS says its EPSG code, else its WKT, which pyproj and
GDAL both read back. Reading accepts whatever pyproj does (``EPSG:n``, the URN, WKT), since
users' files hold either form.

:func:`store_crs` puts a CRS into a LAS header where laspy's ``add_crs`` alone gives up: a
compound CRS (horizontal + vertical, as EPT datasets state them) in a LAS 1.2/1.3 header.
"""

from __future__ import annotations

from pcgen.errors import InputError

EPSG_URN = "urn:ogc:def:crs:EPSG::"
_CRS_VLRS = ("WktCoordinateSystemVlr", "GeoKeyDirectoryVlr", "GeoAsciiParamsVlr", "GeoDoubleParamsVlr")
_VERTICAL_KEY = 4096  # GeoTIFF VerticalCSTypeGeoKey: an EPSG vertical CRS code


def store_crs(header, crs) -> None:
    """Store ``crs`` in a LAS header's VLRs, replacing any CRS there.

    laspy writes WKT for LAS 1.4 point formats 6-10 and GeoKeys otherwise; GeoKeys need one EPSG
    code, so a compound CRS fails there. Then a LAS 1.4 header takes the WKT (which keeps both
    parts), and an older one the horizontal EPSG code plus the vertical one as
    ``VerticalCSTypeGeoKey`` (the GeoTIFF way; laspy reads back the horizontal part).

    Raises:
        ValueError: a CRS an older header cannot hold (no EPSG code for its horizontal part).
    """
    try:
        header.add_crs(crs)
        return
    except Exception:  # noqa: BLE001 - laspy raises RuntimeError/pyproj errors for what GeoKeys lack
        pass
    if header.version.minor >= 4:
        header.add_crs(crs, keep_compatibility=False)
        return
    parts = crs.sub_crs_list if crs.is_compound else [crs]
    horizontal = parts[0].to_epsg()
    if horizontal is None:
        raise ValueError(f"LAS {header.version} stores a CRS as GeoKeys, which need an EPSG code; "
                         f"{crs.name!r} has none (LAS 1.4 stores any CRS)")
    header.add_crs(parts[0])
    vertical = parts[1].to_epsg() if len(parts) > 1 else None
    if vertical is not None:
        from laspy.vlrs.known import GeoKeyEntryStruct

        keys = header.vlrs.get("GeoKeyDirectoryVlr")[0]
        keys.geo_keys.append(GeoKeyEntryStruct(_VERTICAL_KEY, 0, 1, vertical))
        keys.geo_keys_header.number_of_keys = len(keys.geo_keys)


def clear_crs(header) -> None:
    """Remove every CRS VLR of a LAS header."""
    for name in _CRS_VLRS:
        while header.vlrs.get(name):
            header.vlrs.extract(name)
    header.global_encoding.wkt = False


def _epsg_code(projjson: dict) -> int | None:
    """The EPSG code a PROJJSON object states for itself (``id`` or one of ``ids``), if any."""
    for ident in [projjson.get("id") or {}, *(projjson.get("ids") or [])]:
        if str(ident.get("authority", "")).upper() == "EPSG" and ident.get("code"):
            return ident["code"]
    return None


def crs_name(crs) -> str | None:
    """The name of a CRS for a GeoJSON ``crs`` member.

    Identifying a WKT CRS against the EPSG database can take a third of a second, too slow
    for tiling thousands of files, so the code comes from the CRS's own identifier (for a
    compound CRS, its parts' identifiers: ``urn:ogc:def:crs,crs:EPSG::h,crs:EPSG::v``); only a
    short definition such as a PROJ string is identified, and only on an exact match.

    Args:
        crs: a ``pyproj.CRS`` or None.
    Returns:
        ``"urn:ogc:def:crs:EPSG::n"`` (or the compound URN), else the CRS's WKT, or None for
        no CRS.
    """
    if crs is None:
        return None
    doc = crs.to_json_dict()
    epsg = _epsg_code(doc)
    parts = [_epsg_code(c) for c in doc.get("components") or []]
    if epsg is None and parts and all(parts):
        return "urn:ogc:def:crs," + ",".join(f"crs:EPSG::{c}" for c in parts)
    if epsg is None and len(crs.srs) < 64:
        epsg = crs.to_epsg(min_confidence=100)
    return f"{EPSG_URN}{epsg}" if epsg else crs.to_wkt()


def crs_label(name: str | None) -> str:
    """A short label for a name :func:`crs_name` made (axis labels, titles): ``EPSG:n``, the
    WKT's own name, or ``no CRS``."""
    if not name:
        return "no CRS"
    if name.startswith("urn:ogc:def:crs"):
        return name.replace(EPSG_URN, "EPSG:").replace("urn:ogc:def:crs,", "") \
            .replace("crs:EPSG::", "EPSG:")
    first = name.split('"')
    return first[1] if len(first) > 2 else name[:40]


UNIT_SYMBOLS = {"metre": "m", "foot": "ft", "US survey foot": "US ft"}


def unit_symbol(crs) -> str:
    """The symbol of a CRS's horizontal unit for tables of distances: ``m``, ``ft``, ``US ft``,
    else pyproj's unit name; ``m`` without a CRS (pcgen's distances are in CRS units)."""
    unit = crs.axis_info[0].unit_name if crs is not None and crs.axis_info else "metre"
    return UNIT_SYMBOLS.get(unit, unit)


def crs_member(crs) -> dict | None:
    """The GeoJSON 2008 ``crs`` member naming ``crs``, or None when there is no CRS to name.

    Args:
        crs: a ``pyproj.CRS``, a name :func:`crs_name` made, or None.
    """
    name = crs if isinstance(crs, str) or crs is None else crs_name(crs)
    return {"type": "name", "properties": {"name": name}} if name else None


def read_crs_member(doc: dict, path=None):
    """The ``pyproj.CRS`` a GeoJSON document's ``crs`` member names, or None without one.

    Args:
        doc: the parsed GeoJSON object.
        path: the file, named in errors.
    Raises:
        InputError: the member is not an object with a ``properties`` object, or names a CRS
            pyproj does not know.
    """
    crs = doc.get("crs")
    if crs is not None and not (isinstance(crs, dict) and isinstance(crs.get("properties", {}), dict)):
        raise InputError('the "crs" member must be an object like {"type": "name", "properties": '
                         f'{{"name": "EPSG:2949"}}}}, got {str(crs)[:60]!r}', path)
    name = (crs or {}).get("properties", {}).get("name")
    if not name:
        return None
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        return CRS.from_user_input(name)
    except CRSError:
        raise InputError(f"unknown CRS {name!r}", path) from None
