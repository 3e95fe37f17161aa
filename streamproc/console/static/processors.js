// Stream processors, 25 a page: name (a link to its page), status, StatusMessage, analysed fps
// and last match time (from /console/stats), start, stop and delete (with a confirm).
import { call, get } from "./api.js";
import { clearError, confirmDialog, el, showError, state } from "./dom.js";
import { mayCreate } from "./processor_form.js";
import { fps, pollStats, shown } from "./stats.js";

export const PAGE_SIZE = 25;

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

function lastMatch(ms) {
  return ms ? new Date(ms).toLocaleString() : "-";
}

function row(p, allowed, refresh) {
  return el("tr", { "data-name": p.Name },
    el("th", { scope: "row" }, el("a", { href: `#/processor?name=${encodeURIComponent(p.Name)}` }, p.Name)),
    el("td", {}, state(p.Status)), el("td", {}, p.StatusMessage || ""),
    el("td", { class: "fps" }, "-"), el("td", { class: "last-match" }, "-"),
    el("td", {}, actions(p, allowed, refresh)));
}

/** Fill the fps and last-match cells of the rows shown from two snapshots. */
function fillStats(rows, now, before) {
  for (const tr of rows.children) {
    const name = tr.dataset.name;
    const mine = now.processors[name];
    const rate = before ? fps(mine, before.processors[name], now.at, before.at) : null;
    tr.querySelector(".fps").textContent = shown(rate);
    tr.querySelector(".last-match").textContent = lastMatch(mine && mine.lastMatch);
  }
}

function pager(page, more, less, move) {
  return el("nav", { class: "pager", "aria-label": "Stream processor pages", id: "processors-pager" },
    el("button", { type: "button", disabled: !less, onclick: () => move(-1) }, "Previous page"),
    el("span", { class: "muted", id: "processors-page" }, `Page ${page}`),
    el("button", { type: "button", disabled: !more, onclick: () => move(1) }, "Next page"));
}

/**
 * Render the processors list into ``main``: one page of ListStreamProcessors (MaxResults 25),
 * Describe and whoami for that page's names only. ``tokens`` carries the NextToken of each
 * page seen, so a redraw after an action stays on the same page.
 */
export async function processors(main, whoami, params, tokens = [undefined], index = 0) {
  const redraw = (at) => processors(main, whoami, params, tokens, at).catch(showError);
  const refresh = () => redraw(index);
  const token = tokens[index];
  const out = await call("ListStreamProcessors", { MaxResults: PAGE_SIZE,
                                                   ...(token ? { NextToken: token } : {}) });
  tokens[index + 1] = out.NextToken;
  const names = (out.StreamProcessors || []).map((p) => p.Name);
  const query = names.map((n) => `processor=${encodeURIComponent(n)}`).join("&");
  const [mine, list] = await Promise.all([
    get(`/console/whoami${query ? `?${query}` : ""}`), described(names)]);
  const create = mayCreate(mine) ?
    el("p", {}, el("a", { href: "#/processor-new", id: "create-processor", class: "button" },
                   "Create stream processor")) : null;
  const rows = el("tbody", {}, list.map((p) => row(p, mine.processors[p.Name] || [], refresh)));
  const move = (step) => {
    clearError();
    document.body.dataset.ready = "";
    return redraw(Math.max(0, index + step)).then(() => {
      document.body.dataset.ready = "processors";
    });
  };
  const empty = names.length === 0 && index === 0;
  main.replaceChildren(el("h1", {}, "Stream processors"), create,
    empty ? el("p", { id: "empty" }, "No stream processors yet.") :
      el("table", { id: "processors", "aria-label": "Stream processors" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Name"),
          el("th", { scope: "col" }, "Status"), el("th", { scope: "col" }, "Status message"),
          el("th", { scope: "col" }, "Analysed fps"), el("th", { scope: "col" }, "Last match"),
          el("th", { scope: "col" }, "Actions"))),
        rows),
    empty ? null : pager(index + 1, Boolean(out.NextToken), index > 0, move));
  if (names.length) pollStats(rows, (now, before) => fillStats(rows, now, before));
}
