"""The physical floor of a verified analysis, in one thread: the C work no implementation of the design can
skip, timed without any tar parsing, tables or threads.

    python benchmarks/_floor.py gzip BLOB...      # read, sha256 (blob), inflate (ISA-L), sha256 (diff_id),
                                                  # sha256 again (file contents: nearly the same bytes)
    python benchmarks/_floor.py zstd BLOB...      # the same with zstd
    python benchmarks/_floor.py tar DOCKER_TAR    # each layer tar of a docker-archive: read, sha256 (blob =
                                                  # diff_id), sha256 again (file contents)

Prints one JSON line with ``cpu`` (user + sys seconds of this process after its imports) and ``bytes``
(uncompressed). ``run.py`` divides the CPU by the machine's cores for the best wall time threads can give.
"""

from __future__ import annotations

import hashlib
import json
import resource
import sys
import tarfile

import zstandard
from isal import isal_zlib

CHUNK = 1 << 20


def cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def hashed_twice(chunks) -> int:
    """sha256 over the stream (diff_id) and again as file contents would be: the bytes they cover."""
    diff, content, n = hashlib.sha256(), hashlib.sha256(), 0
    for out in chunks:
        diff.update(out)
        content.update(out)
        n += len(out)
    return n


def blob_chunks(path: str):
    blob = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(CHUNK):
            blob.update(data)
            yield data


def gunzip(path: str):
    d = isal_zlib.decompressobj(31)
    for data in blob_chunks(path):
        out = d.decompress(data, CHUNK)
        yield out
        while d.unconsumed_tail:
            yield d.decompress(d.unconsumed_tail, CHUNK)


def unzstd(path: str):
    d = zstandard.ZstdDecompressor().decompressobj()
    for data in blob_chunks(path):
        for i in range(0, len(data), 1 << 17):
            yield d.decompress(data[i : i + (1 << 17)])


def docker_layers(path: str):
    with tarfile.open(path) as tf:
        for m in tf:
            if m.isfile() and (m.name.endswith(".tar") or m.name.startswith("blobs/sha256/")) and m.size > 4096:
                f = tf.extractfile(m)
                assert f is not None

                def chunks(f=f):
                    while data := f.read(CHUNK):
                        yield data
                yield chunks()


def main() -> None:
    mode, args = sys.argv[1], sys.argv[2:]
    start = cpu()
    total = 0
    if mode in ("gzip", "zstd"):
        for path in args:
            total += hashed_twice(gunzip(path) if mode == "gzip" else unzstd(path))
    elif mode == "tar":
        for layer in docker_layers(args[0]):
            total += hashed_twice(layer)
    else:
        sys.exit(f"unknown mode {mode!r}")
    print(json.dumps({"cpu": cpu() - start, "bytes": total}))


if __name__ == "__main__":
    main()
