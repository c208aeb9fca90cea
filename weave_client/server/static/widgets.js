// Small shared pieces of the views: pager, sections, data tables.

import { h } from "./dom.js";
import { fmtInt } from "./format.js";

/**
 * "1–50 of 1,234" with previous/next links. `total` may be null (unknown; then
 * `hasNext` decides). `href(offset)` gives the route of another page; with
 * `onGo(offset)` a click pages in place instead of navigating.
 */
export function pager({ offset, limit, shown, total, hasNext, href, onGo }) {
  const first = shown ? offset + 1 : 0;
  const last = offset + shown;
  const more = total === null || total === undefined ? hasNext : last < total;
  const label =
    total === null || total === undefined
      ? `${fmtInt(first)}–${fmtInt(last)}`
      : `${fmtInt(first)}–${fmtInt(last)} of ${fmtInt(total)}`;
  const go = (target) =>
    onGo
      ? (ev) => {
          ev.preventDefault();
          onGo(target);
        }
      : null;
  const link = (text, target, enabled, cls) =>
    enabled
      ? h("a", { class: "btn " + cls, href: href(target), onclick: go(target) }, text)
      : h("span", { class: "btn disabled " + cls, "aria-disabled": "true" }, text);
  const lastOffset = total ? Math.max(0, Math.floor((total - 1) / limit) * limit) : null;
  return h(
    "div",
    { class: "pager" },
    link("« first", 0, offset > 0, "pg-first"),
    link("‹ prev", Math.max(0, offset - limit), offset > 0, "pg-prev"),
    h("span", { class: "pager-label" }, label),
    link("next ›", offset + limit, more, "pg-next"),
    lastOffset !== null ? link("last »", lastOffset, more, "pg-last") : null,
  );
}

/** A titled block of the detail panel. */
export function section(title, body, extraClass = "") {
  return h("section", { class: "panel-section " + extraClass }, h("h3", {}, title), body);
}

/** A <table> from column headers and rows of cells (strings or nodes). */
export function dataTable(headers, rows, { cls = "", rowAttrs } = {}) {
  return h(
    "table",
    { class: "data " + cls },
    h("thead", {}, h("tr", {}, headers.map((c) => h("th", {}, c)))),
    h(
      "tbody",
      {},
      rows.map((cells, i) => h("tr", rowAttrs ? rowAttrs(i) : {}, cells.map((c) => h("td", {}, c)))),
    ),
  );
}

/** A page heading with an optional muted subtitle. */
export function heading(title, subtitle) {
  return h("div", { class: "page-head" }, h("h2", {}, title), subtitle ? h("div", { class: "sub" }, subtitle) : null);
}
