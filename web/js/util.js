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

/** A short-lived message in the corner (announced to screen readers). */
export function toast(text) {
  const t = document.getElementById("toast");
  t.textContent = text;
  t.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove("show"), 4000);
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
