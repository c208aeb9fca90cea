// One trace: the call tree (collapsible) beside a waterfall timeline, and a
// detail panel for the selected call.
//
// The tree asks /calls/query only for the columns it draws; the selected call's
// inputs, output and the rest come from /call/read, so a trace of thousands of
// calls with large payloads stays quick to open.

import { api, CALL_LIST_COLUMNS, resolveRef } from "./api.js";
import { errorBox, h, note, parseRef, refRoute, renderFields, renderTop, renderValue, replace, route } from "./dom.js";
import {
  fmtAgo,
  fmtInt,
  fmtMs,
  fmtTime,
  latencyMs,
  opName,
  parseException,
  parseTs,
  statusBadge,
  statusOf,
  tokensOf,
  costOf,
  fmtCost,
} from "./format.js";
import { liveControl, runningDuration, watchCalls } from "./live.js";
import { heading, section } from "./widgets.js";

const BATCH = 1000;
// Beyond this many calls the tree shows what it has and says so.
const MAX_CALLS = 20000;

/** #/{e}/{p}/call/{id}: find the call's trace and open it there. */
export async function renderCallRedirect(main, ctx) {
  const id = ctx.rest[0];
  replace(main, note("Loading…"));
  const res = await api.callRead(ctx.projectId, id);
  if (!ctx.isCurrent()) return;
  if (!res.call) {
    replace(main, errorBox(`No call with id ${JSON.stringify(id)} in ${ctx.projectId}.`));
    return;
  }
  location.replace(route([ctx.entity, ctx.project, "trace", res.call.trace_id], { call: id }));
}

async function loadTraceCalls(projectId, traceId) {
  const calls = [];
  for (let offset = 0; offset < MAX_CALLS; offset += BATCH) {
    const res = await api.callsQuery({
      project_id: projectId,
      filter: { trace_ids: [traceId] },
      sort_by: [{ field: "started_at", direction: "asc" }],
      limit: BATCH,
      offset,
      columns: CALL_LIST_COLUMNS,
      include_costs: true,
    });
    calls.push(...res.calls);
    if (res.calls.length < BATCH) return { calls, truncated: false };
  }
  return { calls, truncated: true };
}

function buildTree(calls) {
  const nodes = new Map();
  for (const c of calls) {
    nodes.set(c.id, { call: c, children: [], depth: 0, start: parseTs(c.started_at), end: parseTs(c.ended_at) });
  }
  const roots = [];
  for (const n of nodes.values()) {
    const parent = n.call.parent_id ? nodes.get(n.call.parent_id) : null;
    if (parent) parent.children.push(n);
    else roots.push(n);
  }
  const byStart = (a, b) => (a.start ?? 0) - (b.start ?? 0);
  const setDepth = (n, d) => {
    n.depth = d;
    n.children.sort(byStart);
    for (const c of n.children) setDepth(c, d + 1);
  };
  roots.sort(byStart);
  for (const r of roots) setDepth(r, 0);
  return { nodes, roots };
}

export async function renderTrace(main, ctx) {
  const { projectId, entity, project } = ctx;
  const traceId = ctx.rest[0];
  replace(main, note("Loading trace…"));
  const { calls, truncated } = await loadTraceCalls(projectId, traceId);
  if (!ctx.isCurrent()) return;
  if (!calls.length) {
    replace(main, errorBox(`No calls with trace id ${JSON.stringify(traceId)} in ${projectId}.`));
    return;
  }
  // The trace's calls by id; live events update it and the view is laid out again.
  const byId = new Map(calls.map((c) => [c.id, c]));
  let nodes;
  let roots;
  let now;
  let t0;
  let t1;
  let span;
  const layout = () => {
    ({ nodes, roots } = buildTree([...byId.values()]));
    now = Date.now();
    t0 = Infinity;
    t1 = -Infinity;
    for (const n of nodes.values()) {
      if (n.start !== null) t0 = Math.min(t0, n.start);
      const end = n.end ?? (n.start !== null ? Math.max(now, n.start) : null);
      if (end !== null) t1 = Math.max(t1, end);
    }
    span = Math.max(t1 - t0, 0.001);
  };
  layout();

  const collapsed = new Set();
  let shownId = null;
  let selected = ctx.params.get("call");
  if (!selected || !nodes.has(selected)) selected = roots[0].call.id;

  const rowsEl = h("div", { class: "tree-rows", role: "tree", tabindex: "0", "aria-label": "Call tree" });
  const detail = h("div", { class: "detail-pane", id: "detail" });

  const visible = () => {
    const out = [];
    const walk = (n) => {
      out.push(n);
      if (!collapsed.has(n.call.id)) for (const c of n.children) walk(c);
    };
    for (const r of roots) walk(r);
    return out;
  };

  const drawRows = () => {
    replace(rowsEl, visible().map((n) => treeRow(n)));
  };

  const select = (id, { scroll = false } = {}) => {
    selected = id;
    for (const el of rowsEl.querySelectorAll(".trow.selected")) el.classList.remove("selected");
    const row = rowsEl.querySelector(`.trow[data-call-id="${CSS.escape(id)}"]`);
    if (row) {
      row.classList.add("selected");
      row.setAttribute("aria-selected", "true");
      if (scroll) row.scrollIntoView({ block: "nearest" });
    }
    // Keep the URL shareable without re-rendering the page.
    history.replaceState(null, "", route([entity, project, "trace", traceId], { call: id }));
    // Folding re-selects the same call: keep its panel rather than fetch it again.
    if (id === shownId) return;
    shownId = id;
    renderDetail(detail, ctx, nodes.get(id).call, () => ctx.isCurrent() && selected === id);
  };

  const treeRow = (n) => {
    const c = n.call;
    const status = statusOf(c);
    const hasKids = n.children.length > 0;
    const isCollapsed = collapsed.has(c.id);
    const toggle = hasKids
      ? h(
          "button",
          {
            type: "button",
            class: "toggle",
            "aria-label": isCollapsed ? "Expand" : "Collapse",
            title: `${n.children.length} child call${n.children.length === 1 ? "" : "s"}`,
            onclick: (ev) => {
              ev.stopPropagation();
              if (collapsed.has(c.id)) collapsed.delete(c.id);
              else collapsed.add(c.id);
              drawRows();
              select(selected);
            },
          },
          isCollapsed ? "▸" : "▾",
        )
      : h("span", { class: "toggle-spacer" });
    const start = n.start ?? t0;
    const end = n.end ?? Math.max(now, start);
    const left = ((start - t0) / span) * 100;
    const width = Math.max(((end - start) / span) * 100, 0.4);
    const lat = n.end !== null ? fmtMs(latencyMs(c)) : c.exception ? "—" : runningDuration(c.started_at);
    const bar = h("div", {
      class: `bar st-${status}` + (n.end === null ? " open" : ""),
      style: { left: `${left}%`, width: `${width}%` },
      title: `${opName(c.op_name)}: starts at +${fmtMs(start - t0)}, ${lat}`,
    });
    // The latency goes after the bar, or inside its end when the bar reaches the right edge.
    const label =
      left + width > 82
        ? h("span", { class: "bar-label" + (width > 12 ? " inside" : "") + (n.end === null ? " on-open" : ""), style: width > 12 ? { right: `${100 - left - width + 0.8}%` } : { right: `${100 - left + 0.8}%` } }, lat)
        : h("span", { class: "bar-label", style: { left: `${left + width + 0.8}%` } }, lat);
    const row = h(
      "div",
      {
        class: "trow" + (c.id === selected ? " selected" : ""),
        role: "treeitem",
        "aria-level": String(n.depth + 1),
        "aria-expanded": hasKids ? String(!isCollapsed) : null,
        "aria-selected": c.id === selected ? "true" : null,
        dataset: { callId: c.id },
        onclick: () => select(c.id),
      },
      h(
        "div",
        { class: "tcell-name", style: { "padding-left": `${n.depth * 18 + 6}px` } },
        toggle,
        h("span", { class: `dot st-${status}`, title: status }),
        h("span", { class: "op" }, opName(c.op_name)),
        c.display_name ? h("span", { class: "dname" }, c.display_name) : null,
        hasKids && isCollapsed ? h("span", { class: "count" }, `+${countDescendants(n)}`) : null,
      ),
      h("div", { class: "tcell-time" }, bar, label),
    );
    return row;
  };

  rowsEl.addEventListener("keydown", (ev) => {
    const list = visible();
    const i = list.findIndex((n) => n.call.id === selected);
    if (i < 0) return;
    const n = list[i];
    if (ev.key === "ArrowDown" && i + 1 < list.length) select(list[i + 1].call.id, { scroll: true });
    else if (ev.key === "ArrowUp" && i > 0) select(list[i - 1].call.id, { scroll: true });
    else if (ev.key === "ArrowLeft" && n.children.length && !collapsed.has(n.call.id)) {
      collapsed.add(n.call.id);
      drawRows();
      select(selected);
    } else if (ev.key === "ArrowRight" && collapsed.has(n.call.id)) {
      collapsed.delete(n.call.id);
      drawRows();
      select(selected);
    } else return;
    ev.preventDefault();
  });

  const axisEl = h("div", { class: "axis" });
  const drawAxis = () =>
    replace(
      axisEl,
      [0, 0.25, 0.5, 0.75, 1].map((f) => h("span", { class: "tick", style: { left: `${f * 100}%` } }, fmtMs(span * f))),
    );
  const live = liveControl();
  const makeHead = () => {
    const root = roots[0].call;
    const n = byId.size;
    const head = heading(
      h("span", {}, opName(root.op_name), root.display_name ? h("span", { class: "dname" }, root.display_name) : null),
      h(
        "span",
        { class: "meta" },
        statusBadge(statusOf(root)),
        h("span", {}, `${fmtInt(n)} call${n === 1 ? "" : "s"}`),
        h("span", {}, root.ended_at ? fmtMs(latencyMs(root)) : root.exception ? "—" : runningDuration(root.started_at)),
        tokensOf(root) !== null ? h("span", { class: "trace-tokens" }, `${fmtInt(tokensOf(root))} tokens`) : null,
        costOf(root) !== null ? h("span", { class: "trace-cost", title: "cost of the whole trace" }, fmtCost(costOf(root))) : null,
        h("span", { title: fmtAgo(root.started_at) }, fmtTime(root.started_at)),
        h("span", { class: "mono", title: "trace id" }, traceId),
        live.el,
      ),
    );
    return head;
  };
  let headEl = makeHead();
  drawAxis();
  replace(
    main,
    headEl,
    truncated ? note(`Showing the first ${fmtInt(MAX_CALLS)} calls of this trace.`, "warn") : null,
    h(
      "div",
      { class: "split" },
      h(
        "div",
        { class: "tree-pane" },
        h("div", { class: "tree-head" }, h("div", { class: "tcell-name" }, "Call"), h("div", { class: "tcell-time" }, axisEl)),
        rowsEl,
      ),
      detail,
    ),
  );
  drawRows();
  select(selected, { scroll: true });

  // Live: calls of this trace that start, end, change or go away re-draw the tree.
  const redraw = () => {
    if (!byId.size) {
      replace(main, errorBox(`The calls of trace ${traceId} were deleted.`));
      watch.close();
      return;
    }
    layout();
    if (!nodes.has(selected)) selected = roots[0].call.id;
    const newHead = makeHead();
    headEl.replaceWith(newHead);
    headEl = newHead;
    drawAxis();
    drawRows();
    select(selected);
  };
  const watch = watchCalls(
    projectId,
    { trace_ids: [traceId] },
    (events) => {
      if (!ctx.isCurrent()) return watch.close();
      for (const { kind, call } of events) {
        if (kind === "delete") byId.delete(call.id);
        else byId.set(call.id, call);
        // The open call changed: show it again.
        if (call.id === shownId) shownId = null;
      }
      redraw();
    },
    (s) => live.setState(s),
  );
  live.attach(watch);
  // Running bars grow: lay out again every second while some call runs (not while paused).
  const grow = setInterval(() => {
    if (!ctx.isCurrent()) return clearInterval(grow);
    if (watch.paused) return;
    if ([...byId.values()].some((c) => !c.ended_at && !c.exception)) redraw();
  }, 1000);
}


function countDescendants(n) {
  let k = 0;
  for (const c of n.children) k += 1 + countDescendants(c);
  return k;
}

async function renderDetail(el, ctx, brief, stillWanted) {
  replace(el, callHeader(ctx, brief), note("Loading call…"));
  let call;
  try {
    const res = await api.callRead(ctx.projectId, brief.id);
    call = res.call;
  } catch (err) {
    if (stillWanted()) replace(el, callHeader(ctx, brief), errorBox(err));
    return;
  }
  if (!stillWanted()) return;
  if (!call) {
    replace(el, callHeader(ctx, brief), errorBox(`Call ${brief.id} no longer exists.`));
    return;
  }
  // /call/read has no include_costs: keep the costs the tree's query priced.
  const briefCosts = brief.summary && brief.summary.weave && brief.summary.weave.costs;
  if (briefCosts && call.summary) {
    call.summary = { ...call.summary, weave: { ...(call.summary.weave || {}), costs: briefCosts } };
  }
  const opts = { resolveRef, openDepth: 2 };
  const feedbackBody = h("div", {}, note("Loading…"));
  const exc = parseException(call.exception);
  replace(
    el,
    callHeader(ctx, call),
    exc ? section("Exception", exceptionView(exc), "exception") : null,
    section("Inputs", renderFields(call.inputs, opts), "inputs"),
    section("Output", call.ended_at || call.output !== null ? renderTop(call.output, opts) : note("still running"), "output"),
    section("Summary", summaryView(call), "summary"),
    section("Attributes", renderFields(call.attributes, { ...opts, openDepth: 1 }), "attributes"),
    section("Feedback", feedbackBody, "feedback"),
  );
  loadFeedback(ctx, call, feedbackBody, stillWanted);
}

function callHeader(ctx, call) {
  const opRef = parseRef(call.op_name);
  const tokens = tokensOf(call);
  const cost = costOf(call);
  const status = statusOf(call);
  return h(
    "div",
    { class: "call-head" },
    h(
      "div",
      { class: "call-title" },
      opRef ? h("a", { class: "op", href: refRoute(opRef), title: call.op_name }, opName(call.op_name)) : h("span", { class: "op" }, call.op_name),
      call.display_name ? h("span", { class: "dname" }, call.display_name) : null,
      statusBadge(status),
    ),
    h(
      "dl",
      { class: "kv" },
      h("dt", {}, "Call id"),
      h("dd", { class: "mono" }, call.id),
      h("dt", {}, "Started"),
      h("dd", { title: call.started_at }, fmtTime(call.started_at)),
      h("dt", {}, "Latency"),
      h("dd", {}, call.ended_at ? fmtMs(latencyMs(call)) : "running"),
      tokens !== null ? [h("dt", {}, "Tokens"), h("dd", {}, fmtInt(tokens))] : null,
      cost !== null ? [h("dt", {}, "Cost"), h("dd", { class: "cost" }, fmtCost(cost))] : null,
      call.parent_id ? [h("dt", {}, "Parent"), h("dd", { class: "mono" }, call.parent_id)] : null,
    ),
  );
}

function exceptionView(exc) {
  return h(
    "div",
    { class: "exc" },
    h("div", { class: "exc-msg" }, exc.type ? h("strong", {}, exc.type + ": ") : null, exc.message),
    exc.traceback.length
      ? h(
          "details",
          { class: "exc-tb" },
          h("summary", {}, `Traceback (${exc.traceback.length} frame${exc.traceback.length === 1 ? "" : "s"})`),
          h(
            "pre",
            {},
            exc.traceback
              .map((f) => `  File "${f.filename}", line ${f.line_number}, in ${f.function_name}\n    ${f.text || ""}`)
              .join("\n"),
          ),
        )
      : null,
  );
}

function summaryView(call) {
  const summary = call.summary || {};
  const usage = summary.usage && typeof summary.usage === "object" ? summary.usage : null;
  const costs = summary.weave && summary.weave.costs && typeof summary.weave.costs === "object" ? summary.weave.costs : null;
  const rest = { ...summary };
  delete rest.usage;
  const parts = [];
  if (usage && Object.keys(usage).length) {
    const keys = ["requests", "prompt_tokens", "completion_tokens", "input_tokens", "output_tokens", "total_tokens"].filter(
      (k) => Object.values(usage).some((u) => u && typeof u[k] === "number"),
    );
    parts.push(
      h(
        "table",
        { class: "data usage" },
        h(
          "thead",
          {},
          h("tr", {}, h("th", {}, "Model"), keys.map((k) => h("th", {}, k.replace("_tokens", "").replace("_", " "))), costs ? h("th", {}, "cost") : null),
        ),
        h(
          "tbody",
          {},
          Object.entries(usage).map(([model, u]) =>
            h(
              "tr",
              {},
              h("td", {}, model),
              keys.map((k) => h("td", { class: "num" }, u && typeof u[k] === "number" ? fmtInt(u[k]) : "—")),
              costs ? h("td", { class: "num" }, costs[model] ? fmtCost(costOf({ summary: { weave: { costs: { [model]: costs[model] } } } })) : "—") : null,
            ),
          ),
        ),
      ),
    );
  }
  parts.push(renderFields(rest, { openDepth: 2 }));
  return h("div", {}, parts);
}

async function loadFeedback(ctx, call, el, stillWanted) {
  const ref = `weave:///${ctx.projectId}/call/${call.id}`;
  let res;
  try {
    res = await api.feedbackQuery({
      project_id: ctx.projectId,
      query: { $expr: { $eq: [{ $getField: "weave_ref" }, { $literal: ref }] } },
      sort_by: [{ field: "created_at", direction: "asc" }],
      limit: 200,
    });
  } catch (err) {
    if (stillWanted()) replace(el, errorBox(err));
    return;
  }
  if (!stillWanted()) return;
  if (!res.result.length) {
    replace(el, note("none"));
    return;
  }
  replace(el, h("ul", { class: "feedback" }, res.result.map((f) => feedbackItem(f))));
}

function feedbackItem(f) {
  const payload = f.payload || {};
  let body;
  if (f.feedback_type === "wandb.reaction.1" && typeof payload.emoji === "string") {
    body = h("span", { class: "emoji" }, payload.emoji);
  } else if (f.feedback_type === "wandb.note.1" && typeof payload.note === "string") {
    body = h("span", { class: "note-text" }, payload.note);
  } else {
    body = renderValue(payload, { openDepth: 1 });
  }
  return h(
    "li",
    {},
    h("span", { class: "fb-type" }, f.feedback_type),
    body,
    h("span", { class: "muted small", title: f.created_at }, `${f.creator || f.wb_user_id || ""} ${fmtAgo(f.created_at)}`),
  );
}
