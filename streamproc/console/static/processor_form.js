// Create a stream processor: a form that sends the CreateStreamProcessor request a boto3 user
// would send (the API validates it: its error is shown as it is, and the form is kept).
import { call, listAll } from "./api.js";
import { clearError, el, showError } from "./dom.js";

export const DEFAULT_THRESHOLD = 80;

/** A labelled field: <label for> and its control, with an optional hint under it. */
function field(id, text, control, hint) {
  control.id = id;
  const help = hint ? el("p", { class: "hint muted", id: `${id}-hint` }, hint) : null;
  if (help) control.setAttribute("aria-describedby", help.id);
  return el("div", { class: "form-row" }, el("label", { for: id, class: "field" }, text), control, help);
}

/**
 * The request for the form's values, as boto3 builds it from its arguments: the same names,
 * nesting and types (FaceMatchThreshold a number; an empty one is left out).
 */
export function createRequest(values) {
  const search = { CollectionId: values.collection };
  const threshold = String(values.threshold ?? "").trim();
  if (threshold !== "") search.FaceMatchThreshold = Number(threshold);
  return {
    Name: values.name,
    Input: { KinesisVideoStream: { Arn: values.input } },
    Output: { KinesisDataStream: { Arn: values.output } },
    RoleArn: values.role,
    Settings: { FaceSearch: search },
    DataSharingPreference: { OptIn: Boolean(values.optIn) },
  };
}

/**
 * Whether the key may create some stream processor: on any resource, or only on some (a policy
 * naming processors by a pattern, "lobby-*"), which the API judges for the name given.
 */
export function mayCreate(whoami) {
  const op = "CreateStreamProcessor";
  return (whoami.allowed || []).includes(op) || (whoami.allowedSomewhere || []).includes(op);
}

/** Render the create form into ``main`` (or a plain sentence for a key that may not create). */
export async function processorForm(main, whoami) {
  const heading = el("h1", {}, "Create stream processor");
  if (!mayCreate(whoami)) {
    main.replaceChildren(heading, el("p", { id: "no-create" },
      "This access key may not create stream processors (CreateStreamProcessor is not allowed)."));
    return;
  }
  // Allowed on some resources only: which names (and collections) the policy decides, so the
  // page says so and the API's AccessDeniedException for any other is shown as it is.
  const scoped = !(whoami.allowed || []).includes("CreateStreamProcessor") ?
    el("p", { id: "create-scoped", class: "muted" },
      "This access key may create only some stream processors: its policy names which " +
      "(by name or collection). The API refuses any other, and its answer is shown here.") : null;
  const collections = (whoami.allowed || []).includes("ListCollections") ?
    await listAll("ListCollections", "CollectionIds") : [];
  const text = (placeholder, value = "") => el("input", { type: "text", required: true,
    autocomplete: "off", spellcheck: "false", placeholder, value });
  const name = text("lobby-door");
  const input = text("rtsp://camera.local:554/stream1");
  const output = text("arn:aws:kinesis:us-east-1:123456789012:stream/faces");
  const role = text("arn:aws:iam::123456789012:role/streamproc");
  const collection = el("select", { required: true },
    collections.length ? null : el("option", { value: "" }, "(no collections: create one first)"),
    collections.map((c) => el("option", { value: c }, c)));
  const threshold = el("input", { type: "number", min: 0, max: 100, step: "any",
                                  value: DEFAULT_THRESHOLD, inputmode: "decimal" });
  const optIn = el("input", { type: "checkbox" });
  const submit = el("button", { type: "submit", id: "create-submit" }, "Create");
  const status = el("p", { id: "create-status", role: "status", class: "muted" });
  // novalidate: the API is the one judge of a request (its error text is what a boto3 user
  // would see), so the browser's own checks do not stop a request first.
  const form = el("form", { id: "processor-form", class: "processor-form", novalidate: true },
    field("f-name", "Name", name, "1-128 letters, digits, _ . -"),
    field("f-input", "Input: video stream (Input.KinesisVideoStream.Arn)", input,
      "A stream URL (rtsp://, rtsps://, rtmp://, srt://, http(s)://, tcp://), a file under the " +
      "media roots, or a Kinesis video stream ARN the daemon maps to a URL"),
    field("f-output", "Output: data stream (Output.KinesisDataStream.Arn)", output,
      "arn:aws:kinesis:REGION:ACCOUNT:stream/TOPIC (a topic on the daemon's Kafka cluster) or " +
      "kafka://host:port/TOPIC (a cluster the configuration names)"),
    field("f-role", "RoleArn", role),
    field("f-collection", "Collection (Settings.FaceSearch.CollectionId)", collection),
    field("f-threshold", "FaceMatchThreshold (Settings.FaceSearch.FaceMatchThreshold)", threshold,
      "0-100; below 80 is raised to 80"),
    el("div", { class: "form-row check" }, optIn,
       el("label", { for: "f-optin" }, "Data sharing opt-in (DataSharingPreference.OptIn)")),
    el("div", { class: "form-row" }, submit), status);
  optIn.id = "f-optin";
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    const request = createRequest({
      name: name.value.trim(), input: input.value.trim(), output: output.value.trim(),
      role: role.value.trim(), collection: collection.value, threshold: threshold.value,
      optIn: optIn.checked });
    submit.disabled = true;
    status.textContent = `Creating ${request.Name}...`;
    try {
      await call("CreateStreamProcessor", request);
    } catch (error) {
      // The form keeps what was typed: the user corrects the field the error names.
      status.textContent = "";
      submit.disabled = false;
      showError(error);
      return;
    }
    location.hash = `#/processor?name=${encodeURIComponent(request.Name)}`;
  });
  main.replaceChildren(...[heading, scoped, form].filter(Boolean));
  name.focus();
}
