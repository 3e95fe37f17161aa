// One stream processor: its settings (DescribeStreamProcessor), start / stop / delete as the
// key allows, a current frame with its RegionsOfInterest drawn over it, and the live feed of
// its match records (/console/feed/N, Server-Sent Events) with the face crops.
import { call, get } from "./api.js";
import { clearError, confirmDialog, el, showError, state, svg } from "./dom.js";

export const MAX_CARDS = 50;  // feed cards kept in the page: the oldest go first
const POLL_MS = 1000;  // while STARTING or STOPPING, Describe again this often
const MAX_POLLS = 120;  // ... for at most two minutes, then the page waits for a click
const TRANSITIONS = ["STARTING", "STOPPING", "UPDATING"];
const ACTIVE = ["STARTING", "RUNNING", "UPDATING"];  // Stop applies; Start is refused

/** An epoch time in seconds (as the API gives it) in ISO form, UTC; "" when absent. */
export function when(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "";
  return new Date(seconds * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function collectionOf(p) {
  return ((p.Settings || {}).FaceSearch || {}).CollectionId || "";
}

/** The settings as name/value pairs, in the order an operator reads them. */
export function settings(p) {
  const search = (p.Settings || {}).FaceSearch || {};
  const rows = [
    ["Name", p.Name], ["Status", p.Status], ["StatusMessage", p.StatusMessage],
    ["Input", ((p.Input || {}).KinesisVideoStream || {}).Arn],
    ["Output", ((p.Output || {}).KinesisDataStream || {}).Arn],
    ["RoleArn", p.RoleArn], ["CollectionId", search.CollectionId],
    ["FaceMatchThreshold", search.FaceMatchThreshold],
    ["DataSharingPreference", p.DataSharingPreference ?
      `OptIn: ${Boolean(p.DataSharingPreference.OptIn)}` : undefined],
    ["NotificationChannel", p.NotificationChannel ?
      Object.entries(p.NotificationChannel).map(([k, v]) => `${k}: ${v}`).join(", ") : undefined],
    ["RegionsOfInterest", p.RegionsOfInterest ? `${p.RegionsOfInterest.length}` : undefined],
    ["CreationTimestamp", when(p.CreationTimestamp)],
    ["LastUpdateTimestamp", when(p.LastUpdateTimestamp)],
  ];
  return rows.filter(([, v]) => v !== undefined && v !== null && v !== "");
}

function settingsList(p) {
  return el("dl", { id: "settings", class: "settings" }, settings(p).flatMap(([name, value]) => [
    el("dt", {}, name),
    el("dd", { "data-field": name }, name === "Status" ? state(String(value)) : String(value)),
  ]));
}

/** The regions as SVG shapes over a frame (a 1x1 view box: the API's ratios as they are). */
function overlay(regions) {
  const shapes = [];
  for (const region of regions || []) {
    const box = region.BoundingBox;
    if (box) {
      shapes.push(svg("rect", { class: "roi", x: box.Left || 0, y: box.Top || 0,
                                width: box.Width || 0, height: box.Height || 0,
                                "vector-effect": "non-scaling-stroke" }));
    }
    if (region.Polygon && region.Polygon.length) {
      shapes.push(svg("polygon", { class: "roi",
        points: region.Polygon.map((pt) => `${pt.X || 0},${pt.Y || 0}`).join(" "),
        "vector-effect": "non-scaling-stroke" }));
    }
  }
  return svg("svg", { id: "roi-overlay", class: "overlay", viewBox: "0 0 1 1",
                      preserveAspectRatio: "none", "aria-hidden": "true" }, ...shapes);
}

/** The current frame (when RUNNING) with the regions over it, and its Refresh button. */
function frameSection(p) {
  const holder = el("div", { id: "frame", class: "processor-frame" });
  const placeholder = (text) => holder.replaceChildren(
    el("p", { id: "frame-placeholder", class: "muted placeholder" }, text));
  const load = () => {
    delete holder.dataset.loaded;  // set again by this load's image, not an earlier one
    if (p.Status !== "RUNNING") { placeholder(`No current frame: the processor is ${p.Status}.`); return; }
    const img = el("img", { id: "frame-image", alt: `Current frame of ${p.Name}`,
      src: `/console/frame/${encodeURIComponent(p.Name)}?t=${Date.now()}` });
    img.addEventListener("error", () => placeholder("No current frame: none came in time."));
    img.addEventListener("load", () => { holder.dataset.loaded = "true"; });
    holder.replaceChildren(el("div", { class: "frame-box" }, img, overlay(p.RegionsOfInterest)));
  };
  load();
  return el("section", { "aria-labelledby": "frame-title" },
    el("h2", { id: "frame-title" }, "Current frame"),
    el("button", { type: "button", id: "frame-refresh", onclick: load }, "Refresh frame"),
    holder);
}

function actionButtons(p, allowed, done) {
  const run = async (operation) => {
    clearError();
    try { await call(operation, { Name: p.Name }); } catch (error) { showError(error); return; }
    await done(operation);
  };
  const buttons = [];
  if (allowed.includes("StartStreamProcessor")) {
    // Disabled where the API would refuse it (ResourceInUseException) for the status shown.
    buttons.push(el("button", { type: "button", id: "start", disabled: ACTIVE.includes(p.Status),
                                onclick: () => run("StartStreamProcessor") }, "Start"));
  }
  if (allowed.includes("StopStreamProcessor")) {
    buttons.push(el("button", { type: "button", id: "stop", disabled: !ACTIVE.includes(p.Status),
                                onclick: () => run("StopStreamProcessor") }, "Stop"));
  }
  if (allowed.includes("DeleteStreamProcessor")) {
    buttons.push(el("button", { type: "button", id: "delete", class: "danger", onclick: async () => {
      if (await confirmDialog(`Delete stream processor ${p.Name}?`,
                              "It stops and is removed. This cannot be undone.")) {
        await run("DeleteStreamProcessor");
      }
    } }, "Delete"));
  }
  return buttons.length ? el("div", { class: "actions", id: "actions" }, buttons) : null;
}

function similarity(value) {
  return typeof value === "number" ? `${value.toFixed(1)} %` : "";
}

/** One card per detected face of a match event: its crop, the best match (or "no match"). */
export function cards(event, collection, faceCrops) {
  const record = event.record || {};
  const faces = record.FaceSearchResponse || [];
  const at = typeof event.at === "number" ? when(event.at / 1000) : "";
  return faces.map((entry, i) => {
    const crop = (event.crops || [])[i];
    const best = (entry.MatchedFaces || [])[0];
    const face = best ? best.Face || {} : null;
    const picture = crop ? el("img", { class: "crop detected", src: crop, alt: "Detected face" }) :
      el("div", { class: "crop placeholder", role: "img", "aria-label": "No crop of the detected face" },
         "no crop");
    const enrolled = face && faceCrops && collection && face.FaceId ?
      el("img", { class: "crop enrolled", alt: `Enrolled face of ${face.ExternalImageId || face.FaceId}`,
        src: `/console/crops/${encodeURIComponent(collection)}/${encodeURIComponent(face.FaceId)}` }) : null;
    if (enrolled) enrolled.addEventListener("error", () => enrolled.remove());
    const facts = face ? el("dl", { class: "match" },
      el("dt", {}, "ExternalImageId"), el("dd", { class: "ext" }, face.ExternalImageId || "-"),
      el("dt", {}, "FaceId"), el("dd", { class: "face-id" }, face.FaceId || ""),
      face.UserId ? [el("dt", {}, "UserId"), el("dd", { class: "user-id" }, face.UserId)] : null,
      el("dt", {}, "Similarity"), el("dd", { class: "similarity" }, similarity(best.Similarity))) :
      el("p", { class: "ext no-match" }, "no match");
    return el("li", { class: face ? "card matched" : "card unmatched" },
      el("div", { class: "crops" }, picture, enrolled), facts,
      el("p", { class: "time muted" }, el("time", {}, at)));
  });
}

/**
 * The live feed: an EventSource on /console/feed/N, newest card first, at most MAX_CARDS.
 * Returns the section and a close() for when the page is left (no connection stays open).
 */
function feedSection(name, collection, faceCrops) {
  const list = el("ol", { id: "feed", class: "feed", "aria-live": "polite",
                          "aria-label": `Live matches of ${name}` });
  const status = el("p", { id: "feed-status", class: "muted" }, "Connecting to the live feed...");
  const dropped = el("p", { id: "feed-dropped", class: "muted", hidden: true });
  let lost = 0;
  const source = new EventSource(`/console/feed/${encodeURIComponent(name)}`);
  const close = () => { source.close(); };
  source.addEventListener("hello", (message) => {
    let here = false;
    try { here = Boolean(JSON.parse(message.data).here); } catch (_) { here = false; }
    status.textContent = here ? "Live: matches appear here as they are published." :
      "Connected: matches appear here while the processor runs on this node.";
    status.dataset.state = "open";
  });
  source.addEventListener("match", (message) => {
    if (!list.isConnected) { close(); return; }  // the page was left without a hashchange
    let event;
    try { event = JSON.parse(message.data); } catch (_) { return; }
    status.textContent = "Live: matches appear here as they are published.";
    lost += Number(event.dropped) || 0;
    if (lost > 0) { dropped.hidden = false; dropped.textContent = `${lost} events dropped (the page fell behind)`; }
    list.prepend(...cards(event, collection, faceCrops));
    while (list.children.length > MAX_CARDS) list.lastElementChild.remove();
  });
  source.addEventListener("end", (message) => {
    close();
    let reason = "";
    try { reason = JSON.parse(message.data).reason; } catch (_) { reason = ""; }
    status.textContent = reason === "shutdown" ? "The feed ended: the daemon is stopping." :
      "The feed ended: the session ended or may no longer see this processor.";
    status.dataset.state = "ended";
  });
  source.addEventListener("error", () => {
    // EventSource reconnects by itself unless the server refused (then it is CLOSED).
    if (source.readyState === EventSource.CLOSED) {
      status.textContent = "The live feed is not available.";
      status.dataset.state = "closed";
    } else {
      status.textContent = "The live feed was interrupted: reconnecting...";
    }
  });
  const section = el("section", { "aria-labelledby": "feed-title" },
    el("h2", { id: "feed-title" }, "Live feed"), status, dropped, list);
  return { section, close };
}

/** Render the page of processor ``params.get("name")`` into ``main``. */
export async function processor(main, whoami, params) {
  const name = params.get("name") || "";
  if (!name) {
    main.replaceChildren(el("h1", {}, "Stream processor"),
      el("p", {}, "No processor named: pick one on the ", el("a", { href: "#/processors" },
         "Stream processors"), " page."));
    return;
  }
  // The heading at once: an error (ResourceNotFoundException, AccessDenied) is shown under
  // this page's name, not over the page that was there before.
  main.replaceChildren(el("h1", {}, `Stream processor ${name}`));
  const [described, mine] = await Promise.all([
    call("DescribeStreamProcessor", { Name: name }),
    get(`/console/whoami?processor=${encodeURIComponent(name)}`)]);
  const allowed = (mine.processors || {})[name] || [];
  const top = el("div", { id: "processor-top" });
  const root = el("div", { class: "processor-page" });
  let polls = 0;
  // One polling chain: the timer pending, and which refresh may schedule the next. A refresh
  // started by a button replaces the chain rather than running a second one beside it.
  let timer = null;
  let latest = 0;
  const draw = (p) => {
    top.replaceChildren(
      el("section", { "aria-labelledby": "settings-title" },
        el("h2", { id: "settings-title" }, "Settings"), settingsList(p)),
      frameSection(p));
    top.prepend(actionButtons(p, allowed, after) || "");
  };
  const schedule = () => {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(refresh, POLL_MS);
  };
  const refresh = async () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    const mine = latest += 1;
    if (!root.isConnected) return;
    let p;
    try { p = await call("DescribeStreamProcessor", { Name: name }); } catch (error) {
      showError(error);
      return;
    }
    // A newer refresh (a click meanwhile) owns the chain: this answer is older than its own.
    if (!root.isConnected || mine !== latest) return;
    draw(p);
    if (TRANSITIONS.includes(p.Status) && polls < MAX_POLLS) {
      polls += 1;
      schedule();
    }
  };
  async function after(operation) {
    if (operation === "DeleteStreamProcessor") { location.hash = "#/processors"; return; }
    polls = 0;
    await refresh();
  }
  const feed = feedSection(name, collectionOf(described), Boolean(mine.faceCrops));
  // Leaving the page (another hash, or the tab) closes the feed.
  const leave = () => {
    feed.close();
    window.removeEventListener("hashchange", leave);
    window.removeEventListener("pagehide", leave);
  };
  window.addEventListener("hashchange", leave);
  window.addEventListener("pagehide", leave);
  root.append(top, feed.section);
  main.replaceChildren(el("h1", {}, `Stream processor ${name}`), root);
  draw(described);
  if (TRANSITIONS.includes(described.Status)) schedule();
}
