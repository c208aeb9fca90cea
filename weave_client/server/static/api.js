// The trace server's HTTP API, as the Python client uses it (same routes, same
// request shapes), plus the local server's GET /viewer/projects.

/** The call fields the trace list and the trace tree show (not inputs or outputs,
 * which the detail panel reads per call): a page costs the same however big they are. */
export const CALL_LIST_COLUMNS = Object.freeze([
  "id",
  "trace_id",
  "parent_id",
  "op_name",
  "display_name",
  "started_at",
  "ended_at",
  "exception",
  "summary",
]);

/** Raised for a failed request; the message names the route and the server's reason. */
export class ApiError extends Error {
  constructor(route, status, detail) {
    super(`${route}: ${status ? "HTTP " + status + ": " : ""}${detail}`);
    this.route = route;
    this.status = status;
  }
}

async function request(route, init) {
  let res;
  try {
    res = await fetch(route, { credentials: "same-origin", ...init });
  } catch (err) {
    throw new ApiError(route, 0, `cannot reach the server (${err.message})`);
  }
  if (!res.ok) {
    let detail = res.statusText;
    try {
      const body = await res.json();
      // The hosted service's {"reason": ...}, or FastAPI's {"detail": ...} (a list for a 422).
      const said = body && (body.reason || body.detail);
      if (said) detail = typeof said === "string" ? said : JSON.stringify(said);
    } catch {
      // Not JSON: keep the status text.
    }
    throw new ApiError(route, res.status, detail);
  }
  return res;
}

/** POST a JSON body to `route`, return the parsed JSON reply. */
export async function post(route, body) {
  const res = await request(route, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return res.json();
}

/** POST a JSON body, return the reply as text (for /file/content). */
export async function postText(route, body) {
  const res = await request(route, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return res.text();
}

/** POST a JSON body, return the JSON-lines reply as a list (the stream routes). */
export async function postJsonl(route, body) {
  const text = await postText(route, body);
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line));
}

export async function getJson(route) {
  const res = await request(route, { method: "GET" });
  return res.json();
}

// -- query-language builders (weave's $expr) ---------------------------------

export const field = (name) => ({ $getField: name });
export const lit = (value) => ({ $literal: value });
export const eq = (a, b) => ({ $eq: [a, b] });
export const and = (...ops) => (ops.length === 1 ? ops[0] : { $and: ops });
export const or = (...ops) => (ops.length === 1 ? ops[0] : { $or: ops });
export const contains = (input, substr) => ({
  $contains: { input, substr: lit(substr), case_insensitive: true },
});

/** The op_names filter for an op given by plain name or ref: any version of it. */
export function opNamesFilter(projectId, op) {
  if (op.startsWith("weave:///")) return [op];
  return [op, `weave:///${projectId}/op/${op}:*`];
}

// -- routes --------------------------------------------------------------------

export const api = {
  projects: () => getJson("/viewer/projects"),
  callsQuery: (req) => post("/calls/query", req),
  callsQueryStats: (req) => post("/calls/query_stats", req),
  threadsQuery: (req) => postJsonl("/threads/stream_query", req),
  callRead: (projectId, id) => post("/call/read", { project_id: projectId, id }),
  objsQuery: (req) => post("/objs/query", req),
  objRead: (projectId, objectId, digest) =>
    post("/obj/read", { project_id: projectId, object_id: objectId, digest }),
  tableQuery: (req) => post("/table/query", req),
  tableQueryStats: (projectId, digest) => post("/table/query_stats", { project_id: projectId, digest }),
  feedbackQuery: (req) => post("/feedback/query", req),
  refsReadBatch: (refs) => post("/refs/read_batch", { refs }),
  fileContent: (projectId, digest) => postText("/file/content", { project_id: projectId, digest }),
};

/** Resolve one ref URI to its value (for the in-place "show" of ref links). */
export async function resolveRef(uri) {
  const res = await api.refsReadBatch([uri]);
  return res.vals[0];
}
