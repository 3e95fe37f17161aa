// Overview: the daemon's health per stage (as /health reports it), version, processor counts.
import { get, listAll } from "./api.js";
import { el, state } from "./dom.js";

const STATUSES = ["RUNNING", "STARTING", "STOPPED", "STOPPING", "UPDATING", "FAILED"];

function healthSection(health) {
  const stages = Object.entries(health.stages || {});
  const rows = stages.map(([name, s]) => el("tr", {},
    el("th", { scope: "row" }, name), el("td", {}, state(s.state)),
    el("td", {}, String(s.restarts ?? 0)), el("td", {}, s.last_error || "")));
  return [
    el("h2", {}, "Health"),
    el("p", {}, "Daemon: ", el("span", { id: "health-status" }, state(health.status || "unknown"))),
    el("table", { id: "stages", "aria-label": "Stages" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Stage"),
        el("th", { scope: "col" }, "State"), el("th", { scope: "col" }, "Restarts"),
        el("th", { scope: "col" }, "Last error"))),
      el("tbody", {}, rows)),
  ];
}

function countsSection(processors) {
  const counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  for (const p of processors) counts[p.Status] = (counts[p.Status] || 0) + 1;
  return [
    el("h2", {}, "Stream processors by status"),
    el("ul", { class: "counts", id: "counts", "aria-label": "Processors by status" },
      Object.entries(counts).map(([status, n]) => el("li", { "data-status": status },
        el("span", { class: "n" }, String(n)), state(status)))),
    el("p", { class: "muted" }, `${processors.length} in all`),
  ];
}

/** Render the overview into ``main``; ``whoami`` gives the version and allowed operations. */
export async function overview(main, whoami) {
  const health = await get("/health");
  const parts = [el("h1", {}, "Overview"),
    el("p", {}, "Version ", el("span", { id: "version" }, whoami.version)),
    ...healthSection(health)];
  if (whoami.allowed.includes("ListStreamProcessors")) {
    parts.push(...countsSection(await listAll("ListStreamProcessors", "StreamProcessors")));
  } else {
    parts.push(el("p", { class: "muted" }, "This key may not list stream processors."));
  }
  main.replaceChildren(...parts);
}
