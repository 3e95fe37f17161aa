// Overview: the daemon's health per stage (as /health reports it), version, processor counts,
// where the models run, the Kafka destinations, the cluster (when there is one), and
// sparklines of analysed fps and frame-to-publish latency from /console/stats.
import { get, listAll } from "./api.js";
import { el, state } from "./dom.js";
import { Sparkline, fps, latencyMs, pollStats } from "./stats.js";

const STATUSES = ["RUNNING", "STARTING", "STOPPED", "STOPPING", "UPDATING", "FAILED"];

function table(id, label, headers, rows) {
  return el("table", { id, "aria-label": label },
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows));
}

function healthSection(health) {
  const stages = Object.entries(health.stages || {});
  const rows = stages.map(([name, s]) => el("tr", {},
    el("th", { scope: "row" }, name), el("td", {}, state(s.state)),
    el("td", {}, String(s.restarts ?? 0)), el("td", {}, s.last_error || "")));
  return [
    el("h2", {}, "Health"),
    el("p", {}, "Daemon: ", el("span", { id: "health-status" }, state(health.status || "unknown"))),
    table("stages", "Stages", ["Stage", "State", "Restarts", "Last error"], rows),
  ];
}

function inferenceSection(inference) {
  const title = el("h2", {}, "Inference");
  if (!inference) return [title, el("p", { class: "muted", id: "inference" }, "Models not loaded yet.")];
  const rows = (inference.models || []).map((m) => el("tr", {},
    el("th", { scope: "row" }, m.role), el("td", {}, m.model), el("td", { class: "provider" }, m.provider),
    el("td", {}, m.fp16 ? "fp16" : "fp32"), el("td", {}, m.fallback ? "yes" : "no")));
  return [title,
    el("p", { id: "inference" }, "Backend ", el("strong", { id: "inference-backend" }, inference.backend),
      ", ", inference.gpu ? "on GPU" : "on CPU",
      inference.fallback ? el("span", { class: "warn" }, " (a GPU was asked for: fell back)") : ""),
    table("models", "Model packs", ["Role", "Model", "Execution provider", "Precision", "Fallback"], rows)];
}

function destinationsSection(destinations) {
  const entries = Object.entries(destinations || {});
  const title = el("h2", {}, "Kafka destinations");
  if (!entries.length) return [title, el("p", { class: "muted", id: "no-destinations" }, "No destination in use.")];
  const rows = entries.map(([name, d]) => el("tr", { "data-destination": name },
    el("th", { scope: "row" }, name), el("td", {}, state(d.state)),
    el("td", {}, String(d.records_held ?? 0)), el("td", {}, String(d.on_disk ?? 0)),
    el("td", {}, String(d.set_aside ?? 0)),
    el("td", {}, [d.since ? `since ${d.since}` : "", d.error ? ` ${d.error}` : "",
                  d.parked_topics ? ` parked: ${Object.keys(d.parked_topics).join(", ")}` : ""].join(""))));
  return [title, table("destinations", "Kafka destinations",
    ["Destination", "State", "Records held", "On disk", "Set aside", "Detail"], rows)];
}

const MAX_JUDGED = 100;  // processor names whoami judges in one call (MAX_WHOAMI_PROCESSORS)

/** The cluster report with only the processors this key may DescribeStreamProcessor.
 *
 * As /console/stats shows only those: which node runs a processor is that processor's
 * description. Names past the first 100 are not judged, so they are left out (fail closed).
 */
async function visibleCluster(cluster) {
  if (!cluster || !cluster.cluster) return cluster;
  const members = cluster.members || [];
  const names = [...new Set(members.flatMap((m) => m.processors || []))].slice(0, MAX_JUDGED);
  let judged = {};
  if (names.length) {
    const query = names.map((n) => `processor=${encodeURIComponent(n)}`).join("&");
    try { judged = (await get(`/console/whoami?${query}`)).processors || {}; } catch (_) {
      judged = {};  // no answer: nothing is shown rather than everything
    }
  }
  const may = (n) => (judged[n] || []).includes("DescribeStreamProcessor");
  return { ...cluster,
           members: members.map((m) => ({ ...m, processors: (m.processors || []).filter(may) })) };
}

function clusterSection(cluster) {
  // Hidden in single-node mode (or where /cluster does not answer).
  if (!cluster || !cluster.cluster) return [];
  const rows = (cluster.members || []).map((m) => el("tr", { "data-node": m.node },
    el("th", { scope: "row" }, m.node, m.node === cluster.node ? " (this node)" : ""),
    el("td", {}, m.address || m.endpoint || ""),
    el("td", {}, String((m.processors || []).length)),
    el("td", { class: "runs" }, (m.processors || []).join(", ") || "-")));
  return [el("section", { id: "cluster-section", "aria-labelledby": "cluster-title" },
    el("h2", { id: "cluster-title" }, `Cluster ${cluster.cluster}`),
    el("p", {}, cluster.fenced ? state("FENCED") : "In touch with the group",
      `; shared log applied to offset ${cluster.applied_offset ?? "-"}`),
    table("members", "Cluster members", ["Node", "Address", "Processors", "Runs"], rows))];
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

function sparkSection() {
  const rate = new Sparkline("spark-fps", "Analysed frames per second", " fps");
  const latency = new Sparkline("spark-latency", "Frame-to-publish latency", " ms");
  const section = el("section", { id: "throughput", "aria-labelledby": "throughput-title" },
    el("h2", { id: "throughput-title" }, "Throughput (whole daemon, last 2 minutes)"),
    el("div", { class: "sparks" },
      el("figure", {}, rate.svg, el("figcaption", {}, "Analysed fps: ", rate.value)),
      el("figure", {}, latency.svg,
        el("figcaption", {}, "Frame-to-publish latency: ", latency.value))));
  const each = (now, before) => {
    if (!before) return;  // a rate needs two snapshots
    rate.push(fps(now.totals, before.totals, now.at, before.at));
    latency.push(latencyMs(now.totals, before.totals));
  };
  return { section, start: () => pollStats(section, each) };
}

/** Render the overview into ``main``; ``whoami`` gives the version and allowed operations. */
export async function overview(main, whoami) {
  const [health, cluster] = await Promise.all([
    get("/health"), get("/cluster").catch(() => null).then(visibleCluster)]);
  const sparks = sparkSection();
  const parts = [el("h1", {}, "Overview"),
    el("p", {}, "Version ", el("span", { id: "version" }, whoami.version)),
    ...healthSection(health), sparks.section, ...inferenceSection(health.inference),
    ...destinationsSection(health.destinations), ...clusterSection(cluster)];
  if (whoami.allowed.includes("ListStreamProcessors")) {
    parts.push(...countsSection(await listAll("ListStreamProcessors", "StreamProcessors")));
  } else {
    parts.push(el("p", { class: "muted" }, "This key may not list stream processors."));
  }
  main.replaceChildren(...parts);
  sparks.start();
}

