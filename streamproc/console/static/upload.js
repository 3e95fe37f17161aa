// Enrol by upload (IndexFaces, one call per photo; a video goes whole to the console's
// /console/enrol route, which picks its best frames as streamproc enrol does), with a
// per-file report, and search by upload (SearchFacesByImage, the searched face's box drawn
// over the photo).
import { ApiError, call, get } from "./api.js";
import { el, showError, clearError } from "./dom.js";
import { externalId, imageBytes, kind, stem } from "./enrol.js";

/** The server's report on one video (faces indexed, already there, refused and why). */
async function enrolVideo(collection, file, id) {
  // The CSRF token as the session gives it (api.js keeps its copy to itself).
  const { csrf } = await get("/console/session");
  const query = new URLSearchParams({ id, file: file.name });
  const response = await fetch(`/console/enrol/${encodeURIComponent(collection)}?${query}`, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/octet-stream", "X-CSRF-Token": csrf || "" },
    body: file,
  });
  let out = {};
  try { out = await response.json(); } catch (_) { out = {}; }
  if (!response.ok) {
    throw new ApiError(out.__type || `HTTP ${response.status}`,
                       out.Message || out.message || response.statusText, response.status);
  }
  const unindexed = Object.entries(out.Unindexed || {}).map(([why, n]) => `${why}: ${n}`);
  if (out.Problem) {
    const extra = unindexed.length ? ` (${unindexed.join(", ")})` : "";
    return { file: file.name, id, ok: false, text: `${out.Problem}${extra}` };
  }
  const parts = [];
  if (out.Indexed.length) parts.push(`indexed ${out.Indexed.join(", ")}`);
  if (out.Present.length) parts.push(`already there ${out.Present.join(", ")}`);
  if (unindexed.length) parts.push(`not indexed ${unindexed.join(", ")}`);
  // Every face already in the collection: nothing new was indexed, so the row says so.
  const state = out.Indexed.length ? "indexed" : "already there";
  return { file: file.name, id, ok: true, state, text: parts.join("; ") };
}

/** What IndexFaces did with one file, in streamproc enrol's words. */
async function enrolOne(collection, file) {
  const id = externalId(stem(file.name));
  const sort = kind(file.name);
  if (sort === "video") {
    try {
      return await enrolVideo(collection, file, id);
    } catch (error) {
      return { file: file.name, id, ok: false,
               text: error.code ? `${error.code}: ${error.message}` : error.message };
    }
  }
  if (sort === "other") return { file: file.name, id, ok: false, text: "neither an image nor a video" };
  try {
    const out = await call("IndexFaces", { CollectionId: collection, ExternalImageId: id,
                                           MaxFaces: 1, Image: { Bytes: await imageBytes(file) } });
    const faces = out.FaceRecords.map((r) => r.Face.FaceId);
    if (faces.length) return { file: file.name, id, ok: true, text: `indexed ${faces.join(", ")}` };
    const reasons = out.UnindexedFaces.map((u) => u.Reasons.join("+"));
    return { file: file.name, id, ok: false, text: reasons.length ?
      `no face passed the quality filter (${reasons.join(", ")})` : "no face found" };
  } catch (error) {
    return { file: file.name, id, ok: false,
             text: error.code ? `${error.code}: ${error.message}` : error.message };
  }
}

function reportRow(r) {
  return el("tr", { "data-file": r.file, class: r.ok ? "indexed" : "refused" },
    el("th", { scope: "row" }, r.file), el("td", {}, r.id),
    el("td", { class: r.ok ? "state state-ok" : "state state-FAILED" },
       r.ok ? (r.state || "indexed") : "refused"),
    el("td", { class: "why" }, r.text));
}

/** The enrol section: a labelled file input and drop zone, and the per-file report. */
export function enrolSection(collection, done) {
  const body = el("tbody", {});
  const status = el("p", { id: "enrol-status", role: "status", class: "muted" });
  const report = el("table", { id: "enrol-report", "aria-label": "Enrolment report", hidden: true },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "File"),
      el("th", { scope: "col" }, "ExternalImageId"), el("th", { scope: "col" }, "Result"),
      el("th", { scope: "col" }, "Detail"))), body);
  const run = async (files) => {
    clearError();
    report.hidden = false;
    const list = [...files];
    let indexed = 0;
    let present = 0;
    for (const [i, file] of list.entries()) {
      status.textContent = `Enrolling ${i + 1} of ${list.length}: ${file.name}`;
      const result = await enrolOne(collection, file);
      if (result.state === "already there") present += 1;
      else indexed += result.ok;
      body.append(reportRow(result));
    }
    const there = present ? `, ${present} already there` : "";
    status.textContent = `${list.length} ${list.length === 1 ? "file" : "files"}: ` +
      `${indexed} indexed${there}, ${list.length - indexed - present} refused`;
    await done();
  };
  const input = el("input", { type: "file", id: "enrol-files", multiple: true,
                              accept: "image/*,video/*", class: "file" });
  input.addEventListener("change", () => { if (input.files.length) run(input.files); });
  const zone = el("label", { for: "enrol-files", class: "dropzone", id: "enrol-drop" },
    "Enrol photos or a short video: drop them here, or choose files (each file's name gives " +
    "its ExternalImageId; a video gives its best frames)");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) run(e.dataTransfer.files);
  });
  return el("section", { "aria-labelledby": "enrol-title" },
    el("h2", { id: "enrol-title" }, "Enrol by upload"), zone, input, status, report);
}

function drawBox(frame, box) {
  const mark = el("div", { class: "box", id: "searched-box", "aria-hidden": "true" });
  // CSSOM, not a style attribute: the page's CSP allows no inline styles.
  mark.style.left = `${box.Left * 100}%`;
  mark.style.top = `${box.Top * 100}%`;
  mark.style.width = `${box.Width * 100}%`;
  mark.style.height = `${box.Height * 100}%`;
  frame.append(mark);
}

function matchesTable(matches) {
  if (!matches.length) return el("p", { id: "no-matches" }, "No face in the collection matches.");
  return el("table", { id: "matches", "aria-label": "Matches" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "ExternalImageId"),
      el("th", { scope: "col" }, "FaceId"), el("th", { scope: "col" }, "Similarity"))),
    el("tbody", {}, matches.map((m) => el("tr", { "data-face": m.Face.FaceId },
      el("th", { scope: "row" }, m.Face.ExternalImageId || ""), el("td", {}, m.Face.FaceId),
      el("td", {}, `${m.Similarity.toFixed(1)}%`)))));
}

async function readDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

/** The search section: choose a photo, see it with the searched face boxed and the matches. */
export function searchSection(collection) {
  const result = el("div", { id: "search-result", "aria-live": "polite" });
  const input = el("input", { type: "file", id: "search-file", accept: "image/*" });
  input.addEventListener("change", async () => {
    const file = input.files[0];
    if (!file) return;
    clearError();
    result.replaceChildren(el("p", { class: "muted" }, `Searching with ${file.name}`));
    try {
      const [out, url] = await Promise.all([
        call("SearchFacesByImage", { CollectionId: collection, MaxFaces: 10,
                                     Image: { Bytes: await imageBytes(file) } }),
        readDataUrl(file)]);
      const frame = el("div", { class: "frame" },
        el("img", { src: url, alt: `Searched photo ${file.name}`, id: "searched-photo" }));
      drawBox(frame, out.SearchedFaceBoundingBox);
      result.replaceChildren(frame, matchesTable(out.FaceMatches));
    } catch (error) {
      result.replaceChildren();
      showError(error);
    }
  });
  return el("section", { "aria-labelledby": "search-title" },
    el("h2", { id: "search-title" }, "Search by upload"),
    el("label", { for: "search-file", class: "field" }, "Search with a photo"), input, result);
}
