"use strict";
// The dashboard's script: polls this node's /cluster and /metrics, renders them, and sends
// the operator's actions (log level, keys) to this node only. Every value from the network
// is written with textContent, never parsed as HTML.

const POLL_MS = 2000;
const WINDOW_MS = 5 * 60 * 1000;
const OK_OUTCOMES = new Set(["ok", "not_found"]);
const samples = []; // {at, counts: Map(route -> {total, errors}), buckets: Map(route -> Map(le -> n))}

function $(id) { return document.getElementById(id); }

function access() {
  return {
    keyName: sessionStorage.getItem("keyName") || "X-MOSTDB-AUTH",
    keyValue: sessionStorage.getItem("keyValue") || "",
    adminToken: sessionStorage.getItem("adminToken") || "",
    contextPath: sessionStorage.getItem("contextPath") || "/mostdb",
  };
}

function loadAccess() {
  const a = access();
  $("key-name").value = a.keyName;
  $("key-value").value = a.keyValue;
  $("admin-token").value = a.adminToken;
  $("context-path").value = a.contextPath;
}

function saveAccess() {
  sessionStorage.setItem("keyName", $("key-name").value.trim());
  sessionStorage.setItem("keyValue", $("key-value").value);
  sessionStorage.setItem("adminToken", $("admin-token").value);
  sessionStorage.setItem("contextPath", $("context-path").value.trim());
  poll();
}

function headers(admin) {
  const a = access();
  const h = {};
  if (a.keyValue && a.keyName) h[a.keyName] = a.keyValue;
  if (admin && a.adminToken) h["Authorization"] = "Bearer " + a.adminToken;
  return h;
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "–" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function ms(n) { return n === undefined ? undefined : n + " ms"; }
function since(unixMs) {
  if (!unixMs) return undefined;
  const s = Math.max(0, Math.round((Date.now() - unixMs) / 1000));
  return s < 120 ? s + " s ago" : Math.round(s / 60) + " min ago";
}
function duration(seconds) {
  if (seconds === undefined) return undefined;
  if (seconds < 120) return seconds + " s";
  if (seconds < 7200) return Math.round(seconds / 60) + " min";
  return Math.round(seconds / 3600) + " h";
}

function renderMembers(result) {
  const body = $("members").tBodies[0];
  body.replaceChildren();
  for (const node of result.nodes || []) {
    const row = document.createElement("tr");
    row.dataset.member = node.url;
    cell(row, node.url + (node.self ? " (this node)" : ""));
    const state = node.state || (node.self ? "self" : "unknown");
    cell(row, state, "state state-" + state);
    cell(row, since(node.state_since_unix_ms));
    const lastFrame = node.last_frame_ms_ago ?? node.last_seen_ms_ago;
    cell(row, lastFrame === undefined || lastFrame === null ? undefined : lastFrame + " ms ago");
    cell(row, node.rtt_us === undefined ? undefined : (node.rtt_us / 1000).toFixed(2) + " ms", "num");
    cell(row, ms(node.wall_clock_offset_ms), "num");
    cell(row, ms(node.hlc_offset_ms), "num");
    cell(row, node.hints ? node.hints.pending : undefined, "num");
    cell(row, node.recovering === undefined ? undefined : (node.recovering ? "yes" : "no"));
    cell(row, node.version);
    cell(row, duration(node.uptime_s));
    cell(row, node.approximate_keys, "num");
    body.appendChild(row);
  }
  const up = result.up !== undefined ? result.up + " of " + result.members + " up" : "";
  const majority = result.available ? "majority available" : "NO MAJORITY";
  $("summary").textContent = up + ", quorum " + result.quorum + ", " + majority;
  $("summary").className = result.available ? "muted" : "error";
}

function renderMatrix(result) {
  const body = $("matrix").tBodies[0];
  body.replaceChildren();
  const matrix = result.matrix;
  if (!matrix) {
    $("matrix-note").textContent = "Each node's view of the others is not available from this node.";
    return;
  }
  $("matrix-note").textContent = "";
  const head = document.createElement("tr");
  cell(head, "");
  for (const url of matrix.nodes) cell(head, url);
  body.appendChild(head);
  matrix.nodes.forEach((url, i) => {
    const row = document.createElement("tr");
    cell(row, url);
    for (const seen of matrix.reach[i] || []) {
      const state = seen === null ? "no answer" : seen;
      cell(row, state, "state state-" + state);
    }
    body.appendChild(row);
  });
}

function renderConvergence(result) {
  const list = $("convergence");
  list.replaceChildren();
  const add = (name, value) => {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
    list.append(dt, dd);
  };
  if (result.anti_entropy) {
    for (const [name, value] of Object.entries(result.anti_entropy)) add("anti-entropy " + name, value);
  }
  if (result.clock) {
    for (const [name, value] of Object.entries(result.clock)) add("clock " + name, value);
  }
}

async function pollCluster() {
  try {
    const answer = await fetch("/cluster?view=cluster", { headers: headers(false), cache: "no-store" });
    const body = await answer.json();
    if (!body.success) throw new Error(body.message || ("HTTP " + answer.status));
    $("cluster-error").hidden = true;
    renderMembers(body.result);
    renderMatrix(body.result);
    renderConvergence(body.result);
  } catch (err) {
    $("cluster-error").hidden = false;
    $("cluster-error").textContent = "cluster view: " + err.message;
  }
}

// Prometheus text exposition: `name{a="x",b="y"} value`.
function parseMetrics(text) {
  const counts = new Map();
  const buckets = new Map();
  for (const line of text.split("\n")) {
    const m = /^(mostdb_requests_total|mostdb_request_duration_seconds_bucket)\{([^}]*)\}\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    const value = Number(m[3]);
    if (m[1] === "mostdb_requests_total") {
      const c = counts.get(labels.route) || { total: 0, errors: 0 };
      c.total += value;
      if (!OK_OUTCOMES.has(labels.outcome)) c.errors += value;
      counts.set(labels.route, c);
    } else {
      const b = buckets.get(labels.route) || new Map();
      b.set(labels.le, (b.get(labels.le) || 0) + value);
      buckets.set(labels.route, b);
    }
  }
  return { at: Date.now(), counts, buckets };
}

function quantile(deltas, q) {
  const bounds = [...deltas.keys()].filter((le) => le !== "+Inf").map(Number).sort((a, b) => a - b);
  const total = deltas.get("+Inf") || 0;
  if (total === 0) return undefined;
  for (const le of bounds) {
    if ((deltas.get(String(le)) || 0) >= q * total) return le;
  }
  return Infinity;
}

function seconds(s) {
  if (s === undefined) return undefined;
  if (s === Infinity) return "> max bucket";
  return s < 1 ? (s * 1000).toFixed(s < 0.01 ? 2 : 1) + " ms" : s.toFixed(2) + " s";
}

function renderRequests() {
  const body = $("requests").tBodies[0];
  body.replaceChildren();
  if (samples.length < 2) return;
  const first = samples[0];
  const last = samples[samples.length - 1];
  const span = (last.at - first.at) / 1000;
  for (const [route, now] of last.counts) {
    const then = first.counts.get(route) || { total: 0, errors: 0 };
    const deltas = new Map();
    for (const [le, n] of last.buckets.get(route) || []) {
      const before = (first.buckets.get(route) || new Map()).get(le) || 0;
      deltas.set(le, n - before);
    }
    const row = document.createElement("tr");
    cell(row, route);
    cell(row, ((now.total - then.total) / span).toFixed(1), "num");
    cell(row, ((now.errors - then.errors) / span).toFixed(1), "num");
    cell(row, seconds(quantile(deltas, 0.5)), "num");
    cell(row, seconds(quantile(deltas, 0.99)), "num");
    body.appendChild(row);
  }
}

async function pollMetrics() {
  try {
    const answer = await fetch("/metrics", { headers: headers(false), cache: "no-store" });
    if (!answer.ok) throw new Error("HTTP " + answer.status);
    samples.push(parseMetrics(await answer.text()));
    while (samples.length > 2 && samples[samples.length - 1].at - samples[0].at > WINDOW_MS) samples.shift();
    $("metrics-note").textContent = samples.length < 2 ? "collecting…" : "";
    renderRequests();
  } catch (err) {
    $("metrics-note").textContent = "metrics: " + err.message;
  }
}

async function setLogLevel() {
  const level = $("log-level").value;
  const out = $("log-level-result");
  try {
    const answer = await fetch("/admin/config", {
      method: "PUT",
      headers: Object.assign({ "Content-Type": "application/json" }, headers(true)),
      body: JSON.stringify({ MOSTDB_LOG_LEVEL: level }),
    });
    const body = await answer.json();
    out.textContent = body.success ? "log level now " + level : (body.message + (body.detail ? ": " + body.detail : ""));
  } catch (err) {
    out.textContent = "failed: " + err.message;
  }
}

async function kv(op) {
  const key = $("kv-key").value;
  const request = op === "set" ? { key, value: $("kv-value").value } : { key };
  const out = $("kv-result");
  try {
    const answer = await fetch(access().contextPath + "/" + op, {
      method: "POST",
      headers: Object.assign({ "Content-Type": "application/json" }, headers(false)),
      body: JSON.stringify(request),
    });
    out.textContent = await answer.text();
  } catch (err) {
    out.textContent = "failed: " + err.message;
  }
}

function poll() {
  pollCluster();
  pollMetrics();
}

loadAccess();
$("save-access").addEventListener("click", saveAccess);
$("set-log-level").addEventListener("click", setLogLevel);
for (const op of ["get", "set", "del"]) $("kv-" + op).addEventListener("click", () => kv(op));
poll();
setInterval(poll, POLL_MS);
