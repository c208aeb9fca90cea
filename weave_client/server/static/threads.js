// Conversation threads (weave_client.thread): the project's threads with their
// figures (POST /threads/stream_query), and one thread's turns (its calls whose
// turn_id is their own id), each linking to its trace.

import { and, api, eq, field } from "./api.js";
import { compactCell, errorBox, h, note, replace, route } from "./dom.js";
import { fmtAgo, fmtInt, fmtMs, fmtTime, latencyMs, opName, statusBadge, statusOf } from "./format.js";
import { dataTable, heading, pager, section } from "./widgets.js";

const PAGE = 25;
const TURNS_PAGE = 50;

function offsetOf(params) {
  return Math.max(0, Number.parseInt(params.get("offset") || "0", 10) || 0);
}

/** p50/p99 as the server reports them (weave's SQLite server sends -1 for "not computed"). */
function fmtDuration(ms) {
  return typeof ms === "number" && ms >= 0 ? fmtMs(ms) : "—";
}

export async function renderThreads(main, ctx) {
  const { projectId, entity, project, params } = ctx;
  const offset = offsetOf(params);
  const body = h("div", {}, note("Loading…"));
  replace(main, heading("Threads", projectId), body);
  // One more than a page: whether a next page exists (the route gives no count).
  const threads = await api.threadsQuery({ project_id: projectId, limit: PAGE + 1, offset });
  if (!ctx.isCurrent()) return;
  if (!threads.length) {
    replace(body, note("No conversation threads in this project (calls made inside weave_client.thread(...))."));
    return;
  }
  const shown = threads.slice(0, PAGE);
  const rows = shown.map((t) => [
    h("a", { class: "strong thread-id", href: route([entity, project, "threads", t.thread_id]) }, t.thread_id),
    h("span", { class: "num" }, fmtInt(t.turn_count)),
    h("span", { title: fmtAgo(t.start_time) }, fmtTime(t.start_time)),
    h("span", { title: fmtAgo(t.last_updated) }, fmtTime(t.last_updated)),
    h("span", { class: "num" }, fmtDuration(t.p50_turn_duration_ms)),
    h("span", { class: "num" }, fmtDuration(t.p99_turn_duration_ms)),
  ]);
  replace(
    body,
    dataTable(["Thread", "Turns", "Started", "Last updated", "p50 turn", "p99 turn"], rows, { cls: "threads" }),
    pager({
      offset,
      limit: PAGE,
      shown: shown.length,
      hasNext: threads.length > PAGE,
      href: (o) => route([entity, project, "threads"], { offset: o }),
    }),
  );
}

export async function renderThread(main, ctx) {
  const { projectId, entity, project, params } = ctx;
  const threadId = ctx.rest[0];
  const offset = offsetOf(params);
  replace(main, note("Loading…"));
  const base = {
    project_id: projectId,
    filter: { thread_ids: [threadId] },
    // Turns only: the calls that started a turn of the thread (turn_id == id).
    query: { $expr: and(eq(field("turn_id"), field("id"))) },
  };
  const [found, res, stats] = await Promise.all([
    api.threadsQuery({ project_id: projectId, filter: { thread_ids: [threadId] } }),
    api.callsQuery({ ...base, sort_by: [{ field: "started_at", direction: "asc" }], limit: TURNS_PAGE, offset }),
    api.callsQueryStats(base),
  ]);
  if (!ctx.isCurrent()) return;
  const thread = found[0];
  if (!thread) {
    replace(main, errorBox(`No thread ${JSON.stringify(threadId)} in ${projectId}.`));
    return;
  }
  const rows = res.calls.map((c, i) => [
    h("a", { class: "turn-link", href: route([entity, project, "trace", c.trace_id], { call: c.id }) }, `#${offset + i + 1}`),
    h("span", { class: "op" }, c.display_name || opName(c.op_name)),
    compactCell(c.inputs, 60),
    c.ended_at ? compactCell(c.output, 60) : h("span", { class: "muted" }, "running"),
    statusBadge(statusOf(c)),
    h("span", { class: "num" }, c.ended_at ? fmtMs(latencyMs(c)) : "—"),
    h("span", { title: fmtAgo(c.started_at) }, fmtTime(c.started_at)),
  ]);
  replace(
    main,
    heading(
      h("span", {}, "Thread", h("span", { class: "dname" }, threadId)),
      h(
        "span",
        { class: "meta" },
        h("span", {}, `${fmtInt(thread.turn_count)} turns`),
        h("span", {}, `p50 ${fmtDuration(thread.p50_turn_duration_ms)}`),
        h("span", {}, `p99 ${fmtDuration(thread.p99_turn_duration_ms)}`),
        h("span", {}, fmtTime(thread.start_time)),
        h("a", { href: route([entity, project, "threads"]) }, "all threads"),
      ),
    ),
    section(
      "Turns",
      h(
        "div",
        {},
        dataTable(["Turn", "Op", "Inputs", "Output", "Status", "Latency", "Started"], rows, { cls: "turns" }),
        pager({
          offset,
          limit: TURNS_PAGE,
          shown: res.calls.length,
          total: stats.count,
          href: (o) => route([entity, project, "threads", threadId], { offset: o }),
        }),
      ),
    ),
  );
}
