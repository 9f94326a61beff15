// The gptkit playground page: plain JS, no build step. It talks to the app in app.py:
// GET /api/runs, GET /api/runs/NAME, POST /api/tokenize, POST /api/generate (server-sent
// events read from a fetch body, so Stop is an abort), POST /api/attention.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  runs: [], card: null, colours: ["#afd7ff", "#d7ffd7"], steps: [], ids: [], selected: null,
  controller: null, pieceCount: 0, attention: null,
  // Answers that arrive after a newer request was made are dropped by these counters.
  cardSeq: 0, viewSeq: 0, generating: false, tokenizeFailed: false,
};

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function api(path, body) {
  let init = {};
  if (body !== undefined) {
    const { signal, ...payload } = body;
    init = { method: "POST", headers: { "Content-Type": "application/json" },
             body: JSON.stringify(payload), signal };
  }
  const res = await fetch(path, init);
  if (!res.ok) {
    let detail = `${res.status} ${res.statusText}`;
    try { detail = (await res.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(detail);
  }
  return res;
}

const visible = (text) => (text === "" ? "∅" : text.replace(/\t/g, "→\t").replace(/\n/g, "↵\n"));
const escaped = (text) => JSON.stringify(text).slice(1, -1);
const runRef = () => ({ run: $("run").value, checkpoint: $("checkpoint").value });

// ---- runs and the model card ----

async function loadRuns() {
  const data = await (await api("/api/runs")).json();
  $("root").textContent = `runs from ${data.root}`;
  $("max_new_tokens").max = data.limits.max_new_tokens;
  state.runs = data.runs;
  const select = $("run");
  select.replaceChildren(...data.runs.map((r) => new Option(r.name, r.name)));
  if (!data.runs.length) { showError(`no run folders under ${data.root} yet: train one first`); return; }
  await selectRun();
}

async function selectRun() {
  const run = state.runs.find((r) => r.name === $("run").value);
  const names = run ? run.checkpoints : [];
  $("checkpoint").replaceChildren(...names.map((n) => new Option(n, n)));
  await loadCard();
}

async function loadCard() {
  showError("");
  const seq = ++state.cardSeq;
  try {
    const q = `?checkpoint=${encodeURIComponent($("checkpoint").value || "latest")}`;
    const card = await (await api(`/api/runs/${encodeURIComponent($("run").value)}${q}`)).json();
    if (seq !== state.cardSeq) return;  // another run or checkpoint was chosen meanwhile
    state.card = card;
    state.colours = card.colours;
    renderCard(card);
    fillSelect($("layer"), card.model.n_layers);
    fillSelect($("head"), card.model.n_heads);
    await tokenizePrompt();
  } catch (e) { showError(e.message); }
}

function fillSelect(select, n) {
  const keep = Math.min(Number(select.value) || 0, n - 1);
  select.replaceChildren(...Array.from({ length: n }, (_, i) => new Option(String(i), String(i))));
  select.value = String(keep);
}

function renderCard(card) {
  const m = card.model;
  const rows = [
    ["step", card.step], ["parameters", card.parameters.toLocaleString("en")],
    ["layers × heads", `${m.n_layers} × ${m.n_heads}`], ["d_model", m.d_model],
    ["context", `${m.max_seq_len} tokens`], ["positions", m.pos_encoding],
    ["tokenizer", `${card.tokenizer.type}, ${card.tokenizer.vocab_size} ids`],
    ["best val loss", card.best_val_loss == null ? "–" : card.best_val_loss.toFixed(4)],
  ];
  $("card").replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    return [dt, dd];
  }));
  $("config").textContent = card.config_yaml;
  $("curves-note").textContent = card.metrics_note || "";
  drawCurves($("curves"), card.curves);
}

function drawCurves(canvas, curves) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 42, B = 22, T = 8, R = 8;
  ctx.clearRect(0, 0, W, H);
  if (!curves) return;
  const series = [[curves.train, "#1e88e5"], [curves.val, "#e53935"]];
  const xs = series.flatMap(([s]) => s.step), ys = series.flatMap(([s]) => s.loss.filter((v) => v != null));
  if (!xs.length || !ys.length) return;
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), y0 = Math.min(...ys), y1 = Math.max(...ys, y0 + 1e-6);
  const px = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const py = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  ctx.strokeStyle = "#999"; ctx.fillStyle = "#555"; ctx.font = "10px sans-serif";
  ctx.strokeRect(L, T, W - L - R, H - T - B);
  for (const y of [y0, (y0 + y1) / 2, y1]) ctx.fillText(y.toFixed(2), 2, py(y) + 3);
  ctx.fillText(`step ${x0}`, L, H - 6);
  ctx.fillText(`${x1}`, W - R - 30, H - 6);
  for (const [s, colour] of series) {
    ctx.strokeStyle = colour; ctx.fillStyle = colour; ctx.lineWidth = 1.5; ctx.beginPath();
    let started = false;
    s.step.forEach((x, i) => {
      if (s.loss[i] == null) return;
      if (started) ctx.lineTo(px(x), py(s.loss[i])); else ctx.moveTo(px(x), py(s.loss[i]));
      started = true;
    });
    ctx.stroke();
    if (s === curves.val) s.step.forEach((x, i) => s.loss[i] != null && ctx.fillRect(px(x) - 2, py(s.loss[i]) - 2, 4, 4));
  }
}

// ---- the token view ----

let tokenizeTimer = null;
async function tokenizePrompt() {
  if (state.generating || !state.card) return;
  const seq = ++state.viewSeq;
  try {
    const res = await api("/api/tokenize", { ...runRef(), text: $("prompt").value });
    const pieces = (await res.json()).pieces;
    if (state.generating || seq !== state.viewSeq) return;  // a generation owns the view now
    if (state.tokenizeFailed) showError("");  // the prompt that could not be encoded is fixed
    state.tokenizeFailed = false;
    state.steps = []; state.pieceCount = 0;
    $("tokens").replaceChildren();
    addPieces(pieces, "prompt");
  } catch (e) { state.tokenizeFailed = true; showError(e.message); }
}

function addPieces(pieces, kind) {
  const box = $("tokens");
  for (const piece of pieces) {
    const span = document.createElement("span");
    span.className = `tok ${kind}`;
    span.textContent = visible(piece.text);
    span.style.background = state.colours[state.pieceCount++ % state.colours.length];
    span.title = `${piece.ids.length > 1 ? "ids" : "id"} ${piece.ids.join(" ")}`;
    if (kind === "gen") {
      // The steps that made this piece: generated ids are consumed in order.
      const first = state.steps.findIndex((s) => !s.placed);
      const steps = state.steps.slice(first, first + piece.ids.length);
      steps.forEach((s) => { s.placed = true; });
      span.dataset.step = String(first);
      span.addEventListener("click", () => selectToken(span, steps));
    }
    box.appendChild(span);
  }
}

function selectToken(span, steps) {
  document.querySelectorAll(".tok.selected").forEach((s) => s.classList.remove("selected"));
  span.classList.add("selected");
  state.selected = steps[0] ? steps[0].index : null;
  const rows = steps.flatMap((s) => s.top.map((c, rank) => ({ ...c, rank, chosen: c.id === s.id, step: s })));
  $("cand-title").textContent = `(step ${steps.map((s) => s.index).join(", ")})`;
  $("candidates").tBodies[0].replaceChildren(...rows.map((c) => {
    const tr = document.createElement("tr");
    if (c.chosen) tr.className = "chosen";
    tr.innerHTML = `<td>${c.rank + 1}</td><td><code></code></td><td class="muted">id ${c.id}</td>` +
      `<td>${(100 * c.p).toFixed(1)}%</td><td style="width:35%"><div class="bar"></div></td>`;
    tr.querySelector("code").textContent = `"${escaped(c.text)}"`;
    tr.querySelector(".bar").style.width = `${Math.max(1, 100 * c.p)}%`;
    return tr;
  }));
  drawAttention();
}

// ---- generation ----

function readParams() {
  const num = (id) => ($(id).value === "" ? null : Number($(id).value));
  return {
    ...runRef(), prompt: $("prompt").value, temperature: num("temperature"), top_k: num("top_k"),
    top_p: num("top_p"), seed: num("seed"), max_new_tokens: num("max_new_tokens"),
  };
}

async function generate() {
  showError("");
  clearTimeout(tokenizeTimer);
  state.generating = true; state.viewSeq++;
  $("generate").disabled = true;
  const controller = new AbortController();
  const params = readParams();
  if (params.temperature === null) params.temperature = 1.0;
  if (params.max_new_tokens === null) params.max_new_tokens = 200;
  let res;
  try {
    res = await api("/api/generate", { ...params, signal: controller.signal });
  } catch (e) {
    showError(e.message);
    state.generating = false; $("generate").disabled = false;
    return;
  }
  state.controller = controller;
  $("generate").disabled = true; $("stop").disabled = false;
  $("status").textContent = "generating…";
  const out = $("output");
  out.textContent = params.prompt;
  const gen = document.createElement("span"); gen.className = "gen"; out.appendChild(gen);
  try {
    for await (const [type, data] of events(res.body)) handle(type, data, gen);
  } catch (e) {
    if (e.name === "AbortError") $("status").textContent = `stopped after ${state.steps.length} tokens`;
    else showError(`the stream broke off: ${e.message}`);
    state.ids = state.ids.concat(state.steps.map((s) => s.id));
  } finally {
    state.controller = null; state.generating = false;
    $("generate").disabled = false; $("stop").disabled = true;
    const last = [...document.querySelectorAll(".tok.gen")].pop();
    if (last) last.click(); else drawAttention();
  }
}

async function* events(body) {
  // Server-sent events: blocks separated by a blank line, `event:` and `data:` lines.
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end); buffer = buffer.slice(end + 2);
      const type = (block.match(/^event: (.*)$/m) || [])[1];
      const data = (block.match(/^data: (.*)$/m) || [])[1];
      if (type && data) yield [type, JSON.parse(data)];
    }
  }
}

function handle(type, data, gen) {
  if (type === "start") {
    state.steps = []; state.pieceCount = 0; state.ids = data.prompt_ids; state.selected = null;
    $("tokens").replaceChildren();
    addPieces(data.prompt_pieces, "prompt");
  } else if (type === "token") {
    state.steps.push({ index: data.index, id: data.id, p: data.p, top: data.top });
    gen.textContent += data.text;
    addPieces(data.pieces, "gen");
    $("status").textContent = `generating… ${state.steps.length} tokens`;
  } else if (type === "done") {
    gen.textContent += data.text;
    addPieces(data.pieces, "gen");
    state.ids = data.ids;
    $("status").textContent = `done: ${state.steps.length} tokens (${data.reason})`;
  } else if (type === "error") {
    showError(data.message);
  }
}

// ---- attention ----

const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function viridis(v) {
  const x = Math.min(1, Math.max(0, v)) * (VIRIDIS.length - 1), i = Math.min(Math.floor(x), VIRIDIS.length - 2), f = x - i;
  const c = VIRIDIS[i].map((a, k) => Math.round(a + f * (VIRIDIS[i + 1][k] - a)));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

async function drawAttention() {
  if (!state.ids.length || !state.card) return;
  const layer = Number($("layer").value), head = Number($("head").value);
  // With a generated token selected: the context it was picked from, whose last row is the
  // query that gave its candidates; otherwise the whole text.
  const promptLen = state.ids.length - state.steps.length;
  const ids = state.selected == null ? state.ids : state.ids.slice(0, promptLen + state.selected);
  try {
    const res = await api("/api/attention", { ...runRef(), ids, layer, head });
    state.attention = await res.json();
  } catch (e) { showError(e.message); return; }
  paintAttention();
}

function paintAttention() {
  const a = state.attention, canvas = $("attention"), ctx = canvas.getContext("2d");
  const n = a.weights.length, cell = canvas.width / n;
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  a.weights.forEach((row, q) => row.forEach((w, k) => {
    ctx.fillStyle = viridis(w);
    ctx.fillRect(k * cell, q * cell, Math.ceil(cell), Math.ceil(cell));
  }));
  if (state.selected != null) {  // the query whose output gave the selected token's candidates
    ctx.strokeStyle = "#d50000"; ctx.lineWidth = 2;
    ctx.strokeRect(1, (n - 1) * cell, canvas.width - 2, Math.max(cell, 2));
  }
  canvas.dataset.drawn = `${a.layer},${a.head}`;
  const what = state.selected == null ? "the whole text" : `the context step ${state.selected} was picked from (last row, red)`;
  $("att-info").textContent = `layer ${a.layer}, head ${a.head} over ${what}: ${n} tokens` +
    (a.offset ? ` (the last ${n}; ${a.offset} earlier not shown)` : "") + "; rows: query, columns: key";
}

function attentionHover(event) {
  const a = state.attention;
  if (!a) return;
  const canvas = $("attention"), rect = canvas.getBoundingClientRect(), n = a.weights.length;
  const k = Math.floor(((event.clientX - rect.left) / rect.width) * n);
  const q = Math.floor(((event.clientY - rect.top) / rect.height) * n);
  if (q < 0 || q >= n || k < 0 || k > q) return;
  const label = (i) => `#${a.offset + i} "${a.labels[i]}" (id ${a.ids[i]})`;
  $("att-info").textContent = `query ${label(q)} → key ${label(k)}: ${a.weights[q][k].toFixed(3)}`;
}

// ---- wiring ----

$("run").addEventListener("change", selectRun);
$("checkpoint").addEventListener("change", loadCard);
$("generate").addEventListener("click", generate);
$("stop").addEventListener("click", () => state.controller && state.controller.abort());
$("layer").addEventListener("change", drawAttention);
$("head").addEventListener("change", drawAttention);
$("attention").addEventListener("mousemove", attentionHover);
$("prompt").addEventListener("input", () => {
  clearTimeout(tokenizeTimer);
  tokenizeTimer = setTimeout(tokenizePrompt, 250);
});
loadRuns().catch((e) => showError(e.message));
