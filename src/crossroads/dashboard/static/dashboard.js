// Crossroads dashboard: every figure comes from the management API, called
// with the management secret kept in this tab's sessionStorage.
"use strict";

const API = "/v0/management/";
const STORE = "crossroads.management";
const COLORS = ["#2557d6", "#e07b00", "#1a7f37", "#c62828", "#7b3fc4", "#0a8a8a", "#b8860b", "#d6336c", "#5f6670"];
const KINDS = [["input_tokens", "input"], ["output_tokens", "output"], ["cached_tokens", "cached"],
               ["reasoning_tokens", "reasoning"]];
const $ = (id) => document.getElementById(id);
let current = "accounts";
let timer = null;

function secret() { return sessionStorage.getItem(STORE) || ""; }

function say(text, ok) {
  const notice = $("notice");
  notice.textContent = text || "";
  notice.className = ok ? "ok" : "";
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body, raw) {
  if (!secret()) throw new ApiError(0, "Enter the management key above.");
  const headers = {"X-Management-Key": secret()};
  let payload = body;
  if (body !== undefined && !raw) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  let response;
  try {
    response = await fetch(API + path, {method, headers, body: payload, cache: "no-store"});
  } catch (err) {
    throw new ApiError(0, "The router did not answer: " + err.message);
  }
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const message = data && data.error ? (data.error.message || data.error) : String(data || response.statusText);
    if (response.status === 401) say("Wrong management key.");
    throw new ApiError(response.status, message);
  }
  return data;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function result(id, text, ok) {
  const node = $(id);
  node.textContent = text;
  node.className = ok ? "success" : "error";
}

function emptyRow(body, columns, text) {
  body.replaceChildren(el("tr", {}, el("td", {class: "empty", colspan: String(columns)}, text)));
}

function duration(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  if (seconds >= 3600) return Math.floor(seconds / 3600) + "h " + Math.floor((seconds % 3600) / 60) + "m";
  if (seconds >= 60) return Math.floor(seconds / 60) + "m " + (seconds % 60) + "s";
  return seconds + "s";
}

// ---------------------------------------------------------------- accounts

async function loadAccounts() {
  const {accounts} = await api("GET", "accounts");
  const body = $("accounts-rows");
  if (!accounts.length) { emptyRow(body, 7, "No accounts configured."); return; }
  const now = Date.now();
  body.replaceChildren(...accounts.map((a) => {
    const cooling = el("td", {});
    for (const cd of a.cooldowns) {
      cooling.append(el("div", {title: cd.reason},
        el("span", {class: "countdown", "data-until": String(now + cd.seconds_left * 1000)}, duration(cd.seconds_left)),
        " ", el("span", {class: "muted"}, cd.model === "*" ? "all models" : cd.model)));
    }
    if (!a.cooldowns.length) cooling.append(el("span", {class: "muted"}, "—"));
    const quota = a.quota
      ? el("span", {}, Math.round(a.quota.remaining_fraction * 100) + "% left, resets in ",
        el("span", {class: "countdown", "data-until": String(now + a.quota.resets_in * 1000)}, duration(a.quota.resets_in)))
      : el("span", {class: "muted"}, "unknown");
    const actions = el("td", {});
    if (a.auth_file) {
      actions.append(el("button", {class: "toggle", onclick: () => toggle(a.auth_file, !a.disabled)},
        a.disabled ? "Enable" : "Disable"));
    }
    if (a.needs_login) actions.append(" ", el("button", {onclick: () => show("logins")}, "Log in again"));
    return el("tr", {"data-account": a.id},
      el("td", {}, a.label), el("td", {}, a.provider),
      el("td", {}, el("span", {class: "badge status-" + a.status}, a.status.replace("_", " "))),
      cooling, el("td", {}, quota), el("td", {}, a.models), actions);
  }));
}

async function toggle(name, disabled) {
  try {
    await api("PATCH", "auth-files/status", {name, disabled});
    say((disabled ? "Disabled " : "Enabled ") + name, true);
    setTimeout(() => refresh(), 300);
  } catch (err) { say(err.message); }
}

function tick() {
  const now = Date.now();
  for (const node of document.querySelectorAll(".countdown")) {
    const left = (Number(node.dataset.until) - now) / 1000;
    node.textContent = left > 0 ? duration(left) : "over";
  }
}

// ---------------------------------------------------------------- usage

function buckets(since) {
  const hourly = since === "24h";
  const step = hourly ? 3600e3 : 86400e3;
  const count = hourly ? 24 : since === "7d" ? 7 : 30;
  const end = Math.floor(Date.now() / step) * step;
  const keys = [];
  for (let i = count - 1; i >= 0; i--) {
    const iso = new Date(end - i * step).toISOString();
    keys.push(hourly ? iso.slice(0, 13) : iso.slice(0, 10));
  }
  return {keys, field: hourly ? "hour" : "day"};
}

function barChart(target, labels, series) {
  const width = 600, height = 220, left = 44, bottom = 22, top = 8;
  const totals = labels.map((_, i) => series.reduce((sum, s) => sum + s.values[i], 0));
  const max = Math.max(1, ...totals);
  const slot = (width - left - 4) / labels.length;
  const scale = (height - bottom - top) / max;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  for (const fraction of [0, 0.5, 1]) {
    const y = height - bottom - fraction * max * scale;
    add("line", {x1: left, x2: width, y1: y, y2: y, stroke: "#d9dde3"});
    add("text", {x: left - 4, y: y + 4, "text-anchor": "end", "font-size": 11, fill: "#5f6670"}, compact(fraction * max));
  }
  labels.forEach((label, i) => {
    let y = height - bottom;
    for (const s of series) {
      const h = s.values[i] * scale;
      if (h > 0) {
        const bar = add("rect", {x: left + i * slot + slot * 0.12, y: y - h, width: Math.max(1, slot * 0.76), height: h, fill: s.color});
        const tip = document.createElementNS(ns, "title");
        tip.textContent = `${label} ${s.name}: ${s.values[i]}`;
        bar.append(tip);
        y -= h;
      }
    }
    const every = Math.ceil(labels.length / 8);
    if (i % every === 0) {
      add("text", {x: left + i * slot + slot / 2, y: height - 6, "text-anchor": "middle", "font-size": 11, fill: "#5f6670"},
        label.length > 10 ? label.slice(11) + "h" : label.slice(5));
    }
  });
  const legend = el("div", {class: "legend"}, ...series.map((s) => {
    const swatch = el("i", {});
    swatch.style.background = s.color;
    return el("span", {}, swatch, s.name);
  }));
  target.replaceChildren(svg, legend);
}

function compact(n) {
  if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (n >= 1e3) return (n / 1e3).toFixed(1) + "k";
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

async function loadUsage() {
  const since = $("usage-window").value;
  const by = $("usage-by").value;
  const {keys, field} = buckets(since);
  const {rows} = await api("GET", `usage?since=${since}&group=${field},${by}`);
  const index = new Map(keys.map((k, i) => [k, i]));
  const names = [...new Set(rows.map((r) => String(r[by] ?? "—")))];
  const perName = (metric) => names.map((name, n) => {
    const values = keys.map(() => 0);
    for (const r of rows) if (String(r[by] ?? "—") === name && index.has(r[field])) values[index.get(r[field])] += r[metric];
    return {name, color: COLORS[n % COLORS.length], values};
  });
  barChart($("chart-requests"), keys, perName("requests"));
  barChart($("chart-errors"), keys, perName("failed"));
  barChart($("chart-tokens"), keys, KINDS.map(([metric, name], n) => {
    const values = keys.map(() => 0);
    for (const r of rows) if (index.has(r[field])) values[index.get(r[field])] += r[metric];
    return {name, color: COLORS[n], values};
  }));
  $("usage-dim").textContent = {model: "Model", key: "Client key", account: "Account"}[by];
  const totals = new Map();
  for (const r of rows) {
    const name = String(r[by] ?? "—");
    const t = totals.get(name) || {requests: 0, failed: 0, input_tokens: 0, output_tokens: 0, cached_tokens: 0, reasoning_tokens: 0};
    for (const k of Object.keys(t)) t[k] += r[k] || 0;
    totals.set(name, t);
  }
  const body = $("usage-rows");
  if (!totals.size) { emptyRow(body, 7, "No requests in this window."); return; }
  body.replaceChildren(...[...totals].map(([name, t]) => el("tr", {}, el("td", {}, name), el("td", {}, t.requests),
    el("td", {}, t.failed), el("td", {}, t.input_tokens), el("td", {}, t.output_tokens),
    el("td", {}, t.cached_tokens), el("td", {}, t.reasoning_tokens))));
}

// ---------------------------------------------------------------- live request log

async function loadRequests() {
  if ($("requests-paused").checked) return;
  const {requests} = await api("GET", "requests?limit=100");
  const body = $("requests-rows");
  if (!requests.length) { emptyRow(body, 8, "No requests yet."); return; }
  body.replaceChildren(...requests.map((r) => el("tr", {"data-request": r.request_id},
    el("td", {}, new Date(r.ts * 1000).toLocaleTimeString()), el("td", {}, el("code", {}, r.request_id)),
    el("td", {}, r.client), el("td", {}, r.model ?? "—"), el("td", {}, r.account ?? "—"),
    el("td", {class: r.failed ? "error" : ""}, r.status), el("td", {}, Math.round(r.latency_ms) + " ms"),
    el("td", {}, (r.input_tokens ?? "?") + " / " + (r.output_tokens ?? "?")))));
}

// ---------------------------------------------------------------- logins

let loginState = null;
let loginPoll = null;

async function loadLogins() {
  const {logins, imports} = await api("GET", "logins");
  const fill = (select, items, text) => {
    const chosen = select.value;
    select.replaceChildren(...items.map((item) => el("option", {value: item.name}, text(item))));
    if (chosen) select.value = chosen;
  };
  fill($("login-name"), logins, (l) => `${l.name} (${l.flow})`);
  fill($("import-name"), imports.flatMap((i) => i.options.map((o) => ({name: i.name + "|" + o, label: `${i.name}: ${o}`}))),
    (i) => i.label);
}

async function startLogin() {
  clearInterval(loginPoll);
  $("login-result").textContent = "";
  try {
    const started = await api("GET", `${encodeURIComponent($("login-name").value)}-auth-url`);
    loginState = started.state;
    $("login-steps").hidden = false;
    $("login-link").href = started.url;
    $("login-link").textContent = started.url;
    const device = Boolean(started.user_code);
    $("login-code").hidden = !device;
    $("login-paste").hidden = device;
    $("login-code").textContent = started.user_code || "";
    $("login-instructions").textContent = device
      ? "Open the page below and enter this code; this page notices when you are done."
      : "Open the page below and sign in. Then paste the address the browser landed on (it may show an error page) and finish.";
    loginPoll = setInterval(pollLogin, 2000);
  } catch (err) { result("login-result", err.message); }
}

async function pollLogin() {
  if (!loginState) return;
  try {
    const status = await api("GET", "get-auth-status?state=" + encodeURIComponent(loginState));
    if (status.status === "ok") loginDone(status.accounts);
    else if (status.status === "error") { clearInterval(loginPoll); result("login-result", status.error); }
  } catch (err) { clearInterval(loginPoll); result("login-result", err.message); }
}

function loginDone(accounts) {
  clearInterval(loginPoll);
  loginState = null;
  $("login-steps").hidden = true;
  result("login-result", "Logged in: " + (accounts || []).join(", "), true);
}

async function finishLogin() {
  try {
    const done = await api("POST", "oauth-callback", {redirect_url: $("login-redirect").value.trim()});
    $("login-redirect").value = "";
    loginDone(done.accounts);
  } catch (err) { result("login-result", err.message); }
}

async function upload() {
  const file = $("upload-file").files[0];
  if (!file) { result("upload-result", "Choose a file first."); return; }
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const done = await api("POST", "auth-files", form, true);
    result("upload-result", "Stored " + done.name, true);
  } catch (err) { result("upload-result", err.message); }
}

async function importLogin() {
  const [name, option] = $("import-name").value.split("|");
  try {
    const done = await api("POST", `${encodeURIComponent(name)}-import`, {[option]: $("import-value").value.trim()});
    $("import-value").value = "";
    result("import-result", "Stored: " + done.accounts.join(", "), true);
  } catch (err) { result("import-result", err.message); }
}

// ---------------------------------------------------------------- client keys

async function loadKeys() {
  const data = await api("GET", "api-keys");
  const keys = data["api-keys"] || [];
  const list = $("keys-list");
  if (!keys.length) { list.replaceChildren(el("li", {class: "muted"}, "No client keys: the router is open to anyone.")); return; }
  list.replaceChildren(...keys.map((key, index) => el("li", {}, el("code", {}, key),
    el("button", {onclick: () => removeKey(index)}, "Remove"))));
}

function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return "sk-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function addKey() {
  const key = $("key-new").value.trim() || newKey();
  try {
    await api("PATCH", "api-keys", {old: "", new: key});
    $("key-new").value = "";
    result("keys-result", "Added. Copy it now, it is shown masked from here on: " + key, true);
    await loadKeys();
  } catch (err) { result("keys-result", err.message); }
}

async function removeKey(index) {
  if (!confirm("Remove this client key? Clients using it are refused at once.")) return;
  try {
    await api("DELETE", "api-keys?index=" + index);
    result("keys-result", "Removed.", true);
    await loadKeys();
  } catch (err) { result("keys-result", err.message); }
}

// ---------------------------------------------------------------- config

async function loadConfig() {
  $("config-text").value = await api("GET", "config.yaml");
  $("config-result").textContent = "";
}

async function saveConfig() {
  const text = $("config-text").value;
  $("config-result").textContent = "Applying…";
  $("config-result").className = "muted";
  try {
    await api("PUT", "config.yaml", text, true);
    result("config-result", "Applied.", true);
  } catch (err) { result("config-result", err.message); }
}

// ---------------------------------------------------------------- tabs

const LOADERS = {accounts: loadAccounts, usage: loadUsage, requests: loadRequests, logins: loadLogins,
                 keys: loadKeys, config: loadConfig};
const LIVE = {accounts: 5000, usage: 30000, requests: 2000};

async function refresh() {
  if (!secret()) { say("Enter the management key above.", true); return; }
  try {
    await LOADERS[current]();
    if ($("notice").textContent && $("notice").className !== "ok") say("");
  } catch (err) { say(err.message); }
}

function show(tab) {
  current = tab;
  for (const button of document.querySelectorAll("#tabs button")) button.classList.toggle("active", button.dataset.tab === tab);
  for (const section of document.querySelectorAll("section.tab")) section.hidden = section.id !== tab;
  history.replaceState(null, "", "#" + tab);
  clearInterval(timer);
  refresh();
  if (LIVE[tab]) timer = setInterval(() => { if (!document.hidden) refresh(); }, LIVE[tab]);
}

function start() {
  for (const button of document.querySelectorAll("#tabs button")) button.addEventListener("click", () => show(button.dataset.tab));
  $("signin").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(STORE, $("secret").value);
    $("secret").value = "";
    say("");
    show(current);
  });
  $("signout").addEventListener("click", () => { sessionStorage.removeItem(STORE); say("Key forgotten.", true); });
  $("reset-cooldowns").addEventListener("click", async () => {
    try { await api("POST", "reset-quota"); await loadAccounts(); say("Cooldowns reset.", true); } catch (err) { say(err.message); }
  });
  $("usage-window").addEventListener("change", refresh);
  $("usage-by").addEventListener("change", refresh);
  $("login-start").addEventListener("click", startLogin);
  $("login-finish").addEventListener("click", finishLogin);
  $("upload-send").addEventListener("click", upload);
  $("import-send").addEventListener("click", importLogin);
  $("key-add").addEventListener("click", addKey);
  $("config-reload").addEventListener("click", () => loadConfig().catch((err) => say(err.message)));
  $("config-save").addEventListener("click", saveConfig);
  setInterval(tick, 1000);
  const wanted = location.hash.slice(1);
  show(LOADERS[wanted] ? wanted : "accounts");
}

document.addEventListener("DOMContentLoaded", start);
