// The console's one way to the server: the API's operations, with the session's CSRF token.

/** An error as the API returns it: its code (AccessDeniedException, ...) and message. */
export class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

let csrf = null;

/** Remember the CSRF token the session endpoint gave. */
export function setCsrf(token) { csrf = token; }

async function parse(response) {
  let body = {};
  try { body = await response.json(); } catch (_) { body = {}; }
  if (!response.ok) {
    const code = body.__type || body.Code || `HTTP ${response.status}`;
    throw new ApiError(code, body.Message || body.message || response.statusText,
                       response.status);
  }
  return body;
}

/** Run an operation with the JSON body boto3 would send; resolves to its response. */
export async function call(operation, params = {}) {
  const response = await fetch(`/console/api/${encodeURIComponent(operation)}`, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/x-amz-json-1.1", "X-CSRF-Token": csrf || "" },
    body: JSON.stringify(params),
  });
  return parse(response);
}

/** Every page of a List* operation, its items under ``key``. */
export async function listAll(operation, key, params = {}, maxPages = 50) {
  const items = [];
  let token;
  for (let page = 0; page < maxPages; page += 1) {
    const body = await call(operation, token ? { ...params, NextToken: token } : params);
    items.push(...(body[key] || []));
    token = body.NextToken;
    if (!token) break;
  }
  return items;
}

/** GET a console or daemon endpoint as JSON (session, whoami, health). */
export async function get(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  if (path === "/health") return response.json();  // 503 still carries the report
  return parse(response);
}

/** Sign in with an access key; resolves to the session state. */
export async function login(keyId, secret) {
  const response = await fetch("/console/session", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ AccessKeyId: keyId, SecretAccessKey: secret }),
  });
  return parse(response);
}

/** The session, if any; with auth off, one is started (by a POST: a GET starts nothing). */
export async function resume() {
  const state = await get("/console/session");
  if (state.signedIn || state.auth) return state;
  const response = await fetch("/console/session", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: "{}",
  });
  return parse(response);
}

/** End the session. */
export async function logout() {
  const response = await fetch("/console/session", {
    method: "DELETE", credentials: "same-origin", headers: { "X-CSRF-Token": csrf || "" },
  });
  return parse(response);
}
