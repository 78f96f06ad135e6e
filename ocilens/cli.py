"""The command line: ``ocilens analyze [REF]``, ``ocilens extract REF DIR``, ``ocilens audit REF...``.

Exit codes: 0 success, 1 a check failed, 2 the image could not be read or analysed (the message says why).
``audit`` exits 0 when images were audited (failures of single images are listed, and are 1 with
``--fail-on-error``), 2 when none could be.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

from .errors import OcilensError, UsageError
from .units import human_bytes

__all__ = ["main"]


def _load(args: argparse.Namespace, ref: str | None = None):
    from .image import SAMPLE_REF, load

    ref = _with_source(args, ref or getattr(args, "ref", None) or SAMPLE_REF)
    return load(ref, platform=args.platform, cache=not args.no_cache, **_insecure(args, ref))


#: dive's ``--source`` values -> the transport that reads a bare name from there
_SOURCES = {"docker": "docker-daemon", "podman": "podman", "docker-archive": "docker-archive",
            "oci-archive": "oci-archive", "registry": "docker"}


def _with_source(args: argparse.Namespace, ref: str) -> str:
    """``ref`` read from dive's ``--source`` (``docker``: the local engine), when it names no transport itself."""
    source = getattr(args, "source", None)
    if not source:
        return ref
    transport = _SOURCES[source]
    prefix = "docker://" if transport == "docker" else f"{transport}:"
    return ref if ref.startswith(prefix) else prefix + ref


def _insecure(args: argparse.Namespace, ref: str) -> dict:
    """``insecure=True`` for a registry reference when ``--insecure`` was given (a local one ignores it)."""
    from .sources import options_for

    return options_for(ref, {"insecure": True}) if getattr(args, "insecure", False) else {}


def _refuse(path: str, reason: str, what: str = "a file in an existing directory") -> UsageError:
    """The error for an output that cannot be written: the path, why, and what to give instead."""
    return UsageError(f"cannot write {path}: {reason}", hint=f"name {what} you can write to")


def _nearest_existing(path: str) -> str:
    """``path`` itself or its closest ancestor that exists (what ``mkdir -p`` would create under)."""
    current = os.path.abspath(path)
    while not os.path.lexists(current) and os.path.dirname(current) != current:
        current = os.path.dirname(current)
    return current


def _check_output(path: str | None, *, directory: bool = False) -> None:
    """Refuse an output path that cannot be written, before the slow load: a missing or read-only parent,
    a directory where a file goes (or the reverse), a read-only file."""
    if not path:
        return
    if directory:
        base = _nearest_existing(path)
        if not os.path.isdir(base):
            raise _refuse(path, f"{base} is not a directory", "a directory (it is made if needed)")
    else:
        if os.path.isdir(path):
            raise _refuse(path, "it is a directory")
        base = os.path.dirname(os.path.abspath(path))
        if not os.path.lexists(base):
            raise _refuse(path, f"no such directory {os.path.dirname(path) or '.'}")
        if not os.path.isdir(base):
            raise _refuse(path, f"{os.path.dirname(path)} is not a directory")
        if os.path.exists(path):  # an existing file (or /dev/null) is opened, not created: its own rights count
            if not os.access(path, os.W_OK):
                raise _refuse(path, "permission denied")
            return
    if not os.access(base, os.W_OK | os.X_OK):
        raise _refuse(path, f"the directory {base} is not writable",
                      "a directory" if directory else "a file in a directory")


@contextmanager
def _writing(path: str) -> Iterator[None]:
    """Turn a failure while writing an output (disk full, permissions changed since the check) into an
    error naming the file, so the CLI exits 2 with a message, not 1 with a traceback."""
    try:
        yield
    except OSError as exc:
        raise _refuse(str(exc.filename or path), exc.strerror or str(exc)) from None


def cmd_platforms(args: argparse.Namespace) -> int:
    """List the platforms a reference offers (a multi-platform index), one per line."""
    from .image import SAMPLE_REF, platforms

    ref = args.ref or SAMPLE_REF
    for p in platforms(ref, **_insecure(args, ref)):
        print(p)
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    """Print a readable summary of an image; optionally write its tables as JSON."""
    from .export import image_summary, write_json

    if args.list_platforms:
        return cmd_platforms(args)

    _check_output(args.json)
    _check_output(args.html)
    img = _load(args)
    s = image_summary(img)
    out = sys.stdout
    print(f"image     {s['reference']}", file=out)
    print(f"platform  {s['platform'] or 'unknown'}", file=out)
    print(f"digest    {s['manifest_digest'] or '(no manifest: docker save archive)'}", file=out)
    print(f"image id  {s['image_id']}", file=out)
    print(f"size      {human_bytes(s['compressed_bytes'])} compressed, {human_bytes(s['uncompressed_bytes'])} "
          f"uncompressed, {s['files']:,} paths in the final tree", file=out)
    ev = s["events"]
    # Two vocabularies, never mixed in one table: the events (what each tar listed, as img.events has them)
    # on this line; the layers table counts changes, in the diff's words, as layer_diff and the explorer do.
    print("events    " + ", ".join(f"{ev.get(k, 0):,} {k}" for k in ("added", "overwritten", "whited_out"))
          + " (what the layer tars list: img.events)", file=out)
    from .report import layer_changes

    changes = layer_changes(img)
    meta = int(changes["metadata_only"].sum())
    print(f"changes   {int(changes['added'].sum()):,} added, {int(changes['modified'].sum()):,} modified"
          + (f" ({meta:,} metadata only)" if meta else "") + f", {int(changes['removed'].sum()):,} removed "
          f"(what the layers change: layer_diff)", file=out)
    print("", file=out)
    layers = img.layers
    print(f"{'#':>3} {'compressed':>11} {'size':>10} {'added':>7} {'modified':>8} {'removed':>7} {'wasted':>10}  "
          f"created_by", file=out)
    for row, ch in zip(layers.itertuples(index=False), changes.itertuples(index=False)):
        created_by = (row.created_by if isinstance(row.created_by, str) else "").replace("\n", " ")
        if len(created_by) > 60:
            created_by = created_by[:57] + "..."
        print(f"{row.layer:>3} {human_bytes(row.compressed_size):>11} {human_bytes(row.uncompressed_size):>10} "
              f"{ch.added:>7,} {ch.modified:>8,} {ch.removed:>7,} {human_bytes(row.wasted_bytes):>10}  "
              f"{created_by}", file=out)
    bloat = img.bloat()
    b = bloat.summary()
    print(f"\nefficiency {b['efficiency']:.1%}: {human_bytes(b['wasted_bytes'])} wasted of {human_bytes(b['shipped_bytes'])} "
          f"shipped, {human_bytes(b['wasted_download_bytes'])} of download (dive: {b['dive_efficiency']:.1%}, "
          f"{human_bytes(b['dive_wasted_bytes'])} wasted); duplicates {human_bytes(b['duplicate_bytes'])}, junk "
          f"{human_bytes(b['junk_bytes'])} still visible", file=out)
    _print_fixes(bloat.advice, out)
    if s["anomalies"]:
        print(f"\n{s['anomalies']} anomalies (unsafe or invalid entries): see --json or Image.anomalies",
              file=out)
        for r in img.anomalies.head(10).itertuples(index=False):
            print(f"  layer {r.layer}: {r.kind}: {r.path!r}", file=out)
    if args.json:
        with _writing(args.json):
            write_json(img, args.json)
        print(f"\nwrote {args.json}", file=out)
    if args.html:
        compare = _load(args, args.compare) if args.compare else None
        report = img.report(compare=compare)
        with _writing(args.html):
            report.to_html(args.html)
        print(f"wrote {args.html}", file=out)
    return 0


def _print_fixes(advice, out, top: int = 3) -> None:  # noqa: ANN001 - a DataFrame; pandas loads later
    """The ``top`` fixes, largest download saving first, each with what it saves and its one-line fix."""
    if advice.empty:
        print("\nnothing to fix: no waste, caches, build tools, duplicates or poorly compressed layers found",
              file=out)
        return
    total = int(advice["download_bytes_saved"].sum())
    print(f"\ntop fixes ({len(advice)} in all, saving {human_bytes(total)} of download; see --json or "
          f"bloat().advice):", file=out)
    for n, r in enumerate(advice.head(top).itertuples(index=False), start=1):
        print(f"{n:>3}. {human_bytes(int(r.download_bytes_saved))} of download, {human_bytes(int(r.bytes_saved))} "
              f"of files ({str(r.kind).replace('_', ' ')}): {r.fix}", file=out)


def cmd_extract(args: argparse.Namespace) -> int:
    """Extract the final rootfs into a new or empty directory."""
    img = _load(args)
    devices = False if args.no_devices else None
    result = img.extract(args.dir, strict=args.strict, devices=devices)
    print(f"extracted {img.reference} into {result.target}: {result.files} files, {result.dirs} dirs, "
          f"{result.symlinks} symlinks, {result.hardlinks} hardlinks, {result.devices} devices, "
          f"{result.fifos} fifos")
    for path, reason in result.skipped:
        print(f"  skipped {path!r}: {reason}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """CI gate: exit 0 when every rule passes, 1 when one fails, 2 when the image cannot be analysed."""
    import json

    from .gate import check, parse_rules, read_dive_ci

    rules: dict[str, float | str | None] = {}
    if args.lowest_efficiency is not None:
        rules["lowestEfficiency"] = args.lowest_efficiency
    if args.highest_wasted_bytes is not None:
        rules["highestWastedBytes"] = args.highest_wasted_bytes
    if args.highest_user_wasted_percent is not None:
        rules["highestUserWastedPercent"] = args.highest_user_wasted_percent
    if args.highest_download_savings is not None:
        rules["highestDownloadSavings"] = args.highest_download_savings
    ci_file = args.ci_config
    if ci_file is None and os.path.lexists(".dive-ci"):  # a dangling link or a directory is an error too
        ci_file = ".dive-ci"
    # Validate the thresholds, the .dive-ci (read once: its warnings print once) and the output before
    # the (slow) load, so a typo fails fast.
    parsed = parse_rules(rules)
    file_rules = read_dive_ci(ci_file) if ci_file else None
    _check_output(args.json)
    img = _load(args)
    result = check(img, parsed, numbers=args.numbers, dive_ci=file_rules)
    for r in result.rules:
        shown = "disabled" if r.threshold is None else f"{r.value:.4g} vs {r.threshold:.4g}"
        print(f"  {r.status.upper():4}  {r.name}: {shown}  ({r.source})")
    if any(r.name == "highestDownloadSavings" and r.status == "fail" for r in result.rules):
        _print_fixes(img.bloat().advice, sys.stdout)
    print(f"{'PASS' if result.passed else 'FAIL'}: {img.reference} ({args.numbers} numbers)")
    if args.json:
        with _writing(args.json), open(args.json, "w", encoding="utf-8") as f:
            json.dump(result.to_dict(), f, indent=1)
            f.write("\n")
    return 0 if result.passed else 1


def cmd_diff(args: argparse.Namespace) -> int:
    """Compare two images' final trees, shared layers, config and history."""
    import json

    from .export import frame_records

    _check_output(args.json)
    _check_output(args.csv)
    a = _load(args, args.a)
    b = _load(args, args.b)
    d = a.diff(b)
    s = d.summary()
    from .html import signed

    print(f"{a.reference} -> {b.reference}")
    print(f"files: {d.headline()}")
    if a.image_id == b.image_id and list(a.layers["diff_id"]) == list(b.layers["diff_id"]):
        same = list(a.layers["digest"]) == list(b.layers["digest"])
        print("identical: the same config and layer content (diff_ids); " + (
            "the same download" if same else f"their downloads differ: {s['shared_layers']} of {len(b.scans)} "
            f"layer blobs shared ({human_bytes(int(a.layers['compressed_size'].sum()))} against "
            f"{human_bytes(int(b.layers['compressed_size'].sum()))})"))
    top = d.files.reindex(d.files["size_delta"].abs().sort_values(ascending=False).index).head(args.top)
    for r in top.itertuples(index=False):
        print(f"  {r.change:9} {signed(int(r.size_delta)):>10}  {r.path}")
    from .packages.show import diff_lines

    for line in diff_lines(d.packages, args.top):
        print(line)
    for r in d.config.itertuples(index=False):
        print(f"  config {r.field}: {r.a} -> {r.b}")
    for r in d.history.itertuples(index=False):
        print(f"  history {r.change}: {r.a if isinstance(r.a, str) else ''} -> {r.b if isinstance(r.b, str) else ''}")
    if args.json:
        doc = {"a": a.reference, "b": b.reference, "summary": s, "files": frame_records(d.files),
               "shared_layers": frame_records(d.shared_layers), "packages": frame_records(d.packages),
               "config": frame_records(d.config),
               "history": frame_records(d.history)}
        with _writing(args.json), open(args.json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    if args.csv:
        with _writing(args.csv):
            d.files.to_csv(args.csv, index=False)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """Audit a fleet: every image of REF... (repositories and registries expanded), each layer scanned once."""
    import pandas as pd

    from .fleet import audit

    options: dict = {"insecure": True} if args.insecure else {}
    executor = args.executor
    if executor and executor.isdigit():
        print("ocilens: error: --executor takes process, thread or a Dask scheduler address; "
              "the number of processes is --workers", file=sys.stderr)
        return 2
    _check_output(args.json)
    _check_output(args.html)
    _check_output(args.csv, directory=True)
    fleet = audit(args.refs, platform=args.platform, executor=executor, workers=args.workers,
                  cache=not args.no_cache, events=bool(args.csv), **options)
    out = sys.stdout
    images = fleet.images
    ok = images[images["error"].isna()].sort_values(["wasted_bytes", "reference"], ascending=[False, True],
                                                     kind="stable")
    width = min(max([len(r) for r in images["reference"]] + [9]), 60)
    print(f"{'reference':<{width}} {'layers':>6} {'compressed':>10} {'wasted':>10} {'effic.':>7} {'dive':>7}  "
          f"top cause", file=out)
    for r in ok.head(args.top).itertuples(index=False):
        ref = r.reference if len(r.reference) <= width else "..." + r.reference[-(width - 3):]
        cause = "" if pd.isna(r.top_cause) else f"{r.top_cause} ({human_bytes(r.top_cause_bytes)})"
        print(f"{ref:<{width}} {r.layers:>6} {human_bytes(r.compressed_size):>10} {human_bytes(r.wasted_bytes):>10} "
              f"{r.efficiency:>7.1%} {r.dive_efficiency:>7.1%}  {cause}", file=out)
    if len(ok) > args.top:
        print(f"... {len(ok) - args.top} more images (see --csv / --json / --html)", file=out)
    s = fleet.summary()
    waste = (f"{human_bytes(s['wasted_bytes'])} wasted of {human_bytes(s['shipped_bytes'])} shipped (efficiency "
             f"{s['efficiency']:.1%})" if s["audited"] else "no waste figures (no image could be read)")
    print(f"\n{s['audited']} of {s['images']} images audited; {s['distinct_layers']} distinct layers "
          f"({s['scanned_layers']} scanned, {s['cached_layers']} cached) for {s['layer_references']} layer "
          f"references; {waste}; {fleet.executor}, {s['seconds']:.1f}s", file=out)
    if len(fleet.errors):
        rest = " (the rest of the fleet was audited)" if s["audited"] else ""
        print(f"\n{len(fleet.errors)} error{'s' if len(fleet.errors) != 1 else ''}{rest}:", file=out)
        for e in fleet.errors.itertuples(index=False):
            first = str(e.message).splitlines()[0] if isinstance(e.message, str) else ""
            print(f"  {e.reference}: {e.stage}: {e.error_type}: {first}", file=out)
    if args.json:
        with _writing(args.json):
            fleet.to_json(args.json)
        print(f"wrote {args.json}", file=out)
    if args.csv:
        with _writing(args.csv):
            fleet.to_csv(args.csv)
        print(f"wrote {args.csv}/images.csv, layers.csv, events.csv, errors.csv", file=out)
    if args.html:
        report = fleet.report(top=max(args.top, 25))
        with _writing(args.html):
            report.to_html(args.html)
        print(f"wrote {args.html}", file=out)
    if s["audited"] == 0:
        return 2
    return 1 if args.fail_on_error and len(fleet.errors) else 0


def cmd_cache(args: argparse.Namespace) -> int:
    """List the cache (blobs, scans, frames, engine records), or prune it by age and size."""
    import pandas as pd

    from .cache import cache_dir
    from .cache_cli import list_cache, prune_cache

    if args.action == "ls":
        rows = list_cache()
        total = sum(r["size"] for r in rows)
        print(f"{cache_dir()}: {len(rows)} entries, {human_bytes(total)}")
        if rows:
            df = pd.DataFrame(rows)
            cols = [c for c in ("kind", "digest", "size", "content", "last_used") if c in df.columns]
            print(df[cols].to_string(index=False))
        return 0
    if args.older_than is None and args.keep is None and not args.all:
        print("ocilens: error: say what to prune: --older-than AGE, --keep SIZE, or --all", file=sys.stderr)
        return 2
    if args.all and (args.older_than is not None or args.keep is not None):
        given = " and ".join(o for o, v in (("--older-than", args.older_than), ("--keep", args.keep)) if v is not None)
        raise UsageError(f"--all removes every entry, so {given} would be ignored",
                         hint=f"drop --all to prune by age or size, or drop {given} to empty the cache")
    removed = prune_cache(older_than=args.older_than, keep=args.keep, dry_run=args.dry_run)
    freed = sum(r["size"] for r in removed)
    print(f"{'would remove' if args.dry_run else 'removed'} {len(removed)} entries, {human_bytes(freed)}")
    return 0


def _common(p: argparse.ArgumentParser, ref_optional: bool | None) -> None:
    if ref_optional is None:
        pass
    elif ref_optional:
        p.add_argument("ref", nargs="?", help="image reference (default: the bundled sample image)")
    else:
        p.add_argument("ref", help="image reference: oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE "
                       "(- for standard input), docker-daemon:NAME, podman:NAME, host/repo:tag")
    p.add_argument("--platform", help="os/arch[/variant] to pick from a multi-platform index")
    p.add_argument("--source", choices=sorted(_SOURCES),
                   help="where a bare name is read from, as dive's --source: docker or podman (the local engine), "
                        "docker-archive, oci-archive, registry (the default)")
    p.add_argument("--no-cache", action="store_true", help="do not use or fill the layer scan cache")
    p.add_argument("--insecure", action="store_true",
                   help="allow plain HTTP or unverified TLS for a registry that is not on loopback")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocilens", description="What is inside a container image, and why "
                                     "it is so big.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("analyze", help="summarize an image: layers, events, sizes")
    _common(p, ref_optional=True)
    p.add_argument("--json", metavar="FILE", help="write the layers, events and files tables as JSON")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    p.add_argument("--compare", metavar="REF", help="with --html: add a diff against this (newer) image")
    p.add_argument("--list-platforms", action="store_true", help="list the platforms REF offers, then stop")
    p.set_defaults(func=cmd_analyze)
    p = sub.add_parser("extract", help="write the image's rootfs to a directory, safely")
    _common(p, ref_optional=False)
    p.add_argument("dir", help="target directory (new or empty)")
    p.add_argument("--strict", action="store_true", help="refuse images with unsafe entries")
    p.add_argument("--no-devices", action="store_true", help="do not create device nodes")
    p.set_defaults(func=cmd_extract)
    p = sub.add_parser("check", help="CI gate on efficiency, waste and the download fixes would save (reads "
                       ".dive-ci); exit 1 on failure")
    _common(p, ref_optional=True)
    p.add_argument("--lowest-efficiency", metavar="RATIO", help="fail below this efficiency (0..1)")
    p.add_argument("--highest-wasted-bytes", metavar="SIZE", help="fail above this waste (1234, 20MB, 1GiB)")
    p.add_argument("--highest-user-wasted-percent", metavar="RATIO",
                   help="fail above this ratio of waste to the bytes above the base layer (0..1)")
    p.add_argument("--highest-download-savings", metavar="SIZE",
                   help="fail when the fixes ocilens proposes would save more download than this (5MB)")
    p.add_argument("--ci-config", metavar="FILE", help="a .dive-ci file (default: ./.dive-ci when present)")
    p.add_argument("--numbers", choices=("dive", "ocilens"), default="dive",
                   help="check dive's numbers (default, thresholds carry over) or ocilens's own")
    p.add_argument("--json", metavar="FILE", help="write the result (schema ocilens.check/v1)")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("diff", help="compare two images")
    _common(p, ref_optional=None)
    p.add_argument("a", help="the old image")
    p.add_argument("b", help="the new image")
    p.add_argument("--top", type=int, default=20, help="how many changed files to print (by size change)")
    p.add_argument("--json", metavar="FILE", help="write the whole diff as JSON")
    p.add_argument("--csv", metavar="FILE", help="write the file changes as CSV")
    p.set_defaults(func=cmd_diff)
    p = sub.add_parser("audit", help="audit many images at once: each distinct layer is scanned once")
    p.add_argument("refs", nargs="+", metavar="REF",
                   help="image references; host:port/repo means every tag, host:port every repository")
    p.add_argument("--platform", help="os/arch[/variant] to pick from multi-platform indexes")
    p.add_argument("--no-cache", action="store_true", help="do not use or fill the layer scan cache")
    p.add_argument("--insecure", action="store_true",
                   help="allow plain HTTP or unverified TLS for registries that are not on loopback")
    p.add_argument("--executor", metavar="WHERE",
                   help="process (default: a local process pool), thread, or a Dask scheduler address")
    p.add_argument("--workers", type=int, metavar="N", help="local processes or threads (default: all cores)")
    p.add_argument("--top", type=int, default=20, help="how many images to print (most wasted first)")
    p.add_argument("--json", metavar="FILE", help="write summary, images, layers and errors as JSON")
    p.add_argument("--csv", metavar="DIR", help="write images, layers, events and errors as CSV files")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML report of the fleet")
    p.add_argument("--fail-on-error", action="store_true", help="exit 1 when any image could not be audited")
    p.set_defaults(func=cmd_audit)
    p = sub.add_parser("platforms", help="list the platforms a multi-platform image offers")
    p.add_argument("ref", nargs="?", help="image reference")
    p.add_argument("--insecure", action="store_true", help="allow plain HTTP or unverified TLS")
    p.set_defaults(func=cmd_platforms)
    p = sub.add_parser("cache", help="list or prune the cache: blobs, scans, frames, engine records ($OCILENS_CACHE_DIR)")
    p.add_argument("action", choices=("ls", "prune"))
    p.add_argument("--older-than", metavar="AGE", help="prune: entries unused for this long (30d, 12h)")
    p.add_argument("--keep", metavar="SIZE", help="prune: least recently used first, down to this size (5GB)")
    p.add_argument("--all", action="store_true", help="prune: everything")
    p.add_argument("--dry-run", action="store_true", help="prune: say what would go, remove nothing")
    p.set_defaults(func=cmd_cache)
    return parser


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      line: str | None = None) -> str:
    """Warnings as the CLI's other messages, one line each, without Python's source line."""
    return f"ocilens: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    formatwarning, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        return func(args)
    except OcilensError as exc:
        print(f"ocilens: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    finally:  # main() is also called in-process (tests, scripts): leave their warnings as they were
        warnings.formatwarning = formatwarning


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
