// Small DOM and formatting helpers shared by the pages.

/** Build an element: h("p", {class: "x", onclick: fn}, "text", child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v);
    } else if (k === "class") {
      el.className = v;
    } else if (k === "dataset") {
      Object.assign(el.dataset, v);
    } else if (v === true) {
      el.setAttribute(k, "");
    } else {
      el.setAttribute(k, String(v));
    }
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

const STATES = {
  online: "Online",
  failing: "Failing",
  auth_failed: "Auth failed",
  unknown: "No capture yet",
};

export function stateLabel(state) {
  return STATES[state] || state;
}

/**
 * A camera's badge from the API's `health` (failing, no_schedule, waiting, ok): `{cls, label}`.
 * Only `ok` (scheduled, last capture good, a frame stored) looks healthy; a live capture alone
 * never does.
 */
export function healthBadge(cam) {
  switch (cam.health) {
    case "failing":
      return { cls: `state-${cam.status.state}`, label: stateLabel(cam.status.state) };
    case "no_schedule":
      return { cls: "health-no_schedule", label: "No schedule" };
    case "waiting":
      return { cls: "health-waiting", label: cam.last_frame_at ? "Waiting for a capture" : "Waiting for first frame" };
    case "ok":
      return { cls: "state-online", label: "Online" };
    default:
      return { cls: `state-${cam.status.state}`, label: stateLabel(cam.status.state) };
  }
}

/** Where a camera sorts on the grid: failing first, then without a schedule, then the rest. */
export function healthRank(cam) {
  return cam.health === "failing" ? 0 : cam.health === "no_schedule" ? 1 : 2;
}

/** "12 s ago", "3 min ago", "2 h ago", "4 d ago". */
export function ago(iso, now = Date.now()) {
  if (!iso) return "never";
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** The local time of day of `iso` as HH:MM:SS (24-hour). */
export function clockTime(iso) {
  const d = new Date(iso);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
}

/** "retrying at HH:MM:SS" while a camera's scheduled captures back off, else "". */
export function backoffLine(status, now = Date.now()) {
  const until = status && status.backoff_until;
  if (!until || Date.parse(until) <= now) return "";
  return `retrying at ${clockTime(until)}`;
}

/** Why a camera backs off, in a sentence (the title of its backoff line). */
export function backoffWhy(status) {
  return status.backoff_reason === "auth_failed"
    ? "The camera refused the credentials, so scheduled captures wait (editing its credentials retries at once)."
    : "The camera could not be reached several times in a row, so scheduled captures wait longer each time (a live snapshot still tries at once).";
}

export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

// Byte counts for people in decimal SI units, as everywhere in Heldar (src/units.rs):
// 1 kB = 1,000 B, 1 MB = 10^6 B, 1 GB = 10^9 B — a 1 GB setting shows as "1.0 GB".
export function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let i = 0;
  let v = Number(n);
  while (v >= 999.95 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  if (i === 0) return `${Math.round(v)} B`;
  return `${v >= 99.5 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function fmtDuration(secs) {
  const s = Math.floor(secs);
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  if (d) return `${d} d ${hh} h`;
  if (hh) return `${hh} h ${mm} min`;
  if (mm) return `${mm} min ${s % 60} s`;
  return `${s} s`;
}

/** "10:02:05" (the locale's clock time, seconds included). */
export function fmtClock(t) {
  return new Date(t).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** A moment for people: "10:02" (with seconds if asked), and the date when it is not today. */
export function fmtMoment(t, seconds = false) {
  const d = new Date(t);
  const clock = d.toLocaleTimeString(undefined, seconds
    ? { hour: "2-digit", minute: "2-digit", second: "2-digit" }
    : { hour: "2-digit", minute: "2-digit" });
  if (d.toDateString() === new Date().toDateString()) return clock;
  return `${d.toLocaleDateString(undefined, { month: "short", day: "numeric" })} ${clock}`;
}

/** A time span for people: "10:02–10:40", seconds under ten minutes, dates when not today. */
export function fmtSpan(a, b) {
  const seconds = Math.abs(new Date(b) - new Date(a)) < 600e3;
  const left = fmtMoment(a, seconds);
  const sameDay = new Date(a).toDateString() === new Date(b).toDateString();
  const right = sameDay
    ? new Date(b).toLocaleTimeString(undefined, seconds
      ? { hour: "2-digit", minute: "2-digit", second: "2-digit" }
      : { hour: "2-digit", minute: "2-digit" })
    : fmtMoment(b, seconds);
  return `${left}–${right}`;
}

// Toasts: short messages that never cover a control. They live in one fixed region that is put,
// each time a toast shows and whenever the page scrolls, resizes or changes under it, at the
// first spot along the window's edges (bottom-left first) where it overlaps no visible button,
// link, field or slider. Only when no such spot exists (a crowded phone screen) does it take the
// spot that overlaps least; it lets clicks through to what is under it, apart from its own ×.
// Each toast goes away a few seconds after it shows (or after the pointer or focus leaves it), on
// its ×, or on Escape. Screen readers hear the
// text through a separate status region, so the × is not read out with every message.
const TOAST_MS = 5000;
const TOAST_MAX = 3;
const EDGE = 12; // px between the region and the window's edge
const CONTROLS = "a[href], button, input, select, textarea, summary, [role=slider], [tabindex]:not([tabindex='-1'])";

function toastRegion() {
  let region = document.getElementById("toasts");
  if (!region) {
    region = h("div", { id: "toasts", class: "toasts" });
    document.body.append(region);
  }
  return region;
}

function overlap(a, b) {
  const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
  const hh = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
  return w > 0 && hh > 0 ? w * hh : 0;
}

/** Put the toast region where it covers no visible control (see above). */
export function placeToasts() {
  const region = document.getElementById("toasts");
  if (!region || !region.childElementCount) return;
  const vw = document.documentElement.clientWidth;
  const vh = document.documentElement.clientHeight;
  const w = region.offsetWidth;
  const ht = region.offsetHeight;
  const obstacles = [];
  for (const el of document.querySelectorAll(CONTROLS)) {
    if (region.contains(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.bottom < 0 || r.top > vh || r.right < 0 || r.left > vw) continue;
    // A few pixels of room around each control.
    obstacles.push({ left: r.left - 4, top: r.top - 4, right: r.right + 4, bottom: r.bottom + 4 });
  }
  const spots = [];
  const step = 24;
  const xs = [EDGE];
  for (let x = EDGE + step; x < vw - w - EDGE; x += step) xs.push(x);
  xs.push(Math.max(EDGE, vw - w - EDGE));
  const ys = [];
  for (let y = vh - ht - EDGE - step; y > EDGE; y -= step) ys.push(y);
  for (const x of xs) spots.push([x, vh - ht - EDGE]); // along the bottom, from the left
  for (const x of xs) spots.push([x, EDGE]); // along the top
  for (const y of ys) spots.push([EDGE, y], [Math.max(EDGE, vw - w - EDGE), y]); // up the sides
  let best = null;
  for (const [x, y] of spots) {
    const box = { left: x, top: y, right: x + w, bottom: y + ht };
    let cost = 0;
    for (const o of obstacles) cost += overlap(box, o);
    if (!best || cost < best.cost) best = { x, y, cost };
    if (cost === 0) break;
  }
  region.style.left = `${Math.max(0, best.x)}px`;
  region.style.top = `${Math.max(0, best.y)}px`;
  region.classList.toggle("crowded", best.cost > 0);
}

let toastWatch = null;
function watchToasts(on) {
  if (on && !toastWatch) {
    let queued = false;
    const again = () => {
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => {
        queued = false;
        placeToasts();
      });
    };
    const onKey = (e) => {
      if (e.key === "Escape") for (const t of [...toastRegion().children]) dismissToast(t);
    };
    addEventListener("scroll", again, { passive: true, capture: true });
    addEventListener("resize", again);
    addEventListener("keydown", onKey);
    // The page may change under a toast (a list re-read, a frame loaded): look again.
    const timer = setInterval(again, 250);
    toastWatch = () => {
      removeEventListener("scroll", again, { capture: true });
      removeEventListener("resize", again);
      removeEventListener("keydown", onKey);
      clearInterval(timer);
    };
  } else if (!on && toastWatch) {
    toastWatch();
    toastWatch = null;
  }
}

function dismissToast(t) {
  clearTimeout(t.timer);
  t.remove();
  const region = toastRegion();
  if (!region.childElementCount) watchToasts(false);
  else placeToasts();
}

/** A short-lived message (announced to screen readers) that covers no control. */
export function toast(text, { timeout = TOAST_MS } = {}) {
  const region = toastRegion();
  const item = h("div", { class: "toast" },
    h("span", { class: "toast-text" }, text),
    h("button", { type: "button", class: "toast-close", title: "Dismiss", "aria-label": "Dismiss this message" }, "×"));
  item.querySelector("button").addEventListener("click", () => dismissToast(item));
  // It stays while the pointer moves on it or its × has focus, and goes `timeout` after they
  // leave. (A pointer resting where a toast appears does not hold it: only a move does.)
  const later = () => {
    clearTimeout(item.timer);
    item.timer = setTimeout(() => dismissToast(item), timeout);
  };
  const hold = () => clearTimeout(item.timer);
  item.addEventListener("pointermove", hold);
  item.addEventListener("focusin", hold);
  item.addEventListener("pointerleave", later);
  item.addEventListener("focusout", later);
  region.append(item);
  while (region.childElementCount > TOAST_MAX) dismissToast(region.firstElementChild);
  later();
  const live = document.getElementById("toast");
  if (live) live.textContent = text;
  placeToasts();
  watchToasts(true);
  return item;
}

/**
 * Run `fn` now and every `ms` while the page is visible; returns a stop function. A slow
 * answer never overlaps the next one. `ms` may be a function, read before each wait.
 */
export function every(ms, fn, immediate = true) {
  const wait = typeof ms === "function" ? ms : () => ms;
  let stopped = false;
  let timer = null;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try {
        await fn();
      } catch (e) {
        console.warn("refresh failed", e);
      }
    }
    if (!stopped) timer = setTimeout(tick, wait());
  };
  const onVisible = () => {
    if (!document.hidden && !stopped) {
      clearTimeout(timer);
      tick();
    }
  };
  document.addEventListener("visibilitychange", onVisible);
  if (immediate) tick();
  else timer = setTimeout(tick, wait());
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
    document.removeEventListener("visibilitychange", onVisible);
  };
  /** Start the current wait over (after `ms` changed). */
  stop.restart = () => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(tick, wait());
  };
  return stop;
}

/** The error sentence of anything thrown. */
export function message(e) {
  return (e && e.message) || String(e);
}

/** How often a page polls while the event stream is down, and while it is up (a safety net). */
export const FAST_POLL_MS = 5000;
export const SLOW_POLL_MS = 60000;

/**
 * Live updates from `GET /api/v1/events` (Server-Sent Events), with polling as the fallback.
 *
 * `refresh` runs now, then every SLOW_POLL_MS while the stream is connected and every
 * FAST_POLL_MS while it is not (the browser reconnects by itself). Each event named in `names`
 * calls `onEvent(name, data)`. After a reconnection, or when the server says this page fell
 * behind (`lagged`), `refresh` runs at once, so nothing missed stays missed. Returns a stop
 * function.
 */
export function live({ query = "", names = [], onEvent, refresh }) {
  let connected = false;
  let everConnected = false;
  const stopPoll = every(() => (connected ? SLOW_POLL_MS : FAST_POLL_MS), refresh);
  const source = new EventSource("/api/v1/events" + query);
  // `data-live` on <body> tells a reader (and the browser tests) whether the stream is up.
  const mark = (on) => {
    connected = on;
    document.body.dataset.live = on ? "on" : "off";
    stopPoll.restart();
  };
  source.addEventListener("ready", () => {
    mark(true);
    if (everConnected) refresh().catch((e) => console.warn("refresh failed", e));
    everConnected = true;
  });
  source.addEventListener("lagged", () => refresh().catch((e) => console.warn("refresh failed", e)));
  source.onerror = () => mark(false);
  for (const name of names) {
    source.addEventListener(name, (e) => {
      try {
        onEvent(name, JSON.parse(e.data));
      } catch (err) {
        console.warn("event not handled", name, err);
      }
    });
  }
  return () => {
    stopPoll();
    source.close();
    delete document.body.dataset.live;
  };
}

/** `fn`, run at most once per `ms` however often it is asked for (the last ask wins). */
export function debounce(ms, fn) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}
