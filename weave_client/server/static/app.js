// The viewer's entry point: a hash router over the views.
//
//   #/                                   projects
//   #/{entity}/{project}/traces?op=&status=&q=&offset=
//   #/{entity}/{project}/trace/{trace_id}?call={id}
//   #/{entity}/{project}/call/{id}       (opens the call's trace)
//   #/{entity}/{project}/objects?kind=&offset=
//   #/{entity}/{project}/objects/{name}?digest=
//   #/{entity}/{project}/table/{digest}?offset=
//   #/{entity}/{project}/evals[/{call_id}]?offset=
//   #/{entity}/{project}/threads[/{thread_id}]?offset=

import { errorBox, h, replace, route } from "./dom.js";
import { renderEvaluation, renderEvaluations } from "./evals.js";
import { closeWatches } from "./live.js";
import { renderObject, renderObjects, renderTable } from "./objects.js";
import { renderProjects } from "./projects.js";
import { renderThread, renderThreads } from "./threads.js";
import { renderCallRedirect, renderTrace } from "./trace.js";
import { renderTraces } from "./traces.js";

const main = document.getElementById("main");
const crumbs = document.getElementById("crumbs");
const tabs = document.getElementById("tabs");

let navigation = 0;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const q = raw.indexOf("?");
  const path = q >= 0 ? raw.slice(0, q) : raw;
  const params = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : "");
  const segments = path
    .split("/")
    .filter((s) => s !== "")
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
  return { segments, params };
}

const VIEWS = {
  traces: (ctx) => renderTraces(main, ctx),
  trace: (ctx) => renderTrace(main, ctx),
  call: (ctx) => renderCallRedirect(main, ctx),
  objects: (ctx) => (ctx.rest.length ? renderObject(main, ctx) : renderObjects(main, ctx)),
  table: (ctx) => renderTable(main, ctx),
  evals: (ctx) => (ctx.rest.length ? renderEvaluation(main, ctx) : renderEvaluations(main, ctx)),
  threads: (ctx) => (ctx.rest.length ? renderThread(main, ctx) : renderThreads(main, ctx)),
};

const TABS = [
  ["traces", "Traces"],
  ["objects", "Objects"],
  ["evals", "Evaluations"],
  ["threads", "Threads"],
];

function renderChrome(entity, project, view) {
  if (!entity) {
    replace(crumbs, h("span", { class: "crumb" }, "Projects"));
    replace(tabs);
    return;
  }
  replace(
    crumbs,
    h("a", { class: "crumb", href: "#/" }, "Projects"),
    h("span", { class: "crumb-sep" }, "/"),
    h("a", { class: "crumb current", href: route([entity, project, "traces"]) }, `${entity}/${project}`),
  );
  const active = view === "trace" || view === "call" ? "traces" : view === "table" ? "objects" : view;
  replace(
    tabs,
    TABS.map(([key, label]) =>
      h("a", { class: "tab" + (key === active ? " active" : ""), href: route([entity, project, key]) }, label),
    ),
  );
}

async function render() {
  const nav = ++navigation;
  closeWatches();
  const { segments, params } = parseHash();
  if (segments.length < 2) {
    renderChrome(null);
    document.title = "Projects · weave-client viewer";
    return renderProjects(main, { params, isCurrent: () => nav === navigation });
  }
  const [entity, project, view = "traces", ...rest] = segments;
  renderChrome(entity, project, view);
  document.title = `${entity}/${project} · weave-client viewer`;
  const ctx = {
    entity,
    project,
    projectId: `${entity}/${project}`,
    view,
    rest,
    params,
    isCurrent: () => nav === navigation,
  };
  const viewFn = VIEWS[view];
  if (!viewFn) {
    replace(main, errorBox(`No view named ${JSON.stringify(view)} (try traces, objects, evals or threads).`));
    return;
  }
  try {
    await viewFn(ctx);
  } catch (err) {
    if (ctx.isCurrent()) replace(main, errorBox(err));
  }
}

window.addEventListener("hashchange", render);
render();
