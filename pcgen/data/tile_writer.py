"""Write one file's tiles as LAS/LAZ with the header serialized once, not once per tile.

laspy's `LasWriter` is built for one large file: per file it deep-copies the header, writes the
header and every VLR, then seeks back and writes them again with the final counts and bounds.
Tiles hold a few thousand points each, and that fixed cost (about 2 ms of CPU per tile)
rivalled compressing the tile's points.
`TileWriter` asks laspy to serialize the tile header once per input file and, per tile, patches
only what laspy's writer would change: point counts, points by return, bounds, the extra-bytes
statistics and the EVLR pointer. Points go through lazrs' coder exactly as laspy drives it, so
every tile is byte for byte what `pcgen.io.las.write_las_records` writes
(tests/data/test_tiling_bytes.py holds both to that).

A LAZ tile is a run of independently coded chunks of 50 000 points (the last one shorter), so
`TileWriter.write_many` hands a batch of tiles to lazrs' parallel coder as the chunks of one
stream (coded on every core) and cuts each tile's chunks back out, adding the tile's own
header, chunk-table pointer and chunk table: the same bytes as coding each tile alone, without
one coder per tile on one core.
"""

from __future__ import annotations

import copy
import io
import struct
from pathlib import Path
from typing import Sequence

import laspy
import numpy as np

try:
    import lazrs
except ImportError:  # laspy falls back to another LAZ backend; so does this writer
    lazrs = None

from pcgen.io.las import write_las_records

# offsets in the LAS public header block (LAS 1.4 R15, table 3): legacy point count (then 5
# counts by return), bounds, start of the first EVLR (then the EVLR count), point count (then
# 15 counts by return)
_LEGACY_COUNT, _BOUNDS, _EVLR_START, _COUNT = 107, 179, 235, 247
_VLR_HEADER = 54
# lazrs' parallel coder only pays off over several 50 000-point LAZ chunks
PARALLEL_FROM = 150_000


class TileWriter:
    """Writes tiles that share one header (one input file's), each an independent LAS/LAZ.

    Args:
        header: the tiles' header (point format, scales, offsets, VLRs, EVLRs).
        compress: LAZ (True) or LAS.
    """

    def __init__(self, header: laspy.LasHeader, compress: bool):
        self.source_header, self.compress = header, compress
        # LAS 1.5 headers also carry GPS-time bounds; those files take laspy's writer
        self.fast = (not compress or lazrs is not None) and header.version.minor <= 4
        if not self.fast:
            return
        # the header laspy's writer would build: no old LasZip VLR, counts and bounds reset
        h = copy.deepcopy(header)
        try:
            h.vlrs.pop(h.vlrs.index("LasZipVlr"))
        except ValueError:
            pass
        h.partial_reset()
        h.are_points_compressed = compress
        self.fmt = h.point_format
        if compress:
            self.laz_vlr = lazrs.LazVlr.new_for_compression(self.fmt.id,
                                                            self.fmt.num_extra_bytes)
            # the batch stream's chunks hold one tile each, so its chunk table records counts
            self.batch_vlr = lazrs.LazVlr.new_for_compression(self.fmt.id, self.fmt.num_extra_bytes, True)
            h.vlrs.append(laspy.vlrs.known.LasZipVlr(self.laz_vlr.record_data()))
        buf = io.BytesIO()
        h.write_to(buf)
        self.template = bytearray(buf.getvalue())
        self.minor = h.version.minor
        self.scales, self.offsets = h.scales, h.offsets
        self.eb_vlr, self.eb_at = self._tracked_extra_bytes(h)
        self.evlrs = b""
        if h.evlrs is not None and len(h.evlrs) and self.minor >= 4:
            buf = io.BytesIO()
            h.evlrs.write_to(buf, as_extended=True)
            self.evlrs = buf.getvalue()
        self.n_evlrs = len(h.evlrs) if self.evlrs else 0

    def _tracked_extra_bytes(self, h: laspy.LasHeader):
        """The extra-bytes VLR whose min/max laspy updates per file, and where its record data
        sits in the template; (None, 0) when no extra dimension keeps statistics."""
        found = h.vlrs.get("ExtraBytesVlr")
        if not found or not any(s.data_type != 0 and (s.min_is_relevant() or s.max_is_relevant())
                                for s in found[0].extra_bytes_structs):
            return None, 0
        at = int.from_bytes(self.template[94:96], "little")
        for vlr in h.vlrs:
            if vlr is found[0]:
                return vlr, at + _VLR_HEADER
            at += _VLR_HEADER + len(vlr.record_data_bytes())
        return None, 0

    def header_bytes(self, rows: np.ndarray) -> bytearray:
        """The template with the counts, bounds and statistics of ``rows`` (non-empty), as
        `laspy.LasHeader.grow` computes them."""
        out = bytearray(self.template)
        s, o = self.scales, self.offsets
        bounds = []
        for a, name in enumerate("XYZ"):
            v = rows[name]
            bounds += [v.max() * s[a] + o[a], v.min() * s[a] + o[a]]
        struct.pack_into("<6d", out, _BOUNDS, *bounds)
        record = laspy.PackedPointRecord(rows, self.fmt)
        by_return = np.bincount(np.asarray(record.return_number), minlength=16)[1:16]
        n = len(rows)
        if self.minor >= 4:
            struct.pack_into("<Q15Q", out, _COUNT, n, *by_return.tolist())
        else:
            struct.pack_into("<I5I", out, _LEGACY_COUNT, n, *by_return[:5].tolist())
        if self.eb_vlr is not None:
            self.eb_vlr.partial_reset()
            self.eb_vlr.grow(record)
            data = self.eb_vlr.record_data_bytes()
            out[self.eb_at:self.eb_at + len(data)] = data
        return out

    def write(self, path: Path, rows: np.ndarray) -> None:
        """Write ``rows`` (records in the header's point format) to ``path``; not atomic by
        itself (tiles are written into the run's temporary folder)."""
        if not self.fast or len(rows) == 0:
            small = lazrs is not None and len(rows) < PARALLEL_FROM
            backend = laspy.LazBackend.Lazrs if small else None
            write_las_records(path, self.source_header,
                              [laspy.PackedPointRecord(rows, self.source_header.point_format)],
                              compress=self.compress, laz_backend=backend)
            return
        head = self.header_bytes(rows)
        buf = io.BytesIO()
        buf.write(head)
        if self.compress:
            coder = (lazrs.ParLasZipCompressor if len(rows) >= PARALLEL_FROM
                     else lazrs.LasZipCompressor)(buf, self.laz_vlr)
            coder.compress_many(np.ascontiguousarray(rows).view(np.uint8))
            coder.done()
        else:
            buf.write(memoryview(np.ascontiguousarray(rows)).cast("B"))
        self._finish(path, buf)

    def write_many(self, tiles: Sequence[tuple[Path, np.ndarray]]) -> None:
        """Write each ``(path, rows)`` as :meth:`write` would, every tile's LAZ chunks coded
        together by lazrs' parallel coder."""
        chunk = self.laz_vlr.chunk_size() if self.fast and self.compress else 0
        batch = [(p, r) for p, r in tiles if chunk and len(r) > 0]
        if sum(-(-len(r) // chunk) for _, r in batch) < 2:
            batch = []
        in_batch = {id(r) for _, r in batch}
        for path, rows in tiles:
            if id(rows) not in in_batch:
                self.write(path, rows)
        if not batch:
            return
        # a tile of n points is the chunks [0, C), [C, 2C)... that one coder would make of it
        pieces = [np.ascontiguousarray(r[s:s + chunk]).view(np.uint8)
                  for _, r in batch for s in range(0, len(r), chunk)]
        stream = io.BytesIO()
        coder = lazrs.ParLasZipCompressor(stream, self.batch_vlr)
        coder.compress_chunks(pieces)
        coder.done()
        stream.seek(0)
        table = lazrs.read_chunk_table(stream, self.batch_vlr)
        data, at, k = stream.getbuffer(), 8, 0  # the stream opens with its chunk-table pointer
        for path, rows in batch:
            n_chunks = -(-len(rows) // chunk)
            own = table[k:k + n_chunks]
            k += n_chunks
            if sum(count for count, _ in own) != len(rows):
                raise RuntimeError(f"lazrs coded {sum(c for c, _ in own)} points for a tile of "
                                   f"{len(rows)}")
            size = sum(s for _, s in own)
            buf = io.BytesIO()
            head = self.header_bytes(rows)
            buf.write(head)
            buf.write(struct.pack("<q", len(head) + 8 + size))
            buf.write(data[at:at + size])
            lazrs.write_chunk_table(buf, own, self.laz_vlr)
            at += size
            self._finish(path, buf)
        del data

    def _finish(self, path: Path, buf: io.BytesIO) -> None:
        """Append the EVLRs to a tile's bytes (pointing the header at them) and write the file."""
        if self.evlrs:
            end = buf.tell()
            buf.write(self.evlrs)
            view = buf.getbuffer()
            struct.pack_into("<QI", view, _EVLR_START, end, self.n_evlrs)
            del view
        with open(path, "wb") as fh:
            fh.write(buf.getbuffer())
