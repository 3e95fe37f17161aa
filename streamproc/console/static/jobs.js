// Jobs: media-analysis jobs (listed), stored-video jobs (opened by id: Rekognition has no
// list for them), a job's status and its results on a timeline with the frame at a mark.
import { call } from "./api.js";
import { clearError, el, showError, state, svg } from "./dom.js";

// The stored-video Get operations, the key their results come under, and a name for people:
// the same kinds as streamproc/console/job_kinds.py (tests/test_console_jobs.py compares
// them). GetPersonTracking ({ items: "Persons" }) goes here once that kind is served.
// ``segments``: the Get takes AggregateBy, whose SEGMENTS items span Start..EndTimestampMillis.
const KINDS = {
  GetFaceSearch: { items: "Persons", title: "Face search" },
  GetFaceDetection: { items: "Faces", title: "Face detection" },
  GetContentModeration: { items: "ModerationLabels", title: "Content moderation", segments: true },
  GetLabelDetection: { items: "Labels", title: "Label detection", segments: true },
  GetCelebrityRecognition: { items: "Celebrities", title: "Celebrity recognition" },
  GetPersonTracking: { items: "Persons", title: "Person tracking" },
};
const RESULTS_PAGE = 1000;  // Get*'s MaxResults at most
const MAX_PAGES = 10;       // results read for the timeline: 10,000 at most, said when capped
const RECENT_KEY = "streamproc.console.jobs.recent";
const MAX_RECENT = 20;
const REFRESH_MS = 2000;    // an IN_PROGRESS job is read again while it is on screen
const MARK_SLOTS = 120;     // marks per lane at most (about 7 px apart on the axis)
const SEGMENTS = "SEGMENTS"; // AggregateBy asked for only when chosen: TIMESTAMPS is the default

/** The AggregateBy to send for ``api``: SEGMENTS where chosen and the Get takes it, else none. */
function aggregateOf(api, by) {
  return by === SEGMENTS && Object.hasOwn(KINDS, api) && KINDS[api].segments ? SEGMENTS : null;
}

/** Milliseconds as "m:ss.mmm". */
function clock(ms) {
  const minutes = Math.floor(ms / 60000);
  const seconds = ((ms % 60000) / 1000).toFixed(3).padStart(6, "0");
  return `${minutes}:${seconds}`;
}

function when(value) {
  if (value === undefined || value === null) return "";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString().replace(".000", "");
}

// ---- recently opened (this tab only) ----------------------------------------------------------
function recent() {
  try {
    const list = JSON.parse(sessionStorage.getItem(RECENT_KEY) || "[]");
    return Array.isArray(list)
      ? list.filter((r) => r && Object.hasOwn(KINDS, r.api) && typeof r.id === "string")
        .map((r) => ({ api: r.api, id: r.id, by: aggregateOf(r.api, r.by) }))
      : [];
  } catch (_) { return []; }
}

function remember(api, id, by) {
  const list = [{ api, id, by }, ...recent().filter((r) =>
    !(r.api === api && r.id === id && r.by === by))];
  try { sessionStorage.setItem(RECENT_KEY, JSON.stringify(list.slice(0, MAX_RECENT))); }
  catch (_) { /* storage full or off: the list is a convenience */ }
}

function jobLink(api, id, by) {
  return `#/jobs?api=${encodeURIComponent(api)}&id=${encodeURIComponent(id)}` +
         (by ? `&by=${by}` : "");
}

function recentList() {
  const list = recent();
  return el("section", { id: "recent", "aria-labelledby": "recent-title" },
    el("h2", { id: "recent-title" }, "Recently opened"),
    list.length === 0 ? el("p", {}, "No job opened in this tab yet.") :
      el("ul", {}, list.map((r) => el("li", {},
        el("a", { href: jobLink(r.api, r.id, r.by) },
          `${KINDS[r.api].title}: ${r.id}${r.by ? " (segments)" : ""}`)))));
}

function openForm(allowed, params) {
  const kinds = Object.keys(KINDS);
  const chosen = Object.hasOwn(KINDS, params.get("api") || "") ? params.get("api")
    : kinds.find((k) => allowed.includes(k)) || kinds[0];
  const select = el("select", { id: "job-kind", name: "api" }, kinds.map((k) =>
    el("option", { value: k, selected: k === chosen }, `${KINDS[k].title} (${k})`)));
  const input = el("input", { id: "job-id", name: "id", required: true, autocomplete: "off",
                              spellcheck: "false", value: params.get("id") || "" });
  const by = aggregateOf(chosen, params.get("by"));
  const aggregate = el("select", { id: "job-aggregate", name: "by",
                                   disabled: !KINDS[chosen].segments },
    el("option", { value: "", selected: !by }, "Per timestamp (TIMESTAMPS)"),
    el("option", { value: SEGMENTS, selected: Boolean(by) }, "Per segment (SEGMENTS)"));
  select.addEventListener("change", () => { aggregate.disabled = !KINDS[select.value].segments; });
  return el("form", { id: "open-job", class: "open-job", onsubmit: (event) => {
    event.preventDefault();
    const id = input.value.trim();
    if (id) location.hash = jobLink(select.value, id, aggregateOf(select.value, aggregate.value));
  } },
  el("h2", {}, "Open a stored-video job"),
  el("label", { for: "job-kind" }, "Job kind"), select,
  el("label", { for: "job-id" }, "Job ID"), input,
  el("label", { for: "job-aggregate" }, "Aggregate by"), aggregate,
  el("button", { type: "submit" }, "Open"));
}

// ---- media-analysis jobs ---------------------------------------------------------------------
function plain(title, value) {
  if (value === undefined) return null;
  return [el("dt", {}, title), el("dd", {}, el("pre", {}, JSON.stringify(value, null, 2)))];
}

async function mediaDetail(box, id) {
  clearError();
  try {
    const job = await call("GetMediaAnalysisJob", { JobId: id });
    box.replaceChildren(el("h3", {}, `Media analysis job ${job.JobName || job.JobId}`),
      el("dl", { class: "plain" },
        el("dt", {}, "Status"), el("dd", {}, state(job.Status || "?")),
        job.FailureDetails ? [el("dt", {}, "Failure"),
          el("dd", {}, `${job.FailureDetails.Code || ""} ${job.FailureDetails.Message || ""}`)]
          : null,
        plain("OperationsConfig", job.OperationsConfig), plain("Input", job.Input),
        plain("OutputConfig", job.OutputConfig), plain("Results", job.Results),
        plain("ManifestSummary", job.ManifestSummary)));
    box.hidden = false;
  } catch (error) { showError(error); }
}

async function mediaJobs(section, token, allowed) {
  const body = await call("ListMediaAnalysisJobs",
                          token ? { MaxResults: 25, NextToken: token } : { MaxResults: 25 });
  const detail = el("div", { id: "media-detail", class: "media-detail", hidden: true });
  const list = body.MediaAnalysisJobs || [];
  const rows = list.map((j) => el("tr", { "data-job": j.JobId },
    el("th", { scope: "row" }, allowed.includes("GetMediaAnalysisJob") ?
      el("button", { type: "button", class: "link", "aria-label": `Open media analysis job ${j.JobId}`,
                     onclick: () => mediaDetail(detail, j.JobId) }, j.JobId) : j.JobId),
    el("td", {}, j.JobName || ""), el("td", {}, state(j.Status || "?")),
    el("td", {}, when(j.CreationTimestamp)), el("td", {}, when(j.CompletionTimestamp)),
    el("td", {}, (j.FailureDetails && j.FailureDetails.Message) || "")));
  const cols = ["JobId", "JobName", "Status", "CreationTimestamp", "CompletionTimestamp",
                "FailureDetails"];
  section.replaceChildren(...[el("h2", { id: "media-title" }, "Media analysis jobs"),
    list.length === 0 ? el("p", {}, token ? "No more jobs." : "No media analysis jobs.") :
      el("table", { id: "media-jobs", "aria-labelledby": "media-title" },
        el("thead", {}, el("tr", {}, cols.map((c) => el("th", { scope: "col" }, c)))),
        el("tbody", {}, rows)),
    body.NextToken ? el("button", { type: "button", id: "media-next",
      onclick: () => mediaJobs(section, body.NextToken, allowed).catch(showError) }, "Next") : null,
    detail].filter(Boolean));  // replaceChildren would show a null as the text "null"
}

// ---- a stored-video job ----------------------------------------------------------------------
/** The results of a SUCCEEDED job, read page by page (MAX_PAGES at most). */
async function allResults(api, first, query) {
  const key = KINDS[api].items;
  const items = [...(first[key] || [])];
  let token = first.NextToken;
  let pages = 1;
  while (token && pages < MAX_PAGES) {
    const body = await call(api, { ...query, NextToken: token });
    items.push(...(body[key] || []));
    token = body.NextToken;
    pages += 1;
  }
  return { items, capped: Boolean(token) };
}

/** A result's lane on the timeline, its box (if any) and its lines of detail. */
function describe(api, item) {
  if (api === "GetFaceSearch") {
    const person = item.Person || {};
    const matches = item.FaceMatches || [];
    const best = matches[0];
    const name = best ? (best.Face.ExternalImageId || best.Face.FaceId || "match") : "no match";
    return { lane: name, box: (person.Face || {}).BoundingBox || person.BoundingBox,
             lines: [`Person ${person.Index ?? "?"}`,
                     ...(matches.length ? matches.map((m) =>
                       `${m.Face.ExternalImageId || "(no ExternalImageId)"}: similarity ` +
                       `${Number(m.Similarity).toFixed(1)}% (face ${m.Face.FaceId})`) :
                       ["No face in the collection matched"])] };
  }
  if (api === "GetFaceDetection") {
    const face = item.Face || {};
    return { lane: "Faces", box: face.BoundingBox,
             lines: [`Face, confidence ${Number(face.Confidence).toFixed(1)}%`] };
  }
  if (api === "GetCelebrityRecognition") {
    // One lane per celebrity Id (two celebrities may share a Name; an Id is one person).
    const c = item.Celebrity || {};
    const lane = c.Name && c.Name !== c.Id ? `${c.Name} (${c.Id})` : (c.Id || "celebrity");
    return { lane, box: c.BoundingBox || (c.Face || {}).BoundingBox,
             lines: [`${c.Name || c.Id} (Id ${c.Id}): confidence ` +
                     `${Number(c.Confidence).toFixed(1)}%`,
                     ...(c.Urls || []).map((url) => `More: ${url}`)] };
  }
  if (api === "GetPersonTracking") {
    // One lane per tracked person (its Index is stable across the video).
    const person = item.Person || {};
    return { lane: `Person ${person.Index ?? "?"}`, box: person.BoundingBox,
             lines: [`Person ${person.Index ?? "?"}` + (person.Face ? ", face found" : "")] };
  }
  if (api === "GetLabelDetection") {
    // One lane per label Name; each of its Instances is a box on the frame.
    const label = item.Label || {};
    const boxes = (label.Instances || []).map((i) => i.BoundingBox).filter(Boolean);
    const parents = (label.Parents || []).map((p) => p.Name).filter(Boolean);
    return { lane: label.Name || "label", boxes,
             lines: [`${label.Name}: confidence ${Number(label.Confidence).toFixed(1)}%` +
                     (boxes.length ? `, ${boxes.length} instance${boxes.length === 1 ? "" : "s"}`
                       : "") + (parents.length ? ` (under ${parents.join(", ")})` : "")] };
  }
  const label = item.ModerationLabel || {};
  return { lane: label.Name || "label", box: null,
           lines: [`${label.Name}${label.ParentName ? ` (under ${label.ParentName})` : ""}: ` +
                   `confidence ${Number(label.Confidence).toFixed(1)}%`] };
}

function metadataList(job) {
  const v = job.VideoMetadata || {};
  const row = (t, d) => (d === undefined || d === "" ? null : [el("dt", {}, t), el("dd", {}, d)]);
  return el("dl", { class: "plain", id: "job-status" },
    row("JobStatus", state(job.JobStatus)), row("StatusMessage", job.StatusMessage),
    row("JobTag", job.JobTag),
    row("Duration", v.DurationMillis !== undefined ? clock(v.DurationMillis) : undefined),
    row("Frame rate", v.FrameRate !== undefined ? `${v.FrameRate} fps` : undefined),
    row("Size", v.FrameWidth ? `${v.FrameWidth} × ${v.FrameHeight}` : undefined),
    row("Codec", v.Codec), row("Format", v.Format),
    row("Progress", job.JobStatus === "IN_PROGRESS" ?
      "Running: streamproc reports no percentage for stored-video jobs; this page reads " +
      "the job again every 2 s" : undefined));
}

/** The frame at ``ms`` with the boxes of ``marks``, and their details beside it. */
function showFrame(view, api, id, ms, marks, note) {
  const url = `/console/jobs/${encodeURIComponent(api)}/${encodeURIComponent(id)}` +
              `/frame?ms=${ms}`;
  const img = el("img", { id: "frame-image", src: url, alt: `Frame at ${clock(ms)}` });
  const boxes = svg("svg", { class: "job-boxes", viewBox: "0 0 1 1", preserveAspectRatio: "none",
                             "aria-hidden": "true" },
    marks.flatMap((m) => m.boxes || (m.box ? [m.box] : [])).map((box) => svg("rect", {
      x: box.Left, y: box.Top, width: box.Width, height: box.Height,
      class: "job-box", "vector-effect": "non-scaling-stroke" })));
  img.addEventListener("error", async () => {
    if (!img.isConnected) return;  // another mark was chosen since
    // The image element says nothing of why: ask again for the error's body.
    try {
      const answer = await fetch(url, { credentials: "same-origin" });
      const body = await answer.json().catch(() => ({}));
      showError({ code: body.__type || `HTTP ${answer.status}`,
                  message: body.Message || body.message || "The frame could not be loaded" });
    } catch (error) { showError(error); }
    view.dataset.frame = "error";
  });
  img.addEventListener("load", () => { if (img.isConnected) view.dataset.frame = "loaded"; });
  view.dataset.frame = "loading";
  view.replaceChildren(
    el("figure", { class: "job-frame" }, el("div", { class: "frame-box" }, img, boxes),
      el("figcaption", {}, `Frame at ${clock(ms)}`)),
    el("section", { class: "frame-details", "aria-live": "polite",
                    "aria-label": "Results at this time" },
      el("h3", {}, `${marks.length} result${marks.length === 1 ? "" : "s"} at ${clock(ms)}`),
      el("ul", {}, marks.flatMap((m) => m.lines.map((line) => el("li", {}, line)))),
      note ? el("p", { class: "note" }, note) : ""));
}

/** A result's place in time: its timestamp, and its end where it is a segment (else null). */
function span(item) {
  // A SEGMENTS item (AggregateBy SEGMENTS) runs from StartTimestampMillis to
  // EndTimestampMillis; streamproc also gives its start as Timestamp, AWS may give none.
  const ms = item.Timestamp ?? item.StartTimestampMillis ?? 0;
  const end = item.EndTimestampMillis;
  return { ms, end: typeof end === "number" && end >= ms ? end : null };
}

/** Marks by lane, in one pass over the results in time order: lane -> slot -> mark. */
function markLanes(described, duration) {
  // One mark per lane and slot of the axis (MARK_SLOTS across it): a long video's results
  // would otherwise be thousands of overlapping marks, none of them to click or Tab to.
  // A mark shows the frame at its first timestamp; its label says how many it stands for.
  const lanes = new Map();  // lane -> Map(slot -> { ms, found: results at ms, count, until, end })
  for (const d of [...described].sort((a, b) => a.ms - b.ms)) {
    const slot = Math.min(MARK_SLOTS - 1, Math.floor((d.ms / duration) * MARK_SLOTS));
    let own = lanes.get(d.lane);
    if (!own) lanes.set(d.lane, (own = new Map()));
    const mark = own.get(slot);
    if (!mark) own.set(slot, { ms: d.ms, found: [d], count: 1, until: d.ms, end: d.end });
    else {
      if (d.ms === mark.ms) mark.found.push(d);
      mark.count += 1;
      mark.until = d.ms;
      // Merged segments are drawn as one span, to the latest end among them.
      if (d.end !== null) mark.end = Math.max(mark.end ?? d.end, d.end);
    }
  }
  return lanes;
}

function markLabel(lane, { ms, found, count, until, end }) {
  return `${lane} at ${clock(ms)}` + (end !== null ? ` to ${clock(end)}` : "") +
         (found.length > 1 ? ` (${found.length} results)` : "") +
         (count > found.length ? `, ${count - found.length} more until ${clock(until)}` : "");
}

/** The timeline: lanes (one per matched id, label or "Faces") over the video's duration. */
function timeline(api, id, job, items, view) {
  const described = items.map((item) => {
    const { ms, end } = span(item);
    const d = describe(api, item);
    return { ms, end, ...d, lines: end === null ? d.lines :
      [...d.lines, `Segment ${clock(ms)} to ${clock(end)}`] };
  });
  const last = described.reduce((most, d) => Math.max(most, d.end ?? d.ms), 0);
  const duration = Math.max((job.VideoMetadata || {}).DurationMillis || 0, last, 1);
  const marks = markLanes(described, duration);
  const lanes = [...marks.keys()].sort();
  const width = 1000, labelW = 160, laneH = 28, axisH = 24;
  const plotW = width - labelW - 10;
  const x = (ms) => labelW + (ms / duration) * plotW;
  const height = lanes.length * laneH + axisH;
  const ticks = [];
  for (let i = 0; i <= 5; i += 1) {
    const ms = Math.round((duration * i) / 5);
    ticks.push(svg("line", { x1: x(ms), x2: x(ms), y1: 0, y2: height - axisH + 4, class: "tick" }),
      svg("text", { x: x(ms), y: height - 6, class: "tick-label",
                    "text-anchor": i === 0 ? "start" : i === 5 ? "end" : "middle" },
        clock(ms)));
  }
  const rows = lanes.map((lane, i) => {
    const y = i * laneH;
    return svg("g", { class: "lane" },
      svg("text", { x: 4, y: y + laneH / 2 + 5, class: "lane-label" }, lane),
      svg("line", { x1: labelW, x2: width - 10, y1: y + laneH / 2, y2: y + laneH / 2,
                    class: "lane-line" }),
      [...marks.get(lane).values()].map((one) => {
        const { ms, found, count, until, end } = one;
        const label = markLabel(lane, one);
        const choose = () => {
          for (const other of document.querySelectorAll("#timeline .mark[aria-pressed=true]")) {
            other.setAttribute("aria-pressed", "false");
          }
          mark.setAttribute("aria-pressed", "true");
          clearError();
          showFrame(view, api, id, ms, found, count > found.length ?
            `This mark also stands for ${count - found.length} later results in ${lane}, ` +
            `until ${clock(until)}.` : "");
        };
        // A segment spans its time (at least a point mark's 6 px, to stay clickable).
        const left = end === null ? x(ms) - 3 : x(ms);
        const wide = end === null ? 6 : Math.max(6, x(end) - x(ms));
        const mark = svg("rect", { x: left, y: y + 6, width: wide, height: laneH - 12,
          class: end === null ? "mark" : "mark span", role: "button", tabindex: 0,
          "aria-label": label, "aria-pressed": "false", "data-ms": ms,
          "data-end": end ?? false },
          svg("title", {}, label));
        mark.addEventListener("click", choose);
        mark.addEventListener("keydown", (event) => {
          if (event.key === "Enter" || event.key === " ") { event.preventDefault(); choose(); }
        });
        return mark;
      }));
  });
  return svg("svg", { id: "timeline", class: "timeline", viewBox: `0 0 ${width} ${height}`,
                      role: "group", "aria-label": `Results over the video's ${clock(duration)}` },
    ticks, rows);
}

async function jobView(box, api, id, by) {
  // AggregateBy only when SEGMENTS is chosen: without it the Get gives TIMESTAMPS, its default.
  const query = { JobId: id, MaxResults: RESULTS_PAGE, ...(by ? { AggregateBy: by } : {}) };
  const first = await call(api, query);
  remember(api, id, by);
  const listed = document.getElementById("recent");
  if (listed) listed.replaceWith(recentList());  // drawn before this job was read
  const parts = [el("h2", { id: "job-title" }, `${KINDS[api].title} job ${id}`),
                 metadataList(first),
                 by ? el("p", { id: "job-aggregate-note" },
                   "Results per segment (AggregateBy SEGMENTS): each is drawn over its span.")
                   : null];
  if (first.JobStatus === "IN_PROGRESS") {
    const shown = location.hash;
    setTimeout(() => {
      // Only while this job is still what the page shows: leaving the page stops the reads.
      if (location.hash === shown && box.isConnected) {
        jobView(box, api, id, by).catch(showError);
      }
    }, REFRESH_MS);
    parts.push(el("button", { type: "button", id: "job-refresh",
      onclick: () => jobView(box, api, id, by).catch(showError) }, "Refresh"));
  } else if (first.JobStatus === "SUCCEEDED") {
    const { items, capped } = await allResults(api, first, query);
    const view = el("div", { id: "frame-view", class: "frame-view" },
      el("p", {}, items.length ? "Choose a mark (Tab, then Enter) to see the frame at that time."
        : ""));
    parts.push(el("h3", {}, `${items.length} result${items.length === 1 ? "" : "s"}`),
      capped ? el("p", { id: "capped", class: "note" },
        `Showing the first ${items.length} results (${MAX_PAGES} pages of ${RESULTS_PAGE}); ` +
        "the job has more.") : null,
      items.length ? timeline(api, id, first, items, view) :
        el("p", { id: "no-results" }, "The job found nothing."),
      view);
  }
  box.replaceChildren(...parts.filter(Boolean));
}

/** Render the Jobs page into ``main``; ``#/jobs?api=GetFaceSearch&id=JOB`` opens a job. */
export async function jobs(main, whoami, params) {
  const allowed = whoami.allowed || [];
  const api = params.get("api");
  const id = params.get("id");
  const jobBox = el("section", { id: "job", class: "job", "aria-labelledby": "job-title" });
  const media = el("section", { id: "media", "aria-labelledby": "media-title" });
  main.replaceChildren(...[el("h1", {}, "Jobs"), openForm(allowed, params), recentList(),
                           id ? jobBox : null,
                           allowed.includes("ListMediaAnalysisJobs") ? media : null]
    .filter(Boolean));
  const work = [];
  if (id) {
    if (!Object.hasOwn(KINDS, api)) {
      jobBox.replaceChildren(el("p", {}, `Unknown job kind ${api}: choose one above.`));
    } else {
      // The call is made even where whoami says no: the API's refusal is shown as it is.
      work.push(jobView(jobBox, api, id, aggregateOf(api, params.get("by"))).catch((error) => {
        jobBox.replaceChildren(el("h2", { id: "job-title" }, `${KINDS[api].title} job ${id}`),
          el("p", { id: "job-error" }, `${error.code}: ${error.message}`));
        showError(error);
      }));
    }
  }
  if (allowed.includes("ListMediaAnalysisJobs")) {
    work.push(mediaJobs(media, null, allowed).catch(showError));
  }
  await Promise.all(work);
}
