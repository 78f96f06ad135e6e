"""One ocilens measurement, run by ``run.py`` in a fresh interpreter (so imports and caches are honest).

    python benchmarks/_ours.py import
    python benchmarks/_ours.py analyse REF cache|nocache
    python benchmarks/_ours.py extract REF DIR

Prints one JSON line: the in-process phase times (``import``, ``load``, ``frames``, ``extract``) and what
was found (entries, events, files, layers), for the sanity checks and the per-entry cost.
"""

from __future__ import annotations

import json
import sys
import time

t0 = time.perf_counter()
import ocilens

t1 = time.perf_counter()
out: dict[str, object] = {"import": t1 - t0, "module": ocilens.__file__}
mode = sys.argv[1]
if mode in ("analyse", "extract"):
    ref = sys.argv[2]
    cache = mode == "analyse" and sys.argv[3] == "cache"
    img = ocilens.load(ref, cache=cache, progress=False)
    t2 = time.perf_counter()
    out["load"] = t2 - t1
    out["entries"] = sum(s.members for s in img.scans)
    if mode == "analyse":
        # content digests are computed during the scan; the three tables are what users look at
        events, files, layers = img.events, img.files, img.layers
        out["frames"] = time.perf_counter() - t2
        out.update(events=len(events), files=len(files), layers=len(layers))
    else:
        res = img.extract(sys.argv[3])
        out["extract"] = time.perf_counter() - t2
        out.update(files=res.files, dirs=res.dirs, layers=len(img.scans))
    img.close()
elif mode != "import":
    sys.exit(f"unknown mode {mode!r}")
print(json.dumps(out))
