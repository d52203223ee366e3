"""The CRS of every GeoJSON pcgen writes (tile index, gap reports, masks), named one way.

RFC 7946 GeoJSON assumes WGS84, but LiDAR coordinates are projected, so pcgen names their CRS
in the 2008 ``crs`` member, ``{"type": "name", "properties": {"name": ...}}``, which GDAL and
QGIS still honour. The name is the OGC URN ``urn:ogc:def:crs:EPSG::n`` (the form the 2008
specification recommends) when the CRS says its EPSG code, else its WKT, which pyproj and
GDAL both read back. Reading accepts whatever pyproj does (``EPSG:n``, the URN, WKT), since
users' files hold either form.
"""

from __future__ import annotations

from pcgen.errors import InputError

EPSG_URN = "urn:ogc:def:crs:EPSG::"


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
