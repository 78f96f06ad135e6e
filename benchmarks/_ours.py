"""One ocilens measurement, run by ``run.py`` in a fresh interpreter (so imports and caches are honest).

    python benchmarks/_ours.py import
    python benchmarks/_ours.py analyse REF cache|nocache [notebook]
    python benchmarks/_ours.py extract REF DIR
    python benchmarks/_ours.py audit REF WORKERS

Prints one JSON line: the in-process phase times (``import``, ``load``, ``frames``, ``extract``) and what
was found (entries, events, files, layers), for the sanity checks and the per-entry cost. ``notebook``
imports pandas before the clock starts, as a Jupyter session already has it. ``audit`` does
what ``ocilens audit REF --workers WORKERS`` does (a local process pool, the scan cache on, no fleet-wide
events table) and prints ``audit`` (the whole call), its own phase timings (``t_enumerate``,
``t_resolve``, ``t_scan``, ``t_assemble``) and the counts (``images``, ``audited``, ``distinct_layers``,
``scanned_layers``, ``cached_layers``, ``failed_layers``).
"""

from __future__ import annotations

import json
import sys
import time

if sys.argv[1:2] == ["analyse"] and sys.argv[4:5] == ["notebook"]:
    import pandas  # noqa: F401 - a notebook session has it already

t0 = time.perf_counter()
import ocilens

t1 = time.perf_counter()


def main() -> None:
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
    elif mode == "audit":
        fleet = ocilens.audit(sys.argv[2], executor="process", workers=int(sys.argv[3]), progress=False, cache=True,
                              events=False)
        images, layers = fleet.images, fleet.layers  # what the CLI prints from
        out.update(image_rows=len(images), layer_rows=len(layers))
        out["audit"] = time.perf_counter() - t1
        out.update({f"t_{k}": v for k, v in fleet.timings.items()})
        summary = fleet.summary()
        out.update({k: summary[k] for k in ("images", "audited", "distinct_layers", "scanned_layers", "cached_layers",
                                            "failed_layers")})
    elif mode != "import":
        sys.exit(f"unknown mode {mode!r}")
    print(json.dumps(out))


# the guard: the process pool of ``audit`` spawns workers that import this file as ``__mp_main__``
if __name__ == "__main__":
    main()
