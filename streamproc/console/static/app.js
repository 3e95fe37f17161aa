// The console's shell: session, navigation by #/page, and the pages.
import { get, logout, resume, setCsrf } from "./api.js";
import { clearError, showError } from "./dom.js";
import { loginPage } from "./login.js";
import { overview } from "./overview.js";
import { processors } from "./processors.js";
import { collections } from "./collections.js";
import { processor } from "./processor.js";
import { processorForm } from "./processor_form.js";
import { jobs } from "./jobs.js";

// The pages in the navigation, then those reached from them (#/processor?name=N, ...).
const NAV = ["overview", "processors", "collections", "jobs"];
const PAGES = { overview, processors, collections, jobs, processor,
                "processor-new": processorForm };
let session = null;

function main() { return document.getElementById("main"); }

function chrome(signedIn) {
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("logout").hidden = !(signedIn && session && session.auth);
  document.getElementById("who").textContent =
    signedIn && session.keyId ? `Key ${session.keyId}` : "";
  for (const name of NAV) {
    const link = document.getElementById(`nav-${name}`);
    if (location.hash.split("?")[0] === `#/${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function show() {
  clearError();
  if (!session || !session.signedIn) {
    chrome(false);
    loginPage(main(), started);
    document.body.dataset.ready = "login";
    return;
  }
  const [name, query] = location.hash.replace(/^#\//, "").split("?");
  if (!PAGES[name]) { location.hash = "#/overview"; return; }
  chrome(true);
  try {
    await PAGES[name](main(), await get("/console/whoami"), new URLSearchParams(query || ""));
  } catch (error) {
    if (error.status === 403) {
      // The console's own refusal (HTTP 403): the session ended (expired, signed out
      // elsewhere, its key removed). An operation's AccessDeniedException is a 400.
      session = await resume().catch(() => null);
      setCsrf(session && session.csrf);
      if (!session || !session.signedIn) { chrome(false); loginPage(main(), started); }
    }
    showError(error);
  }
  document.body.dataset.ready = name;
}

async function started(state) {
  session = state;
  setCsrf(state.csrf);
  if (!location.hash || location.hash === "#/login") location.hash = "#/overview";
  else await show();
}

async function boot() {
  try {
    session = await resume();
    setCsrf(session.csrf);
  } catch (error) {
    showError(error);
  }
  document.getElementById("logout").addEventListener("click", async () => {
    try { await logout(); } catch (error) { showError(error); return; }
    session = { ...session, signedIn: false, csrf: null };
    setCsrf(null);
    location.hash = "#/login";
    await show();
  });
  window.addEventListener("hashchange", () => { show(); });
  for (const name of NAV) {
    // The page's own link again: draw it anew (no hashchange fires for the same hash).
    document.getElementById(`nav-${name}`).addEventListener("click", () => {
      if (location.hash === `#/${name}`) show();
    });
  }
  await show();
}

boot();
