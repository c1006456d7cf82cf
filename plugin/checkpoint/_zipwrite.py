"""A minimal zip writer for torch.save archives: stored records, 64-byte aligned, large writes.

torch's own writer (miniz) checksums with a byte-at-a-time CRC32 and copies each record
through its own buffer, which makes it several times slower than the disk. This writer
produces the same archive (stored, i.e. uncompressed, records under one folder; each
record's data starting at a multiple of 64 bytes, as ``torch.load(mmap=True)`` needs;
zip64 fields where a size or offset passes 4 GiB) but checksums with ``zlib.crc32``
(vectorised in current zlib) one cache-sized chunk at a time and writes each chunk
straight from the tensor's memory with ``os.write``. Each local header is written first
with a zero CRC, which is patched in once the record is written, so no
data descriptor is needed and every reader (Python's ``zipfile``, ``unzip``, miniz) checks
the CRCs.
"""
from __future__ import annotations

import os
import struct
import zlib
from typing import List, Tuple, Union

#: Record data starts at a multiple of this, as torch's writer aligns it.
ALIGNMENT = 64
#: Bytes checksummed and written per step: large enough for few system calls, small enough
#: that the bytes are still in the CPU cache when ``os.write`` copies them.
CHUNK = 1 << 20

_ZIP64_LIMIT = 0xFFFFFFFF
_UTF8_FLAG = 0x800
_PADDING_TAG = 0x4246  # "FB": the extra field torch's writer pads with


def open_for_writing(path: str) -> int:
    """A descriptor writing ``path`` from its start, the file created or emptied.

    The atomic writers hand over a temporary file that exists and is empty; opening it with
    ``O_TRUNC`` would truncate it all the same, and on ext4 (``auto_da_alloc``) a file
    truncated to zero is flushed to disk when closed, which makes ``close`` wait for the
    whole file to be submitted for writing (a quarter of a second per GiB). So the file is
    truncated only when it has bytes to lose.
    """
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)
    try:
        if os.fstat(descriptor).st_size:
            os.ftruncate(descriptor, 0)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


class ZipWriter:
    """Write stored records to ``path`` (created or emptied) under ``folder/``.

    ``force_zip64`` writes zip64 fields for every record (as a file over 4 GiB needs them),
    so that layout can be checked on small files.
    """

    def __init__(self, path: str, folder: str = "archive", force_zip64: bool = False):
        self.folder = folder
        self.force_zip64 = force_zip64
        self._fd = open_for_writing(path)
        self._offset = 0
        self._central: List[Tuple[bytes, int, int, int]] = []  # (name, crc, size, header offset)
        self._closed = False

    def __enter__(self) -> "ZipWriter":
        return self

    def __exit__(self, kind, *_exc) -> None:
        if kind is None:
            self.close()
        else:
            os.close(self._fd)
            self._closed = True

    def write_record(self, name: str, data: Union[bytes, bytearray, memoryview]) -> None:
        """Add record ``folder/name`` holding ``data`` (any C-contiguous buffer, not copied)."""
        view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
        size = view.nbytes
        encoded = f"{self.folder}/{name}".encode("utf-8")
        header_offset = self._offset
        zip64 = self.force_zip64 or size >= _ZIP64_LIMIT
        extra = struct.pack("<HHQQ", 1, 16, size, size) if zip64 else b""
        before_padding = header_offset + 30 + len(encoded) + len(extra) + 4
        padding = -before_padding % ALIGNMENT
        extra += struct.pack("<HH", _PADDING_TAG, padding) + b"Z" * padding
        stored = _ZIP64_LIMIT if zip64 else size
        header = struct.pack("<IHHHHHIIIHH", 0x04034B50, 45 if zip64 else 20, _UTF8_FLAG, 0, 0, 0x21,
                             0, stored, stored, len(encoded), len(extra)) + encoded + extra
        self._write(memoryview(header))
        crc = 0
        for start in range(0, size, CHUNK):
            chunk = view[start:start + CHUNK]
            crc = zlib.crc32(chunk, crc)
            self._write(chunk)
        _write_at(self._fd, struct.pack("<I", crc), header_offset + 14)
        self._central.append((encoded, crc, size, header_offset))

    def close(self) -> None:
        """Write the central directory (zip64 end records where needed) and close the file."""
        if self._closed:
            return
        start = self._offset
        for encoded, crc, size, header_offset in self._central:
            big_size = self.force_zip64 or size >= _ZIP64_LIMIT
            big_offset = self.force_zip64 or header_offset >= _ZIP64_LIMIT
            fields = ([size, size] if big_size else []) + ([header_offset] if big_offset else [])
            extra = struct.pack(f"<HH{len(fields)}Q", 1, 8 * len(fields), *fields) if fields else b""
            version = 45 if fields else 20
            self._write(memoryview(struct.pack(
                "<IHHHHHHIIIHHHHHII", 0x02014B50, version, version, _UTF8_FLAG, 0, 0, 0x21, crc,
                _ZIP64_LIMIT if big_size else size, _ZIP64_LIMIT if big_size else size, len(encoded), len(extra),
                0, 0, 0, 0, _ZIP64_LIMIT if big_offset else header_offset) + encoded + extra))
        end = self._offset
        count, length = len(self._central), end - start
        if self.force_zip64 or count >= 0xFFFF or start >= _ZIP64_LIMIT or length >= _ZIP64_LIMIT:
            self._write(memoryview(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count,
                                               length, start)))
            self._write(memoryview(struct.pack("<IIQI", 0x07064B50, 0, end, 1)))
            self._write(memoryview(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, _ZIP64_LIMIT,
                                               _ZIP64_LIMIT, 0)))
        else:
            self._write(memoryview(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, length, start, 0)))
        os.close(self._fd)
        self._closed = True

    def _write(self, view: memoryview) -> None:
        write_all(self._fd, view)
        self._offset += view.nbytes


def _write_at(descriptor: int, data: bytes, offset: int) -> None:
    """Overwrite bytes at ``offset``, leaving the file position where it was."""
    if hasattr(os, "pwrite"):
        os.pwrite(descriptor, data, offset)
        return
    position = os.lseek(descriptor, 0, os.SEEK_CUR)  # Windows has no pwrite
    os.lseek(descriptor, offset, os.SEEK_SET)
    os.write(descriptor, data)
    os.lseek(descriptor, position, os.SEEK_SET)


def write_all(descriptor: int, view: memoryview) -> None:
    """Write all of ``view`` (bytes) to ``descriptor``, ``CHUNK`` bytes per system call."""
    for start in range(0, view.nbytes, CHUNK):
        chunk = view[start:start + CHUNK]
        while chunk.nbytes:
            chunk = chunk[os.write(descriptor, chunk):]
