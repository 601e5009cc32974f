// #/ — every camera's newest frame at a glance.
//
// Each tile's badge follows the API's `health`: "Failing" (or "Auth failed") with the last error
// written under the tile, "No schedule" with a link to add one, "Waiting for first frame", or
// "Online" — only for a scheduled camera whose last capture worked and that has a stored frame.
// Failing cameras come first, then those without a schedule, then the rest, each group by id.
//
// The event stream (GET /api/v1/events) keeps it current: a `frame.stored` event repaints its
// tile with the new frame at once, and a camera's state change, backoff or edit re-reads the camera
// list. A camera whose scheduled captures back off shows one line, "retrying at HH:MM:SS".
// GET /api/v1/cameras also runs as a safety net — every minute while the stream is up, every
// REFRESH_MS while it is down (util.live). A tile's frame is looked up (GET …/snapshots?limit=1)
// only while the tile is on screen, so thousands of cameras cost a dozen small requests per
// refresh, not thousands; its <img> points at the frame's immutable /media URL, so an unchanged
// frame is never downloaded twice.

import { get, can, enc } from "./api.js";
import { h, clear, healthBadge, healthRank, ago, live, debounce, fmtTime, message, backoffLine, backoffWhy } from "./util.js";

export const NAME = "grid";
export const REFRESH_MS = 5000;

export async function render(main) {
  document.title = "Cameras · Heldar";
  const head = h("div", { class: "page-head" },
    h("h1", {}, "Cameras"),
    can("admin") ? h("a", { class: "button primary", href: "#/cameras/new" }, "Add camera") : null,
  );
  const status = h("p", { class: "muted", id: "grid-status", "aria-live": "polite" });
  const list = h("ul", { class: "grid", id: "grid" });
  main.append(head, status, list);

  const tiles = new Map(); // camera id → {el, parts, visible, frameId}
  const frames = new Map(); // camera id → newest frame (or null)
  const health = new Map(); // camera id → its `health` as last listed
  const observer = new IntersectionObserver((entries) => {
    for (const e of entries) {
      const t = tiles.get(e.target.dataset.camera);
      if (!t) continue;
      const was = t.visible;
      t.visible = e.isIntersecting;
      if (t.visible && !was) refreshFrame(e.target.dataset.camera, t);
    }
  }, { rootMargin: "200px" });

  async function refreshFrame(id, t) {
    try {
      const rows = await get(`/api/v1/cameras/${enc(id)}/snapshots?limit=1`);
      frames.set(id, rows[0] || null);
    } catch (_) {
      frames.set(id, frames.get(id) || null);
    }
    paintFrame(t, frames.get(id));
  }

  function paintFrame(t, frame) {
    const { img, empty, age } = t.parts;
    if (!frame) {
      img.hidden = true;
      empty.hidden = false;
      age.textContent = "no frames yet";
      age.removeAttribute("title");
      return;
    }
    if (t.frameId !== frame.id) {
      t.frameId = frame.id;
      img.src = frame.url;
      img.dataset.takenAt = frame.taken_at;
    }
    img.hidden = false;
    empty.hidden = true;
    age.textContent = "newest frame " + ago(frame.taken_at);
    age.title = fmtTime(frame.taken_at);
  }

  function makeTile(cam) {
    const img = h("img", { alt: "", loading: "lazy", decoding: "async", width: 640, height: 360, hidden: true });
    const empty = h("span", { class: "no-frame" }, "No frames yet");
    const name = h("a", { class: "name", href: `#/cameras/${enc(cam.id)}` });
    const badge = h("span", { class: "badge" });
    const age = h("span", { class: "age" });
    // The last error is text on the tile, not a tooltip: it is what an operator came to read.
    const error = h("p", { class: "tile-error", hidden: true });
    const retry = h("p", { class: "tile-retry", hidden: true });
    const note = h("p", { class: "tile-note", hidden: true });
    const el = h("li", { class: "tile", dataset: { camera: cam.id } },
      h("a", { class: "thumb", href: `#/cameras/${enc(cam.id)}`, tabindex: "-1", "aria-hidden": "true" }, img, empty),
      h("div", { class: "meta" }, name, badge),
      age,
      retry,
      error,
      note,
    );
    const t = { el, parts: { img, empty, name, badge, age, retry, error, note }, visible: false, frameId: null };
    tiles.set(cam.id, t);
    observer.observe(el);
    return t;
  }

  function paintCamera(t, cam) {
    const { name, badge, error, note, img, retry } = t.parts;
    name.textContent = cam.name;
    retry.textContent = backoffLine(cam.status);
    retry.title = retry.textContent ? backoffWhy(cam.status) : "";
    retry.hidden = !retry.textContent;
    img.alt = `Newest frame of ${cam.name}`;
    const { cls, label } = healthBadge(cam);
    badge.className = `badge ${cls}`;
    badge.textContent = label;
    t.el.dataset.health = cam.health;
    const err = cam.health === "failing" ? (cam.status.last_error || "") : "";
    error.textContent = err ? `${err} (${ago(cam.status.last_error_at)})` : "";
    error.hidden = !err;
    badge.title = err || label;
    // No enabled schedule: say so, and offer one (a failing camera may lack one too).
    clear(note);
    note.hidden = cam.schedules_enabled > 0;
    if (!note.hidden) {
      note.append("Frames are taken only on demand. ");
      if (can("operate")) {
        note.append(h("a", { class: "add-schedule", href: `#/cameras/${enc(cam.id)}?schedule=new` }, "Add a schedule"));
      }
    }
  }

  function emptyState() {
    return h("li", { class: "empty" },
      h("h2", {}, "No cameras yet"),
      h("p", {}, "Heldar grabs JPEG frames from IP cameras on a schedule and keeps them."),
      can("admin")
        ? h("p", {}, h("a", { class: "button primary", href: "#/cameras/new" }, "Add your first camera"),
          " with its address and credentials; pick its maker to fill in the usual URLs.")
        : h("p", {}, "Ask an administrator to add a camera."),
      h("p", {}, "Just looking? Start the server with ", h("code", {}, "heldar serve --demo"),
        ": it adds a built-in demo camera, ", h("code", {}, "demo"), ", that takes a frame every 10 seconds."),
    );
  }

  async function refresh() {
    let cams;
    try {
      cams = await get("/api/v1/cameras");
    } catch (e) {
      status.textContent = "Cannot load the cameras: " + message(e);
      status.className = "alert";
      return;
    }
    status.className = "muted";
    const failing = cams.filter((c) => c.health === "failing").length;
    const unscheduled = cams.filter((c) => c.health === "no_schedule").length;
    status.textContent = cams.length
      ? `${cams.length} camera${cams.length === 1 ? "" : "s"}` + (failing ? `, ${failing} failing` : "") +
        (unscheduled ? `, ${unscheduled} without a schedule` : "")
      : "";
    // What needs the operator first: failing, then without a schedule, then the rest; within
    // each, the API's order (by id). Array.prototype.sort is stable.
    cams.sort((a, b) => healthRank(a) - healthRank(b));
    health.clear();
    for (const c of cams) health.set(c.id, c.health);
    if (cams.length === 0) {
      for (const t of tiles.values()) observer.unobserve(t.el);
      tiles.clear();
      clear(list).append(emptyState());
      return;
    }
    list.querySelector(".empty")?.remove();
    const seen = new Set();
    let prev = null;
    for (const cam of cams) {
      seen.add(cam.id);
      const t = tiles.get(cam.id) || makeTile(cam);
      paintCamera(t, cam);
      // Keep that order without rebuilding tiles (no flicker, focus kept).
      const want = prev ? prev.nextSibling : list.firstChild;
      if (want !== t.el) list.insertBefore(t.el, want);
      prev = t.el;
    }
    for (const [id, t] of tiles) {
      if (!seen.has(id)) {
        observer.unobserve(t.el);
        t.el.remove();
        tiles.delete(id);
      }
    }
    await Promise.all([...tiles].filter(([, t]) => t.visible).map(([id, t]) => refreshFrame(id, t)));
    for (const [id, t] of tiles) {
      if (!t.visible && frames.has(id)) paintFrame(t, frames.get(id));
    }
  }

  const soon = debounce(300, () => refresh().catch((e) => console.warn("refresh failed", e)));
  const stop = live({
    names: ["frame.stored", "camera.state_changed", "camera.backoff", "camera.changed", "schedule.changed"],
    refresh,
    onEvent(name, ev) {
      if (name !== "frame.stored") return soon();
      const frame = { id: ev.snapshot_id, url: ev.url, taken_at: ev.taken_at };
      frames.set(ev.camera, frame);
      const t = tiles.get(ev.camera);
      if (t) paintFrame(t, frame);
      // A camera's first frame changes its health (waiting → ok): re-read the list. The event
      // follows the frame's commit, so the list already counts it.
      if (health.get(ev.camera) === "waiting") soon();
    },
  });
  return () => {
    stop();
    observer.disconnect();
  };
}
