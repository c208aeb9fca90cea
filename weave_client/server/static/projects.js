// Projects: the projects this server holds (local-server extension GET /viewer/projects).

import { api } from "./api.js";
import { h, note, replace, route } from "./dom.js";
import { fmtAgo, fmtInt, fmtTime } from "./format.js";
import { dataTable, heading } from "./widgets.js";

export async function renderProjects(main, ctx) {
  replace(main, heading("Projects"), note("Loading…"));
  const { projects } = await api.projects();
  if (!ctx.isCurrent()) return;
  if (!projects.length) {
    replace(
      main,
      heading("Projects"),
      note("This server holds no data yet. Trace something with weave_client and reload."),
    );
    return;
  }
  const rows = projects.map((p) => {
    const [entity, ...rest] = p.project_id.split("/");
    const project = rest.join("/");
    return [
      h("a", { class: "strong", href: route([entity, project, "traces"]) }, p.project_id),
      h("span", { class: "num" }, fmtInt(p.traces)),
      h("span", { class: "num" }, fmtInt(p.calls)),
      h("span", { class: "num" }, fmtInt(p.objects)),
      h("span", { title: fmtAgo(p.last_activity) }, fmtTime(p.last_activity)),
      h(
        "span",
        { class: "links" },
        h("a", { href: route([entity, project, "objects"]) }, "objects"),
        " · ",
        h("a", { href: route([entity, project, "evals"]) }, "evaluations"),
      ),
    ];
  });
  replace(
    main,
    heading("Projects", `${projects.length} on this server`),
    dataTable(["Project", "Traces", "Calls", "Object versions", "Last activity", ""], rows, {
      cls: "projects",
    }),
  );
}
