// Skyfleet dashboard: polls the master's JSON API (relative URLs, so it works
// wherever the master mounts it) and renders the header counts, the topology graph,
// the node table, the selected node's detail and the remote-action log. No
// libraries: DOM building goes through el()/svg() with textContent, so names and
// details reported by nodes can never inject markup.
"use strict";
(() => {
  const REFRESH_MS = 5000;
  const LOG_LIMIT = 50;
  const SVGNS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed",
    "#0891b2", "#db2777", "#65a30d", "#9333ea", "#0d9488", "#b45309", "#4b5563"];

  const state = {
    status: null,
    nodes: [],
    graph: null,
    log: [],
    names: new Map(),        // address -> name, from nodes and graph
    selected: "",            // address of the node in the detail panel
    detail: null,            // api/nodes/{selected}
    detailError: "",
    sort: { key: "name", dir: 1 },
    pos: new Map(),          // address -> {x, y}: layout kept across refreshes
    drawn: null,             // last laid-out graph, redrawn on resize and selection
    lastOK: null,            // Date of the last fully successful refresh
  };

  const $ = (sel) => document.querySelector(sel);

  // ---- DOM helpers -------------------------------------------------------------

  function build(node, attrs, kids) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      node.append(kid instanceof Node ? kid : String(kid));
    }
    return node;
  }
  const el = (tag, attrs, ...kids) => build(document.createElement(tag), attrs, kids);
  // fill replaces node's children, skipping the false/null of conditional parts.
  const fill = (node, ...kids) => { node.replaceChildren(); return build(node, {}, kids); };
  const svg = (tag, attrs, ...kids) => build(document.createElementNS(SVGNS, tag), attrs, kids);

  // ---- formatting --------------------------------------------------------------

  const pad = (n) => String(n).padStart(2, "0");
  const clock = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;

  function short(addr) {
    if (!addr) return "";
    return addr.length > 18 ? addr.slice(0, 10) + "…" + addr.slice(-6) : addr;
  }
  const nameOf = (addr) => state.names.get(addr) || short(addr);

  function stamp(iso) {
    const d = new Date(iso);
    if (!iso || isNaN(d)) return "—";
    const today = new Date().toDateString() === d.toDateString();
    return today ? clock(d) : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(d)}`;
  }

  function ago(iso) {
    const t = Date.parse(iso);
    if (!iso || isNaN(t)) return "never";
    const s = (Date.now() - t) / 1000;
    if (s < 5) return "just now"; // also covers a master clock slightly ahead
    if (s < 60) return `${Math.floor(s)} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} d ago`;
  }

  function duration(sec) {
    if (!(sec >= 0)) return "—";
    sec = Math.floor(sec);
    const d = Math.floor(sec / 86400), h = Math.floor(sec / 3600) % 24;
    const m = Math.floor(sec / 60) % 60, s = sec % 60;
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${s}s`;
    return `${s}s`;
  }

  function rate(bps) {
    if (!(bps >= 0)) return "—";
    if (bps < 1000) return `${Math.round(bps)} B/s`;
    if (bps < 1e6) return `${(bps / 1e3).toFixed(1)} kB/s`;
    return `${(bps / 1e6).toFixed(1)} MB/s`;
  }

  const ms = (v) => (v >= 0 ? `${v < 10 ? v.toFixed(1) : Math.round(v)} ms` : "—");
  const pct = (v) => (v >= 0 ? `${(v * 100).toFixed(v < 0.1 ? 1 : 0)}%` : "—");

  function badge(online) {
    return el("span", { class: "badge " + (online ? "online" : "offline") }, online ? "online" : "offline");
  }

  // Service states other than running are problems; backoff and failures are worse
  // than a deliberately stopped service.
  function stateClass(s) {
    if (s === "running") return "ok";
    if (/backoff|fail|crash|error|dead/.test(s)) return "bad";
    return "warn";
  }

  function servicesSummary(services) {
    if (!services || !services.length) return el("span", { class: "muted" }, "—");
    const counts = new Map();
    for (const s of services) counts.set(s.state, (counts.get(s.state) || 0) + 1);
    const states = [...counts.keys()].sort((a, b) => (a === "running" ? -1 : b === "running" ? 1 : a.localeCompare(b)));
    const title = services.map((s) => `${s.name}: ${s.state}${s.restarts ? `, ${s.restarts} restarts` : ""}`).join("\n");
    const parts = [];
    states.forEach((st, i) => {
      if (i) parts.push(", ");
      parts.push(el("span", { class: "svc " + stateClass(st) }, `${counts.get(st)} ${st}`));
    });
    return el("span", { title }, parts);
  }

  // ---- API ---------------------------------------------------------------------

  class APIError extends Error {
    constructor(path, status, text) {
      super(status ? `${path}: HTTP ${status}${text ? " " + text : ""}` : `${path}: ${text}`);
      this.path = path;
      this.status = status;
    }
  }

  async function api(path) {
    let res;
    try {
      res = await fetch(path, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } });
    } catch (e) {
      throw new APIError(path, 0, "unreachable");
    }
    if (!res.ok) {
      const text = (await res.text().catch(() => "")).trim().slice(0, 160);
      throw new APIError(path, res.status, text || res.statusText);
    }
    try {
      return await res.json();
    } catch (e) {
      throw new APIError(path, res.status, "response is not JSON");
    }
  }

  function showErrors(errors) {
    const banner = $("#banner");
    document.body.classList.toggle("stale", errors.length > 0);
    if (!errors.length) {
      banner.hidden = true;
      banner.textContent = "";
      return;
    }
    const since = state.lastOK ? ` Showing data from ${clock(state.lastOK)}.` : "";
    let msg;
    const auth = errors.find((e) => e.status === 401 || e.status === 403);
    if (auth) {
      msg = `Not authorised (HTTP ${auth.status}): the master refused the dashboard's API requests. Sign in again and reload.`;
    } else if (errors.some((e) => e.status === 0)) {
      msg = `Master API unreachable (${errors.map((e) => e.path).join(", ")}); retrying every ${REFRESH_MS / 1000} s.`;
    } else {
      msg = `API error: ${errors.map((e) => e.message).join("; ")}.`;
    }
    banner.textContent = msg + since;
    banner.hidden = false;
  }

  async function refresh() {
    const paths = ["api/status", "api/nodes", "api/graph", "api/log"];
    const [detail, ...results] = await Promise.all([
      state.selected ? loadDetail(state.selected, false) : null,
      ...paths.map((p) => api(p).then((v) => ({ v }), (e) => ({ e }))),
    ]);
    const [status, nodes, graph, log] = results;
    const errors = results.filter((r) => r.e).map((r) => r.e);
    if (detail && detail.status !== 404) errors.push(detail);
    if (status.v) state.status = status.v;
    if (nodes.v) state.nodes = Array.isArray(nodes.v) ? nodes.v : [];
    if (graph.v) state.graph = graph.v;
    if (log.v) state.log = Array.isArray(log.v) ? log.v : [];
    learnNames();

    if (!errors.length) state.lastOK = new Date();
    showErrors(errors);
    renderHeader();
    renderNotice();
    renderNodes();
    drawGraph(true);
    renderDetail();
    renderLog();
    if (status.v && nodes.v) document.body.dataset.loaded = "1";
  }

  function learnNames() {
    for (const n of (state.graph && state.graph.nodes) || []) if (n.name) state.names.set(n.address, n.name);
    for (const n of state.nodes) if (n.name) state.names.set(n.address, n.name);
  }

  // loadDetail fetches the selected node; it returns the error (if any) so refresh
  // can put it in the banner, and drops answers for a node no longer selected.
  async function loadDetail(addr, render = true) {
    let err = null;
    try {
      const d = await api("api/nodes/" + encodeURIComponent(addr));
      if (state.selected !== addr) return null;
      state.detail = d;
      state.detailError = "";
    } catch (e) {
      if (state.selected !== addr) return null;
      err = e;
      state.detailError = e.status === 404 ? "This node is not known to the master." : e.message;
      if (e.status === 404) state.detail = null;
    }
    if (render) renderDetail();
    return err;
  }

  // ---- selection ---------------------------------------------------------------

  function selectedFromURL() {
    const fromHash = new URLSearchParams(location.hash.slice(1)).get("node");
    return fromHash || new URLSearchParams(location.search).get("node") || "";
  }

  function select(addr) {
    if (addr === state.selected) return;
    state.selected = addr;
    state.detail = null;
    state.detailError = "";
    const query = new URLSearchParams(location.search);
    query.delete("node"); // closing must not leave a ?node= that reselects on reload
    const url = addr ? "#node=" + encodeURIComponent(addr) : location.pathname + (query.size ? "?" + query : "");
    history.replaceState(null, "", url); // replaceState: no hashchange, no history spam
    renderNodes();
    drawGraph(false);
    renderDetail();
    if (addr) loadDetail(addr);
  }

  // ---- header ------------------------------------------------------------------

  function renderHeader() {
    const s = state.status;
    const total = s ? s.nodes : state.nodes.length;
    const online = s ? s.online : state.nodes.filter((n) => n.online).length;
    if (s) {
      const a = $("#master-address");
      a.textContent = s.address || "—";
      a.title = s.public_key ? `public key ${s.public_key}` : "";
      $("#master-version").textContent = [s.version, s.report_interval_s ? `reports every ${s.report_interval_s} s` : ""].filter(Boolean).join(" · ");
    }
    $("#node-count").textContent = total;
    $("#online-count").textContent = online;
    $("#offline-count").textContent = total - online;
    $("#offline-count").parentElement.classList.toggle("zero", total - online === 0);
    $("#updated").textContent = state.lastOK ? clock(state.lastOK) : "never";
  }

  // renderNotice shows what the master found wrong with its own registry: a
  // damaged file moved aside at start (what was lost is in that file), or
  // records damaged since.
  function renderNotice() {
    const s = state.status;
    const box = $("#notice");
    const rec = s && s.registry_recovery;
    const bad = (s && s.registry_corrupt_records) || 0;
    if (!rec && !bad) {
      box.hidden = true;
      box.replaceChildren();
      return;
    }
    fill(box,
      rec && (rec.moved_to
        ? ["The registry was damaged at ", stamp(rec.time), " (", rec.reason, ") and started empty; the damaged file is ", el("code", {}, rec.moved_to), ". "]
        : ["The registry had a damaged page at ", stamp(rec.time), " (", rec.reason, "): the last changes before it may be missing. "]),
      bad > 0 && `${bad} damaged registry record${bad === 1 ? " was" : "s were"} met and left out since the master started.`);
    box.hidden = false;
  }

  // ---- node table --------------------------------------------------------------

  const problems = (n) => (n.services || []).filter((s) => s.state !== "running").length;
  const sortValue = {
    name: (n) => (n.name || "\uffff" + n.address).toLowerCase(),
    address: (n) => n.address,
    online: (n) => (n.online ? 1 : 0),
    board: (n) => n.board || "",
    version: (n) => n.version || "",
    slot: (n) => n.slot || "",
    update: (n) => updateText(n.update),
    uptime_s: (n) => n.uptime_s || 0,
    links_up: (n) => n.links_up || 0,
    last_seen: (n) => Date.parse(n.last_seen) || 0,
    services: (n) => problems(n),
  };

  function compare(a, b) {
    const f = sortValue[state.sort.key];
    const va = f(a), vb = f(b);
    const c = typeof va === "number" ? va - vb : String(va).localeCompare(String(vb), undefined, { numeric: true });
    return c * state.sort.dir || a.address.localeCompare(b.address);
  }

  function matches(n, text, st, version) {
    if (st === "online" && !n.online) return false;
    if (st === "offline" && n.online) return false;
    if (version && n.version !== version) return false;
    if (!text) return true;
    return [n.name, n.address, n.version, n.board].some((f) => (f || "").toLowerCase().includes(text));
  }

  function renderVersionFilter() {
    const sel = $("#filter-version");
    const cur = sel.value;
    const counts = new Map();
    for (const n of state.nodes) if (n.version) counts.set(n.version, (counts.get(n.version) || 0) + 1);
    if (cur && !counts.has(cur)) counts.set(cur, 0); // keep the operator's choice visible
    const versions = [...counts.keys()].sort((a, b) => b.localeCompare(a, undefined, { numeric: true }));
    // Rebuild only on change: rebuilding closes the list under the operator's mouse.
    const key = versions.map((v) => `${v}:${counts.get(v)}`).join(" ");
    if (sel.dataset.key === key) return;
    sel.dataset.key = key;
    sel.replaceChildren(el("option", { value: "" }, "all versions"),
      ...versions.map((v) => el("option", { value: v }, `${v} (${counts.get(v)})`)));
    sel.value = cur;
  }

  function renderNodes() {
    renderVersionFilter();
    const text = $("#filter-text").value.trim().toLowerCase();
    const st = $("#filter-state").value;
    const version = $("#filter-version").value;
    const rows = state.nodes.filter((n) => matches(n, text, st, version)).sort(compare);
    const masterVersion = state.status && state.status.version;
    $("#nodes tbody").replaceChildren(...rows.map((n) => el("tr", {
      class: "node-row" + (n.online ? "" : " is-offline") + (n.address === state.selected ? " selected" : ""),
      "data-address": n.address,
      tabindex: 0,
      onclick: () => select(n.address),
      onkeydown: (e) => { if (e.key === "Enter") select(n.address); },
    },
    el("td", { class: "name" }, n.name || el("span", { class: "muted" }, "(unnamed)"), dupBadge(n)),
    el("td", {}, el("code", { title: n.address }, short(n.address))),
    el("td", {}, badge(n.online)),
    el("td", {}, n.board || "—"),
    el("td", { class: masterVersion && n.version && n.version !== masterVersion ? "drift" : "", title: masterVersion && n.version !== masterVersion ? `master runs ${masterVersion}` : null }, n.version || "—"),
    el("td", {}, n.slot || "—"),
    el("td", {}, updateCell(n.update)),
    el("td", { class: "num" }, duration(n.uptime_s)),
    el("td", { class: "num" }, n.links_up ?? "—"),
    el("td", { title: n.last_seen || "" }, ago(n.last_seen)),
    el("td", {}, servicesSummary(n.services)))));
    $("#shown").textContent = rows.length === state.nodes.length ? `${rows.length} nodes` : `showing ${rows.length} of ${state.nodes.length}`;
    for (const th of document.querySelectorAll("#nodes th[data-sort]")) {
      th.classList.toggle("asc", th.dataset.sort === state.sort.key && state.sort.dir > 0);
      th.classList.toggle("desc", th.dataset.sort === state.sort.key && state.sort.dir < 0);
    }
  }

  // updateText is a node's A/B update state in a few words: a bundle coming
  // in, a trial boot pending, or the last update's outcome with its version.
  function updateText(u) {
    if (!u) return "";
    if (u.applying) return "receiving";
    if (u.trial_slot) return `trial of slot ${u.trial_slot}`;
    if (u.last_update) return `${u.last_update.result} ${u.last_update.version || ""}`.trim();
    return "";
  }

  // updateCell shows updateText, marked bad for a rollback or a refusal, with
  // the node's reason and the time in its title.
  function updateCell(u) {
    const text = updateText(u);
    if (!text) return "—";
    const last = u.last_update;
    const bad = last && !u.applying && !u.trial_slot && (last.result === "rolled back" || last.result === "refused");
    const title = last ? [last.reason, last.at && stamp(last.at), u.other_slot_version && `other slot: ${u.other_slot_version}`].filter(Boolean).join(" · ") : null;
    return el("span", { class: "update" + (bad ? " bad" : ""), title }, text);
  }

  // dupBadge flags a node whose name another node reports too: names are
  // labels, so the CLI refuses such a name and the node is reached by address.
  function dupBadge(n) {
    if (!n.duplicate_name) return null;
    const others = state.nodes.filter((o) => o.name === n.name && o.address !== n.address).map((o) => o.address);
    return el("span", { class: "badge dup", title: `also reported by ${others.join(", ") || "another node"}: use the address` }, "same name");
  }

  // ---- topology ----------------------------------------------------------------

  // FNV-1a: a stable pseudo-random number in [0,1) per address, so the layout is
  // the same on every load without a seeded generator whose sequence would shift as
  // nodes join.
  function hash(s) {
    let h = 2166136261;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
    return (h >>> 0) / 4294967296;
  }

  // graphModel merges api/graph into drawable nodes and deduplicated edges; edge
  // endpoints the master does not list become "unknown" nodes.
  function graphModel(g) {
    const nodes = new Map();
    for (const n of g.nodes || []) {
      nodes.set(n.address, { address: n.address, name: n.name || "", online: !!n.online, master: !!n.master, unknown: false });
    }
    const edges = new Map();
    for (const e of g.edges || []) {
      if (!e.from || !e.to || e.from === e.to) continue;
      for (const a of [e.from, e.to]) {
        if (!nodes.has(a)) nodes.set(a, { address: a, name: state.names.get(a) || "", online: false, master: false, unknown: true });
      }
      const [a, b] = e.from < e.to ? [e.from, e.to] : [e.to, e.from];
      const cur = edges.get(a + " " + b);
      // Both ends may report the link: it is up only if every report says so.
      if (!cur) edges.set(a + " " + b, { a, b, up: !!e.up, rtt: [e.rtt_ms], loss: [e.loss] });
      else { cur.up = cur.up && !!e.up; cur.rtt.push(e.rtt_ms); cur.loss.push(e.loss); }
    }
    const mean = (xs) => { const v = xs.filter((x) => x >= 0); return v.length ? v.reduce((s, x) => s + x, 0) / v.length : undefined; };
    for (const e of edges.values()) { e.rtt = mean(e.rtt); e.loss = mean(e.loss); }
    return { nodes, edges: [...edges.values()] };
  }

  const K = 60; // ideal edge length in layout units

  // layout runs a Fruchterman-Reingold force layout for a fixed number of
  // iterations from a deterministic start. Only the first layout moves everyone;
  // later ones move just the newcomers, so the picture does not jump on refresh.
  // The master is pinned at the origin, the anchor of every later layout. O(n²)
  // per iteration, with fewer iterations for big fleets: 300 nodes take ~150 ms.
  function layout(model) {
    const list = [...model.nodes.values()];
    for (const a of [...state.pos.keys()]) if (!model.nodes.has(a)) state.pos.delete(a);
    const fresh = new Set(list.filter((v) => !state.pos.has(v.address)).map((v) => v.address));
    if (!fresh.size) return;
    const firstTime = fresh.size === list.length;

    // Sorted adjacency: the start must not depend on the order the API lists edges.
    const adj = new Map(list.map((v) => [v.address, []]));
    for (const e of model.edges) { adj.get(e.a).push(e.b); adj.get(e.b).push(e.a); }
    for (const nbs of adj.values()) nbs.sort();
    const master = list.find((v) => v.master);
    if (master) state.pos.set(master.address, { x: 0, y: 0 });
    if (firstTime) radialStart(list, adj);
    else neighbourStart(list, adj);

    const n = list.length;
    const idx = new Map(list.map((v, i) => [v.address, i]));
    const x = new Float64Array(n), y = new Float64Array(n), mob = new Uint8Array(n);
    list.forEach((v, i) => {
      const p = state.pos.get(v.address);
      x[i] = p.x; y[i] = p.y;
      mob[i] = !v.master && (firstTime || fresh.has(v.address)) ? 1 : 0;
    });
    const E = model.edges.map((e) => [idx.get(e.a), idx.get(e.b)]);
    const dx = new Float64Array(n), dy = new Float64Array(n);
    // About 15M pair steps at most: 300 iterations up to ~220 nodes, then fewer.
    const iters = Math.max(40, Math.min(300, Math.round(1.5e7 / (n * n))));
    for (let it = 0; it < iters; it++) {
      dx.fill(0); dy.fill(0);
      for (let i = 0; i < n; i++) {
        for (let j = i + 1; j < n; j++) {
          let ex = x[i] - x[j], ey = y[i] - y[j];
          let d2 = ex * ex + ey * ey;
          if (d2 < 0.01) { ex = 0.1 * (1 + ((i + j) % 3)); ey = 0.1; d2 = ex * ex + ey * ey; }
          const f = (K * K) / d2; // repulsion K²/d, times the unit vector (e/d)
          dx[i] += ex * f; dy[i] += ey * f; dx[j] -= ex * f; dy[j] -= ey * f;
        }
      }
      for (const [a, b] of E) {
        const ex = x[a] - x[b], ey = y[a] - y[b];
        const f = Math.sqrt(ex * ex + ey * ey) / K; // attraction d²/K, times e/d
        dx[a] -= ex * f; dy[a] -= ey * f; dx[b] += ex * f; dy[b] += ey * f;
      }
      const temp = K * (1 - it / iters) + 0.5; // cooling: big moves first, then settle
      for (let i = 0; i < n; i++) {
        if (!mob[i]) continue;
        dx[i] -= x[i] * 0.02; dy[i] -= y[i] * 0.02; // weak gravity keeps islands in view
        const len = Math.hypot(dx[i], dy[i]);
        if (len > 0) { const s = Math.min(len, temp) / len; x[i] += dx[i] * s; y[i] += dy[i] * s; }
      }
    }
    list.forEach((v, i) => state.pos.set(v.address, { x: x[i], y: y[i] }));
  }

  // radialStart is the first layout's start: rings of breadth-first depth around
  // the master (or the best-connected node), each ring ordered by its parents'
  // angles, so the force layout begins untangled and needs few iterations.
  function radialStart(list, adj) {
    const byDegree = (a, b) => adj.get(b.address).length - adj.get(a.address).length || a.address.localeCompare(b.address);
    const root = (list.find((v) => v.master) || list.slice().sort(byDegree)[0]).address;
    const parent = new Map([[root, root]]);
    const rings = [[root]];
    for (let d = 0; d < rings.length; d++) {
      for (const a of rings[d]) {
        for (const nb of adj.get(a)) {
          if (parent.has(nb)) continue;
          parent.set(nb, a);
          (rings[d + 1] ||= []).push(nb);
        }
      }
    }
    // Whatever is not connected to the root goes on one more, outer ring.
    const rest = list.map((v) => v.address).filter((a) => !parent.has(a));
    if (rest.length) rings.push(rest.sort((a, b) => hash(a) - hash(b)));
    const angle = new Map([[root, 0]]);
    state.pos.set(root, { x: 0, y: 0 });
    for (let d = 1; d < rings.length; d++) {
      const ring = rings[d].sort((a, b) => (angle.get(parent.get(a)) ?? 0) - (angle.get(parent.get(b)) ?? 0) || hash(a) - hash(b));
      ring.forEach((a, i) => {
        const t = (2 * Math.PI * (i + 0.5)) / ring.length;
        angle.set(a, t);
        state.pos.set(a, { x: d * K * Math.cos(t), y: d * K * Math.sin(t) });
      });
    }
  }

  // neighbourStart places newcomers to an existing layout one edge length from a
  // placed neighbour, at an angle from their hash; nodes with no placed neighbour
  // go on an outer ring.
  function neighbourStart(list, adj) {
    const placed = new Set(state.pos.keys());
    const spread = (queue) => {
      while (queue.length) {
        const a = queue.shift(), p = state.pos.get(a);
        for (const nb of adj.get(a) || []) {
          if (placed.has(nb)) continue;
          const t = hash(nb) * 2 * Math.PI;
          state.pos.set(nb, { x: p.x + K * Math.cos(t), y: p.y + K * Math.sin(t) });
          placed.add(nb);
          queue.push(nb);
        }
      }
    };
    spread([...placed]);
    let r = K;
    for (const p of state.pos.values()) r = Math.max(r, Math.hypot(p.x, p.y) + K);
    for (const v of list) {
      if (placed.has(v.address)) continue;
      const t = hash(v.address) * 2 * Math.PI;
      state.pos.set(v.address, { x: r * Math.cos(t), y: r * Math.sin(t) });
      placed.add(v.address);
      spread([v.address]);
    }
  }

  function nodeKind(v) {
    if (v.unknown) return "unknown";
    return (v.master ? "master " : "") + (v.online ? "online" : "offline");
  }

  // drawGraph renders the laid-out graph in screen pixels (the viewBox is the
  // element's size), so circles and labels keep their size whatever the fleet's.
  function drawGraph(relayout) {
    if (!state.graph) return;
    if (relayout || !state.drawn) {
      state.drawn = graphModel(state.graph);
      layout(state.drawn);
    }
    const model = state.drawn;
    const root = $("#topology");
    const box = root.getBoundingClientRect();
    const W = Math.max(300, Math.round(box.width)), H = Math.max(240, Math.round(box.height));
    root.setAttribute("viewBox", `0 0 ${W} ${H}`);

    // Fit the layout's bounding box to the panel. The axes may stretch
    // differently, up to 1.5x, so a roundish layout fills a wide panel.
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const p of state.pos.values()) {
      x0 = Math.min(x0, p.x); x1 = Math.max(x1, p.x); y0 = Math.min(y0, p.y); y1 = Math.max(y1, p.y);
    }
    const mx = 70, my = 26; // room for labels, which hang below and spread sideways
    let sx = Math.min((W - 2 * mx) / Math.max(x1 - x0, 1), 2.5), sy = Math.min((H - 2 * my - 14) / Math.max(y1 - y0, 1), 2.5);
    sx = Math.min(sx, sy * 1.5);
    sy = Math.min(sy, sx * 1.5);
    const ox = W / 2 - ((x0 + x1) / 2) * sx, oy = (H - 14) / 2 - ((y0 + y1) / 2) * sy;
    const at = (a) => { const p = state.pos.get(a); return [ox + p.x * sx, oy + p.y * sy]; };

    const sel = state.selected;
    const edges = model.edges.map((e) => {
      const [x1, y1] = at(e.a), [x2, y2] = at(e.b);
      const cls = "edge " + (e.up ? "up" : "down") + (e.loss > 0.05 ? " lossy" : "") + (sel && (e.a === sel || e.b === sel) ? " hl" : "");
      const tip = `${nameOf(e.a)} ↔ ${nameOf(e.b)}: ${e.up ? "up" : "down"}, rtt ${ms(e.rtt)}, loss ${pct(e.loss)}`;
      return svg("line", { class: cls, x1, y1, x2, y2, "data-from": e.a, "data-to": e.b }, svg("title", {}, tip));
    });

    // Draw order puts the interesting nodes on top: unknown, online, offline, master, selected.
    const rank = (v) => (v.address === sel ? 4 : v.master ? 3 : v.unknown ? 0 : v.online ? 1 : 2);
    const list = [...model.nodes.values()].sort((a, b) => rank(a) - rank(b) || a.address.localeCompare(b.address));
    const labelAll = list.length <= 60;
    const nodes = list.map((v) => {
      const [cx, cy] = at(v.address);
      const r = (v.master ? 11 : v.unknown ? 5.5 : 8) * (list.length > 100 ? 0.7 : 1);
      const label = v.name || short(v.address);
      const showLabel = labelAll || v.master || !v.online || v.address === sel;
      const tip = `${v.name ? v.name + "\n" : ""}${v.address}\n${v.unknown ? "not registered with this master" : nodeKind(v)}`;
      return svg("g", { class: "node-g", onclick: () => select(v.address) },
        svg("circle", { class: "node " + nodeKind(v) + (v.address === sel ? " selected" : ""), cx, cy, r, "data-address": v.address }, svg("title", {}, tip)),
        showLabel && svg("text", { class: "label", x: cx, y: cy + r + 12 }, label.length > 18 ? label.slice(0, 17) + "…" : label));
    });
    fill(root, svg("g", { class: "edges" }, edges), svg("g", { class: "nodes" }, nodes));
    document.body.dataset.graph = String(nodes.length);
  }

  // ---- node detail -------------------------------------------------------------

  function section(title, ...body) {
    return el("section", { class: "sub" }, el("h3", {}, title), body);
  }

  function facts(node, report) {
    const rows = [
      ["Address", el("code", { class: "full" }, node.address)],
      ["Public key", node.public_key ? el("code", { title: node.public_key }, short(node.public_key)) : "—"],
      ["Board", node.board || report.board || "—"],
      ["Version", node.version || report.version || "—"],
      ["Slot", node.slot || report.slot || "—"],
      ["Update", updateCell(node.update)],
      ["Other slot", (node.update && node.update.other_slot_version) || "—"],
      ["Uptime", duration(node.uptime_s)],
      ["Links up", node.links_up ?? "—"],
      ["Last seen", el("span", { title: node.last_seen || "" }, `${ago(node.last_seen)} (${stamp(node.last_seen)})`)],
      ["First seen", stamp(node.first_seen)],
      ["Report seq", node.seq ?? "—"],
    ];
    // The address gets a line of its own; the rest go two to a line.
    return el("dl", { class: "facts" }, rows.map(([k, v], i) => [el("dt", {}, k), el("dd", { class: i === 0 ? "span" : null }, v)]));
  }

  function linksTable(links, colors) {
    if (!links || !links.length) return el("p", { class: "muted" }, "No links reported.");
    return el("table", { class: "mini", id: "links" },
      el("thead", {}, el("tr", {}, ["Neighbour", "State", "RTT", "Loss", "TX", "RX"].map((h, i) => el("th", { class: i > 1 ? "num" : "" }, h)))),
      el("tbody", {}, links.map((l) => el("tr", {},
        el("td", {}, el("span", { class: "swatch", style: `background:${colors.get(l.address) || "#ccc"}` }),
          el("a", { href: "#node=" + encodeURIComponent(l.address), title: l.address, onclick: (e) => { e.preventDefault(); select(l.address); } }, nameOf(l.address))),
        el("td", {}, el("span", { class: "badge " + (l.up ? "online" : "offline") }, l.up ? "up" : "down")),
        el("td", { class: "num" }, ms(l.rtt_ms)),
        el("td", { class: "num" + (l.loss > 0.05 ? " warn-text" : "") }, pct(l.loss)),
        el("td", { class: "num" }, rate(l.tx_bytes_per_s)),
        el("td", { class: "num" }, rate(l.rx_bytes_per_s))))));
  }

  function servicesTable(services) {
    if (!services || !services.length) return el("p", { class: "muted" }, "No services reported.");
    return el("table", { class: "mini" },
      el("thead", {}, el("tr", {}, el("th", {}, "Service"), el("th", {}, "State"), el("th", { class: "num" }, "Restarts"))),
      el("tbody", {}, services.map((s) => el("tr", {},
        el("td", {}, s.name),
        el("td", {}, el("span", { class: "svc " + stateClass(s.state) }, s.state)),
        el("td", { class: "num" + (s.restarts ? " warn-text" : "") }, s.restarts)))));
  }

  function historyList(history) {
    if (!history || !history.length) return el("p", { class: "muted" }, "No state changes recorded.");
    const items = history.slice().sort((a, b) => (Date.parse(b.time) || 0) - (Date.parse(a.time) || 0)).slice(0, 100);
    return el("ul", { class: "history" }, items.map((h) => el("li", {},
      el("span", { class: "time", title: h.time }, stamp(h.time)),
      el("span", { class: "event ev-" + h.event }, h.event),
      el("span", { class: "what" }, h.detail || ""))));
  }

  // niceTop rounds a chart's maximum up to 1, 2 or 5 times a power of ten, so five
  // grid steps get round labels.
  function niceTop(max) {
    if (!(max > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(max)));
    for (const m of [1, 2, 5, 10]) if (m * p >= max * 0.9999) return m * p;
    return 10 * p;
  }

  // lineChart draws one series per neighbour over the samples; a missing value
  // (no such link in a sample, or the link down) breaks the line.
  function lineChart(id, samples, addrs, colors, pick, { height, floor, unit }) {
    const W = 520, H = height, L = 46, R = 14, T = 10, B = 24;
    const times = samples.map((s) => Date.parse(s.time));
    let t0 = times[0], t1 = times[times.length - 1];
    if (t1 === t0) { t0 -= 30000; t1 += 30000; }
    const series = addrs.map((a) => samples.map((s) => {
      const l = (s.links || []).find((l) => l.address === a);
      const v = l ? pick(l) : null;
      return v === null || !(v >= 0) ? null : v;
    }));
    const top = niceTop(Math.max(floor, ...series.flat().filter((v) => v !== null)));
    const X = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
    const Y = (v) => T + (1 - v / top) * (H - T - B);
    const kids = [];
    for (let i = 0; i <= 5; i++) {
      const v = (top * i) / 5, yy = Y(v);
      kids.push(svg("line", { class: "grid", x1: L, x2: W - R, y1: yy, y2: yy }));
      kids.push(svg("text", { class: "tick", x: L - 6, y: yy + 4, "text-anchor": "end" }, `${Number(v.toPrecision(3))}${i === 5 ? " " + unit : ""}`));
    }
    const withSeconds = t1 - t0 < 5 * 60 * 1000;
    for (let i = 0; i <= 4; i++) {
      const t = t0 + ((t1 - t0) * i) / 4, d = new Date(t);
      const label = withSeconds ? clock(d) : `${pad(d.getHours())}:${pad(d.getMinutes())}`;
      kids.push(svg("text", { class: "tick", x: X(t), y: H - 6, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" }, label));
    }
    kids.push(svg("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
    kids.push(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
    series.forEach((vals, k) => {
      const color = colors.get(addrs[k]);
      let run = [];
      const flush = () => {
        if (run.length > 1) kids.push(svg("polyline", { class: "series", stroke: color, points: run.map((p) => p.join(",")).join(" ") }));
        run = [];
      };
      vals.forEach((v, i) => {
        if (v === null) { flush(); return; }
        const p = [X(times[i]).toFixed(1), Y(v).toFixed(1)];
        run.push(p);
        if (samples.length <= 40) kids.push(svg("circle", { class: "pt", cx: p[0], cy: p[1], r: 2.5, fill: color }));
      });
      flush();
    });
    return svg("svg", { id, class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img" }, kids);
  }

  function metricsCharts(metrics, addrs, colors) {
    const samples = (metrics || []).filter((s) => !isNaN(Date.parse(s.time)))
      .sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
    if (!samples.length) return el("p", { class: "muted" }, "No metric samples yet.");
    const last = samples[samples.length - 1];
    const latest = (a) => (last.links || []).find((l) => l.address === a);
    return [
      el("ul", { class: "chart-legend", id: "metrics-legend" }, addrs.map((a) => {
        const l = latest(a);
        return el("li", { title: a }, el("span", { class: "swatch", style: `background:${colors.get(a)}` }), nameOf(a),
          el("span", { class: "muted" }, l ? (l.up ? ` ${ms(l.rtt_ms)}, ${pct(l.loss)}` : " down") : " —"));
      })),
      el("div", { class: "chart-title" }, "Round-trip time"),
      lineChart("metrics-chart", samples, addrs, colors, (l) => (l.up ? l.rtt_ms : null), { height: 160, floor: 1, unit: "ms" }),
      el("div", { class: "chart-title" }, "Packet loss"),
      lineChart("loss-chart", samples, addrs, colors, (l) => l.loss * 100, { height: 100, floor: 5, unit: "%" }),
    ];
  }

  // attention lists what an operator should look at when no node is selected:
  // offline nodes, services not running, updates rolled back or refused,
  // versions that differ from the master's.
  function attention() {
    if (!state.status && !state.nodes.length) return el("p", { class: "muted" }, "Loading…");
    const masterVersion = state.status && state.status.version;
    const items = [];
    const item = (n, cls, what) => items.push(el("li", { class: cls },
      el("a", { href: "#node=" + encodeURIComponent(n.address), title: n.address, onclick: (e) => { e.preventDefault(); select(n.address); } }, n.name || short(n.address)),
      " ", what));
    const nodes = state.nodes.slice().sort((a, b) => (a.name || a.address).localeCompare(b.name || b.address, undefined, { numeric: true }));
    for (const n of nodes) if (!n.online) item(n, "bad", `offline, last seen ${ago(n.last_seen)}`);
    for (const n of nodes) if (n.duplicate_name) item(n, "warn", `shares its name with another node: reach it by address ${short(n.address)}`);
    for (const n of nodes) {
      for (const sv of n.services || []) {
        if (sv.state !== "running") item(n, stateClass(sv.state), `${sv.name} ${sv.state}${sv.restarts ? ` (${sv.restarts} restarts)` : ""}`);
      }
    }
    for (const n of nodes) {
      const last = n.update && n.update.last_update;
      if (last && (last.result === "rolled back" || last.result === "refused")) {
        item(n, "bad", `${last.result} update ${last.version || ""}: ${last.reason || "no reason given"}`);
      }
    }
    for (const n of nodes) {
      if (masterVersion && n.version && n.version !== masterVersion) item(n, "warn", `runs ${n.version}, master ${masterVersion}`);
    }
    if (!items.length) return el("p", { class: "all-good" }, "All nodes online, all services running.");
    const max = 40;
    return el("ul", { class: "attention" }, items.slice(0, max),
      items.length > max && el("li", { class: "muted" }, `and ${items.length - max} more`));
  }

  function renderDetail() {
    const panel = $("#detail");
    const addr = state.selected;
    if (!addr) {
      fill(panel, el("div", { class: "panel-head" }, el("h2", {}, "Needs attention")), attention(),
        el("p", { class: "muted hint" }, "Select a node in the table or the graph for its services, links, metrics and history."));
      delete document.body.dataset.selected;
      return;
    }
    const d = state.detail;
    const node = (d && d.node) || state.nodes.find((n) => n.address === addr) || { address: addr };
    const report = (d && d.report) || {};
    // One colour per neighbour, shared by the links table, the charts and the legend.
    const addrs = [...new Set([...(report.links || []).map((l) => l.address),
      ...((d && d.metrics) || []).flatMap((s) => (s.links || []).map((l) => l.address))])].sort();
    const colors = new Map(addrs.map((a, i) => [a, PALETTE[i % PALETTE.length]]));
    const cmd = `skyfleet ssh ${addr}\nskyfleet exec ${addr} -- uname -a`;
    fill(panel,
      el("div", { class: "panel-head" },
        el("h2", { title: addr }, node.name || short(addr)),
        node.online !== undefined && badge(node.online),
        el("button", { class: "close", title: "close", "aria-label": "close", onclick: () => select("") }, "×")),
      state.detailError && el("p", { class: "error" }, state.detailError),
      !d && !state.detailError && el("p", { class: "muted" }, "Loading…"),
      facts(node, report),
      el("div", { class: "reach" }, el("h3", {}, "Reach it"), el("pre", {}, cmd)),
      d && section("Link metrics over time", metricsCharts(d.metrics, addrs, colors)),
      d && section("Links", linksTable(report.links, colors)),
      section("Services", servicesTable(report.services || node.services)),
      d && section("History", historyList(d.history)));
    if (d) document.body.dataset.selected = addr;
  }

  // ---- remote-action log -------------------------------------------------------

  function renderLog() {
    const s = state.status;
    $("#refusals").textContent = s && (s.refusals || s.refusals_dropped)
      ? `refused reports: ${s.refusals} kept${s.refusals_dropped ? `, ${s.refusals_dropped} dropped` : ""}` : "";
    const rows = state.log.slice(0, LOG_LIMIT);
    const tbody = $("#log tbody");
    if (!rows.length) {
      tbody.replaceChildren(el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No remote actions yet.")));
      return;
    }
    tbody.replaceChildren(...rows.map((r) => el("tr", {},
      el("td", { class: "time", title: r.time }, stamp(r.time)),
      el("td", {}, r.node ? el("a", { href: "#node=" + encodeURIComponent(r.node), title: r.node, onclick: (e) => { e.preventDefault(); select(r.node); } }, nameOf(r.node)) : "—"),
      el("td", {}, el("span", { class: "action " + (r.action === "refused" ? "bad" : "") }, r.action)),
      el("td", { class: "what" }, r.detail || ""))));
  }

  // ---- start -------------------------------------------------------------------

  async function loop() {
    try {
      await refresh();
    } catch (e) {
      console.error(e);
      showErrors([{ path: "dashboard", status: -1, message: "dashboard error: " + e }]);
    } finally {
      // setTimeout after each round rather than setInterval: a slow master never
      // gets overlapping requests.
      setTimeout(loop, REFRESH_MS);
    }
  }

  function init() {
    for (const id of ["#filter-text", "#filter-state", "#filter-version"]) $(id).addEventListener("input", renderNodes);
    for (const th of document.querySelectorAll("#nodes th[data-sort]")) {
      th.addEventListener("click", () => {
        const key = th.dataset.sort;
        state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 };
        renderNodes();
      });
    }
    window.addEventListener("hashchange", () => select(selectedFromURL()));
    let frame = 0;
    window.addEventListener("resize", () => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => drawGraph(false));
    });
    state.selected = selectedFromURL();
    renderDetail();
    loop();
  }

  init();
})();
