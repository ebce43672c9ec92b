#!/usr/bin/env node
// End-to-end check of the Pollen web pages in headless Chromium.
//
//   node e2e.mjs <baseUrl> <screenshotDir>
//
// Environment:
//   CHROMIUM         path of the browser (default /usr/bin/chromium; install.sh installs it)
//   EXPECT_SERVERS   if set, the swarm page must list exactly this many distinct servers
//   E2E_TIMEOUT_MS   overall limit (default 120000)
//
// Chat page: picks the first model, sends "Hello, swarm", checks that the reply streams in (the assistant
// bubble shows at least two different non-empty lengths while the page is generating), that the stop
// sequence is not shown, then sends a second turn over the same WebSocket session. With LONG_CHAT set,
// it goes on to ten turns whose dialogue outgrows the first session of 512 tokens: the page must open
// a longer one and carry on, with no error and no notice.
// Swarm page: waits for server rows and counts distinct data-server-id values.
// Any console error or uncaught page error fails the run. Prints one JSON line; exit 0 on success, 1 on failure.

import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const [baseArg, shotArg] = process.argv.slice(2);
if (!baseArg || !shotArg) {
  console.error("usage: node e2e.mjs <baseUrl> <screenshotDir>");
  process.exit(2);
}
const baseUrl = baseArg.replace(/\/+$/, "");
const shotDir = path.resolve(shotArg);
const overallMs = Number(process.env.E2E_TIMEOUT_MS || 120_000);
const expectServers = process.env.EXPECT_SERVERS ? Number(process.env.EXPECT_SERVERS) : null;
if (expectServers !== null && !Number.isInteger(expectServers)) {
  console.error(`EXPECT_SERVERS must be an integer, got ${process.env.EXPECT_SERVERS}`);
  process.exit(2);
}
const started = Date.now();
const log = (...a) => console.error(`[e2e +${((Date.now() - started) / 1000).toFixed(1)}s]`, ...a);

let browser = null;
let failed = false;

async function fail(reason) {
  if (failed) return;
  failed = true;
  reason = String(reason).replace(/\u001b\[[0-9;]*m/g, "").trim();
  console.log(JSON.stringify({ ok: false, reason, elapsed_ms: Date.now() - started }));
  console.error(`FAILED: ${reason}`);
  try {
    await Promise.race([browser?.close(), new Promise((r) => setTimeout(r, 3000))]);
  } catch {
    /* ignore */
  }
  process.exit(1);
}

const hardTimer = setTimeout(() => fail(`overall timeout of ${overallMs} ms reached`), overallMs);

/** Rejects as soon as the page reports a console error or an uncaught error. */
let rejectOnPageError;
const pageErrorPromise = new Promise((_, reject) => {
  rejectOnPageError = reject;
});
pageErrorPromise.catch(() => {}); // handled in race()
const pageErrors = [];

function watch(page, label) {
  page.on("console", (msg) => {
    if (msg.type() === "error") {
      const loc = msg.location();
      const text = `${label}: console error: ${msg.text()}${loc?.url ? ` (${loc.url}:${loc.lineNumber})` : ""}`;
      pageErrors.push(text);
      rejectOnPageError(Object.assign(new Error(text), { pageError: true }));
    }
  });
  page.on("pageerror", (err) => {
    const text = `${label}: page error: ${err.message}`;
    pageErrors.push(text);
    rejectOnPageError(Object.assign(new Error(text), { pageError: true }));
  });
}

/** Runs a step, failing early on a page error. */
function race(promise) {
  return Promise.race([promise, pageErrorPromise]);
}

/** A catch handler that replaces a step's timeout by a readable reason but keeps page errors as they are. */
function because(reason) {
  return (e) => {
    if (e?.pageError) throw e;
    throw new Error(typeof reason === "function" ? reason(e) : reason);
  };
}

async function main() {
  fs.mkdirSync(shotDir, { recursive: true });
  const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
  if (!fs.existsSync(executablePath)) throw new Error(`no browser at ${executablePath}; run install.sh or set CHROMIUM`);
  browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--headless=new"] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });

  // ------------------------------------------------------------ chat page
  const chat = await context.newPage();
  watch(chat, "chat");
  const sockets = [];
  chat.on("websocket", (ws) => {
    const rec = { url: ws.url(), sent: [], received: 0, closed: false };
    sockets.push(rec);
    ws.on("framesent", (f) => {
      try {
        rec.sent.push(JSON.parse(typeof f.payload === "string" ? f.payload : f.payload.toString()));
      } catch {
        rec.sent.push({ unparsable: String(f.payload) });
      }
    });
    ws.on("framereceived", () => rec.received++);
    ws.on("close", () => (rec.closed = true));
  });

  log(`opening ${baseUrl}/`);
  const resp = await race(chat.goto(`${baseUrl}/`, { waitUntil: "domcontentloaded" }));
  if (!resp || !resp.ok()) throw new Error(`GET ${baseUrl}/ answered ${resp ? resp.status() : "nothing"}`);
  await race(chat.waitForFunction(() => document.querySelectorAll("#model option").length > 0, null, { timeout: 30_000 }))
    .catch(because((e) => `the model list stayed empty: ${e.message.split("\n")[0]}`));
  const model = await chat.$eval("#model", (s) => s.value);
  log(`model: ${model}`);

  // Record the lengths the last assistant bubble goes through while the page is generating.
  await chat.evaluate(() => {
    window.__e2e = { lengths: [] };
    const messages = document.getElementById("messages");
    new MutationObserver(() => {
      const bubbles = messages.querySelectorAll(".message.assistant");
      const last = bubbles[bubbles.length - 1];
      if (!last) return;
      const n = last.textContent.length;
      const rec = window.__e2e.lengths;
      if (document.body.dataset.state === "generating" && n > 0 && rec[rec.length - 1]?.n !== n) {
        rec.push({ turn: bubbles.length, n });
      }
    }).observe(messages, { subtree: true, childList: true, characterData: true });
  });

  async function turn(n, text) {
    log(`turn ${n}: sending ${JSON.stringify(text)}`);
    await chat.fill("#prompt", text);
    await chat.click("#send");
    await race(
      chat.waitForFunction((k) => document.querySelectorAll(".message.user").length >= k, n, { timeout: 10_000 }),
    ).catch(because(`turn ${n}: no user bubble appeared after clicking Send`));
    await race(
      chat.waitForFunction(
        (k) => {
          const b = document.querySelectorAll(".message.assistant")[k - 1];
          return (b && b.textContent.trim().length > 0) || document.querySelector(".message.error");
        },
        n,
        { timeout: 60_000 },
      ),
    ).catch(because(`turn ${n}: no reply text within 60 s`));
    await race(chat.waitForSelector("body[data-state=idle]", { timeout: 60_000 })).catch(
      because(`turn ${n}: the page did not return to idle within 60 s`),
    );
    const errorText = await chat.$$eval(".message.error", (els) => els.map((e) => e.textContent).join("\n---\n"));
    if (errorText) throw new Error(`turn ${n}: error bubble: ${errorText.slice(0, 800)}`);
    const noticeText = await chat.$$eval(".message.notice", (els) => els.map((e) => e.textContent).join("\n"));
    if (noticeText) throw new Error(`turn ${n}: notice shown: ${noticeText.slice(0, 400)}`);
    if (await chat.$(".message.assistant.stopped")) throw new Error(`turn ${n}: the reply was cut off (interrupted)`);
    const reply = await chat.$$eval(".message.assistant", (els, k) => els[k - 1]?.textContent ?? "", n);
    if (!reply.trim()) throw new Error(`turn ${n}: the assistant bubble is empty after the reply ended`);
    if (reply.includes("###") || reply.includes("</s>")) throw new Error(`turn ${n}: the stop sequence is shown in the reply: ${JSON.stringify(reply)}`);
    const lengths = await chat.evaluate((k) => window.__e2e.lengths.filter((r) => r.turn === k).map((r) => r.n), n);
    const distinct = new Set(lengths).size;
    if (distinct < 2) {
      throw new Error(
        `turn ${n}: the reply did not stream (saw ${distinct} distinct non-empty length(s) while generating: ${JSON.stringify(lengths)})`,
      );
    }
    const status = (await chat.textContent("#status")).trim();
    log(`turn ${n}: reply ${JSON.stringify(reply)} (${distinct} streamed lengths; status "${status}")`);
    return { reply, streamed_lengths: distinct, status };
  }

  const first = await turn(1, "Hello, swarm");
  await chat.screenshot({ path: path.join(shotDir, "chat.png"), fullPage: true });
  const second = await turn(2, "What can you do?");

  // The session must be kept: one socket, one open_inference_session, two generate requests.
  const opens = sockets.flatMap((s) => s.sent.filter((m) => m.type === "open_inference_session"));
  const generates = sockets.flatMap((s) => s.sent.filter((m) => m.type === "generate"));
  if (sockets.length !== 1) throw new Error(`expected one WebSocket for both turns, saw ${sockets.length}`);
  if (!sockets[0].url.endsWith("/api/v2/generate")) throw new Error(`unexpected WebSocket URL ${sockets[0].url}`);
  if (opens.length !== 1) throw new Error(`expected one open_inference_session, saw ${opens.length}`);
  if (opens[0].model !== model) throw new Error(`the session was opened for ${opens[0].model}, not ${model}`);
  if (generates.length !== 2) throw new Error(`expected two generate requests, saw ${generates.length}`);
  if (opens[0].max_length !== 512) throw new Error(`the first session reserved ${opens[0].max_length} tokens, not 512`);
  if (generates[0].inputs !== "Human: Hello, swarm###Assistant:") {
    throw new Error(`first inputs were ${JSON.stringify(generates[0].inputs)}`);
  }
  // After a reply that ended with the stop sequence "###" the session holds it; otherwise the page sends it.
  if (!["###Human: What can you do?###Assistant:", "Human: What can you do?###Assistant:"].includes(generates[1].inputs)) {
    throw new Error(`second inputs were ${JSON.stringify(generates[1].inputs)}`);
  }
  await chat.screenshot({ path: path.join(shotDir, "chat-2.png"), fullPage: true });

  const replies = [first.reply, second.reply];
  if (process.env.LONG_CHAT) {
    const asks = [
      "And it came to pass, when the people of the city saw the swarm, that they said one to another, Let us go up and see this thing which is come to pass.",
      "Tell me of the servers that came and went in the night, and of the text that came out the same in the morning.",
      "What did the client say when its server died in the middle of a word, and how did the reply go on?",
      "Speak of the blocks that were hosted by many, and of the weakest span of the pipeline that was given help.",
      "And what of the prompts that were tuned through the swarm, whose weights no server ever touched?",
      "Tell me again, with many words, of the gateway that spoke both the tongue of Petals and the tongue of OpenAI.",
      "How long is this conversation now, and does the model still remember what I asked at the beginning?",
      "Give me one more verse before we part, of the volunteers who came from far away with their machines.",
    ];
    for (let i = 0; i < asks.length; i++) replies.push((await turn(i + 3, asks[i])).reply);
    const allOpens = sockets.flatMap((s) => s.sent.filter((m) => m.type === "open_inference_session"));
    const longer = allOpens.filter((m) => m.max_length > 512);
    if (longer.length === 0) {
      throw new Error(`ten turns never outgrew the first session of 512 tokens (sessions: ${JSON.stringify(allOpens.map((m) => m.max_length))})`);
    }
    log(`ten turns: sessions of ${JSON.stringify(allOpens.map((m) => m.max_length))} tokens`);
    await chat.screenshot({ path: path.join(shotDir, "chat-long.png"), fullPage: true });
  }
  await chat.close();

  // ------------------------------------------------------------ swarm page
  const swarm = await context.newPage();
  watch(swarm, "swarm");
  log(`opening ${baseUrl}/swarm.html`);
  const sresp = await race(swarm.goto(`${baseUrl}/swarm.html`, { waitUntil: "domcontentloaded" }));
  if (!sresp || !sresp.ok()) throw new Error(`GET ${baseUrl}/swarm.html answered ${sresp ? sresp.status() : "nothing"}`);
  await race(swarm.waitForSelector("#models tbody tr.server", { timeout: 30_000 })).catch(
    because("no server rows appeared on the swarm page within 30 s"),
  );
  const countIds = () =>
    swarm.$$eval("#models tbody tr.server", (rows) => [...new Set(rows.map((r) => r.dataset.serverId))].length);
  let servers = await countIds();
  if (expectServers !== null && servers !== expectServers) {
    // The swarm may still be converging: give it a few polls.
    await race(
      swarm.waitForFunction(
        (k) =>
          new Set([...document.querySelectorAll("#models tbody tr.server")].map((r) => r.dataset.serverId)).size === k,
        expectServers,
        { timeout: 20_000, polling: 250 },
      ),
    ).catch((e) => {
      if (e?.pageError) throw e;
    });
    servers = await countIds();
    if (servers !== expectServers) throw new Error(`the swarm page lists ${servers} servers, expected ${expectServers}`);
  }
  const bars = await swarm.$$eval("#models .block-grid .server", (els) => els.length);
  const modelsShown = await swarm.$$eval("#models .model-card", (els) => els.map((e) => e.dataset.model));
  await swarm.screenshot({ path: path.join(shotDir, "swarm.png"), fullPage: true });
  await swarm.close();

  if (pageErrors.length) throw new Error(pageErrors.join("; "));
  await browser.close();
  clearTimeout(hardTimer);
  console.log(
    JSON.stringify({
      ok: true,
      base_url: baseUrl,
      model,
      first_reply: first.reply,
      first_streamed_lengths: first.streamed_lengths,
      second_reply: second.reply,
      second_streamed_lengths: second.streamed_lengths,
      replies,
      status: second.status,
      swarm_models: modelsShown,
      servers,
      server_bars: bars,
      screenshots: ["chat.png", "chat-2.png", "swarm.png"].map((f) => path.join(shotDir, f)),
      elapsed_ms: Date.now() - started,
    }),
  );
  process.exit(0);
}

main().catch((e) => fail(e?.message ?? e));
