// The ocilens explorer's front end (an anywidget ES module: no build step, no dependency).
//
// The Python side (ocilens/explore.py) holds the state and sends it as traits: `head`, `layers`, `layer`,
// `layer_info`, `kinds`, `options`, `rows` (the visible lines of the tree), `describe`, `status`. This side
// draws them and sends back what the user asked for as messages ({do: "layer" | "toggle" | "expand" |
// "collapse" | "more" | "select" | "filters" | "fold_all", ...}). Every text from an image goes in through
// textContent or an attribute, never as markup.
//
// Keys, while the widget has the focus: ↑/↓ move through the layers or the tree rows; → opens a directory
// (or steps into it), ← folds it (or steps out to its parent); space or Enter toggles; Tab switches between
// the layer list and the tree; / goes to the search box; Escape hands the keys back to the notebook. The
// root and every element that can take the focus carry data-lm-suppress-shortcuts (JupyterLab's documented
// way for an output to keep its keys), and the root stops the key and mouse events from reaching the
// notebook.

const HELP = "keys: ↑↓ move · → open · ← fold · space toggle · Tab layers ⇄ tree · / search · Esc back to the notebook";

function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function render({ model, el }) {
  const head = model.get("head") || {};
  const isDiff = head.mode === "diff";
  let cursor = 0; // index into rows
  let cursorPath = null;
  let searchTimer = null;

  const root = h("div", "ocx");
  root.setAttribute("data-lm-suppress-shortcuts", "true");
  root.tabIndex = -1;
  el.appendChild(root);

  // -- title
  const title = h("div", "ocx-title");
  title.append(h("b", null, head.title || "ocilens explorer"), " ", h("span", "ocx-ref", head.reference || ""),
               " ", h("span", "ocx-muted", head.subtitle || ""));
  root.appendChild(title);

  const main = h("div", "ocx-main");
  root.appendChild(main);

  // -- the layer list (dive's left pane)
  const left = h("div", "ocx-left");
  const layersEl = h("div", "ocx-layers");
  layersEl.tabIndex = 0;
  layersEl.setAttribute("role", "listbox");
  layersEl.setAttribute("aria-label", "layers");
  const layerHead = h("div", "ocx-layerhead");
  layerHead.append(h("span", "ocx-ln", "#"), h("span", "ocx-lsz", "size"), h("span", "ocx-lw", "wasted"),
                   h("span", "ocx-lcmd", "command"));
  const layerInfo = h("div", "ocx-layerinfo");
  left.append(h("div", "ocx-h", "Layers"), layerHead, layersEl, layerInfo);
  if (!isDiff) main.appendChild(left);

  // -- the tree (dive's right pane)
  const right = h("div", "ocx-right");
  main.appendChild(right);
  const kindsEl = h("div", "ocx-kinds");
  const controls = h("div", "ocx-controls");
  const search = h("input", "ocx-search");
  search.type = "search";
  search.placeholder = "path contains…  ( / )";
  search.setAttribute("aria-label", "search paths");
  const sortSel = h("select", "ocx-sort");
  sortSel.setAttribute("aria-label", "sort");
  for (const [v, t] of [["size", "sort by size"], ["name", "sort by name"]]) {
    const o = h("option", null, t);
    o.value = v;
    sortSel.appendChild(o);
  }
  const waste = checkbox("waste only");
  const aggregated = checkbox("aggregated (layers 0..i)");
  const foldAll = h("button", "ocx-button", "fold all");
  foldAll.type = "button";
  controls.append(search, sortSel);
  if (!isDiff) controls.append(waste.label, aggregated.label);
  controls.append(foldAll);
  const describe = h("div", "ocx-describe");
  const treeHead = h("div", "ocx-row ocx-treehead");
  treeHead.append(h("span", "ocx-mk", ""), h("span", "ocx-mode", "mode"), h("span", "ocx-own", "uid:gid"),
                  h("span", "ocx-sz", "size"), h("span", "ocx-nm", "path"), h("span", "ocx-what", "what changed"));
  const tree = h("div", "ocx-tree");
  tree.tabIndex = 0;
  tree.setAttribute("role", "tree");
  tree.setAttribute("aria-label", "changes");
  if (head.rows) tree.style.maxHeight = `${head.rows * 20 + 2}px`;
  const details = h("div", "ocx-details");
  right.append(kindsEl, controls, describe, treeHead, tree, details);

  // -- dive's bottom line, and the keys
  const status = h("div", "ocx-status");
  const help = h("div", "ocx-help", HELP);
  root.append(status, help);

  function checkbox(text) {
    const label = h("label", "ocx-check");
    const box = h("input");
    box.type = "checkbox";
    label.append(box, " " + text);
    return { label, box };
  }

  function send(msg) {
    model.send(msg);
  }

  // ---------------------------------------------------------------------------------- layers
  function drawLayers() {
    const layers = model.get("layers") || [];
    const items = layers.map((l) => {
      const item = h("div", "ocx-layer");
      item.setAttribute("role", "option");
      item.dataset.layer = String(l.i);
      item.title = l.full; // the whole created_by on hover
      item.append(h("span", "ocx-ln", l.i), h("span", "ocx-lsz", l.size), h("span", "ocx-lw", l.wasted),
                  h("span", "ocx-lcmd", l.cmd));
      return item;
    });
    layersEl.replaceChildren(...items);
    paintLayer();
  }

  function paintLayer() {
    const sel = model.get("layer");
    for (const item of layersEl.children) {
      const on = Number(item.dataset.layer) === sel;
      item.classList.toggle("ocx-selected", on);
      item.setAttribute("aria-selected", on ? "true" : "false");
      if (on) item.scrollIntoView({ block: "nearest" });
    }
  }

  function drawLayerInfo() {
    const info = model.get("layer_info") || {};
    const parts = [];
    if (info.title) parts.push(h("b", null, info.title));
    if (info.digest) parts.push(h("span", "ocx-digest", info.digest));
    // The whole command, wrapped at spaces only: each word is a span that never breaks (a browser
    // would break after a hyphen or a slash), the spaces and line breaks between them are kept.
    const cmd = h("div", "ocx-cmd");
    for (const part of (info.command || "").split(/(\s+)/)) {
      if (!part) continue;
      cmd.appendChild(/\s/.test(part) ? document.createTextNode(part) : h("span", "ocx-w", part));
    }
    const counts = h("div", null, info.counts || "");
    const sizes = h("div", "ocx-muted", info.sizes || "");
    layerInfo.replaceChildren(...parts, cmd, counts, sizes);
  }

  function moveLayer(step) {
    const layers = model.get("layers") || [];
    if (!layers.length) return;
    let i = model.get("layer") + step;
    i = Math.max(0, Math.min(layers.length - 1, i));
    if (i === model.get("layer")) return;
    model.set("layer", i); // drawn at once; the tree follows when Python answers
    paintLayer();
    send({ do: "layer", layer: i });
  }

  // ------------------------------------------------------------------------------------ tree
  function rows() {
    return model.get("rows") || [];
  }

  function drawRows() {
    const rs = rows();
    const frag = document.createDocumentFragment();
    rs.forEach((r, i) => {
      const line = h("div", "ocx-row" + (r.k ? " k-" + r.k : "") + (r.more ? " ocx-more" : "") + (r.dir ? " ocx-dir" : ""));
      line.dataset.i = String(i);
      line.setAttribute("role", "treeitem");
      line.setAttribute("aria-level", String(r.d + 1));
      if (r.x) line.setAttribute("aria-expanded", r.o ? "true" : "false");
      line.title = r.more ? `${r.more} more: space or a click shows them` : r.title;
      const name = h("span", "ocx-nm");
      name.style.paddingLeft = `${r.d * 1.2}em`;
      if (r.more) {
        name.textContent = `… ${r.more.toLocaleString()} more`;
      } else {
        name.append(h("span", "ocx-arrow", r.x ? (r.o ? "▾ " : "▸ ") : "  "), h("span", "ocx-name", r.n + (r.dir ? "/" : "")));
        if (r.ln) name.append(h("span", "ocx-link", " → " + r.ln));
      }
      const what = h("span", "ocx-what", r.what || "");
      if (r.w) what.append(h("span", "ocx-waste", (r.what ? " · " : "") + "wasted " + r.w));
      if (r.lay !== null && r.lay !== undefined) what.append(h("span", "ocx-muted", ` [layer ${r.lay}]`));
      line.append(h("span", "ocx-mk", r.mk || " "), h("span", "ocx-mode", r.mode || ""), h("span", "ocx-own", r.own || ""),
                  h("span", "ocx-sz", r.sz || ""), name, what);
      frag.appendChild(line);
    });
    tree.replaceChildren(frag);
    if (!rs.length) tree.appendChild(h("div", "ocx-empty", "No changes to show."));
    // The cursor stays on its path when it is still shown (a layer switch, a fold), else where it was.
    let k = cursorPath === null ? -1 : rs.findIndex((r) => r.p === cursorPath && !r.more);
    if (k < 0) k = Math.min(cursor, Math.max(rs.length - 1, 0));
    setCursor(k, false);
  }

  function setCursor(k, tell = true) {
    const rs = rows();
    const old = tree.querySelector(".ocx-cursor");
    if (old) {
      old.classList.remove("ocx-cursor");
      old.setAttribute("aria-selected", "false");
    }
    if (!rs.length) {
      cursor = 0;
      details.textContent = "";
      return;
    }
    cursor = Math.max(0, Math.min(rs.length - 1, k));
    const r = rs[cursor];
    cursorPath = r.more ? cursorPath : r.p;
    const line = tree.children[cursor];
    if (line) {
      line.classList.add("ocx-cursor");
      line.setAttribute("aria-selected", "true");
      line.scrollIntoView({ block: "nearest" });
    }
    details.textContent = r.info || "";
    if (tell && !r.more) send({ do: "select", path: r.p });
  }

  function parentOf(k) {
    const rs = rows();
    const d = rs[k] ? rs[k].d : 0;
    for (let j = k - 1; j >= 0; j--) if (rs[j].d < d) return j;
    return -1;
  }

  function activate(r) {
    if (!r) return;
    if (r.more) send({ do: "more", path: r.p });
    else if (r.x) send({ do: "toggle", path: r.p });
  }

  tree.addEventListener("keydown", (e) => {
    const rs = rows();
    const r = rs[cursor];
    const page = Math.max(1, Math.floor(tree.clientHeight / 20) - 1);
    switch (e.key) {
      case "ArrowDown": setCursor(cursor + 1); break;
      case "ArrowUp": setCursor(cursor - 1); break;
      case "PageDown": setCursor(cursor + page); break;
      case "PageUp": setCursor(cursor - page); break;
      case "Home": setCursor(0); break;
      case "End": setCursor(rs.length - 1); break;
      case "ArrowRight":
        if (r && r.x && !r.o) send({ do: "expand", path: r.p });
        else if (r && r.o) setCursor(cursor + 1);
        break;
      case "ArrowLeft":
        if (r && r.x && r.o) send({ do: "collapse", path: r.p });
        else if (parentOf(cursor) >= 0) setCursor(parentOf(cursor));
        break;
      case " ":
      case "Enter":
        activate(r);
        break;
      default:
        return; // Tab, Escape and / are the root's
    }
    e.preventDefault();
  });

  tree.addEventListener("click", (e) => {
    const line = e.target.closest(".ocx-row");
    if (!line || !tree.contains(line)) return;
    const k = Number(line.dataset.i);
    setCursor(k);
    activate(rows()[k]);
    tree.focus({ preventScroll: true });
  });

  layersEl.addEventListener("keydown", (e) => {
    const n = (model.get("layers") || []).length;
    switch (e.key) {
      case "ArrowDown": moveLayer(1); break;
      case "ArrowUp": moveLayer(-1); break;
      case "Home": moveLayer(-n); break;
      case "End": moveLayer(n); break;
      case "PageDown": moveLayer(5); break;
      case "PageUp": moveLayer(-5); break;
      case "ArrowRight":
      case "Enter":
        tree.focus({ preventScroll: true });
        break;
      default:
        return;
    }
    e.preventDefault();
  });

  layersEl.addEventListener("click", (e) => {
    const item = e.target.closest(".ocx-layer");
    layersEl.focus({ preventScroll: true }); // the keys stay here, not with the notebook
    if (!item) return;
    const i = Number(item.dataset.layer);
    if (i !== model.get("layer")) {
      model.set("layer", i);
      paintLayer();
      send({ do: "layer", layer: i });
    }
  });

  // ---------------------------------------------------------------------------------- filters
  function drawKinds() {
    const kinds = model.get("kinds") || [];
    const items = kinds.map((k) => {
      const label = h("label", "ocx-check ocx-kind k-" + k.kind);
      const box = h("input");
      box.type = "checkbox";
      box.checked = !!k.on;
      box.dataset.kind = k.kind;
      box.setAttribute("data-lm-suppress-shortcuts", "true");
      box.addEventListener("change", () => {
        const on = [...kindsEl.querySelectorAll("input")].filter((b) => b.checked).map((b) => b.dataset.kind);
        send({ do: "filters", kinds: on });
      });
      label.append(box, h("span", "ocx-mk", k.mark), " " + k.label + (k.count !== undefined && k.count !== null ? ` (${k.count.toLocaleString()})` : ""));
      return label;
    });
    kindsEl.replaceChildren(...items);
  }

  function drawOptions() {
    const o = model.get("options") || {};
    if (document.activeElement !== search) search.value = o.search || "";
    sortSel.value = o.sort || "size";
    waste.box.checked = !!o.waste_only;
    aggregated.box.checked = !!o.aggregated;
  }

  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => send({ do: "filters", search: search.value }), 200);
  });
  search.addEventListener("keydown", (e) => {
    if (e.key === "Escape" || e.key === "Enter" || e.key === "ArrowDown") {
      clearTimeout(searchTimer);
      send({ do: "filters", search: search.value });
      tree.focus({ preventScroll: true });
      e.preventDefault();
      e.stopPropagation();
    }
  });
  sortSel.addEventListener("change", () => send({ do: "filters", sort: sortSel.value }));
  waste.box.addEventListener("change", () => send({ do: "filters", waste_only: waste.box.checked }));
  aggregated.box.addEventListener("change", () => send({ do: "filters", aggregated: aggregated.box.checked }));
  foldAll.addEventListener("click", () => send({ do: "fold_all" }));

  function drawText() {
    describe.textContent = model.get("describe") || "";
    const s = model.get("status") || {};
    status.replaceChildren(h("span", "ocx-simage", s.image || ""), h("span", "ocx-sep", "│"),
                           h("span", "ocx-slayer", s.layer || ""));
  }

  // ------------------------------------------------------------------------------ focus, keys
  function release() {
    // Hand the keys back: focus the cell this output belongs to (JupyterLab, Notebook 7; the classic
    // notebook's cell), so the notebook's command-mode keys work again.
    const active = document.activeElement;
    if (active && root.contains(active)) active.blur();
    const holders = [root.closest(".jp-Cell"), root.closest(".jp-Notebook"), root.closest(".cell")];
    const target = holders.find((x) => x && x.hasAttribute("tabindex"));
    if (target) target.focus();
  }

  root.addEventListener("keydown", (e) => {
    const inField = e.target === search || e.target.tagName === "SELECT" || e.target.tagName === "INPUT";
    if (e.key === "Escape") {
      release();
      e.preventDefault();
    } else if (e.key === "Tab" && (e.target === tree || e.target === layersEl) && !isDiff) {
      (e.target === tree ? layersEl : tree).focus({ preventScroll: true });
      e.preventDefault();
    } else if (e.key === "/" && !inField) {
      search.focus();
      search.select();
      e.preventDefault();
    }
    e.stopPropagation(); // the notebook never sees the widget's keys
  });
  for (const type of ["keyup", "keypress", "mousedown", "mouseup", "click", "dblclick"]) {
    root.addEventListener(type, (e) => e.stopPropagation());
  }

  // Lumino matches a shortcut's selector from the focused element up and stops at the first element that
  // carries data-lm-suppress-shortcuts: the focused element must carry it itself (Notebook 7 reads its keys
  // before any of ours, in the capture phase, where stopping them is too late).
  const suppress = (e) => e.setAttribute("data-lm-suppress-shortcuts", "true");
  [layersEl, tree, search, sortSel, waste.box, aggregated.box, foldAll].forEach(suppress);

  const handlers = {
    "change:layers": drawLayers,
    "change:layer": paintLayer,
    "change:layer_info": drawLayerInfo,
    "change:rows": drawRows,
    "change:kinds": drawKinds,
    "change:options": drawOptions,
    "change:describe": drawText,
    "change:status": drawText,
  };
  for (const [event, fn] of Object.entries(handlers)) model.on(event, fn);
  drawLayers();
  drawLayerInfo();
  drawKinds();
  drawOptions();
  drawText();
  drawRows();
  return () => {
    for (const [event, fn] of Object.entries(handlers)) model.off(event, fn);
    clearTimeout(searchTimer);
  };
}

export default { render };
