// Formatting of call fields: names, status, latency, time, tokens, cost.

import { h, parseRef } from "./dom.js";

/** Milliseconds since the epoch, keeping microseconds as the fraction (Date keeps only ms). */
export function parseTs(s) {
  if (!s) return null;
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$/.exec(s);
  if (!m) {
    const t = Date.parse(s);
    return Number.isNaN(t) ? null : t;
  }
  const base = Date.parse(m[1] + (m[3] || "Z"));
  if (Number.isNaN(base)) return null;
  const frac = m[2] ? Number("0." + m[2]) * 1000 : 0;
  return base + frac;
}

/** The op's short name: "predict" for "weave:///e/p/op/predict:abc", else the name as given. */
export function opName(opRef) {
  const ref = parseRef(opRef);
  if (ref && ref.name) return ref.name;
  return opRef || "";
}

/** The status the server derived (summary.weave.status), or derived here from the fields. */
export function statusOf(call) {
  const s = call.summary && call.summary.weave && call.summary.weave.status;
  if (s) return s;
  if (call.exception) return "error";
  if (!call.ended_at) return "running";
  return "success";
}

const STATUS_LABEL = {
  success: "success",
  error: "error",
  running: "running",
  descendant_error: "child error",
};

export function statusBadge(status) {
  return h("span", { class: `badge st-${status}`, title: status }, STATUS_LABEL[status] || status);
}

/** Latency in ms: the server's summary.weave.latency_ms, else from the timestamps. */
export function latencyMs(call) {
  const l = call.summary && call.summary.weave && call.summary.weave.latency_ms;
  if (typeof l === "number") return l;
  const a = parseTs(call.started_at);
  const b = parseTs(call.ended_at);
  return a !== null && b !== null ? b - a : null;
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms === 0) return "0";
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 1000) return `${Math.round(ms * 10) / 10} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(2)} s`;
  const m = Math.floor(ms / 60000);
  return `${m} min ${Math.round((ms % 60000) / 1000)} s`;
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

/** Local time "2026-11-26 14:03:12". */
export function fmtTime(s) {
  const t = parseTs(s);
  if (t === null) return "—";
  const d = new Date(t);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "3 min ago" */
export function fmtAgo(s) {
  const t = parseTs(s);
  if (t === null) return "";
  const sec = Math.round((Date.now() - t) / 1000);
  if (sec < 60) return `${Math.max(sec, 0)} s ago`;
  if (sec < 3600) return `${Math.floor(sec / 60)} min ago`;
  if (sec < 86400) return `${Math.floor(sec / 3600)} h ago`;
  return `${Math.floor(sec / 86400)} d ago`;
}

/** Total tokens over every model in summary.usage (null when the call used none). */
export function tokensOf(call) {
  const usage = call.summary && call.summary.usage;
  if (!usage || typeof usage !== "object") return null;
  let total = 0;
  let seen = false;
  for (const u of Object.values(usage)) {
    if (!u || typeof u !== "object") continue;
    let t = u.total_tokens;
    if (typeof t !== "number") {
      const inp = u.prompt_tokens ?? u.input_tokens ?? 0;
      const out = u.completion_tokens ?? u.output_tokens ?? 0;
      t = (typeof inp === "number" ? inp : 0) + (typeof out === "number" ? out : 0);
    }
    total += t;
    seen = true;
  }
  return seen ? total : null;
}

/** Total cost in USD over every model in summary.weave.costs (calls read with include_costs), or null. */
export function costOf(call) {
  const costs = call.summary && call.summary.weave && call.summary.weave.costs;
  if (!costs || typeof costs !== "object") return null;
  let total = 0;
  let seen = false;
  for (const c of Object.values(costs)) {
    if (!c || typeof c !== "object") continue;
    for (const k of ["prompt_tokens_total_cost", "completion_tokens_total_cost"]) {
      if (typeof c[k] === "number") total += c[k];
    }
    seen = true;
  }
  return seen ? total : null;
}

/** A cost in USD: six decimals below a dollar (LLM calls cost fractions of a cent). */
export function fmtCost(v) {
  if (v === null || v === undefined) return "—";
  return v < 1 ? `$${v.toFixed(6)}` : `$${v.toLocaleString("en-US", { minimumFractionDigits: 4, maximumFractionDigits: 4 })}`;
}

export function fmtInt(n) {
  return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US");
}

/** The exception field as {type, message, traceback} (weave writes JSON; old data may be text). */
export function parseException(text) {
  if (!text) return null;
  try {
    const v = JSON.parse(text);
    if (v && typeof v === "object" && !Array.isArray(v)) {
      return { type: v.type || "Exception", message: v.message ?? "", traceback: v.traceback || [] };
    }
  } catch {
    // Plain text.
  }
  return { type: "", message: String(text), traceback: [] };
}
