// Objects: names and kinds, an object's versions and value, and table rows, paged.

import { api, resolveRef } from "./api.js";
import { compactCell, errorBox, h, note, parseRef, renderTop, replace, route } from "./dom.js";
import { fmtAgo, fmtInt, fmtTime } from "./format.js";
import { dataTable, heading, pager, section } from "./widgets.js";

const PAGE = 50;
const ROWS_PAGE = 25;
const KINDS = [
  ["", "all"],
  ["object", "objects"],
  ["op", "ops"],
];

function kindLabel(o) {
  if (o.kind === "op") return "op";
  return o.leaf_object_class || o.base_object_class || o.kind;
}

export async function renderObjects(main, ctx) {
  const { projectId, entity, project, params } = ctx;
  const kind = params.get("kind") || "";
  const offset = Math.max(0, Number.parseInt(params.get("offset") || "0", 10) || 0);
  const here = (over) => route([entity, project, "objects"], { kind, offset, ...over });
  const kindNav = h(
    "div",
    { class: "filters" },
    KINDS.map(([k, label]) => h("a", { class: "btn" + (k === kind ? " primary" : ""), href: here({ kind: k, offset: 0 }) }, label)),
  );
  const body = h("div", {}, note("Loading…"));
  replace(main, heading("Objects", projectId), kindNav, body);

  const filter = { latest_only: true };
  if (kind) filter.is_op = kind === "op";
  // One more than a page tells whether there is a next page (objs/query has no count route).
  const res = await api.objsQuery({
    project_id: projectId,
    filter,
    metadata_only: true,
    sort_by: [{ field: "object_id", direction: "asc" }],
    limit: PAGE + 1,
    offset,
  });
  if (!ctx.isCurrent()) return;
  const objs = res.objs.slice(0, PAGE);
  if (!objs.length) {
    replace(body, note(kind ? `No ${kind}s in this project.` : "No objects in this project yet."));
    return;
  }
  const rows = objs.map((o) => [
    h("a", { class: "strong", href: route([entity, project, "objects", o.object_id]) }, o.object_id),
    h("span", { class: "badge kind" }, kindLabel(o)),
    h("span", { class: "num" }, `v${o.version_index}`),
    h("span", { class: "mono muted", title: o.digest }, o.digest.slice(0, 12)),
    h("span", { title: fmtAgo(o.created_at) }, fmtTime(o.created_at)),
  ]);
  replace(
    body,
    dataTable(["Name", "Kind", "Latest", "Digest", "Created"], rows, { cls: "objects" }),
    pager({ offset, limit: PAGE, shown: objs.length, total: null, hasNext: res.objs.length > PAGE, href: (o) => here({ offset: o }) }),
  );
}

export async function renderObject(main, ctx) {
  const { projectId, entity, project, params } = ctx;
  const name = ctx.rest[0];
  const wanted = params.get("digest") || "latest";
  replace(main, heading(name, projectId), note("Loading…"));
  const [versions, objRes] = await Promise.all([
    api.objsQuery({
      project_id: projectId,
      filter: { object_ids: [name] },
      metadata_only: true,
      sort_by: [{ field: "created_at", direction: "desc" }],
      limit: 500,
    }),
    api.objRead(projectId, name, wanted),
  ]);
  if (!ctx.isCurrent()) return;
  const obj = objRes.obj;
  const versionRows = versions.objs.map((v) => [
    v.digest === obj.digest
      ? h("span", { class: "strong" }, `v${v.version_index}`)
      : h("a", { href: route([entity, project, "objects", name], { digest: v.digest }) }, `v${v.version_index}`),
    h("span", { class: "mono", title: v.digest }, v.digest.slice(0, 16)),
    v.is_latest ? h("span", { class: "badge kind" }, "latest") : "",
    h("span", { title: fmtAgo(v.created_at) }, fmtTime(v.created_at)),
  ]);
  const valueBody = h("div", {});
  replace(
    main,
    heading(
      h("span", {}, name, h("span", { class: "dname" }, `v${obj.version_index}`)),
      h("span", { class: "meta" }, h("span", { class: "badge kind" }, kindLabel(obj)), h("span", { class: "mono" }, obj.digest)),
    ),
    h(
      "div",
      { class: "split objects-split" },
      h("div", { class: "versions-pane" }, section("Versions", dataTable(["Version", "Digest", "", "Created"], versionRows, { cls: "versions" }))),
      valueBody,
    ),
  );
  await renderObjectValue(valueBody, ctx, obj);
}

async function renderObjectValue(el, ctx, obj) {
  const val = obj.val;
  const parts = [];
  // An op: show its source file(s) as text.
  if (obj.kind === "op" && val && typeof val === "object" && val.files && typeof val.files === "object") {
    for (const [file, digest] of Object.entries(val.files)) {
      const pre = h("pre", { class: "source" }, "Loading…");
      parts.push(section(`Source: ${file}`, pre, "source"));
      api
        .fileContent(ctx.projectId, digest)
        .then((text) => {
          pre.textContent = text;
        })
        .catch((err) => replace(pre, errorBox(err)));
    }
  }
  parts.push(section("Value", renderTop(val, { resolveRef, openDepth: 3 }), "value"));
  // A table, or an object holding one under `rows` (Dataset), shows its rows here.
  const tableRef = parseRef(val) || (val && typeof val === "object" ? parseRef(val.rows) : null);
  if (tableRef && tableRef.kind === "table") {
    const rowsBody = h("div", {});
    parts.push(section("Rows", rowsBody, "rows"));
    replace(el, parts);
    await tableRows(rowsBody, ctx, tableRef, 0);
    return;
  }
  replace(el, parts);
}

/** #/{e}/{p}/table/{digest}: a table's rows, paged. */
export async function renderTable(main, ctx) {
  const digest = ctx.rest[0];
  const offset = Math.max(0, Number.parseInt(ctx.params.get("offset") || "0", 10) || 0);
  const body = h("div", {});
  replace(main, heading(`Table ${digest.slice(0, 16)}`, ctx.projectId), body);
  const ref = { entity: ctx.entity, project: ctx.project, projectId: ctx.projectId, digest, kind: "table" };
  await tableRows(body, ctx, ref, offset, (o) => route([ctx.entity, ctx.project, "table", digest], { offset: o }));
}

/**
 * Rows of the table `ref` from `offset`. With `hrefFn` the pager navigates;
 * without it (inline under an object) it pages in place.
 */
async function tableRows(el, ctx, ref, offset, hrefFn) {
  const pageSize = hrefFn ? PAGE : ROWS_PAGE;
  replace(el, note("Loading rows…"));
  let stats;
  let res;
  try {
    [stats, res] = await Promise.all([
      api.tableQueryStats(ref.projectId, ref.digest),
      api.tableQuery({ project_id: ref.projectId, digest: ref.digest, limit: pageSize, offset }),
    ]);
  } catch (err) {
    replace(el, errorBox(err));
    return;
  }
  if (!ctx.isCurrent()) return;
  if (!res.rows.length) {
    replace(el, note(stats.count ? "No rows on this page." : "The table is empty."));
    return;
  }
  const cols = [];
  for (const r of res.rows) {
    if (r.val && typeof r.val === "object" && !Array.isArray(r.val)) {
      for (const k of Object.keys(r.val)) if (!cols.includes(k)) cols.push(k);
    }
  }
  const rows = res.rows.map((r, i) => [
    h("span", { class: "num muted" }, String(r.original_index ?? offset + i)),
    ...(cols.length ? cols.map((c) => compactCell(r.val ? r.val[c] : undefined)) : [compactCell(r.val)]),
  ]);
  const tableHref = (o) => route([ref.entity, ref.project, "table", ref.digest], { offset: o });
  const pg = pager({
    offset,
    limit: pageSize,
    shown: res.rows.length,
    total: stats.count,
    href: hrefFn || tableHref,
    // Inline under an object, pages load in place; the links still open the table view.
    onGo: hrefFn ? null : (o) => tableRows(el, ctx, ref, o),
  });
  replace(
    el,
    h("div", { class: "muted small" }, `${fmtInt(stats.count)} row${stats.count === 1 ? "" : "s"} · `, h("a", { href: route([ref.entity, ref.project, "table", ref.digest]) }, "open table")),
    dataTable(["#", ...(cols.length ? cols : ["value"])], rows, { cls: "rows" }),
    pg,
  );
}
