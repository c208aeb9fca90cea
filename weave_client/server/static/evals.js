// Evaluations: calls of Evaluation.evaluate, their summary as (scorer, metric,
// value) rows, and their Evaluation.predict_and_score children, paged.

import { api, opNamesFilter } from "./api.js";
import { compactCell, errorBox, h, note, parseRef, refLabel, refRoute, replace, route } from "./dom.js";
import { fmtAgo, fmtMs, fmtTime, latencyMs, statusBadge, statusOf } from "./format.js";
import { dataTable, heading, pager, section } from "./widgets.js";

const PAGE = 25;
const ROWS_PAGE = 50;

/**
 * Flatten an evaluation summary into rows: the top key is the scorer (or
 * "model_latency", "output", ...), the dotted rest the metric.
 * {"acc": {"correct": {"true_fraction": 0.5}}} -> ["acc", "correct.true_fraction", 0.5]
 */
export function flattenSummary(summary) {
  const rows = [];
  if (!summary || typeof summary !== "object" || Array.isArray(summary)) return rows;
  const walk = (scorer, path, v) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      const keys = Object.keys(v);
      if (!keys.length) rows.push([scorer, path.join(".") || "—", v]);
      for (const k of keys) walk(scorer, [...path, k], v[k]);
    } else {
      rows.push([scorer, path.join(".") || "value", v]);
    }
  };
  for (const [scorer, v] of Object.entries(summary)) walk(scorer, [], v);
  return rows;
}

function metricValue(v) {
  if (typeof v === "number") {
    return h("span", { class: "num" }, Number.isInteger(v) ? String(v) : v.toFixed(4));
  }
  return compactCell(v);
}

function modelCell(call) {
  const model = call.inputs && call.inputs.model;
  const ref = parseRef(model);
  if (ref) return h("a", { class: "ref", href: refRoute(ref), title: ref.uri }, refLabel(ref));
  return compactCell(model ?? "—", 40);
}

export async function renderEvaluations(main, ctx) {
  const { projectId, entity, project, params } = ctx;
  const offset = Math.max(0, Number.parseInt(params.get("offset") || "0", 10) || 0);
  const body = h("div", {}, note("Loading…"));
  replace(main, heading("Evaluations", projectId), body);
  const base = { project_id: projectId, filter: { op_names: opNamesFilter(projectId, "Evaluation.evaluate") } };
  const [res, stats] = await Promise.all([
    api.callsQuery({ ...base, sort_by: [{ field: "started_at", direction: "desc" }], limit: PAGE, offset }),
    api.callsQueryStats(base),
  ]);
  if (!ctx.isCurrent()) return;
  if (!res.calls.length) {
    replace(body, note("No evaluations in this project (calls of Evaluation.evaluate)."));
    return;
  }
  const rows = res.calls.map((c) => {
    const metrics = flattenSummary(c.output).filter(([s]) => s !== "model_latency");
    return [
      h("a", { class: "strong", href: route([entity, project, "evals", c.id]) }, c.display_name || c.id.slice(-12)),
      statusBadge(statusOf(c)),
      modelCell(c),
      h(
        "span",
        { class: "metrics" },
        metrics.slice(0, 4).map(([s, m, v]) => h("span", { class: "metric" }, `${s}.${m} `, metricValue(v))),
        metrics.length > 4 ? h("span", { class: "muted" }, ` +${metrics.length - 4}`) : null,
      ),
      h("span", { title: fmtAgo(c.started_at) }, fmtTime(c.started_at)),
      h("a", { href: route([entity, project, "trace", c.trace_id], { call: c.id }) }, "trace"),
    ];
  });
  replace(
    body,
    dataTable(["Evaluation", "Status", "Model", "Summary", "Started", ""], rows, { cls: "evals" }),
    pager({ offset, limit: PAGE, shown: res.calls.length, total: stats.count, href: (o) => route([entity, project, "evals"], { offset: o }) }),
  );
}

export async function renderEvaluation(main, ctx) {
  const { projectId, entity, project, params } = ctx;
  const id = ctx.rest[0];
  const offset = Math.max(0, Number.parseInt(params.get("offset") || "0", 10) || 0);
  replace(main, note("Loading…"));
  const { call } = await api.callRead(projectId, id);
  if (!ctx.isCurrent()) return;
  if (!call) {
    replace(main, errorBox(`No call with id ${JSON.stringify(id)} in ${projectId}.`));
    return;
  }
  const summaryRows = flattenSummary(call.output).map(([s, m, v]) => [h("span", { class: "strong" }, s), m, metricValue(v)]);
  const rowsBody = h("div", {}, note("Loading…"));
  replace(
    main,
    heading(
      h("span", {}, "Evaluation", h("span", { class: "dname" }, call.display_name || "")),
      h(
        "span",
        { class: "meta" },
        statusBadge(statusOf(call)),
        h("span", {}, "model "),
        modelCell(call),
        h("span", {}, call.ended_at ? fmtMs(latencyMs(call)) : "running"),
        h("span", {}, fmtTime(call.started_at)),
        h("a", { href: route([entity, project, "trace", call.trace_id], { call: call.id }) }, "open trace"),
      ),
    ),
    section(
      "Summary",
      summaryRows.length ? dataTable(["Scorer", "Metric", "Value"], summaryRows, { cls: "summary-table" }) : note(call.ended_at ? "no summary" : "still running"),
    ),
    section("Rows (predict_and_score calls)", rowsBody),
  );

  const base = {
    project_id: projectId,
    filter: { parent_ids: [id], op_names: opNamesFilter(projectId, "Evaluation.predict_and_score") },
  };
  const [res, stats] = await Promise.all([
    api.callsQuery({ ...base, sort_by: [{ field: "started_at", direction: "asc" }], limit: ROWS_PAGE, offset }),
    api.callsQueryStats(base),
  ]);
  if (!ctx.isCurrent()) return;
  if (!res.calls.length) {
    replace(rowsBody, note("No predict_and_score calls under this evaluation."));
    return;
  }
  const scorerNames = [];
  for (const c of res.calls) {
    const scores = c.output && c.output.scores;
    if (scores && typeof scores === "object") for (const k of Object.keys(scores)) if (!scorerNames.includes(k)) scorerNames.push(k);
  }
  const rows = res.calls.map((c, i) => {
    const out = c.output && typeof c.output === "object" ? c.output : {};
    const modelOut = "output" in out ? out.output : out.model_output;
    return [
      h("a", { href: route([entity, project, "trace", c.trace_id], { call: c.id }) }, `#${offset + i + 1}`),
      compactCell(c.inputs ? c.inputs.example : undefined, 60),
      compactCell(modelOut, 60),
      ...scorerNames.map((s) => compactCell(out.scores ? out.scores[s] : undefined, 40)),
      statusBadge(statusOf(c)),
    ];
  });
  replace(
    rowsBody,
    dataTable(["Call", "Example", "Output", ...scorerNames, "Status"], rows, { cls: "eval-rows" }),
    pager({ offset, limit: ROWS_PAGE, shown: res.calls.length, total: stats.count, href: (o) => route([entity, project, "evals", id], { offset: o }) }),
  );
}
