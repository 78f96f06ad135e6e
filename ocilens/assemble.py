"""Fold layer scans into the final tree, as a runtime applies layers, recording one event per path per layer.

The rules (OCI image-spec ``layer.md``, and what umoci/containerd do where it is silent):

- Opaque markers of a layer are applied first, then its whiteouts, both against the lower layers only;
  then its entries in tar order. So a whiteout never removes an entry of its own layer.
- Directory over directory changes attributes only; any other replacement removes the old node (a whole
  subtree, for a directory) and creates the new one.
- A parent path that crosses a symlink is resolved inside the image root (as securejoin does); a missing
  parent is created as a directory (``implicit``); a parent that is a file makes the entry unappliable.
- A hardlink shares its target's content (one inode); its target is resolved inside the image root.

Each path touched by a layer gets one event, from its state before and after the layer: ``added``,
``overwritten`` (``content_changed`` False for a metadata-only re-add), or ``whited_out`` with a cause
(``whiteout``, ``opaque``, ``replaced``). A path added and removed inside one layer gets no event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

from .scan import LayerScan

__all__ = ["Node", "Assembly", "EventLog", "assemble"]

MAX_LINK_HOPS = 255  # securejoin's limit, which umoci applies


class InodeTable:
    """inode number -> the regular-file node that made it, and the path its entry created.

    Inode numbers are handed out densely, so lists hold them: a million files cost two million list
    slots, no tuples and no dict entries. ``nodes[inode]``/``paths[inode]`` are the fast way in.
    """

    __slots__ = ("nodes", "paths")

    def __init__(self) -> None:
        self.nodes: list["Node | None"] = [None]
        self.paths: list[str | None] = [None]

    def add(self, inode: int, node: "Node", path: str) -> None:
        nodes, paths = self.nodes, self.paths
        while len(nodes) <= inode:
            nodes.append(None)
            paths.append(None)
        nodes[inode] = node
        paths[inode] = path

    def get(self, inode: int, default: tuple[int, int, str] | None = None) -> tuple[int, int, str] | None:
        """``(layer, entry, path)`` of the entry that made ``inode``."""
        node = self.nodes[inode] if 0 < inode < len(self.nodes) else None
        if node is None:
            return default
        return node.layer, node.entry, self.paths[inode]  # type: ignore[return-value]

    def __getitem__(self, inode: int) -> tuple[int, int, str]:
        row = self.get(inode)
        if row is None:
            raise KeyError(inode)
        return row

    def __contains__(self, inode: object) -> bool:
        return isinstance(inode, int) and self.get(inode) is not None


class Node:
    """One path's current version in the tree."""

    __slots__ = ("type", "size", "mode", "uid", "gid", "mtime", "linkname", "digest", "layer", "entry",
                 "inode", "link_group")

    def __init__(self, type_: str, size: int, mode: int, uid: int, gid: int, mtime: int,
                 linkname: str | None, digest: str | None, layer: int, entry: int, inode: int) -> None:
        self.type = type_
        self.size = size
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.mtime = mtime
        self.linkname = linkname
        self.digest = digest
        self.layer = layer
        self.entry = entry  # index into the layer scan's entry columns; -1 for implicit directories
        self.inode = inode  # shared by hardlinked paths; 0 for non-files
        self.link_group = 0  # shared by hardlinked symlinks, devices and fifos (no bytes, so no inode)

    @property
    def implicit(self) -> bool:
        """A directory no entry made: created because a path below it was (or the root)."""
        return self.entry < 0

    def same_content(self, other: "Node") -> bool:
        """True when only metadata (mode, owner, mtime) differs between two versions of a path."""
        a = "f" if self.type == "h" else self.type
        b = "f" if other.type == "h" else other.type
        if a != b:
            return False
        if a == "f":  # a file without a digest (a sparse one too large to hash) is never the same content
            return self.digest is not None and self.digest == other.digest
        if a == "l":
            return self.linkname == other.linkname
        return True


class EventLog:
    """The events as columns: a million events cost four list slots each, not a tuple each. ``before``,
    ``content_changed`` and ``cause`` are None for an addition (most events), so only the other events keep
    them. Iterating (or indexing) gives ``(layer, path, event, node, before, content_changed, cause)``."""

    __slots__ = ("layer", "path", "event", "node", "rest")

    def __init__(self) -> None:
        self.layer: list[int] = []
        self.path: list[str] = []
        self.event: list[str] = []
        self.node: list[Node] = []  # the version the row describes (the removed one for whited_out)
        # event number -> (the version it replaced, content_changed, cause), for all but additions
        self.rest: dict[int, tuple[Node | None, bool | None, str | None]] = {}

    def _column(self, k: int) -> list:
        out: list = [None] * len(self.path)
        for i, rest in self.rest.items():
            out[i] = rest[k]
        return out

    @property
    def before(self) -> list[Node | None]:
        return self._column(0)

    @property
    def content_changed(self) -> list[bool | None]:
        return self._column(1)

    @property
    def cause(self) -> list[str | None]:
        return self._column(2)

    def columns(self) -> tuple[list, ...]:
        return (self.layer, self.path, self.event, self.node, self.before, self.content_changed, self.cause)

    def __len__(self) -> int:
        return len(self.path)

    def __iter__(self) -> Iterator[tuple]:
        return zip(*self.columns())

    def __getitem__(self, i: int | slice) -> tuple | list[tuple]:
        if isinstance(i, slice):
            return list(zip(*(column[i] for column in self.columns())))
        n = len(self.path)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return (self.layer[i], self.path[i], self.event[i], self.node[i], *self.rest.get(i, (None, None, None)))


@dataclass
class Assembly:
    """The result of folding: the final tree and the event and anomaly columns."""

    tree: dict[str, Node]
    children: dict[str, dict[str, None]]
    events: EventLog = field(default_factory=EventLog)
    inode_origin: InodeTable = field(default_factory=InodeTable)  # inode -> (layer, entry, path)
    # inode -> (layer that removed its last link, cause): the file versions that are not in the final tree
    fates: dict[int, tuple[int, str]] = field(default_factory=dict)
    device_alias: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    anomalies: list[tuple[int, str, str, str]] = field(default_factory=list)  # (layer, path, kind, detail)

    def link_primaries(self, shared_only: bool = False) -> dict[int, str]:
        """For each inode (and link group) in the final tree, the one name that carries its content: the
        path its regular-file entry created, if it survives, else the first surviving name.

        ``shared_only`` leaves out the files whose only name is their own entry's (nearly all of them): the
        files table needs no dict entry per file to tell those apart."""
        primary: dict[int, str] = {}
        others: dict[int, list[str]] = {}
        origin, origin_paths = self.inode_origin.nodes, self.inode_origin.paths
        for path, node in self.tree.items():
            key = node.inode
            if key:
                if origin[key] is node:
                    if not shared_only:
                        primary[key] = path  # the common case: the file where its entry put it
                    continue
            else:
                key = node.link_group
                if not key:
                    continue
            others.setdefault(key, []).append(path)
        tree = self.tree
        for key, paths in others.items():
            if key in primary:
                continue
            first = origin[key] if key < len(origin) else None
            if first is not None and tree.get(origin_paths[key]) is first:  # the original name survives
                primary[key] = origin_paths[key]  # type: ignore[assignment]
            else:
                primary[key] = min(paths)
        return primary

    def walk(self, top: str = "/") -> Iterable[str]:
        """Paths below ``top`` (not ``top`` itself), parents before children."""
        stack = list(reversed(list(self.children.get(top, ()))))
        while stack:
            p = stack.pop()
            yield p
            kids = self.children.get(p)
            if kids:
                stack.extend(reversed(list(kids)))


def _marked_after(path: str, marked: dict[str, int], ordinal: int) -> bool:
    """True when a marker after member ``ordinal`` removed ``path`` or a directory above it."""
    while path != "/":
        if path in marked:
            return marked[path] > ordinal
        path = _parent(path)
    return False


def _parent(path: str) -> str:
    i = path.rfind("/")
    return path[:i] if i > 0 else "/"


class _Folder:
    """Mutable state while folding layers one by one."""

    def __init__(self) -> None:
        root = Node("d", 0, 0o755, 0, 0, 0, None, None, -1, -1, 0)
        self.tree: dict[str, Node] = {"/": root}
        self.children: dict[str, dict[str, None]] = {"/": {}}
        self.ev = EventLog()
        # 0, 1, 2, ...: entry and inode numbers taken from here share one int object per value, which a
        # million nodes notice (32 bytes per int above 256)
        self.numbers: list[int] = list(range(1024))
        self.anomalies: list[tuple[int, str, str, str]] = []
        self.next_inode = 1
        self.inode_origin = InodeTable()
        self.links: list[int] = [0]  # names per inode (link groups take numbers too, and stay 0)
        self.fates: dict[int, tuple[int, str]] = {}
        self.device_alias: dict[tuple[int, int], tuple[int, int]] = {}  # hardlinked device -> its original entry
        self.replacing: tuple[str, Node] | None = None  # (path, new node) while a replacement removes
        self.layer = -1
        # path -> (version before this layer or None, cause of its removal or None), first-touch order
        self.touched: dict[str, tuple[Node | None, str | None]] = {}

    # -- tree primitives ------------------------------------------------------------------------
    def _touch(self, path: str, cause: str | None) -> None:
        if path not in self.touched:
            node = self.tree.get(path)
            before = node if node is not None and node.layer != self.layer else None
            self.touched[path] = (before, cause if before is not None else None)

    def _remove(self, path: str, cause: str) -> None:
        """Remove ``path`` and everything below it, touching each removed path."""
        self._touch(path, cause)
        node = self.tree[path]
        if node.inode:
            left = self.links[node.inode] - 1
            self.links[node.inode] = left
            if not left:
                self.fates[node.inode] = (self.layer, self._waste_cause(path, node, cause))
        kids = self.children.pop(path, None)
        if kids:
            for child in list(kids):
                self._remove(child, cause)
        del self.tree[path]
        parent_kids = self.children.get(_parent(path))
        if parent_kids is not None:
            parent_kids.pop(path, None)

    def _waste_cause(self, path: str, node: Node, cause: str) -> str:
        """Why a file version stops being visible: deleted, overwritten, or re-shipped unchanged."""
        if cause != "replaced" or self.replacing is None or self.replacing[0] != path:
            return "deleted_later"  # whiteout, opaque, or a parent directory replaced by a non-directory
        new = self.replacing[1]
        if new.type in ("f", "h") and new.digest == node.digest:
            return "metadata_only"
        return "overwritten"

    def _insert(self, path: str, node: Node) -> None:
        self._touch(path, None)
        if node.inode:
            links = self.links
            while len(links) <= node.inode:
                links.append(0)
            links[node.inode] += 1
        self.tree[path] = node
        self.children[_parent(path)][path] = None
        if node.type == "d" and path not in self.children:
            self.children[path] = {}

    def resolve(self, path: str, follow_last: bool = False) -> str | None:
        """``path`` with symlinks in its parents (and the last component, if asked) resolved inside the
        image root; missing components are kept literally. None on a loop."""
        tree = self.tree
        if not follow_last:
            parent = _parent(path)
            node = tree.get(parent)
            if node is not None and node.type == "d":
                return path  # every key's ancestors are directories: parent is canonical
        parts = [p for p in path.split("/") if p]
        resolved: list[str] = []
        hops = 0
        i = 0
        while i < len(parts):
            comp = parts[i]
            i += 1
            if comp == ".":
                continue
            if comp == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = "/" + "/".join(resolved + [comp])
            node = tree.get(candidate)
            is_last = i == len(parts)
            if node is not None and node.type == "l" and (not is_last or follow_last):
                hops += 1
                if hops > MAX_LINK_HOPS:
                    return None
                target = node.linkname or ""
                if target.startswith("/"):
                    resolved = []
                parts = [p for p in target.split("/") if p] + parts[i:]
                i = 0
                continue
            resolved.append(comp)
        return "/" + "/".join(resolved)

    def _ensure_parents(self, path: str) -> bool:
        """Create missing parent directories of ``path``; False if a parent is not a directory."""
        parent = _parent(path)
        node = self.tree.get(parent)
        if node is not None:
            return node.type == "d"
        if not self._ensure_parents(parent):
            return False
        # as mkdir(2) makes it (umoci, runtimes): 0755 root:root, or under a setgid directory setgid too and
        # in that directory's group
        above = self.tree[_parent(parent)]
        if above.mode & 0o2000:
            self._insert(parent, Node("d", 0, 0o2755, 0, above.gid, 0, None, None, self.layer, -1, 0))
        else:
            self._insert(parent, Node("d", 0, 0o755, 0, 0, 0, None, None, self.layer, -1, 0))
        return True

    # -- one layer ----------------------------------------------------------------------------
    def apply(self, layer: int, scan: LayerScan) -> None:
        self.layer = layer
        self.touched = {}
        anomalies = self.anomalies
        for path, kind, detail in scan.anomalies:
            anomalies.append((layer, path, kind, detail))

        marked: dict[str, int] = {}  # path a marker of this layer removed (with what was below) -> its member number
        for d, ordinal in scan.opaques:
            rd = self.resolve(d, follow_last=True)
            node = self.tree.get(rd) if rd else None
            if node is not None and node.type == "d":
                for child in list(self.children.get(rd, ())):
                    self._remove(child, "opaque")
                    marked[child] = ordinal
        for w, ordinal in scan.whiteouts:
            rw = self.resolve(w)
            if rw is not None and rw in self.tree and rw != "/":
                self._remove(rw, "whiteout")
                marked[rw] = ordinal

        seen: set[str] = set()
        paths, types, sizes, modes = scan.paths, scan.types, scan.sizes, scan.modes
        uids, gids, mtimes, linknames, digests = scan.uids, scan.gids, scan.mtimes, scan.linknames, scan.digests
        tree = self.tree
        children, touched, links, origin = self.children, self.touched, self.links, self.inode_origin
        origin_nodes, origin_paths = origin.nodes, origin.paths
        numbers = self.numbers
        for i in range(len(paths)):
            path = paths[i]
            cut = path.rfind("/")
            parent = path[:cut] if cut > 0 else "/"
            pnode = tree.get(parent)
            if pnode is None or pnode.type != "d" or path == "/":
                # The parent is missing, is a symlink or a file, or this is the root: the general rules.
                path = self.resolve(path)
                if path is None:
                    anomalies.append((layer, paths[i], "symlink_loop", "too many symlinks in the parent path; "
                                      "skipped"))
                    continue
                if path == "/":
                    if types[i] == "d":  # the root entry ("./") sets the root's attributes, as umoci applies them
                        tree["/"] = Node("d", 0, modes[i], uids[i], gids[i], mtimes[i], None, None, layer, i, 0)
                    else:
                        anomalies.append((layer, paths[i], "root_not_directory", "an entry tries to replace the "
                                          "root directory with a non-directory; skipped"))
                    continue
                if not self._ensure_parents(path):
                    anomalies.append((layer, paths[i], "parent_not_directory",
                                      "a parent is not a directory, so no runtime can apply this entry; skipped"))
                    continue
                parent = _parent(path)
            t = types[i]
            if i >= len(numbers):
                numbers.extend(range(len(numbers), 2 * i + 1024))
            entry = numbers[i]
            size = sizes[i]
            digest = digests[i]
            linkname = linknames[i]
            inode = 0
            if t == "f":
                inode = self.next_inode
                self.next_inode += 1
                if inode < len(numbers):
                    inode = numbers[inode]  # one int object for entry and inode numbers alike
            mode, uid, gid, mtime = modes[i], uids[i], gids[i], mtimes[i]
            group = 0
            if t == "h":
                # link(2) never follows a symlink: the target's parents are resolved, its last name is not.
                target = self.resolve(linkname or "/")
                tnode = tree.get(target) if target else None
                if tnode is None and target and _marked_after(target, marked, scan.ordinals[i]):
                    # A link to a lower file that a later marker of this layer removes (a whiteout of it or
                    # of a parent, an opaque parent): in tar order, as runtimes and umoci apply it, the link
                    # is made first, so this name keeps the inode alive.
                    tnode = self.touched.get(target, (None, None))[0]
                    if tnode is not None and tnode.inode:
                        self.fates.pop(tnode.inode, None)
                if tnode is None or tnode.type == "d":
                    anomalies.append((layer, path, "bad_hardlink",
                                      f"hardlink target {linkname} is {'missing' if tnode is None else 'a directory'}; "
                                      "skipped"))
                    continue
                if target == path:
                    continue  # a link to itself changes nothing
                # Another name of the target's inode: its metadata is the inode's, not this header's.
                mode, uid, gid, mtime = tnode.mode, tnode.uid, tnode.gid, tnode.mtime
                if tnode.type in ("f", "h"):
                    size, digest, inode, linkname = tnode.size, tnode.digest, tnode.inode, target
                else:  # a second name of a symlink, device or fifo: the same kind of node, one link group
                    t, size, digest, linkname = tnode.type, tnode.size, tnode.digest, tnode.linkname
                    if not tnode.link_group:
                        tnode.link_group = self.next_inode
                        self.next_inode += 1
                    group = tnode.link_group
                    if t in ("c", "b"):
                        self.device_alias[(layer, i)] = (tnode.layer, tnode.entry)
            if path in seen:
                anomalies.append((layer, path, "duplicate_path", "the layer holds this path twice; the last one wins"))
            seen.add(path)
            new = Node(t, size, mode, uid, gid, mtime, linkname, digest, layer, entry, inode)
            if group:
                new.link_group = group
            if t == "f":
                if inode == len(origin_nodes):  # always, as inodes are handed out in order
                    origin_nodes.append(new)
                    origin_paths.append(path)
                else:
                    origin.add(inode, new, path)
            old = tree.get(path)
            if old is not None:
                if old.type == "d" and t == "d":
                    self._touch(path, None)
                    tree[path] = new  # attributes only: children stay
                    continue
                self.replacing = (path, new)
                self._remove(path, "replaced")
                self.replacing = None
                self._insert(path, new)
                continue
            # _insert, inlined for the common case: a new path under an existing directory
            if path not in touched:
                touched[path] = (None, None)
            if inode:
                if inode == len(links):
                    links.append(1)  # a new file's first name
                else:
                    while len(links) <= inode:
                        links.append(0)
                    links[inode] += 1
            tree[path] = new
            children[parent][path] = None
            if t == "d" and path not in children:
                children[path] = {}
        self._emit(layer)

    def _emit(self, layer: int) -> None:
        ev = self.ev
        add_layer, add_path, add_kind, add_node = ev.layer.append, ev.path.append, ev.event.append, ev.node.append
        rest = ev.rest
        tree = self.tree
        for path, (before, cause) in self.touched.items():
            node = tree.get(path)
            after = node if node is not None and node.layer == layer else None
            if after is None and before is None:
                continue
            if before is None:
                kind, row = "added", after
            elif after is None:
                kind, row = "whited_out", before
            else:
                kind, row = "overwritten", after
                fate = self.fates.get(before.inode) if before.inode else None
                if fate is not None and fate == (layer, "deleted_later"):
                    # removed by a whiteout or opaque marker, then re-added by the same layer
                    self.fates[before.inode] = (layer, "metadata_only" if before.same_content(after) else "overwritten")
            add_layer(layer)
            add_path(path)
            add_kind(kind)
            add_node(row)
            if before is not None:
                rest[len(ev.path) - 1] = (before, before.same_content(after) is False if kind == "overwritten"
                                          else None, cause if kind == "whited_out" else None)


def assemble(scans: list[LayerScan]) -> Assembly:
    """Apply the layer scans bottom to top."""
    folder = _Folder()
    for layer, scan in enumerate(scans):
        folder.apply(layer, scan)
    return Assembly(tree=folder.tree, children=folder.children, events=folder.ev,
                    inode_origin=folder.inode_origin, fates=folder.fates, anomalies=folder.anomalies,
                    device_alias=folder.device_alias)
