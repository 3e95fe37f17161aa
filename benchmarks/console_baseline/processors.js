// BASELINE for benchmarks/bench_console.py, not served by the daemon: the processors list as
// it was before paging (every processor listed, then each one described; whoami for the
// first 100). The benchmark puts it in place of static/processors.js.
import { call, get, listAll } from "./api.js";
import { clearError, confirmDialog, el, showError, state } from "./dom.js";

async function described(names) {
  return Promise.all(names.map((name) => call("DescribeStreamProcessor", { Name: name })
    .catch((error) => ({ Name: name, Status: "?", StatusMessage: `${error.code}: ${error.message}` }))));
}

function confirmDelete(name) {
  return confirmDialog(`Delete stream processor ${name}?`,
                       "It stops and is removed. This cannot be undone.");
}

function actions(p, allowed, refresh) {
  const run = async (operation) => {
    clearError();
    try { await call(operation, { Name: p.Name }); } catch (error) { showError(error); return; }
    await refresh();
  };
  const buttons = [];
  if (allowed.includes("StartStreamProcessor")) {
    buttons.push(el("button", { type: "button", "aria-label": `Start ${p.Name}`,
                                onclick: () => run("StartStreamProcessor") }, "Start"));
  }
  if (allowed.includes("StopStreamProcessor")) {
    buttons.push(el("button", { type: "button", "aria-label": `Stop ${p.Name}`,
                                onclick: () => run("StopStreamProcessor") }, "Stop"));
  }
  if (allowed.includes("DeleteStreamProcessor")) {
    buttons.push(el("button", { type: "button", class: "danger", "aria-label": `Delete ${p.Name}`,
      onclick: async () => { if (await confirmDelete(p.Name)) await run("DeleteStreamProcessor"); },
    }, "Delete"));
  }
  return buttons;
}

/** Render the processors list into ``main``. */
export async function processors(main) {
  const refresh = () => processors(main).catch(showError);
  const names = (await listAll("ListStreamProcessors", "StreamProcessors")).map((p) => p.Name);
  const query = names.slice(0, 100).map((n) => `processor=${encodeURIComponent(n)}`).join("&");
  const whoami = await get(`/console/whoami${query ? `?${query}` : ""}`);
  const rows = (await described(names)).map((p) => el("tr", { "data-name": p.Name },
    el("th", { scope: "row" }, p.Name), el("td", {}, state(p.Status)),
    el("td", {}, p.StatusMessage || ""),
    el("td", {}, actions(p, whoami.processors[p.Name] || [], refresh))));
  main.replaceChildren(el("h1", {}, "Stream processors"),
    names.length === 0 ? el("p", { id: "empty" }, "No stream processors yet.") :
      el("table", { id: "processors", "aria-label": "Stream processors" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Name"),
          el("th", { scope: "col" }, "Status"), el("th", { scope: "col" }, "Status message"),
          el("th", { scope: "col" }, "Actions"))),
        el("tbody", {}, rows)));
}
