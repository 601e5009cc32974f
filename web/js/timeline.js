// The timeline of one camera's stored frames: a scrubber over the time of a chosen range,
// frame-by-frame keys, timelapse playback, open and download.
//
// The scrubber is time-proportional: a frame sits at (taken_at - from) / (to - from) of its
// width, so a stretch without frames shows as empty track. A stretch longer than GAP_FACTOR times
// the camera's schedule interval (or, without a schedule, the median spacing of the frames) is
// drawn as a hatched gap whose title and text say its span ("No frames 10:02–10:40"). ← and →
// still step one frame; a click or a drag picks the frame nearest that time.
//
// It stays light with thousands of frames: frame metadata arrives in pages of PAGE rows (newest
// first; older pages load when the scrubber nears the oldest loaded frame, or when a drag goes
// into the part of the range not loaded yet, which is drawn as such and never as a gap), and only
// the frame shown, a few neighbours (preloaded for playback) and the thumbnail strip's images are
// fetched. The frames are ticks on one canvas and the gaps a bounded number of elements
// (MAX_GAP_MARKS), never one element per frame; both are redrawn only when the frames, the range
// or the width change, and a step moves only the thumb. Media URLs are immutable, so each JPEG
// is downloaded once. For a range that ends "now", new frames are appended when the camera page
// hears of them (a `frame.stored` event, or its safety-net poll calls `newer`); if you are on the
// newest frame you follow them.
//
// With no frame to show it says why, truthfully: no schedule, a schedule that is paused, when an
// enabled one takes its next frame (and that the camera is failing, or the scheduler is off), or
// that the camera has frames outside the chosen range.

import { get, enc, can } from "./api.js";
import { h, clear, fmtTime, fmtClock, fmtMoment, fmtSpan, fmtBytes, fmtDuration, ago, message } from "./util.js";
import { scheduleWords } from "./schedule_form.js";

export const PAGE = 500;
const SEEK_PAGE = 5000; // the API's largest page: a drag far back loads in few requests
const NEAR_OLDEST = 50; // load an older page when the scrubber is this close to the start
const PRELOAD_AHEAD = 4;
const STRIP = 9;
const GAP_FACTOR = 2.5; // a gap: no frame for longer than this many intervals
const MIN_SPACING_MS = 1000; // the shortest interval a gap is measured against
const MAX_GAP_MARKS = 60; // the longest gaps are marked; the canvas shows the rest as empty track
const RESCALE_MS = 30e3; // a range ending "now" moves on: redraw it this often

const RANGES = {
  "1h": { label: "Last hour", ms: 3600e3 },
  "24h": { label: "Last 24 hours", ms: 86400e3 },
  "7d": { label: "Last 7 days", ms: 7 * 86400e3 },
  "30d": { label: "Last 30 days", ms: 30 * 86400e3 },
  all: { label: "All frames", ms: null },
  custom: { label: "Custom range…", ms: null },
};

function localInput(d) {
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function median(xs) {
  if (!xs.length) return null;
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** "every 5 s" / "every 5 s and every 300 s"; a calendar schedule in words ("at 06:00, 12:00 on Mon–Fri"). */
function everyText(list) {
  const calendar = (s) => (s.at && s.at.length) || s.align || s.weekdays || s.active_from || s.daylight || (s.timezone && s.timezone !== "UTC");
  return list.map((s) => (calendar(s) ? scheduleWords(s) : `every ${s.interval_seconds} s`)).join(" and ");
}

/**
 * Mount the timeline of `camera` in `root`. `context` holds what the empty state and the gap
 * threshold need: `schedules` (the camera's) and `scheduler` (`{enabled}`, when known); the
 * camera page passes fresh ones with `setContext`.
 */
export function mountTimeline(root, camera, context = {}) {
  const base = `/api/v1/cameras/${enc(camera.id)}/snapshots`;
  let ctx = { camera, schedules: null, scheduler: null, ...context };
  let frames = []; // oldest → newest, each with `t` (taken_at in ms)
  let ids = new Set();
  let index = -1;
  let hasOlder = false;
  let loadingOlder = false;
  let pendingSeek = null; // a time dragged to that is older than the oldest loaded frame
  let range = { key: "24h", from: null, to: null };
  let generation = 0; // bumps on every range change; stale answers are dropped
  let playing = false;
  let playTimer = null;
  let outside = null; // with no frame in the range: the camera's newest frame, or false
  let scale = { from: 0, to: 1 };
  let dragging = false;
  let askedSystem = false; // whether ctx.system() was asked for the scheduler's state
  const preloaded = new Map();

  // --- DOM --------------------------------------------------------------------------------
  const rangeSel = h("select", { id: "range" },
    Object.entries(RANGES).map(([k, r]) => h("option", { value: k }, r.label)));
  rangeSel.value = range.key;
  const fromIn = h("input", { type: "datetime-local", id: "range-from" });
  const toIn = h("input", { type: "datetime-local", id: "range-to" });
  const applyBtn = h("button", { type: "submit" }, "Show");
  const custom = h("form", { class: "custom-range", hidden: true },
    h("label", { for: "range-from" }, "From"), fromIn,
    h("label", { for: "range-to" }, "To"), toIn, applyBtn);
  const summary = h("p", { class: "muted", id: "frame-count", "aria-live": "polite" });
  const img = h("img", { id: "frame", alt: "", width: 640, height: 360 });
  const empty = h("div", { class: "no-frame big", id: "timeline-empty" });
  const caption = h("figcaption", { id: "frame-caption" });

  const ticks = h("canvas", { class: "ticks", "aria-hidden": "true" });
  const unloaded = h("div", {
    class: "unloaded", id: "scrub-unloaded", hidden: true,
    title: "Older frames, not loaded yet: go back (or drag here) to load them",
  });
  const gapsEl = h("div", { class: "gaps", id: "scrub-gaps" });
  const thumb = h("div", { class: "thumb", id: "scrub-thumb" });
  const track = h("div", { class: "track", id: "scrub-track" }, ticks, unloaded, gapsEl, thumb);
  const gapNote = h("p", { class: "gap-note muted small", id: "gap-note" });
  const scrubber = h("div", {
    id: "scrubber", class: "scrubber", role: "slider", tabindex: "-1",
    "aria-label": "Frame, by time", "aria-valuemin": "0", "aria-valuemax": "0", "aria-valuenow": "0",
    "aria-disabled": "true", "aria-describedby": "gap-note",
  }, track);
  const scaleFrom = h("span", { id: "scale-from" });
  const scaleTo = h("span", { id: "scale-to" });
  const prevBtn = h("button", { type: "button", id: "prev", "aria-label": "Previous frame", title: "Previous frame (←)" }, "◀");
  const playBtn = h("button", { type: "button", id: "play", class: "primary", "aria-pressed": "false" }, "Play");
  const nextBtn = h("button", { type: "button", id: "next", "aria-label": "Next frame", title: "Next frame (→)" }, "▶");
  const speedSel = h("select", { id: "speed", "aria-label": "Playback speed" },
    [2, 5, 10, 25].map((f) => h("option", { value: f }, `${f} frames/s`)));
  speedSel.value = "5";
  const openA = h("a", { class: "button", id: "open-frame", target: "_blank", rel: "noopener" }, "Open");
  const downA = h("a", { class: "button", id: "download-frame" }, "Download");
  const strip = h("ol", { class: "strip", id: "strip", "aria-label": "Nearby frames" });
  const viewer = h("figure", { class: "viewer", tabindex: "0", "aria-label": "Frame viewer: arrow keys step, space plays" },
    img, empty, caption);
  const controls = h("div", { class: "controls" }, prevBtn, playBtn, nextBtn, speedSel, openA, downA);

  clear(root).append(
    h("div", { class: "section-head" },
      h("h2", { id: "timeline-h" }, "Timeline"),
      h("div", { class: "range-pick" }, h("label", { for: "range" }, "Range"), rangeSel)),
    custom, summary, viewer,
    h("div", { class: "scrub" }, scrubber, h("div", { class: "scale", "aria-hidden": "true" }, scaleFrom, scaleTo), gapNote),
    controls, strip,
  );

  // --- data ---------------------------------------------------------------------------------
  function bounds() {
    if (range.key === "custom") return { from: range.from, to: range.to };
    const r = RANGES[range.key];
    return { from: r.ms ? new Date(Date.now() - r.ms) : null, to: null };
  }

  function query(from, to, limit = PAGE) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (from) q.set("from", from.toISOString());
    if (to) q.set("to", to.toISOString());
    return `${base}?${q}`;
  }

  const timed = (rows) => rows.map((f) => ({ ...f, t: Date.parse(f.taken_at) }));

  async function loadRange() {
    const gen = ++generation;
    pause();
    frames = [];
    ids = new Set();
    index = -1;
    hasOlder = false;
    pendingSeek = null;
    outside = null;
    summary.textContent = "Loading frames…";
    const { from, to } = bounds();
    let rows;
    try {
      rows = await get(query(from, to));
    } catch (e) {
      if (gen === generation) summary.textContent = "Cannot load frames: " + message(e);
      return;
    }
    if (gen !== generation) return;
    frames = timed(rows).reverse();
    ids = new Set(frames.map((f) => f.id));
    hasOlder = rows.length === PAGE;
    if (!frames.length) await lookOutside(gen);
    if (gen !== generation) return;
    redraw();
    show(frames.length - 1);
  }

  /** An empty range: does the camera have frames at all (for the empty state)? */
  async function lookOutside(gen) {
    try {
      const newest = await get(`${base}?limit=1`);
      if (gen === generation) outside = newest[0] || false;
    } catch (_) {
      if (gen === generation) outside = null;
    }
  }

  async function loadOlder() {
    if (!hasOlder || loadingOlder || frames.length === 0) return;
    loadingOlder = true;
    const gen = generation;
    const limit = pendingSeek !== null ? SEEK_PAGE : PAGE;
    if (pendingSeek !== null) summary.textContent = `Loading frames back to ${fmtTime(new Date(pendingSeek).toISOString())}…`;
    let ok = false;
    try {
      const { from } = bounds();
      const rows = await get(query(from, new Date(frames[0].t), limit));
      if (gen !== generation) return;
      const older = timed(rows.filter((f) => !ids.has(f.id))).reverse();
      for (const f of older) ids.add(f.id);
      frames = older.concat(frames);
      index += older.length;
      hasOlder = rows.length === limit && older.length > 0;
      ok = true;
    } catch (e) {
      pendingSeek = null;
      summary.textContent = "Cannot load older frames: " + message(e);
    } finally {
      loadingOlder = false;
    }
    if (!ok || gen !== generation) return;
    redraw();
    if (pendingSeek !== null) seekTime(pendingSeek);
    else paint();
  }

  async function pollNewer() {
    if (range.key === "custom") return;
    const gen = generation;
    const newest = frames[frames.length - 1];
    const from = newest ? new Date(newest.t) : bounds().from;
    const rows = await get(query(from, null));
    if (gen !== generation) return;
    const fresh = timed(rows.filter((f) => !ids.has(f.id))).reverse();
    if (!fresh.length) {
      redraw(); // "now" moved on: a silence at the end may have become a gap
      return;
    }
    const following = index === frames.length - 1;
    for (const f of fresh) ids.add(f.id);
    frames = frames.concat(fresh);
    if (rows.length === PAGE) hasOlder = true;
    redraw();
    if (following && !playing && !dragging) show(frames.length - 1);
    else paint();
  }

  // --- the time scale and its gaps -----------------------------------------------------------
  /** The time the scrubber spans: the range, widened to the frames it holds. */
  function span() {
    const now = Date.now();
    const b = bounds();
    const first = frames.length ? frames[0].t : null;
    const last = frames.length ? frames[frames.length - 1].t : null;
    let from = b.from ? +b.from : first ?? now - 3600e3;
    let to = b.to ? +b.to : now;
    // A frame outside the bounds (the browser's clock behind the server's) still fits.
    if (first !== null && first < from) from = first;
    if (last !== null && last > to) to = last;
    if (to - from < 1000) from = to - 1000;
    return { from, to };
  }

  /** No frame for longer than this is a gap. */
  function gapThreshold() {
    const list = ctx.schedules || [];
    const on = list.filter((s) => s.enabled);
    const pick = (on.length ? on : list).map((s) => s.interval_seconds * 1000);
    let spacing = pick.length ? Math.min(...pick) : null;
    if (spacing === null) {
      // No schedule: the frames' own median spacing (of at most the newest 2,000).
      const d = [];
      for (let i = Math.max(1, frames.length - 2000); i < frames.length; i++) d.push(frames[i].t - frames[i - 1].t);
      spacing = median(d);
    }
    if (spacing === null) return null;
    return GAP_FACTOR * Math.max(MIN_SPACING_MS, spacing);
  }

  function findGaps() {
    const n = frames.length;
    const limit = gapThreshold();
    if (!n || limit === null) return [];
    const out = [];
    const b = bounds();
    // Before the first frame, when the range has a start and nothing older is waiting to load;
    // not before the camera was added (no frame was missing then).
    const added = ctx.camera && ctx.camera.created_at ? Date.parse(ctx.camera.created_at) : -Infinity;
    const start = Math.max(scale.from, added);
    if (b.from && !hasOlder && frames[0].t - start > limit) out.push({ from: start, to: frames[0].t, edge: "start" });
    for (let i = 1; i < n; i++) {
      if (frames[i].t - frames[i - 1].t > limit) out.push({ from: frames[i - 1].t, to: frames[i].t });
    }
    // After the newest frame, up to the end of the range ("now" for the usual ranges).
    if (scale.to - frames[n - 1].t > limit) out.push({ from: frames[n - 1].t, to: scale.to, edge: b.to ? "end" : "now" });
    return out;
  }

  const pct = (t) => ((t - scale.from) / (scale.to - scale.from)) * 100;

  function gapLabel(g) {
    const what = g.edge === "now" ? `since ${fmtMoment(g.from, g.to - g.from < 600e3)}` : fmtSpan(g.from, g.to);
    return `No frames ${what} (${fmtDuration((g.to - g.from) / 1000)})`;
  }

  /** Draw the scale: frame ticks, the part not loaded yet, the gaps. Not on every step. */
  function redraw() {
    scale = span();
    track.dataset.from = new Date(scale.from).toISOString();
    track.dataset.to = new Date(scale.to).toISOString();
    const live = !bounds().to;
    scaleFrom.textContent = frames.length || bounds().from ? fmtTime(new Date(scale.from).toISOString()) : "";
    scaleTo.textContent = live ? "now" : fmtTime(new Date(scale.to).toISOString());
    drawTicks();
    if (hasOlder && frames.length) {
      unloaded.hidden = false;
      unloaded.style.left = "0%";
      unloaded.style.width = `${pct(frames[0].t)}%`;
    } else {
      unloaded.hidden = true;
    }
    const gaps = findGaps();
    const marked = gaps.slice().sort((a, b) => (b.to - b.from) - (a.to - a.from)).slice(0, MAX_GAP_MARKS)
      .sort((a, b) => a.from - b.from);
    clear(gapsEl);
    for (const g of marked) {
      const label = gapLabel(g);
      const el = h("div", {
        class: "gap", title: label,
        dataset: { from: new Date(g.from).toISOString(), to: new Date(g.to).toISOString() },
      }, h("span", { class: "sr-only" }, label));
      el.style.left = `${pct(g.from)}%`;
      el.style.width = `${pct(g.to) - pct(g.from)}%`;
      gapsEl.append(el);
    }
    // The same spans in words, for everyone (the scrubber's aria-describedby points here).
    if (!gaps.length) {
      gapNote.textContent = "";
    } else if (gaps.length <= 3) {
      gapNote.textContent = `${gaps.map(gapLabel).join("; ")}.`;
    } else {
      const longest = gaps.reduce((a, b) => (b.to - b.from > a.to - a.from ? b : a));
      gapNote.textContent = `No frames in ${gaps.length} stretches (hatched), the longest ${gapLabel(longest).replace(/^No frames /, "")}`
        + (gaps.length > MAX_GAP_MARKS ? `; the ${MAX_GAP_MARKS} longest are marked.` : ".");
    }
    placeThumb();
  }

  function drawTicks() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(track.clientWidth * dpr));
    const ht = Math.max(1, Math.round(ticks.clientHeight * dpr));
    if (ticks.width !== w) ticks.width = w;
    if (ticks.height !== ht) ticks.height = ht;
    const g = ticks.getContext("2d");
    g.clearRect(0, 0, w, ht);
    if (!frames.length) return;
    g.fillStyle = getComputedStyle(ticks).color;
    const k = w / (scale.to - scale.from);
    const bar = Math.max(1, Math.round(dpr));
    let last = -1;
    // Frames are in time order: one bar per pixel column that holds any, O(frames).
    for (const f of frames) {
      const x = Math.min(w - bar, Math.floor((f.t - scale.from) * k));
      if (x === last) continue;
      g.fillRect(x, 0, bar, ht);
      last = x;
    }
  }

  function placeThumb() {
    const f = frames[index];
    if (f) thumb.style.left = `${pct(f.t)}%`;
  }

  /** The index of the frame nearest time `t` (frames are in time order). */
  function nearest(t) {
    let lo = 0;
    let hi = frames.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (frames[mid].t < t) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0 && t - frames[lo - 1].t <= frames[lo].t - t) return lo - 1;
    return lo;
  }

  /** Show the frame nearest `t`, loading older pages first when `t` is before the loaded ones. */
  function seekTime(t) {
    if (!frames.length) return;
    if (hasOlder && t < frames[0].t) {
      pendingSeek = t;
      show(0, true);
      loadOlder();
      return;
    }
    pendingSeek = null;
    show(nearest(t));
  }

  function seekX(clientX) {
    const r = track.getBoundingClientRect();
    const frac = Math.max(0, Math.min(1, (clientX - r.left) / Math.max(1, r.width)));
    seekTime(scale.from + frac * (scale.to - scale.from));
  }

  // --- showing ------------------------------------------------------------------------------
  function preload(i) {
    const f = frames[i];
    if (!f || preloaded.has(f.url)) return preloaded.get(f && f.url);
    const im = new Image();
    im.decoding = "async";
    im.src = f.url;
    preloaded.set(f.url, im);
    if (preloaded.size > 16) preloaded.delete(preloaded.keys().next().value);
    return im;
  }

  function show(i, seeking = false) {
    if (!seeking) pendingSeek = null;
    if (frames.length === 0) {
      index = -1;
      paint();
      return;
    }
    index = Math.max(0, Math.min(frames.length - 1, i));
    const f = frames[index];
    if (img.dataset.id !== f.id) {
      img.src = f.url;
      img.dataset.id = f.id;
    }
    img.dataset.index = String(index);
    for (let k = 1; k <= PRELOAD_AHEAD; k++) preload(index + k);
    preload(index - 1);
    paint();
    if (index < NEAR_OLDEST) loadOlder();
  }

  let stripTimer = null;
  function paint() {
    const n = frames.length;
    scrubber.setAttribute("aria-disabled", String(n === 0));
    scrubber.tabIndex = n === 0 ? -1 : 0;
    scrubber.setAttribute("aria-valuemax", String(Math.max(0, n - 1)));
    scrubber.setAttribute("aria-valuenow", String(Math.max(0, index)));
    prevBtn.disabled = nextBtn.disabled = playBtn.disabled = n < 2;
    if (n === 0) {
      img.hidden = true;
      empty.hidden = false;
      paintEmpty();
      caption.textContent = "";
      summary.textContent = "0 frames";
      scrubber.removeAttribute("aria-valuetext");
      openA.hidden = downA.hidden = true;
      clear(strip);
      return;
    }
    img.hidden = false;
    empty.hidden = true;
    const f = frames[index];
    img.alt = `Frame taken ${fmtTime(f.taken_at)}`;
    caption.textContent = `${fmtTime(f.taken_at)} · ${f.width || "?"}×${f.height || "?"} · ${fmtBytes(f.size_bytes)}`;
    scrubber.setAttribute("aria-valuetext", `${index + 1} of ${n}, ${fmtTime(f.taken_at)}`);
    if (pendingSeek === null) {
      summary.textContent = `Frame ${index + 1} of ${n}${hasOlder ? "+ (older frames load as you go back)" : ""}`;
    }
    placeThumb();
    openA.hidden = downA.hidden = false;
    openA.href = f.url;
    downA.href = f.url;
    downA.setAttribute("download", `${camera.id}-${f.taken_at.replace(/[:.]/g, "-")}.jpg`);
    clearTimeout(stripTimer);
    stripTimer = setTimeout(paintStrip, playing || dragging ? 400 : 60);
  }

  /** Whether the server's scheduler runs: "on", "off" or "unknown" (then asked, once). */
  function schedulerState() {
    if (ctx.scheduler && typeof ctx.scheduler.enabled === "boolean") return ctx.scheduler.enabled ? "on" : "off";
    if (!ctx.system) return "on"; // nobody to ask: schedules run, as by default
    if (!askedSystem) {
      askedSystem = true;
      ctx.system()
        .then((s) => { ctx.scheduler = s.scheduler; })
        .catch(() => { ctx.scheduler = { enabled: true }; })
        .finally(() => { if (!frames.length) paint(); });
    }
    return "unknown";
  }

  /** What the enabled schedules will do next, as a sentence ("" when nothing is to be said). */
  function nextFrameText(on, lead) {
    const one = on.length === 1 ? "schedule" : "schedules";
    const what = `${lead}${lead ? "t" : "T"}he ${one} (${everyText(on)})`;
    const state = schedulerState();
    if (state === "off") {
      return `${what} ${on.length === 1 ? "is" : "are"} enabled, but this server runs with its scheduler off (HELDAR_SNAPSHOT_SCHEDULER_ENABLED=false).`;
    }
    if (state === "unknown") return `${what} ${on.length === 1 ? "is" : "are"} enabled.`;
    const due = on.map((s) => s.next_due_at).filter(Boolean).map(Date.parse).sort((x, y) => x - y)[0];
    if (due === undefined) return `${what} ${on.length === 1 ? "is" : "are"} about to take the first.`;
    if (due >= Date.now() - 2000) return `${what} ${on.length === 1 ? "takes" : "take"} the next at ${fmtClock(due)}.`;
    return `${what} ${on.length === 1 ? "was" : "were"} due at ${fmtClock(due)}.`;
  }

  /** Why there is no frame to show, as true as the page knows it. */
  function paintEmpty() {
    const p = [];
    const list = ctx.schedules || [];
    const on = list.filter((s) => s.enabled);
    const st = ctx.camera && ctx.camera.status;
    const failing = st && (st.state === "failing" || st.state === "auth_failed") && st.last_error;
    let action = null;
    if (outside) {
      // The camera has frames, none of them in this range.
      const t = outside.taken_at;
      const b = bounds();
      const where = b.to && Date.parse(t) > +b.to ? "after this range" : ago(t);
      p.push(`No frames in this range. The camera's newest frame is from ${fmtTime(t)} (${where}).`);
      if (on.length) p.push(nextFrameText(on, ""));
      action = h("button", { type: "button", id: "show-all" }, "Show all frames");
      action.addEventListener("click", () => {
        rangeSel.value = "all";
        custom.hidden = true;
        range = { key: "all", from: null, to: null };
        loadRange();
      });
    } else if (ctx.schedules === null) {
      p.push("No frames in this range yet.");
    } else if (!list.length) {
      p.push(can("operate")
        ? "No frames yet. Add a schedule above, or take a live snapshot and keep it."
        : "No frames yet. This camera has no schedule; an operator can add one.");
    } else if (!on.length) {
      p.push(`No frames yet — the camera's ${list.length === 1 ? "schedule" : "schedules"} (${everyText(list)}) ${list.length === 1 ? "is" : "are"} paused.`
        + (can("operate") ? ` Enable ${list.length === 1 ? "it" : "one"} above, or take a live snapshot and keep it.` : ""));
    } else {
      p.push(nextFrameText(on, "No frames yet — "));
    }
    if (failing && on.length) p.push(`The camera's last capture failed: ${st.last_error}`);
    clear(empty).append(...p.map((t) => h("p", {}, t)));
    if (action) empty.append(action);
  }

  function paintStrip() {
    clear(strip);
    const n = frames.length;
    if (n < 2) return;
    const half = Math.floor(STRIP / 2);
    const start = Math.max(0, Math.min(n - STRIP, index - half));
    let current = null;
    for (let i = start; i < Math.min(n, start + STRIP); i++) {
      const f = frames[i];
      const b = h("button", {
        type: "button",
        class: i === index ? "current" : null,
        "aria-label": `Show frame ${i + 1}, ${fmtTime(f.taken_at)}`,
        "aria-current": i === index ? "true" : null,
        onclick: () => { pause(); show(i); },
      }, h("img", { src: f.url, alt: "", loading: "lazy", decoding: "async", width: 96, height: 54 }));
      if (i === index) current = b;
      strip.append(h("li", {}, b));
    }
    // On a narrow screen the strip scrolls inside itself: keep the current frame in view there
    // (scrolling the strip, never the page).
    if (current && strip.scrollWidth > strip.clientWidth) {
      const li = current.parentElement;
      strip.scrollLeft = li.offsetLeft - (strip.clientWidth - li.offsetWidth) / 2;
    }
  }

  // --- playback -----------------------------------------------------------------------------
  function play() {
    if (frames.length < 2) return;
    const restart = index >= frames.length - 1;
    if (restart) show(0);
    playing = true;
    playBtn.textContent = "Pause";
    playBtn.setAttribute("aria-pressed", "true");
    // Starting over, the first frame is shown for one frame's time like every other.
    if (restart) playTimer = setTimeout(tick, 1000 / Number(speedSel.value));
    else tick();
  }

  function pause() {
    playing = false;
    clearTimeout(playTimer);
    playBtn.textContent = "Play";
    playBtn.setAttribute("aria-pressed", "false");
  }

  async function tick() {
    if (!playing) return;
    const started = performance.now();
    if (index >= frames.length - 1) {
      pause();
      paint();
      return;
    }
    // Advance only once the next frame is decoded: no blank frames at high speed.
    const next = preload(index + 1);
    if (next && !next.complete) {
      try {
        await next.decode();
      } catch (_) {
        // A frame that cannot be decoded is shown as it is.
      }
    }
    if (!playing) return;
    show(index + 1);
    const wait = 1000 / Number(speedSel.value) - (performance.now() - started);
    playTimer = setTimeout(tick, Math.max(0, wait));
  }

  // --- events -------------------------------------------------------------------------------
  // The same keys on the scrubber and on the frame: ←/→ one frame, PageUp/PageDown ten,
  // Home/End the ends, Space (or k) plays.
  function onKey(e) {
    const steps = { ArrowLeft: -1, ArrowRight: 1, ArrowDown: -1, ArrowUp: 1, PageDown: -10, PageUp: 10 };
    if (e.target === viewer && (e.key === "ArrowDown" || e.key === "ArrowUp" || e.key.startsWith("Page"))) return;
    if (e.key in steps) {
      pause();
      show(index + steps[e.key]);
    } else if (e.key === "Home") {
      pause();
      show(0);
    } else if (e.key === "End") {
      pause();
      show(frames.length - 1);
    } else if (e.key === " " || e.key === "k") {
      playing ? pause() : play();
    } else {
      return;
    }
    e.preventDefault();
  }
  scrubber.addEventListener("keydown", onKey);
  viewer.addEventListener("keydown", onKey);
  scrubber.addEventListener("pointerdown", (e) => {
    if (!frames.length || e.button !== 0) return;
    e.preventDefault();
    scrubber.focus();
    scrubber.setPointerCapture(e.pointerId);
    dragging = true;
    pause();
    seekX(e.clientX);
  });
  scrubber.addEventListener("pointermove", (e) => {
    if (dragging) seekX(e.clientX);
  });
  const endDrag = () => {
    if (!dragging) return;
    dragging = false;
    paint();
  };
  scrubber.addEventListener("pointerup", endDrag);
  scrubber.addEventListener("pointercancel", endDrag);
  prevBtn.addEventListener("click", () => { pause(); show(index - 1); });
  nextBtn.addEventListener("click", () => { pause(); show(index + 1); });
  playBtn.addEventListener("click", () => (playing ? pause() : play()));
  rangeSel.addEventListener("change", () => {
    if (rangeSel.value === "custom") {
      custom.hidden = false;
      const now = new Date();
      if (!toIn.value) toIn.value = localInput(now);
      if (!fromIn.value) fromIn.value = localInput(new Date(now - 86400e3));
      fromIn.focus();
      return;
    }
    custom.hidden = true;
    range = { key: rangeSel.value, from: null, to: null };
    loadRange();
  });
  custom.addEventListener("submit", (e) => {
    e.preventDefault();
    const from = fromIn.value ? new Date(fromIn.value) : null;
    const to = toIn.value ? new Date(toIn.value) : null;
    if (from && to && from > to) {
      summary.textContent = "The start of the range is after its end.";
      return;
    }
    range = { key: "custom", from, to };
    loadRange();
  });
  // The canvas follows the track's width; a range ending "now" is redrawn as time moves on.
  const resized = new ResizeObserver(() => drawTicks());
  resized.observe(track);
  const rescale = setInterval(() => {
    if (!bounds().to && !document.hidden) redraw();
  }, RESCALE_MS);

  loadRange();
  return {
    /** Fetch and append frames newer than the newest shown. */
    newer: pollNewer,
    /** Fresh schedules / camera / scheduler settings (the empty state and gaps use them). */
    setContext(next) {
      const before = JSON.stringify((ctx.schedules || []).map((s) => [s.interval_seconds, s.enabled]));
      ctx = { ...ctx, ...next };
      const after = JSON.stringify((ctx.schedules || []).map((s) => [s.interval_seconds, s.enabled]));
      if (before !== after && frames.length) redraw();
      if (!frames.length) paint();
    },
    /** The range shown: {from, to} as Dates, null for open ends (the timelapse export's). */
    range: bounds,
    stop() {
      pause();
      generation++;
      resized.disconnect();
      clearInterval(rescale);
      clearTimeout(stripTimer);
    },
  };
}
