"""Decode several small LAZ files in one parallel lazrs call.

An EPT dataset stores its octree as hundreds of LAZ files of one or two chunks each. laspy
decodes the chunks of one file in parallel, but a file of one chunk decodes on one core, and
lazrs holds the GIL while it does, so threads decoding one node each still use one core.
LAZ chunks are independent, so the chunks of files that share one LAZ VLR can go to lazrs as
one stream with one chunk table, and every core decodes: the same bytes as laspy reading each
file (tested). No library does this for many files; `pcgen.data.tile_writer` does the same
for writing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import laspy
import lazrs
import numpy as np


@dataclass
class LazFile:
    """One LAZ file, split into what a batch decode needs.

    Attributes:
        header: the file's header (``point_count`` is the truth the chunk table is cut to).
        vlr: record data of its ``laszip encoded`` VLR.
        chunks: the compressed chunks, back to back.
        table: ``(points, bytes)`` per chunk.
    """

    header: laspy.LasHeader
    vlr: bytes
    chunks: bytes
    table: list[tuple[int, int]]


def parse_laz(data: bytes) -> LazFile:
    """Split the bytes of a LAZ file. Raises what laspy or lazrs raise on a corrupt file."""
    header = laspy.LasHeader.read_from(io.BytesIO(data))
    zips = header.vlrs.extract("LasZipVlr")  # as laspy's reader does: the coder's, not the data's
    if not header.are_points_compressed or not zips:
        raise ValueError("not a LAZ file")
    vlr = zips[0].record_data_bytes()
    stream = io.BytesIO(data)
    stream.seek(header.offset_to_point_data)
    table = [(int(n), int(b)) for n, b in lazrs.read_chunk_table(stream, lazrs.LazVlr(vlr))]
    if not table:
        raise ValueError("no chunk table")
    # a fixed-size chunk table lists the full chunk size for the last, shorter chunk too
    last = int(header.point_count) - sum(n for n, _ in table[:-1])
    if not 0 < last <= table[-1][0]:
        raise ValueError(f"{header.point_count} points do not fit its {len(table)} chunks")
    table[-1] = (last, table[-1][1])
    start = header.offset_to_point_data + 8  # the chunk table's offset comes first
    size = sum(b for _, b in table)
    if start + size > len(data):
        raise ValueError("truncated point data")
    return LazFile(header=header, vlr=vlr, chunks=data[start:start + size], table=table)


def decode_many(files: list[LazFile]) -> list[np.ndarray]:
    """The points of each file (structured arrays in its point format's dtype), decoded together.

    All files must share one LAZ VLR (point format and items); a caller groups them so.
    """
    if not files:
        return []
    vlr = files[0].vlr
    if any(f.vlr != vlr for f in files):
        raise ValueError("the files do not share one LAZ VLR")
    dtype = files[0].header.point_format.dtype()
    counts = [sum(n for n, _ in f.table) for f in files]
    out = bytearray(sum(counts) * dtype.itemsize)
    lazrs.decompress_points_with_chunk_table(b"".join(f.chunks for f in files), vlr, out,
                                             [c for f in files for c in f.table])
    points = np.frombuffer(out, dtype=dtype)
    ends = np.cumsum(counts)
    return np.split(points, ends[:-1])
