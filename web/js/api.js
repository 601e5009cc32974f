// The one place that talks to the Heldar API: session, CSRF header, JSON errors.
//
// Every failed request throws an ApiError carrying the server's sentence (`error`), its machine
// `code` and, for a bad field, the `field` it is about. A 401 sends the browser to #/login.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `the server answered ${status}`);
    this.status = status;
    this.code = (body && body.code) || "http_" + status;
    this.field = (body && body.field) || null;
    // A `tls` failure's refused certificate, to offer pinning it.
    this.tlsFingerprint = (body && body.tls_fingerprint) || null;
  }
}

// The session as GET /api/v1/session describes it. Before auth exists on the server (404), the
// dashboard behaves as with auth off: an admin with no token.
const AUTH_OFF = { auth: false, role: "admin", name: null, csrf_token: null };
let session = null;

export function currentSession() {
  return session;
}

export function can(what) {
  const role = session ? session.role : "viewer";
  if (what === "operate") return role === "operator" || role === "admin";
  if (what === "admin") return role === "admin";
  return true;
}

/** Load the session. Returns it, or null when auth is on and we are not signed in. */
export async function loadSession() {
  const resp = await fetch("/api/v1/session", {
    headers: { Accept: "application/json" },
    credentials: "same-origin",
    cache: "no-store",
  });
  if (resp.status === 404) {
    session = AUTH_OFF;
  } else if (resp.status === 401) {
    session = null;
  } else if (resp.ok) {
    session = await resp.json();
  } else {
    throw await errorOf(resp);
  }
  return session;
}

export async function login(token) {
  const body = await request("POST", "/api/v1/session", { token }, { noRedirect: true });
  session = body;
  return body;
}

export async function logout() {
  try {
    await request("DELETE", "/api/v1/session", undefined, { noRedirect: true });
  } finally {
    session = null;
  }
}

async function errorOf(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch (_) {
    body = null;
  }
  return new ApiError(resp.status, body);
}

function goLogin() {
  const here = location.hash || "#/";
  if (!here.startsWith("#/login")) {
    location.hash = "#/login?next=" + encodeURIComponent(here);
  }
}

function headers(method, hasBody) {
  const h = { Accept: "application/json" };
  if (hasBody) h["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && session && session.csrf_token) {
    h["X-CSRF-Token"] = session.csrf_token;
  }
  return h;
}

/** A JSON request. Resolves to the parsed body (null for 204); throws ApiError. */
export async function request(method, path, body, opts = {}) {
  const hasBody = body !== undefined;
  const resp = await fetch(path, {
    method,
    headers: headers(method, hasBody),
    body: hasBody ? JSON.stringify(body) : undefined,
    credentials: "same-origin",
    cache: "no-store",
    signal: opts.signal,
  });
  if (resp.status === 401 && !opts.noRedirect) {
    goLogin();
  }
  if (!resp.ok) throw await errorOf(resp);
  if (resp.status === 204) return null;
  return resp.json();
}

export const get = (path, opts) => request("GET", path, undefined, opts);

/** GET an image (e.g. a live snapshot). Resolves to {blob, width, height}; throws ApiError. */
export const getImage = (path, opts) => image("GET", path, opts);

/**
 * POST for an image: `POST …/snapshot?store=true` takes a frame and keeps it. Resolves to
 * {blob, width, height, snapshotId, url} (the kept frame's id and /media URL); throws ApiError.
 */
export const postImage = (path, opts) => image("POST", path, opts);

async function image(method, path, opts = {}) {
  const resp = await fetch(path, {
    method,
    headers: { ...headers(method, false), Accept: "image/jpeg, application/json" },
    credentials: "same-origin",
    cache: "no-store",
    signal: opts.signal,
  });
  if (resp.status === 401) goLogin();
  if (!resp.ok) throw await errorOf(resp);
  return {
    blob: await resp.blob(),
    width: Number(resp.headers.get("x-heldar-width")) || null,
    height: Number(resp.headers.get("x-heldar-height")) || null,
    snapshotId: resp.headers.get("x-heldar-snapshot-id"),
    url: resp.headers.get("content-location"),
  };
}

export const enc = encodeURIComponent;
