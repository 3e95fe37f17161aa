// Small DOM helpers: text goes in as text (never as HTML), so no data can become markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(node, attrs, children) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** An element with attributes and children (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, the same way (boxes, regions, timelines, sparklines). */
export function svg(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Show an API error (or any error) plainly in the alert region. */
export function showError(error) {
  const box = document.getElementById("error");
  box.replaceChildren();
  if (error.code) box.append(el("span", { class: "code" }, error.code));
  box.append(error.message || String(error));
  box.hidden = false;
}

/** Clear the alert region. */
export function clearError() {
  const box = document.getElementById("error");
  box.hidden = true;
  box.replaceChildren();
}

/** A status word styled by its value. */
export function state(text) {
  return el("span", { class: `state state-${text}` }, text);
}

/** A modal confirm dialog (Escape or Cancel: false); resolves to the answer. */
export function confirmDialog(title, text, yes = "Delete") {
  return new Promise((resolve) => {
    const dialog = el("dialog", { id: "confirm-delete", "aria-labelledby": "confirm-title" },
      el("h2", { id: "confirm-title" }, title), el("p", {}, text));
    const done = (answer) => { dialog.close(); dialog.remove(); resolve(answer); };
    dialog.append(el("form", { method: "dialog" },
      el("button", { type: "button", class: "danger", id: "confirm-yes",
                     onclick: () => done(true) }, yes),
      el("button", { type: "button", id: "confirm-no", autofocus: true,
                     onclick: () => done(false) }, "Cancel")));
    dialog.addEventListener("cancel", () => done(false));  // Escape
    document.body.append(dialog);
    dialog.showModal();
  });
}
