// DOM building without HTML strings: every piece of data becomes a text node
// (textContent), so a value such as "<script>" is shown, never parsed.

/**
 * Create an element. `attrs` keys: class, title, href (internal "#/..." only),
 * id, role, type, value, placeholder, colspan, open, disabled, dataset (object),
 * style (object of CSS properties), on* (event handlers), aria-* and data-*.
 * Children: strings/numbers (as text), nodes, arrays of those, null/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") {
      for (const [prop, v] of Object.entries(value)) el.style.setProperty(prop, v);
    } else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "href") {
      el.setAttribute("href", safeHref(value));
    } else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

// Links only ever point inside the viewer; anything else (a "javascript:" URL
// that slipped in through data) becomes a dead link.
function safeHref(value) {
  const s = String(value);
  return s.startsWith("#/") ? s : "#/";
}

/** Remove every child of `el` and append `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A hash route from path segments (each URI-encoded) and optional query params. */
export function route(segments, params = {}) {
  const path = segments.map((s) => encodeURIComponent(String(s))).join("/");
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") qs.set(k, String(v));
  }
  const q = qs.toString();
  return "#/" + path + (q ? "?" + q : "");
}

/** A muted placeholder line ("Loading…", "No calls"). */
export function note(text, cls = "") {
  return h("div", { class: "note " + cls }, text);
}

/** An error box naming what failed. */
export function errorBox(err) {
  return h("div", { class: "error-box", role: "alert" }, String(err && err.message ? err.message : err));
}

// ---------------------------------------------------------------------------
// Refs: weave:///{entity}/{project}/{kind}/{name}:{digest}[/attr/x/key/y...]
// ---------------------------------------------------------------------------

const REF_PREFIX = "weave:///";

/** Parse a weave ref URI; null when `s` is not one. */
export function parseRef(s) {
  if (typeof s !== "string" || !s.startsWith(REF_PREFIX)) return null;
  const parts = s.slice(REF_PREFIX.length).split("/");
  if (parts.length < 4) return null;
  const [entity, project, kind, head, ...extra] = parts;
  if (!entity || !project || !head) return null;
  const ref = { uri: s, entity, project, projectId: `${entity}/${project}`, kind, extra };
  if (kind === "object" || kind === "op") {
    const colon = head.indexOf(":");
    if (colon <= 0) return null;
    ref.name = decodeURIComponent(head.slice(0, colon));
    ref.digest = head.slice(colon + 1);
  } else if (kind === "table") {
    ref.digest = head;
  } else if (kind === "call") {
    ref.id = head;
  } else {
    return null;
  }
  return ref;
}

/** The viewer route a ref points to. */
export function refRoute(ref) {
  const base = [ref.entity, ref.project];
  if (ref.kind === "object" || ref.kind === "op") {
    return route([...base, "objects", ref.name], { digest: ref.digest });
  }
  if (ref.kind === "table") return route([...base, "table", ref.digest]);
  return route([...base, "call", ref.id]);
}

/** Short text for a ref link: "name:abcd1234" plus any extra path. */
export function refLabel(ref) {
  let label;
  if (ref.kind === "object" || ref.kind === "op") label = `${ref.name}:${ref.digest.slice(0, 8)}`;
  else if (ref.kind === "table") label = `table:${ref.digest.slice(0, 8)}`;
  else label = `call:${ref.id.slice(-12)}`;
  return ref.extra.length ? `${label}/${ref.extra.join("/")}` : label;
}

// ---------------------------------------------------------------------------
// Values: JSON rendered as a collapsible tree; refs become links that can also
// be resolved in place through /refs/read_batch.
// ---------------------------------------------------------------------------

const LONG_STRING = 120;

/**
 * Render any JSON value. Options: `depth` (current nesting), `openDepth`
 * (nesting levels expanded at first), `resolveRef` (async uri => value, to
 * show a ref's value in place).
 */
export function renderValue(value, opts = {}) {
  const o = { depth: 0, openDepth: 2, ...opts };
  if (value === null || value === undefined) return h("span", { class: "v-null" }, "null");
  if (typeof value === "boolean") return h("span", { class: "v-bool" }, String(value));
  if (typeof value === "number") return h("span", { class: "v-num" }, formatNumber(value));
  if (typeof value === "string") return renderString(value, o);
  if (Array.isArray(value)) return renderContainer(value, o, true);
  if (typeof value === "object") return renderContainer(value, o, false);
  return h("span", {}, String(value));
}

function formatNumber(n) {
  return Number.isInteger(n) ? String(n) : String(Math.round(n * 1e6) / 1e6);
}

function renderString(s, o) {
  const ref = parseRef(s);
  if (ref) return renderRef(ref, o);
  if (s.length > LONG_STRING || s.includes("\n")) return h("pre", { class: "v-str v-long" }, s);
  return h("span", { class: "v-str" }, s);
}

function renderRef(ref, o) {
  const link = h("a", { class: "ref", href: refRoute(ref), title: ref.uri }, refLabel(ref));
  if (!o.resolveRef || ref.kind === "call") return link;
  const slot = h("div", { class: "ref-value" });
  const button = h(
    "button",
    {
      class: "mini",
      type: "button",
      title: "Show the value this ref names",
      onclick: async () => {
        if (slot.childElementCount) {
          slot.replaceChildren();
          button.textContent = "show";
          return;
        }
        button.disabled = true;
        try {
          const val = await o.resolveRef(ref.uri);
          replace(slot, renderValue(val, { ...o, depth: o.depth + 1, openDepth: o.depth + 2 }));
          button.textContent = "hide";
        } catch (err) {
          replace(slot, errorBox(err));
        } finally {
          button.disabled = false;
        }
      },
    },
    "show",
  );
  return h("span", { class: "ref-wrap" }, link, " ", button, slot);
}

function customTypeName(obj) {
  if (obj && typeof obj._class_name === "string") return obj._class_name;
  if (obj && typeof obj._type === "string") return obj._type;
  return null;
}

function renderContainer(value, o, isArray) {
  const keys = isArray ? value.map((_, i) => i) : Object.keys(value);
  if (keys.length === 0) return h("span", { class: "v-empty" }, isArray ? "[]" : "{}");
  const typeName = isArray ? null : customTypeName(value);
  const count = isArray ? `${keys.length} item${keys.length === 1 ? "" : "s"}` : `${keys.length} key${keys.length === 1 ? "" : "s"}`;
  const summary = h(
    "summary",
    { class: "v-summary" },
    typeName ? h("span", { class: "v-type" }, typeName) : null,
    typeName ? " " : null,
    isArray ? `[${count}]` : `{${count}}`,
  );
  const rows = h("div", { class: "v-rows" });
  const open = o.depth < o.openDepth && keys.length <= 50;
  const details = h("details", { class: "v-box", open }, summary, rows);
  // Children are built when first opened: a huge value stays cheap until looked at.
  let built = false;
  const build = () => {
    if (built) return;
    built = true;
    for (const k of keys) {
      rows.appendChild(
        h(
          "div",
          { class: "v-row" },
          h("span", { class: "v-key" }, String(k)),
          renderValue(value[k], { ...o, depth: o.depth + 1 }),
        ),
      );
    }
  };
  if (open) build();
  else details.addEventListener("toggle", build);
  return details;
}

/**
 * A top-level value as a key/value table (inputs, attributes, ...), so the
 * first level needs no click.
 */
export function renderFields(obj, opts = {}) {
  if (obj === null || obj === undefined) return note("none");
  if (typeof obj !== "object" || Array.isArray(obj)) return h("div", { class: "v-top" }, renderValue(obj, opts));
  const keys = Object.keys(obj);
  if (keys.length === 0) return note("none");
  return h(
    "div",
    { class: "fields" },
    keys.map((k) =>
      h("div", { class: "v-row" }, h("span", { class: "v-key" }, k), renderValue(obj[k], { ...opts, depth: 1 })),
    ),
  );
}

/**
 * A whole value (an output, an object version): a dict as key rows, under its
 * class name when it is a custom object; anything else as one value.
 */
export function renderTop(value, opts = {}) {
  if (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length) {
    const typeName = customTypeName(value);
    return h("div", {}, typeName ? h("div", { class: "v-type top-type" }, typeName) : null, renderFields(value, opts));
  }
  return h("div", { class: "v-top" }, renderValue(value, opts));
}

/** One-line text for a value in a table cell (the full value is in the title). */
export function compactText(value, max = 80) {
  let s;
  if (typeof value === "string") s = value;
  else {
    try {
      s = JSON.stringify(value);
    } catch {
      s = String(value);
    }
  }
  if (s === undefined) s = "";
  return s.length > max ? s.slice(0, max - 1) + "…" : s;
}

/** A table cell showing a value compactly; refs stay links. */
export function compactCell(value, max = 80) {
  const ref = parseRef(value);
  if (ref) return h("a", { class: "ref", href: refRoute(ref), title: ref.uri }, refLabel(ref));
  const full = typeof value === "string" ? value : compactText(value, 4000);
  return h("span", { class: "cell-val", title: full }, compactText(value, max));
}
