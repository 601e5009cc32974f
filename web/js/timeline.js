// The timeline of one camera's stored frames: a scrubber over the frames of a chosen range,
// frame-by-frame keys, timelapse playback, open and download.
//
// It stays light with thousands of frames: frame metadata arrives in pages of PAGE rows (newest
// first; older pages load when the scrubber nears the oldest loaded frame), and only the frame
// shown, a few neighbours (preloaded for playback) and the thumbnail strip's images are fetched.
// Media URLs are immutable, so each JPEG is downloaded once. For a range that ends "now", new
// frames are appended when the camera page hears of them (a `frame.stored` event, or its
// safety-net poll calls `newer`); if you are on the newest frame you follow them.

import { get, enc } from "./api.js";
import { h, clear, fmtTime, fmtBytes, message } from "./util.js";

export const PAGE = 500;
const NEAR_OLDEST = 50; // load an older page when the scrubber is this close to the start
const PRELOAD_AHEAD = 4;
const STRIP = 9;

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

export function mountTimeline(root, camera) {
  const base = `/api/v1/cameras/${enc(camera.id)}/snapshots`;
  let frames = []; // oldest → newest
  let ids = new Set();
  let index = -1;
  let hasOlder = false;
  let loadingOlder = false;
  let range = { key: "24h", from: null, to: null };
  let generation = 0; // bumps on every range change; stale answers are dropped
  let playing = false;
  let playTimer = null;
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
  const empty = h("p", { class: "no-frame big", id: "timeline-empty" });
  const caption = h("figcaption", { id: "frame-caption" });
  const scrubber = h("input", { type: "range", id: "scrubber", min: 0, max: 0, step: 1, value: 0, "aria-label": "Frame", disabled: true });
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
    h("div", { class: "scrub" }, scrubber),
    controls, strip,
  );

  // --- data ---------------------------------------------------------------------------------
  function bounds() {
    if (range.key === "custom") return { from: range.from, to: range.to };
    const r = RANGES[range.key];
    return { from: r.ms ? new Date(Date.now() - r.ms) : null, to: null };
  }

  function query(from, to) {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (from) q.set("from", from.toISOString());
    if (to) q.set("to", to.toISOString());
    return `${base}?${q}`;
  }

  async function loadRange() {
    const gen = ++generation;
    pause();
    frames = [];
    ids = new Set();
    index = -1;
    hasOlder = false;
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
    frames = rows.slice().reverse();
    ids = new Set(frames.map((f) => f.id));
    hasOlder = rows.length === PAGE;
    show(frames.length - 1);
  }

  async function loadOlder() {
    if (!hasOlder || loadingOlder || frames.length === 0) return;
    loadingOlder = true;
    const gen = generation;
    try {
      const { from } = bounds();
      const rows = await get(query(from, new Date(frames[0].taken_at)));
      if (gen !== generation) return;
      const older = rows.filter((f) => !ids.has(f.id)).reverse();
      for (const f of older) ids.add(f.id);
      frames = older.concat(frames);
      index += older.length;
      hasOlder = rows.length === PAGE && older.length > 0;
      paint();
    } catch (e) {
      summary.textContent = "Cannot load older frames: " + message(e);
    } finally {
      loadingOlder = false;
    }
  }

  async function pollNewer() {
    if (range.key === "custom") return;
    const gen = generation;
    const newest = frames[frames.length - 1];
    const from = newest ? new Date(newest.taken_at) : bounds().from;
    const rows = await get(query(from, null));
    if (gen !== generation) return;
    const fresh = rows.filter((f) => !ids.has(f.id)).reverse();
    if (!fresh.length) return;
    const following = index === frames.length - 1;
    for (const f of fresh) ids.add(f.id);
    frames = frames.concat(fresh);
    if (rows.length === PAGE) hasOlder = true;
    if (following && !playing) show(frames.length - 1);
    else paint();
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

  function show(i) {
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
    scrubber.disabled = n === 0;
    scrubber.max = String(Math.max(0, n - 1));
    scrubber.value = String(Math.max(0, index));
    prevBtn.disabled = nextBtn.disabled = playBtn.disabled = n < 2;
    if (n === 0) {
      img.hidden = true;
      empty.hidden = false;
      empty.textContent = "No frames in this range yet. Add a schedule above, or take a live snapshot and keep it.";
      caption.textContent = "";
      summary.textContent = "0 frames";
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
    summary.textContent = `Frame ${index + 1} of ${n}${hasOlder ? "+ (older frames load as you go back)" : ""}`;
    openA.hidden = downA.hidden = false;
    openA.href = f.url;
    downA.href = f.url;
    downA.setAttribute("download", `${camera.id}-${f.taken_at.replace(/[:.]/g, "-")}.jpg`);
    clearTimeout(stripTimer);
    stripTimer = setTimeout(paintStrip, playing ? 400 : 60);
  }

  function paintStrip() {
    clear(strip);
    const n = frames.length;
    if (n < 2) return;
    const half = Math.floor(STRIP / 2);
    const start = Math.max(0, Math.min(n - STRIP, index - half));
    for (let i = start; i < Math.min(n, start + STRIP); i++) {
      const f = frames[i];
      strip.append(h("li", {},
        h("button", {
          type: "button",
          class: i === index ? "current" : null,
          "aria-label": `Show frame ${i + 1}, ${fmtTime(f.taken_at)}`,
          "aria-current": i === index ? "true" : null,
          onclick: () => { pause(); show(i); },
        }, h("img", { src: f.url, alt: "", loading: "lazy", decoding: "async", width: 96, height: 54 }))));
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
  scrubber.addEventListener("input", () => {
    pause();
    show(Number(scrubber.value));
  });
  prevBtn.addEventListener("click", () => { pause(); show(index - 1); });
  nextBtn.addEventListener("click", () => { pause(); show(index + 1); });
  playBtn.addEventListener("click", () => (playing ? pause() : play()));
  viewer.addEventListener("keydown", (e) => {
    const keys = { ArrowLeft: -1, ArrowRight: 1 };
    if (e.key in keys) {
      pause();
      show(index + keys[e.key]);
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
  });
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

  loadRange();
  return {
    /** Fetch and append frames newer than the newest shown. */
    newer: pollNewer,
    /** The range shown: {from, to} as Dates, null for open ends (the timelapse export's). */
    range: bounds,
    stop() {
      pause();
      generation++;
    },
  };
}
