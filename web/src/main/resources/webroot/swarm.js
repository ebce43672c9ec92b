// Pollen swarm page: polls GET /api/v1/state every 2 s and draws, per model, which servers hold which blocks.
// Server ranges are half-open like Petals': a server with start 0 and end 3 holds blocks 0, 1 and 2.

const POLL_MS = 2000;
const FETCH_TIMEOUT_MS = 5000;

const root = document.getElementById("models");
const staleBox = document.getElementById("stale");
const updatedEl = document.getElementById("updated");

let lastGood = null; // {data, at: Date}

// ---------------------------------------------------------------- tiny DOM helper

/** h("div", {class: "x", dataset: {a: 1}, title: "t"}, child, "text", [more]) */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style") Object.assign(el.style, v);
    else el.setAttribute(k, String(v));
  }
  appendAll(el, children);
  return el;
}

function appendAll(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) appendAll(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// ---------------------------------------------------------------- formatting

const shortId = (id) => String(id ?? "").slice(0, 8);

function num(v, digits = 1) {
  return Number.isFinite(v) ? v.toFixed(digits) : "–";
}

function int(v) {
  return Number.isFinite(v) ? Math.round(v).toLocaleString("en-US") : "–";
}

function stateClass(state) {
  switch (String(state || "").toUpperCase()) {
    case "ONLINE":
      return "state-online";
    case "JOINING":
      return "state-joining";
    case "DRAINING":
      return "state-draining";
    default:
      return "state-other";
  }
}

/** Coverage colour: red without servers, else light to dark green by throughput relative to the model's best block. */
function coverageColour(cov, maxThroughput) {
  if (!cov || !(cov.servers > 0)) return "var(--cov-none)";
  const t = Number.isFinite(cov.throughput) && maxThroughput > 0 ? Math.min(cov.throughput / maxThroughput, 1) : 0;
  // Interpolate between #b7e4c1 (low) and #1a7f37 (high).
  const lo = [0xb7, 0xe4, 0xc1];
  const hi = [0x1a, 0x7f, 0x37];
  const c = lo.map((l, i) => Math.round(l + (hi[i] - l) * t));
  return `rgb(${c.join(",")})`;
}

function timeText(d) {
  return d.toLocaleTimeString("en-GB", { hour12: false });
}

// ---------------------------------------------------------------- rendering

function render(data) {
  const models = Array.isArray(data?.models) ? data.models : [];
  const gateway = renderGateway(data?.gateway);
  if (models.length === 0) {
    root.replaceChildren(...[gateway, h("p", { class: "muted" }, "No model is served by the swarm yet.")].filter(Boolean));
    return;
  }
  root.replaceChildren(...[gateway, ...models.map(renderModel)].filter(Boolean));
}

/** This gateway's admission queue: sessions open and requests waiting for one. */
function renderGateway(g) {
  if (!g) return null;
  const wait = Number.isFinite(g.mean_wait_seconds) ? `, mean wait ${num(g.mean_wait_seconds, 2)} s` : "";
  return h(
    "p",
    { class: "small", id: "gateway-queue" },
    `This gateway: ${int(g.sessions_open)} of ${int(g.max_sessions)} sessions open, ${int(g.requests_waiting)} requests waiting${wait}.`,
  );
}

/** A server's sessions: open of its most, and how many wait for room. */
function sessionsText(s) {
  if (!Number.isFinite(s.sessions_open)) return "–";
  const most = s.sessions_left >= 2147483647 ? "" : `/${int(s.sessions_open + s.sessions_left)}`;
  return `${int(s.sessions_open)}${most}${s.sessions_queued > 0 ? ` +${int(s.sessions_queued)} waiting` : ""}`;
}

function normaliseServers(model) {
  const servers = Array.isArray(model.servers) ? model.servers.slice() : [];
  servers.sort((a, b) => (a.start ?? 0) - (b.start ?? 0) || (a.end ?? 0) - (b.end ?? 0) || String(a.id).localeCompare(String(b.id)));
  return servers;
}

function renderModel(model) {
  const name = String(model.name ?? "");
  const servers = normaliseServers(model);
  const coverage = Array.isArray(model.coverage) ? model.coverage : [];
  const blocks = Number.isInteger(model.blocks) && model.blocks > 0 ? model.blocks : coverage.length;
  const covByBlock = new Map(coverage.map((c) => [c.block, c]));
  let uncovered = 0;
  for (let b = 0; b < blocks; b++) if (!(covByBlock.get(b)?.servers > 0)) uncovered++;
  const covered = uncovered === 0 && model.covered !== false;

  const badge = covered
    ? h("span", { class: "badge ok" }, "all blocks covered")
    : h("span", { class: "badge bad" }, uncovered === 1 ? "1 block uncovered" : `${uncovered || "some"} blocks uncovered`);

  return h(
    "section",
    { class: "model-card", dataset: { model: name } },
    h(
      "div",
      { class: "model-title" },
      h("h2", {}, name),
      h("span", { class: "muted small" }, `${blocks} blocks · ${servers.length} ${servers.length === 1 ? "server" : "servers"}`),
      badge,
      model.fingerprint ? h("span", { class: "muted small mono", title: "fingerprint" }, String(model.fingerprint).slice(0, 12)) : null,
    ),
    renderGrid(blocks, servers, covByBlock),
    renderTable(name, servers),
  );
}

function renderGrid(blocks, servers, covByBlock) {
  const grid = h("div", {
    class: "block-grid",
    role: "img",
    "aria-label": `Block map: ${servers.length} servers over ${blocks} blocks`,
  });
  if (blocks <= 0) return grid;
  grid.style.gridTemplateColumns = `minmax(6rem, 11rem) repeat(${blocks}, minmax(${blocks > 60 ? 4 : 10}px, 1fr))`;

  // Header row with block numbers (thinned out when there are many blocks).
  const every = blocks <= 24 ? 1 : blocks <= 60 ? 5 : 10;
  grid.append(h("div", { class: "row-label" }, "block"));
  for (let b = 0; b < blocks; b++) {
    grid.append(h("div", { class: "block-num", style: { gridColumn: `${b + 2}` } }, b % every === 0 ? String(b) : ""));
  }

  servers.forEach((s, i) => {
    const row = i + 2;
    const start = Math.max(0, Math.min(blocks, s.start ?? 0));
    const end = Math.max(start, Math.min(blocks, s.end ?? start));
    const label = s.name ? `${s.name}` : s.address || shortId(s.id);
    grid.append(h("div", { class: "row-label", style: { gridRow: `${row}` }, title: s.id }, label));
    if (end > start) {
      grid.append(
        h(
          "div",
          {
            class: `bar server ${stateClass(s.state)}`,
            dataset: { serverId: String(s.id ?? "") },
            style: { gridRow: `${row}`, gridColumn: `${start + 2} / ${end + 2}` },
            title: `${s.id}\n${s.address ?? ""}\nblocks ${start}:${end} · ${s.state ?? "?"} · ${num(s.throughput)} rps`,
          },
          `${start}:${end}`,
        ),
      );
    }
  });

  const covRow = servers.length + 2;
  let maxT = 0;
  for (const c of covByBlock.values()) if (Number.isFinite(c.throughput)) maxT = Math.max(maxT, c.throughput);
  grid.append(h("div", { class: "row-label cov-label", style: { gridRow: `${covRow}` } }, "coverage"));
  for (let b = 0; b < blocks; b++) {
    const c = covByBlock.get(b);
    const servers = c?.servers ?? 0;
    grid.append(
      h("div", {
        class: "cov-cell",
        dataset: { block: String(b), servers: String(servers) },
        style: { gridRow: `${covRow}`, gridColumn: `${b + 2}`, background: coverageColour(c, maxT) },
        title: `block ${b}: ${servers} ${servers === 1 ? "server" : "servers"}, ${num(c?.throughput)} rps`,
      }),
    );
  }
  return grid;
}

function renderRtts(s, byId) {
  const rtts = s.rtts_ms && typeof s.rtts_ms === "object" ? Object.entries(s.rtts_ms) : [];
  if (rtts.length === 0) return h("span", { class: "muted" }, "–");
  // Servers that start where this one ends are the ones a client hops to next: list them first.
  const rank = ([id, ms]) => {
    const other = byId.get(id);
    return [other && other.start === s.end ? 0 : 1, Number.isFinite(ms) ? ms : Infinity];
  };
  rtts.sort((a, b) => {
    const [ra, ma] = rank(a);
    const [rb, mb] = rank(b);
    return ra - rb || ma - mb;
  });
  return h(
    "div",
    { class: "rtts" },
    rtts.map(([id, ms]) => h("span", { title: id }, `${shortId(id)} ${num(ms, ms < 10 ? 1 : 0)}`)),
  );
}

function renderTable(name, servers) {
  const byId = new Map(servers.map((s) => [String(s.id), s]));
  const tbody = h("tbody", { id: `servers-${name}` });
  if (servers.length === 0) {
    tbody.append(h("tr", { class: "empty-row" }, h("td", { colspan: "9" }, "No server holds blocks of this model.")));
  }
  for (const s of servers) {
    const id = String(s.id ?? "");
    const details = [id, s.name ? `name: ${s.name}` : null, s.dtype ? `dtype: ${s.dtype}` : null, s.quant && s.quant !== "none" ? `weights: ${s.quant}` : null, s.version ? `version: ${s.version}` : null]
      .filter(Boolean)
      .join("\n");
    tbody.append(
      h(
        "tr",
        { class: "server", dataset: { serverId: id } },
        h("td", { class: "mono", title: details }, shortId(id), s.name ? h("span", { class: "muted" }, ` ${s.name}`) : null),
        h("td", { class: "mono" }, s.address ?? "–"),
        h("td", { class: "mono" }, `${s.start ?? "?"}:${s.end ?? "?"}`),
        h("td", {}, h("span", { class: `state-pill ${stateClass(s.state)}` }, String(s.state ?? "?").toLowerCase())),
        h("td", { class: "num" }, num(s.throughput)),
        h("td", { class: "num" }, num(s.inference_rps, 0)),
        h("td", { class: "num" }, int(s.cache_tokens_left)),
        h("td", { class: "num" }, sessionsText(s)),
        h("td", {}, renderRtts(s, byId)),
      ),
    );
  }
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "servers" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", {}, "Server"),
          h("th", {}, "Address"),
          h("th", {}, "Blocks"),
          h("th", {}, "State"),
          h("th", { class: "num", title: "forward-pass throughput, requests per second" }, "Throughput (rps)"),
          h("th", { class: "num", title: "inference steps per second" }, "Inference (rps)"),
          h("th", { class: "num", title: "attention-cache tokens still free" }, "Cache left (tokens)"),
          h("th", { class: "num", title: "sessions open of the most it holds, and those waiting for room" }, "Sessions"),
          h("th", { title: "round-trip times to other servers, next hops first" }, "RTTs (ms)"),
        ),
      ),
      tbody,
    ),
  );
}

// ---------------------------------------------------------------- polling

async function fetchState() {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), FETCH_TIMEOUT_MS);
  try {
    const res = await fetch("/api/v1/state", { headers: { Accept: "application/json" }, cache: "no-store", signal: ctrl.signal });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return await res.json();
  } catch (e) {
    throw new Error(e.name === "AbortError" ? "timed out" : e.message);
  } finally {
    clearTimeout(timer);
  }
}

async function poll() {
  try {
    const data = await fetchState();
    lastGood = { data, at: new Date() };
    staleBox.hidden = true;
    root.classList.remove("stale");
    render(data);
    const when = data?.updated ? new Date(data.updated) : null;
    updatedEl.textContent =
      when && !Number.isNaN(when.getTime()) ? `Swarm state from ${timeText(when)}.` : `Fetched at ${timeText(lastGood.at)}.`;
  } catch (e) {
    staleBox.hidden = false;
    root.classList.toggle("stale", Boolean(lastGood));
    staleBox.textContent = lastGood
      ? `Could not refresh the swarm state (${e.message}); showing data fetched at ${timeText(lastGood.at)}. Retrying…`
      : `Could not load the swarm state (${e.message}). Retrying…`;
    if (!lastGood) root.replaceChildren(h("p", { class: "muted" }, "No data yet."));
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
