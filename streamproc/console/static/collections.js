// Collections: the list (paged), and for one collection its faces (100 a page, with crops
// where the daemon keeps them), its users (100 a page, each card with one of its faces' crops),
// enrol and search by upload, delete a face or a user.
import { call, get } from "./api.js";
import { clearError, confirmDialog, el, showError } from "./dom.js";
import { enrolSection, searchSection } from "./upload.js";

export const PAGE_SIZE = 100;

/** A pager over a List* operation: one page at a time, "Next page" with its NextToken. */
function pager(operation, params, draw) {
  const tokens = [undefined];  // the token of each page seen so far
  let index = 0;
  const show = async () => {
    const token = tokens[index];
    const out = await call(operation, { ...params, MaxResults: PAGE_SIZE,
                                        ...(token ? { NextToken: token } : {}) });
    tokens[index + 1] = out.NextToken;
    draw(out, index + 1, Boolean(out.NextToken), index > 0);
  };
  return {
    show,
    next: async () => { index += 1; await show(); },
    back: async () => { index = Math.max(0, index - 1); await show(); },
  };
}

function pageButtons(id, page, more, less, move, [back, next] = ["Previous page", "Next page"]) {
  return el("nav", { class: "pager", "aria-label": `${id} pages`, id: `${id}-pager` },
    el("button", { type: "button", disabled: !less, onclick: () => move.back() }, back),
    el("span", { class: "muted", id: `${id}-page` }, `Page ${page}`),
    el("button", { type: "button", disabled: !more, onclick: () => move.next() }, next));
}

function faceCard(collection, face, crops, canDelete, refresh) {
  const name = face.ExternalImageId || face.FaceId;
  const placeholder = () => el("div", { class: "crop placeholder", role: "img",
                                        "aria-label": `No crop kept for ${name}` }, "no crop");
  let picture = placeholder();
  if (crops) {
    picture = el("img", { class: "crop", alt: `Face of ${name}`, loading: "lazy",
      src: `/console/crops/${encodeURIComponent(collection)}/${encodeURIComponent(face.FaceId)}` });
    picture.addEventListener("error", () => picture.replaceWith(placeholder()));
  }
  const remove = async () => {
    if (!await confirmDialog(`Delete face ${face.FaceId} (${name})?`,
      `It is removed from ${collection}. This cannot be undone.`)) return;
    clearError();
    try {
      const out = await call("DeleteFaces", { CollectionId: collection, FaceIds: [face.FaceId] });
      const refused = out.UnsuccessfulFaceDeletions || [];
      if (refused.length) {
        showError({ code: refused[0].Reasons.join(", "), message: `Face ${face.FaceId} was not deleted` });
      }
    } catch (error) { showError(error); return; }
    await refresh();
  };
  return el("li", { class: "face", "data-face": face.FaceId }, picture,
    el("dl", {}, el("dt", {}, "ExternalImageId"), el("dd", { class: "ext" }, face.ExternalImageId || "-"),
      el("dt", {}, "FaceId"), el("dd", { class: "id" }, face.FaceId),
      el("dt", {}, "UserId"), el("dd", { class: "user" }, face.UserId || "-")),
    canDelete ? el("button", { type: "button", class: "danger", onclick: remove,
                               "aria-label": `Delete face ${face.FaceId} (${name})` }, "Delete") : null);
}

function facesSection(collection, ops, crops) {
  const section = el("section", { "aria-labelledby": "faces-title", id: "faces-section" },
    el("h2", { id: "faces-title" }, "Faces"));
  const holder = el("div", {});
  section.append(holder);
  const move = pager("ListFaces", { CollectionId: collection }, (out, page, more, less) => {
    const cards = out.Faces.map((f) => faceCard(collection, f, crops,
      ops.includes("DeleteFaces"), move.show));
    holder.replaceChildren(out.Faces.length ?
      el("ul", { class: "faces", id: "faces", "aria-label": `Faces in ${collection}` }, cards) :
      el("p", { id: "no-faces" }, "No faces yet."), pageButtons("faces", page, more, less, move));
    document.body.dataset.faces = String(page);
  });
  return { section, show: move.show };
}

/** A Delete button for a user (DeleteUser after a confirm; its faces stay, unassociated). */
function deleteUserButton(collection, userId, refresh) {
  const remove = async () => {
    if (!await confirmDialog(`Delete user ${userId}?`,
      `It is removed from ${collection}; its faces stay in the collection, no longer ` +
      "associated. This cannot be undone.")) return;
    clearError();
    try { await call("DeleteUser", { CollectionId: collection, UserId: userId }); } catch (error) {
      showError(error);
      return;
    }
    await refresh();
  };
  return el("button", { type: "button", class: "danger", onclick: remove,
                        "aria-label": `Delete user ${userId}` }, "Delete");
}

// A page of users asks ListFaces (MaxResults 1) once per user for its card's picture, this
// many at a time: 100 users on a page would otherwise be 100 requests at once.
const USER_FACE_CONCURRENCY = 6;

/** Run ``work`` on each item, at most ``limit`` at once; stops starting new work when
 *  ``current()`` turns false (the page was redrawn: its old cards are gone). */
async function eachAtMost(items, limit, current, work) {
  let next = 0;
  const worker = async () => {
    while (next < items.length && current()) {
      const item = items[next];
      next += 1;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** A user's card: a picture slot (filled by ``fill``), UserId, UserStatus, Delete. */
function userCard(collection, user, canDelete, refresh) {
  const id = user.UserId;
  const placeholder = (text, label) => el("div", { class: "crop placeholder", role: "img",
                                                   "aria-label": label }, text);
  let picture = placeholder("…", `Looking up a face of user ${id}`);
  const card = el("li", { class: "user", "data-user": id }, picture,
    el("dl", {}, el("dt", {}, "UserId"), el("dd", { class: "id" }, id),
      el("dt", {}, "UserStatus"), el("dd", { class: "status" }, user.UserStatus || "-")),
    canDelete ? deleteUserButton(collection, id, refresh) : null);
  const show = (next, state) => {
    picture.replaceWith(next);
    picture = next;
    card.dataset.picture = state;
  };
  /** Show ``face`` (one of the user's, or undefined: none) the way the faces grid does. */
  const fill = (face, crops) => {
    if (!face) return show(placeholder("no face", `No face for user ${id}`), "none");
    card.dataset.face = face.FaceId;
    if (!crops) return show(placeholder("no crop", `No crop kept for user ${id}`), "no-crop");
    const img = el("img", { class: "crop", alt: `Face of user ${id}`, loading: "lazy",
      src: `/console/crops/${encodeURIComponent(collection)}/${encodeURIComponent(face.FaceId)}` });
    img.addEventListener("error", () => show(
      placeholder("no crop", `No crop kept for user ${id}`), "no-crop"));
    return show(img, "crop");
  };
  const failed = (why) => show(placeholder("no crop", `No face shown for user ${id}: ${why}`),
                               "unknown");
  return { id, card, fill, failed };
}

/** Fill each card's picture: one ListFaces (UserId, MaxResults 1) per user, a few at once. */
async function userFaces(collection, cards, canList, crops, current) {
  if (!canList) {
    for (const c of cards) c.failed("this key may not list faces");
    return;
  }
  await eachAtMost(cards, USER_FACE_CONCURRENCY, current, async (c) => {
    try {
      const out = await call("ListFaces", { CollectionId: collection,
                                            UserId: c.id, MaxResults: 1 });
      c.fill((out.Faces || [])[0], crops);
    } catch (error) { c.failed(error.code || "error"); }
  });
}

function usersSection(collection, ops, crops) {
  const canDelete = ops.includes("DeleteUser");
  const holder = el("div", {});
  const section = el("section", { "aria-labelledby": "users-title", id: "users-section" },
    el("h2", { id: "users-title" }, "Users"), holder);
  let drawn = 0;  // which draw is on screen: an older page's lookups stop starting
  // Their own button names ("Next users"): the faces pager's "Next page" stays one button.
  const move = pager("ListUsers", { CollectionId: collection }, (out, page, more, less) => {
    drawn += 1;
    const mine = drawn;
    const cards = out.Users.map((u) => userCard(collection, u, canDelete, move.show));
    const grid = cards.length ? el("ul", { class: "users", id: "users", "aria-busy": "true",
      "aria-label": `Users in ${collection}` }, cards.map((c) => c.card)) : null;
    // replaceChildren writes a null as the text "null": only the parts that exist.
    holder.replaceChildren(...[grid || el("p", { class: "muted", id: "no-users" }, "No users."),
      more || less ? pageButtons("users", page, more, less, move,
                                 ["Previous users", "Next users"]) : null].filter(Boolean));
    if (grid) {
      userFaces(collection, cards, ops.includes("ListFaces"), crops, () => drawn === mine)
        .finally(() => grid.setAttribute("aria-busy", "false"));
    }
  });
  return { section, show: move.show };
}

async function detail(main, collection) {
  const whoami = await get(`/console/whoami?collection=${encodeURIComponent(collection)}`);
  const ops = whoami.collections[collection] || [];
  const parts = [el("p", {}, el("a", { href: "#/collections" }, "All collections")),
    el("h1", {}, `Collection ${collection}`)];
  const faces = facesSection(collection, ops, whoami.faceCrops);
  if (ops.includes("IndexFaces")) parts.push(enrolSection(collection, faces.show));
  if (ops.includes("SearchFacesByImage")) parts.push(searchSection(collection));
  if (ops.includes("ListFaces")) parts.push(faces.section);
  const users = ops.includes("ListUsers") ?
    usersSection(collection, ops, whoami.faceCrops) : null;
  if (users) parts.push(users.section);
  main.replaceChildren(...parts);
  await Promise.all([ops.includes("ListFaces") ? faces.show() : null, users ? users.show() : null]);
}

function listSection(main) {
  const holder = el("div", {});
  const move = pager("ListCollections", {}, (out, page, more, less) => {
    const items = out.CollectionIds.map((id) => el("li", { "data-collection": id },
      el("a", { href: `#/collections?id=${encodeURIComponent(id)}` }, id)));
    holder.replaceChildren(items.length ? el("ul", { id: "collections", class: "links",
      "aria-label": "Collections" }, items) : el("p", { id: "empty" }, "No collections yet."),
    pageButtons("collections", page, more, less, move));
  });
  main.replaceChildren(el("h1", {}, "Collections"), holder);
  return move.show();
}

/** Render the collections page into ``main``: the list, or one collection (?id=). */
export async function collections(main, whoami, params) {
  const id = params.get("id");
  if (id) return detail(main, id);
  if (!whoami.allowed.includes("ListCollections")) {
    main.replaceChildren(el("h1", {}, "Collections"),
      el("p", { class: "muted" }, "This key may not list collections."));
    return undefined;
  }
  return listSection(main);
}
