// Live mode: call events from the local server's /calls/watch WebSocket.
//
// A view opens a watch with its filter and gets each start, end, update and
// delete of a matching call as it is stored. A dropped connection is retried
// with backoff and resumes after the last event seen (`since`), so nothing is
// missed or applied twice. While paused, events are kept and applied on resume.
// When the server no longer has every event after `since` (it keeps the newest
// ones only, and the view was away longer than that), its "ready" says so
// (`pruned_through`) and the watch reports "missed": the view is out of date
// until it is loaded again. Every watch is closed when the view changes
// (closeWatches() in app.js).

import { h } from "./dom.js";
import { fmtMs, parseTs } from "./format.js";

const active = new Set();
let ticker = null;

/** Close every open watch (the page is moving to another view). */
export function closeWatches() {
  for (const w of [...active]) w.close();
}

/**
 * Watch `projectId`'s calls matching `filter` (a CallsFilter object).
 * `onEvents(events)` gets batches of {kind, seq, call}; `onState(state)` gets
 * "live", "paused", "connecting", "missed" (live again, but events the view never
 * got were pruned meanwhile: reload it) or "off" (the server has no live route).
 */
export function watchCalls(projectId, filter, onEvents, onState = () => {}) {
  let ws = null;
  let since = null;
  let closed = false;
  let paused = false;
  let held = [];
  let attempt = 0;
  let timer = null;
  let everOpened = false;
  let missed = false;

  const connected = () => (missed ? "missed" : "live");
  const state = () => onState(closed ? "off" : paused ? "paused" : ws && ws.readyState === 1 ? connected() : "connecting");

  const connect = () => {
    if (closed) return;
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/calls/watch`;
    const sock = new WebSocket(url);
    ws = sock;
    let opened = false;
    sock.onopen = () => {
      opened = true;
      everOpened = true;
      sock.send(JSON.stringify({ project_id: projectId, filter, since }));
      state();
    };
    sock.onmessage = (msg) => {
      // One event per line: events waiting together share a message.
      const fresh = [];
      for (const line of String(msg.data).split("\n")) {
        let data;
        try {
          data = JSON.parse(line);
        } catch {
          continue;
        }
        if (typeof data.seq !== "number") continue;
        if (data.kind === "ready") {
          // Events after `since` up to `pruned_through` are gone: this view lacks them.
          if (since !== null && typeof data.pruned_through === "number") missed = true;
          since = Math.max(since ?? 0, data.seq);
          attempt = 0;
          state();
          continue;
        }
        if (since !== null && data.seq <= since) continue;
        since = data.seq;
        fresh.push(data);
      }
      if (!fresh.length) return;
      if (paused) held.push(...fresh);
      else onEvents(fresh);
    };
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      ws = null;
      if (closed) return;
      // Refused subscription, or a server that never took the socket (no such route): give
      // up. Once it worked, keep trying (a restart), backing off to 5 s.
      if (ev.code === 4400 || (!everOpened && !opened && attempt >= 3)) {
        closed = true;
        active.delete(watch);
        state();
        return;
      }
      const delay = Math.min(5000, 100 * 2 ** attempt) * (0.5 + Math.random() / 2);
      attempt += 1;
      state();
      timer = setTimeout(connect, delay);
    };
  };

  const watch = {
    get paused() {
      return paused;
    },
    pause() {
      paused = true;
      state();
    },
    resume() {
      paused = false;
      const out = held;
      held = [];
      if (out.length) onEvents(out);
      state();
    },
    close() {
      closed = true;
      active.delete(watch);
      clearTimeout(timer);
      if (ws) ws.close(1000);
      ws = null;
    },
  };
  active.add(watch);
  ensureTicker();
  connect();
  state();
  return watch;
}

/** The live/pause control: a status dot and a button that pauses and resumes `watch`. */
export function liveControl() {
  const label = h("span", { class: "live-label" }, "connecting…");
  const button = h("button", { type: "button", class: "btn live-toggle", "aria-pressed": "false" }, "Pause");
  const el = h("span", { class: "live connecting", title: "Live updates over /calls/watch" }, h("span", { class: "live-dot" }), label, button);
  let watch = null;
  let current = "connecting";
  button.addEventListener("click", () => {
    if (current === "missed") location.reload();
    else if (!watch) return;
    else if (watch.paused) watch.resume();
    else watch.pause();
  });
  return {
    el,
    attach(w) {
      watch = w;
    },
    setState(s) {
      current = s;
      el.className = `live ${s}`;
      label.textContent =
        { live: "live", paused: "paused", connecting: "connecting…", missed: "missed updates", off: "live updates off" }[s] || s;
      el.title = s === "missed" ? "Updates made while the viewer was away were pruned by the server: reload" : "Live updates over /calls/watch";
      button.textContent = s === "paused" ? "Resume" : s === "missed" ? "Reload" : "Pause";
      button.setAttribute("aria-pressed", String(s === "paused"));
      button.hidden = s === "off";
    },
  };
}

const fmtRunning = (ms) => (ms < 60000 ? `${(ms / 1000).toFixed(1)} s` : fmtMs(ms));

/** A running call's duration, counted up on screen (see the ticker). */
export function runningDuration(startedAt) {
  const start = parseTs(startedAt) ?? Date.now();
  return h("span", { class: "ticking", title: "running", dataset: { since: String(start) } }, fmtRunning(Math.max(0, Date.now() - start)));
}

// One timer for the page: every running duration on screen ticks four times a second.
function ensureTicker() {
  if (ticker !== null) return;
  ticker = setInterval(() => {
    const now = Date.now();
    for (const el of document.querySelectorAll(".ticking")) {
      el.textContent = fmtRunning(Math.max(0, now - Number(el.dataset.since)));
    }
    if (!active.size && !document.querySelector(".ticking")) {
      clearInterval(ticker);
      ticker = null;
    }
  }, 250);
}
