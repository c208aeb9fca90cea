// Traces: the root calls of a project, newest first, filtered and paged.
//
// Paging is limit/offset on /calls/query plus a count from /calls/query_stats,
// and the list asks only for the columns it shows, so a page costs the same at
// 100 or 100,000 calls.

import { and, api, CALL_LIST_COLUMNS, contains, eq, field, opNamesFilter, or } from "./api.js";
import { h, note, replace, route } from "./dom.js";
import { liveControl, runningDuration, watchCalls } from "./live.js";
import { costOf, fmtAgo, fmtCost, fmtInt, fmtMs, fmtTime, latencyMs, opName, statusBadge, statusOf, tokensOf } from "./format.js";
import { heading, pager } from "./widgets.js";

const PAGE = 50;
const STATUSES = [
  ["", "any status"],
  ["success", "success"],
  ["error", "error"],
  ["running", "running"],
  ["descendant_error", "child error"],
];

/** The /calls/query filter and $expr for the list's op, status and text search. */
export function traceListQuery(projectId, { op, status, q }) {
  const filter = { trace_roots_only: true };
  if (op) filter.op_names = opNamesFilter(projectId, op);
  const conds = [];
  if (status) conds.push(eq(field("summary.weave.status"), { $literal: status }));
  if (q) conds.push(or(contains(field("inputs"), q), contains(field("output"), q)));
  return { filter, query: conds.length ? { $expr: and(...conds) } : null };
}

export async function renderTraces(main, ctx) {
  const { projectId, entity, project, params } = ctx;
  const state = {
    op: params.get("op") || "",
    status: params.get("status") || "",
    q: params.get("q") || "",
  };
  const offset = Math.max(0, Number.parseInt(params.get("offset") || "0", 10) || 0);
  const here = (over) => route([entity, project, "traces"], { ...state, ...over });

  const form = filterForm(state, (next) => {
    location.hash = here({ ...next, offset: 0 });
  });
  const body = h("div", { class: "list-body" }, note("Loading…"));
  // Live updates on the first page without status or text filters (those the watch cannot apply).
  const live = offset === 0 && !state.status && !state.q ? liveControl() : null;
  const head = heading("Traces", projectId);
  if (live) head.append(live.el);
  replace(main, head, form, body);
  loadOpNames(projectId, form).catch(() => {
    // The op suggestions are a convenience; the list works without them.
  });

  const { filter, query } = traceListQuery(projectId, state);
  const base = { project_id: projectId, filter };
  if (query) base.query = query;
  const [res, stats] = await Promise.all([
    api.callsQuery({
      ...base,
      sort_by: [{ field: "started_at", direction: "desc" }],
      limit: PAGE,
      offset,
      columns: CALL_LIST_COLUMNS,
      include_costs: true,
    }),
    api.callsQueryStats(base),
  ]);
  if (!ctx.isCurrent()) return;
  const calls = res.calls;
  const filtered = state.op || state.status || state.q;
  const tbody = h("tbody", {}, calls.map((c) => traceRow(c, entity, project)));
  const table = h(
    "table",
    { class: "data traces", hidden: !calls.length },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Op", "Display name", "Status", "Latency", "Started", "Tokens", "Cost", "Trace"].map((c) => h("th", {}, c)),
      ),
    ),
    tbody,
  );
  const empty = calls.length
    ? null
    : note(filtered ? "No traces match these filters." : "No traces in this project yet.");
  const pg = calls.length
    ? pager({
        offset,
        limit: PAGE,
        shown: calls.length,
        total: stats.count,
        href: (o) => here({ offset: o }),
      })
    : null;
  replace(body, empty, table, pg);
  if (!live) return;
  const watch = watchCalls(
    projectId,
    filter,
    (events) => {
      if (!ctx.isCurrent()) return watch.close();
      for (const { kind, call } of events) applyEvent(tbody, kind, call, entity, project);
      if (tbody.children.length) {
        table.hidden = false;
        if (empty) empty.remove();
      }
    },
    (s) => live.setState(s),
  );
  live.attach(watch);
}

/** Apply one call event to the trace list (newest first, at most a page of rows). */
function applyEvent(tbody, kind, call, entity, project) {
  const old = tbody.querySelector(`tr[data-call-id="${CSS.escape(call.id)}"]`);
  if (kind === "delete") {
    if (old) old.remove();
    return;
  }
  const row = traceRow(call, entity, project);
  if (old) {
    old.replaceWith(row);
    return;
  }
  row.classList.add("fresh");
  tbody.prepend(row);
  while (tbody.children.length > PAGE) tbody.lastElementChild.remove();
}

function traceRow(call, entity, project) {
  const href = route([entity, project, "trace", call.trace_id], { call: call.id });
  const tokens = tokensOf(call);
  const row = h(
    "tr",
    { class: "clickable", dataset: { callId: call.id } },
    h("td", {}, h("a", { class: "op", href }, opName(call.op_name))),
    h("td", { class: "muted" }, call.display_name || ""),
    h("td", {}, statusBadge(statusOf(call))),
    h("td", { class: "num" }, call.ended_at ? fmtMs(latencyMs(call)) : call.exception ? "—" : runningDuration(call.started_at)),
    h("td", { title: fmtAgo(call.started_at) }, fmtTime(call.started_at)),
    h("td", { class: "num" }, tokens === null ? "—" : fmtInt(tokens)),
    h("td", { class: "num" }, fmtCost(costOf(call))),
    h("td", { class: "mono muted", title: call.trace_id }, call.trace_id.slice(-12)),
  );
  row.addEventListener("click", (ev) => {
    if (ev.target.closest("a")) return;
    location.hash = href;
  });
  return row;
}

function filterForm(state, onApply) {
  const op = h("input", {
    type: "search",
    name: "op",
    placeholder: "op name",
    value: state.op,
    list: "op-names",
    "aria-label": "Filter by op name",
  });
  const status = h(
    "select",
    { name: "status", "aria-label": "Filter by status" },
    STATUSES.map(([value, label]) => h("option", { value, selected: value === state.status }, label)),
  );
  const q = h("input", {
    type: "search",
    name: "q",
    placeholder: "search inputs and outputs",
    value: state.q,
    class: "wide",
    "aria-label": "Search inputs and outputs",
  });
  const datalist = h("datalist", { id: "op-names" });
  const apply = () => onApply({ op: op.value.trim(), status: status.value, q: q.value.trim() });
  const form = h(
    "form",
    {
      class: "filters",
      onsubmit: (ev) => {
        ev.preventDefault();
        apply();
      },
    },
    op,
    datalist,
    status,
    q,
    h("button", { type: "submit", class: "btn primary" }, "Apply"),
    state.op || state.status || state.q
      ? h("button", { type: "button", class: "btn", onclick: () => onApply({ op: "", status: "", q: "" }) }, "Clear")
      : null,
  );
  status.addEventListener("change", apply);
  return form;
}

async function loadOpNames(projectId, form) {
  const res = await api.objsQuery({
    project_id: projectId,
    filter: { is_op: true, latest_only: true },
    metadata_only: true,
    sort_by: [{ field: "object_id", direction: "asc" }],
    limit: 500,
  });
  const list = form.querySelector("datalist");
  replace(list, res.objs.map((o) => h("option", { value: o.object_id })));
}
