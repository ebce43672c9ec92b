// Pollen chat page. Talks to the gateway with Petals' chat protocol over a WebSocket:
//   -> {"type":"open_inference_session","model":M,"max_length":L}   <- {"ok":true} | {"ok":false,"traceback":"..."}
//   -> {"type":"generate","inputs":"...", ...sampling...}            <- {"ok":true,"outputs":"piece","stop":false,"token_count":n} ... {"stop":true}
//   -> {"type":"stop"}   (the server then ends the current reply with a stop:true message)
// One session (one socket) is kept across the turns of a chat so the servers keep their attention cache.
//
// The dialogue is written as Petals' chat writes it: "Human: ...###Assistant: ...###", and a reply ends
// at "###" (the default model learned to write it) or at the end token, which the server replaces by
// "###" in the session. A session starts at 512 tokens (the servers reserve what a session may hold);
// when the conversation outgrows it ("Maximum length exceeded") the page opens one four times longer,
// up to the model's length, replays the dialogue and goes on with the reply; past the model's length it
// leaves the oldest turns out of the replay.

const STOP_SEQUENCE = "###";
const EXTRA_STOP_SEQUENCES = ["</s>"];
const ALL_STOPS = [STOP_SEQUENCE, ...EXTRA_STOP_SEQUENCES];
const DEFAULT_MAX_LENGTH = 2048;
const INITIAL_SESSION_LENGTH = 512;
const MAX_REOPENS_PER_TURN = 8;
const MODEL_RETRY_MS = 5000;

const $ = (id) => document.getElementById(id);
const ui = {
  model: $("model"),
  modelInfo: $("model-info"),
  notice: $("notice"),
  messages: $("messages"),
  emptyHint: $("empty-hint"),
  composer: $("composer"),
  prompt: $("prompt"),
  send: $("send"),
  stop: $("stop"),
  newChat: $("new-chat"),
  status: $("status"),
  temperature: $("temperature"),
  temperatureValue: $("temperature-value"),
  topP: $("top-p"),
  topPValue: $("top-p-value"),
  maxNewTokens: $("max-new-tokens"),
  greedy: $("greedy"),
};

/** Models from /v1/models: [{id, max_length}]. */
let models = [];
/** The current session: {ws, model, ready, turns, opening: {resolve, reject}|null} or null. */
let session = null;
/** Finished turns of this chat, replayed if a fresh session has to be opened: [{user, assistant}]. */
let history = [];
/** The API key a gateway started with --api-keys asks for; kept in this browser. */
let apiKey = localStorage.getItem("pollen.apiKey") || "";
/** Tokens the next session reserves; grows when the conversation outgrows it. */
let sessionLength = INITIAL_SESSION_LENGTH;
/** The reply being generated: see startTurn(). */
let turn = null;
let pageHidden = false;

// ---------------------------------------------------------------- helpers

function setState(state) {
  document.body.dataset.state = state;
  const generating = state === "generating";
  ui.send.disabled = generating || models.length === 0;
  ui.stop.disabled = !generating;
  ui.model.disabled = generating || models.length === 0;
}

function currentModel() {
  return models.find((m) => m.id === ui.model.value) || null;
}

function nearBottom() {
  const m = ui.messages;
  return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
}

function scrollToBottom(force = false) {
  if (force || nearBottom()) ui.messages.scrollTop = ui.messages.scrollHeight;
}

function addBubble(kind, text = "") {
  ui.emptyHint.hidden = true;
  const stick = nearBottom();
  const el = document.createElement("div");
  el.className = `message ${kind}`;
  el.textContent = text;
  ui.messages.appendChild(el);
  scrollToBottom(stick || kind === "user");
  return el;
}

function showError(text) {
  return addBubble("error", text);
}

function showNotice(text) {
  return addBubble("notice", text);
}

function setBanner(text, kind = "") {
  ui.notice.textContent = text || "";
  ui.notice.className = `banner ${kind}`.trim();
  ui.notice.hidden = !text;
}

/** Cuts the text at the first stop sequence; while streaming also hides a trailing partial stop sequence. */
function visibleReply(raw, final) {
  let text = raw;
  let cut = text.length;
  for (const s of ALL_STOPS) {
    const i = text.indexOf(s);
    if (i >= 0 && i < cut) cut = i;
  }
  text = text.slice(0, cut);
  if (!final) {
    for (const s of ALL_STOPS) {
      for (let n = Math.min(s.length - 1, text.length); n > 0; n--) {
        if (text.endsWith(s.slice(0, n))) {
          text = text.slice(0, text.length - n);
          break;
        }
      }
    }
  }
  text = text.replace(/^\s+/, "");
  return final ? text.replace(/\s+$/, "") : text;
}

/** The reply as it should be remembered for a replay: everything before the first stop sequence. */
function replyForHistory(raw) {
  let cut = raw.length;
  for (const s of ALL_STOPS) {
    const i = raw.indexOf(s);
    if (i >= 0 && i < cut) cut = i;
  }
  return raw.slice(0, cut);
}

function formatSeconds(ms) {
  return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

// ---------------------------------------------------------------- settings

function samplingParams() {
  const greedy = ui.greedy.checked;
  let temperature = Number.parseFloat(ui.temperature.value);
  if (!Number.isFinite(temperature)) temperature = 0.6;
  let topP = Number.parseFloat(ui.topP.value);
  if (!Number.isFinite(topP)) topP = 0.9;
  let maxNew = Number.parseInt(ui.maxNewTokens.value, 10);
  if (!Number.isFinite(maxNew) || maxNew < 1) maxNew = 128;
  maxNew = Math.min(maxNew, 4096);
  return {
    do_sample: greedy ? 0 : 1,
    temperature: Math.min(Math.max(temperature, 0), 2),
    top_p: Math.min(Math.max(topP, 0), 1),
    pollen_max_new_tokens: maxNew,
  };
}

function syncSettingsUi() {
  ui.temperatureValue.textContent = Number.parseFloat(ui.temperature.value).toFixed(2);
  ui.topPValue.textContent = Number.parseFloat(ui.topP.value).toFixed(2);
  const greedy = ui.greedy.checked;
  ui.temperature.disabled = greedy;
  ui.topP.disabled = greedy;
}

// ---------------------------------------------------------------- models

async function loadModels() {
  let list;
  try {
    const headers = { Accept: "application/json" };
    if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
    const res = await fetch("/v1/models", { headers, cache: "no-store" });
    if (res.status === 401) {
      const key = window.prompt(apiKey ? "That API key was refused. This gateway's API key:" : "This gateway asks for an API key:");
      if (key && key.trim()) {
        apiKey = key.trim();
        localStorage.setItem("pollen.apiKey", apiKey);
        loadModels();
      } else {
        setBanner("This gateway asks for an API key; reload the page to enter one.", "error");
      }
      return;
    }
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const body = await res.json();
    list = Array.isArray(body?.data) ? body.data : [];
  } catch (e) {
    setBanner(`Could not load the model list (${e.message}). Retrying…`, "error");
    setTimeout(loadModels, MODEL_RETRY_MS);
    return;
  }
  models = list
    .filter((m) => m && typeof m.id === "string")
    .map((m) => ({
      id: m.id,
      max_length: Number.isInteger(m.max_length) && m.max_length > 0 ? m.max_length : DEFAULT_MAX_LENGTH,
    }));
  const previous = ui.model.value;
  ui.model.replaceChildren(
    ...models.map((m) => {
      const o = document.createElement("option");
      o.value = m.id;
      o.textContent = m.id;
      return o;
    }),
  );
  if (models.some((m) => m.id === previous)) ui.model.value = previous;
  if (models.length === 0) {
    setBanner("No model is served by the swarm yet. This page checks again every few seconds.");
    ui.modelInfo.textContent = "No model is served by the swarm yet";
    setTimeout(loadModels, MODEL_RETRY_MS);
  } else {
    setBanner("");
    describeModel();
  }
  if (!turn) setState("idle");
}

function describeModel() {
  const m = currentModel();
  ui.modelInfo.textContent = m ? `Context length: ${m.max_length} tokens` : "";
}

// ---------------------------------------------------------------- session

function wsUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const key = apiKey ? `?api_key=${encodeURIComponent(apiKey)}` : "";
  return `${proto}//${location.host}/api/v2/generate${key}`;
}

/** Closes the current session on purpose (no notice). */
function closeSession() {
  const s = session;
  session = null;
  if (!s) return;
  s.closedOnPurpose = true;
  if (s.opening) {
    s.opening.reject(new Error("The session was closed."));
    s.opening = null;
  }
  try {
    s.ws.close(1000, "client closed the session");
  } catch {
    /* already closed */
  }
}

/** Resolves with an open, acknowledged session for the model; opens one if needed. */
function ensureSession(model) {
  if (session && session.ready && session.model === model.id && session.ws.readyState === WebSocket.OPEN) {
    return Promise.resolve(session);
  }
  closeSession();
  return new Promise((resolve, reject) => {
    let ws;
    try {
      ws = new WebSocket(wsUrl());
    } catch (e) {
      reject(e);
      return;
    }
    const length = Math.min(sessionLength, model.max_length);
    const s = { ws, model: model.id, length, ready: false, turns: 0, closedOnPurpose: false, opening: { resolve, reject } };
    session = s;
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: "open_inference_session", model: model.id, max_length: length }));
    };
    ws.onmessage = (ev) => onSocketMessage(s, ev);
    ws.onclose = (ev) => onSocketClose(s, ev);
    ws.onerror = () => {
      /* the browser reports the details; onclose follows */
    };
  });
}

function onSocketMessage(s, ev) {
  if (s !== session) return;
  let msg;
  try {
    msg = JSON.parse(ev.data);
  } catch {
    msg = { ok: false, traceback: `The server sent a message that is not JSON:\n${String(ev.data).slice(0, 500)}` };
  }
  if (s.opening) {
    const { resolve, reject } = s.opening;
    s.opening = null;
    if (msg && msg.ok) {
      s.ready = true;
      resolve(s);
    } else {
      closeSession();
      reject(new Error(msg?.traceback || "The server refused to open an inference session."));
    }
    return;
  }
  if (!turn || turn.session !== s) return; // nothing is being generated: ignore stray messages
  if (!msg || !msg.ok) {
    const traceback = msg?.traceback || "The server reported an error without a traceback.";
    if (/Maximum length exceeded/.test(traceback) && !turn.stopRequested) {
      outgrow(traceback);
    } else {
      failTurn(traceback);
    }
    return;
  }
  onPiece(msg);
}

function onSocketClose(s, ev) {
  if (s.opening) {
    s.opening.reject(
      new Error(`The connection to the gateway closed before the session opened (code ${ev.code}${ev.reason ? `: ${ev.reason}` : ""}).`),
    );
    s.opening = null;
    if (session === s) session = null;
    return;
  }
  if (session === s) session = null;
  if (s.closedOnPurpose || pageHidden) return;
  if (turn && turn.session === s) finishTurn({ interrupted: true });
  showNotice(
    `The connection to the swarm closed (code ${ev.code}${ev.reason ? `: ${ev.reason}` : ""}). ` +
      "Your next message opens a new session.",
  );
}

// ---------------------------------------------------------------- turns

function send() {
  const text = ui.prompt.value.replace(/\s+$/, "");
  if (!text.trim() || turn || document.body.dataset.state === "generating") return;
  const model = currentModel();
  if (!model) {
    showError("No model is served by the swarm yet.");
    return;
  }
  ui.prompt.value = "";
  addBubble("user", text);
  const bubble = addBubble("assistant pending");
  turn = {
    user: text,
    bubble,
    session: null,
    raw: "",
    tokens: 0,
    firstTokens: 0,
    t0: performance.now(),
    tFirst: 0,
    tLast: 0,
    stopRequested: false,
    reopens: 0,
  };
  setState("generating");
  runTurn(turn, model);
}

/** What a session is sent for the turn: on a fresh session the dialogue so far, and the reply so far. */
function turnInputs(s, t) {
  let inputs = "";
  if (s.turns === 0) {
    inputs = history.map((h) => `Human: ${h.user}${STOP_SEQUENCE}Assistant:${h.assistant}${STOP_SEQUENCE}`).join("");
  } else if (!s.endsWithStop) {
    // The last reply was cut short before its stop sequence, which the dialogue needs.
    inputs = STOP_SEQUENCE;
  }
  inputs += `Human: ${t.user}${STOP_SEQUENCE}Assistant:`;
  return s.turns === 0 ? inputs + t.raw : inputs;
}

/** Opens a session if needed and asks it for the turn's reply (or the rest of it). */
async function runTurn(t, model) {
  ui.status.textContent = "Opening a session…";
  let s;
  try {
    s = await ensureSession(model);
  } catch (e) {
    if (turn !== t) return;
    t.bubble.remove();
    showError(e.message);
    turn = null;
    ui.status.textContent = "\u00a0";
    setState("idle");
    return;
  }
  if (turn !== t) return; // new chat / stop while opening

  const inputs = turnInputs(s, t);
  s.turns += 1;
  t.session = s;
  if (!t.raw) t.t0 = performance.now();
  ui.status.textContent = t.raw ? "Continuing the reply in a longer session…" : "Waiting for the first token…";

  const request = {
    type: "generate",
    inputs,
    max_new_tokens: 1,
    stop_sequence: STOP_SEQUENCE,
    extra_stop_sequences: EXTRA_STOP_SEQUENCES,
    ...samplingParams(),
  };
  if (t.raw) {
    // What is left of the reply's token budget.
    request.pollen_max_new_tokens = Math.max(1, request.pollen_max_new_tokens - t.tokens);
  }
  try {
    s.ws.send(JSON.stringify(request));
  } catch (e) {
    failTurn(`Could not send the request: ${e.message}`);
  }
}

/**
 * The conversation outgrew its session: open a longer one (up to the model's length) or, at the
 * model's length, leave the oldest turns out, and replay the dialogue to go on with the reply.
 */
function outgrow(traceback) {
  const t = turn;
  const model = currentModel();
  const s = t.session;
  closeSession();
  if (!model || t.reopens >= MAX_REOPENS_PER_TURN) {
    failTurn(traceback);
    return;
  }
  t.reopens += 1;
  if (s.length < model.max_length) {
    sessionLength = Math.min(s.length * 4, model.max_length);
  } else if (history.length > 0) {
    const dropped = Math.ceil(history.length / 2);
    history = history.slice(dropped);
    showNotice(
      `The conversation is longer than the model's ${model.max_length} tokens: its first ${dropped} ` +
        `turn${dropped === 1 ? " is" : "s are"} left out of what the model sees from now on.`,
    );
  } else {
    failTurn(`${traceback}\nThis message and its reply do not fit the model's ${model.max_length} tokens; send a shorter one.`);
    return;
  }
  runTurn(t, model);
}

function onPiece(msg) {
  const now = performance.now();
  const piece = typeof msg.outputs === "string" ? msg.outputs : "";
  const n = Number.isFinite(msg.token_count) ? msg.token_count : piece ? 1 : 0;
  if (!turn.tFirst && (piece || n > 0)) {
    turn.tFirst = now;
    turn.firstTokens = n;
  }
  turn.tLast = now;
  turn.raw += piece;
  turn.tokens += n;
  const final = Boolean(msg.stop);
  const stick = nearBottom();
  turn.bubble.textContent = visibleReply(turn.raw, final);
  turn.bubble.classList.remove("pending");
  turn.bubble.classList.toggle("streaming", !final);
  scrollToBottom(stick);
  if (final) {
    finishTurn({});
  } else {
    ui.status.textContent = `${turn.tokens} tokens · ${speedText(turn)}`;
  }
}

function tokensPerSecond(t) {
  if (t.tFirst && t.tLast > t.tFirst && t.tokens > t.firstTokens) {
    return ((t.tokens - t.firstTokens) * 1000) / (t.tLast - t.tFirst);
  }
  if (t.tLast > t.t0 && t.tokens > 0) return (t.tokens * 1000) / (t.tLast - t.t0);
  return null;
}

function speedText(t) {
  const v = tokensPerSecond(t);
  return v === null ? "– tokens/s" : `${v.toFixed(1)} tokens/s`;
}

/** Ends the current turn, keeping what the bubble shows. */
function finishTurn({ interrupted = false }) {
  const t = turn;
  if (!t) return;
  turn = null;
  t.bubble.classList.remove("pending", "streaming");
  t.bubble.textContent = visibleReply(t.raw, true);
  if (t.stopRequested || interrupted) t.bubble.classList.add("stopped");
  if (!t.bubble.textContent && interrupted) t.bubble.remove();
  if (t.raw || !interrupted) history.push({ user: t.user, assistant: replyForHistory(t.raw) });
  // A reply that ended at "###" or at the end token (which the server replaced by "###") leaves the
  // session after the stop sequence.
  if (t.session) t.session.endsWithStop = ALL_STOPS.some((stop) => t.raw.endsWith(stop));
  const parts = [`Last reply: ${t.tokens} tokens` + (t.tLast > t.t0 ? ` in ${formatSeconds(t.tLast - t.t0)}` : "")];
  parts.push(speedText(t));
  if (t.tFirst) parts.push(`first token after ${formatSeconds(t.tFirst - t.t0)}`);
  if (t.stopRequested) parts.push("stopped");
  if (interrupted) parts.push("interrupted");
  ui.status.textContent = parts.join(" · ");
  setState("idle");
  ui.prompt.focus();
}

/** Ends the current turn with an error; the session is closed so the next message starts a clean one. */
function failTurn(traceback) {
  const t = turn;
  if (!t) return;
  turn = null;
  t.bubble.classList.remove("pending", "streaming");
  t.bubble.textContent = visibleReply(t.raw, true);
  if (!t.bubble.textContent) t.bubble.remove();
  showError(traceback);
  ui.status.textContent = "The last reply failed.";
  closeSession();
  setState("idle");
  ui.prompt.focus();
}

function stopGeneration() {
  if (!turn) return;
  turn.stopRequested = true;
  ui.stop.disabled = true;
  const s = turn.session;
  if (s && s.ws.readyState === WebSocket.OPEN) {
    ui.status.textContent = "Stopping…";
    s.ws.send(JSON.stringify({ type: "stop" }));
  } else {
    // Still opening the session: nothing was asked of the servers yet.
    const t = turn;
    turn = null;
    t.bubble.remove();
    closeSession();
    ui.status.textContent = "\u00a0";
    setState("idle");
  }
}

function newChat() {
  closeSession();
  if (turn) {
    turn = null;
  }
  history = [];
  sessionLength = INITIAL_SESSION_LENGTH;
  ui.messages.querySelectorAll(".message").forEach((el) => el.remove());
  ui.emptyHint.hidden = false;
  ui.status.textContent = "\u00a0";
  setState("idle");
  ui.prompt.focus();
}

function changeModel() {
  describeModel();
  const hadChat = ui.messages.querySelector(".message") !== null;
  closeSession();
  history = [];
  sessionLength = INITIAL_SESSION_LENGTH;
  if (hadChat) showNotice(`Switched to ${ui.model.value}. The next message starts a new conversation.`);
}

// ---------------------------------------------------------------- wiring

ui.composer.addEventListener("submit", (e) => {
  e.preventDefault();
  send();
});
ui.prompt.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});
ui.stop.addEventListener("click", stopGeneration);
ui.newChat.addEventListener("click", newChat);
ui.model.addEventListener("change", changeModel);
for (const el of [ui.temperature, ui.topP, ui.greedy]) el.addEventListener("input", syncSettingsUi);
window.addEventListener("pagehide", () => {
  pageHidden = true;
});
window.addEventListener("pageshow", () => {
  pageHidden = false;
});

syncSettingsUi();
setState("idle");
loadModels();
ui.prompt.focus();
