// Timelapse videos of one camera, on its page: "Export timelapse" over the timeline's current
// range (a job on the server, POST /api/v1/cameras/{id}/timelapses), each job's progress bar fed
// by the event stream (job.progress, job.finished, timelapse.done, which the camera page passes
// on), and the camera's finished videos with play and download.
//
// The server does the work: closing the page does not stop an export, and coming back shows it
// again (running and queued jobs are read from GET /api/v1/jobs?camera=…).

import { get, request, can, enc } from "./api.js";
import { h, clear, fmtTime, fmtBytes, fmtDuration, message, toast } from "./util.js";

/** The events this module wants from the camera page's stream. */
export const EVENTS = ["job.progress", "job.finished", "timelapse.done"];

const WIDTHS = [["", "Frame size"], ["1920", "1920 px"], ["1280", "1280 px"], ["640", "640 px"]];

export function mountTimelapses(root, camera, timeline) {
  const id = camera.id;
  const jobs = new Map(); // job id → {li, bar, text, cancel, events}

  // --- DOM ----------------------------------------------------------------------------------
  const fps = h("input", { type: "number", id: "tl-fps", min: 1, max: 60, step: 1, value: 24, inputmode: "numeric", required: true });
  const width = h("select", { id: "tl-width" }, WIDTHS.map(([v, l]) => h("option", { value: v }, l)));
  const format = h("select", { id: "tl-format" },
    h("option", { value: "mp4" }, "MP4 (H.264)"), h("option", { value: "webm" }, "WebM (VP9)"));
  const rangeNote = h("p", { class: "hint", id: "tl-range" });
  const formError = h("p", { class: "alert", role: "alert", id: "tl-error", hidden: true });
  const exportBtn = h("button", { type: "submit", class: "primary", id: "tl-export" }, "Export timelapse");
  const form = can("operate")
    ? h("form", { class: "tl-form", id: "tl-form" },
      h("label", { for: "tl-fps" }, "Frames/s"), fps,
      h("label", { for: "tl-width" }, "Width"), width,
      h("label", { for: "tl-format" }, "Format"), format,
      exportBtn, rangeNote)
    : h("p", { class: "muted" }, "Exporting a timelapse needs the operator role.");
  const jobList = h("ul", { class: "tl-jobs", id: "tl-jobs", "aria-live": "polite" });
  const videoList = h("ul", { class: "tl-videos", id: "timelapses" });
  clear(root).append(
    h("h2", { id: "tl-h" }, "Timelapse videos"),
    form, formError, jobList, videoList);

  // --- the range ------------------------------------------------------------------------------
  function range() {
    const b = (timeline && timeline.range && timeline.range()) || {};
    return { from: b.from || new Date(0), to: b.to || new Date(), open: !b.from };
  }

  function paintRange() {
    const r = range();
    rangeNote.textContent = r.open
      ? `Exports every stored frame up to now (the timeline's range).`
      : `Exports the timeline's range: ${fmtTime(r.from.toISOString())} to ${fmtTime(r.to.toISOString())}.`;
  }

  // --- jobs ---------------------------------------------------------------------------------
  function jobText(j) {
    if (j.state === "queued") return `Waiting to start · ${j.frames_total} frames`;
    if (j.state === "running") {
      const eta = j.eta_seconds != null ? ` · about ${fmtDuration(j.eta_seconds)} left` : "";
      return `Encoding ${j.frames_done} of ${j.frames_total} frames${eta}`;
    }
    if (j.state === "done") return `Done · ${j.frames_total} frames`;
    if (j.state === "cancelled") return "Cancelled";
    return `Failed (${j.code || "error"}): ${j.error || "no reason given"}`;
  }

  function paintJob(j) {
    let row = jobs.get(j.id);
    if (!row) {
      const bar = h("progress", { class: "tl-progress", max: 1, value: 0, "aria-label": "Export progress" });
      const text = h("span", { class: "small" });
      const cancel = can("operate")
        ? h("button", { type: "button", class: "small", onclick: () => cancelJob(j.id) }, "Cancel")
        : null;
      const li = h("li", { class: "tl-job", dataset: { job: j.id, events: "0" } }, bar, text, cancel);
      row = { li, bar, text, cancel };
      jobs.set(j.id, row);
      jobList.prepend(li);
    }
    const total = Math.max(1, j.frames_total || 0);
    row.bar.max = total;
    row.bar.value = j.state === "done" ? total : Math.min(total, j.frames_done || 0);
    row.text.textContent = jobText(j);
    row.li.dataset.state = j.state;
    row.li.classList.toggle("failed", j.state === "failed");
    if (row.cancel) row.cancel.hidden = !(j.state === "queued" || j.state === "running");
  }

  async function cancelJob(jobId) {
    try {
      paintJob(await request("DELETE", `/api/v1/jobs/${enc(jobId)}`));
    } catch (e) {
      toast(message(e));
    }
  }

  form.addEventListener?.("submit", async (e) => {
    e.preventDefault();
    formError.hidden = true;
    const r = range();
    const body = { from: r.from.toISOString(), to: r.to.toISOString(), fps: Number(fps.value), format: format.value };
    if (width.value) body.width = Number(width.value);
    exportBtn.disabled = true;
    try {
      const job = await request("POST", `/api/v1/cameras/${enc(id)}/timelapses`, body);
      paintJob(job);
      toast("Timelapse export started.");
    } catch (err) {
      formError.textContent = message(err);
      formError.hidden = false;
    } finally {
      exportBtn.disabled = false;
    }
  });

  // --- videos -------------------------------------------------------------------------------
  function videoItem(t) {
    const player = h("div", { class: "tl-player" });
    const play = h("button", {
      type: "button", class: "small", "aria-expanded": "false",
      onclick: () => {
        const open = play.getAttribute("aria-expanded") === "true";
        clear(player);
        if (!open) {
          player.append(h("video", {
            src: t.url, controls: true, autoplay: true, playsinline: true, preload: "metadata",
            width: t.width, height: t.height, "aria-label": `Timelapse from ${fmtTime(t.from)}`,
          }));
        }
        play.setAttribute("aria-expanded", String(!open));
        play.textContent = open ? "Play" : "Close";
      },
    }, "Play");
    const name = `${id}-${t.from.replace(/[:.]/g, "-")}.${t.format}`;
    return h("li", { class: "tl-video", dataset: { timelapse: t.id } },
      h("div", {},
        h("strong", {}, `${fmtTime(t.from)} – ${fmtTime(t.to)}`),
        t.rule_id ? h("span", { class: "badge" }, "by a rule") : null),
      h("p", { class: "muted small" },
        `${t.frames} frames · ${fmtDuration(t.duration_seconds)} at ${t.fps} frames/s · ${t.width}×${t.height} · ${fmtBytes(t.size_bytes)}`),
      h("div", { class: "actions" },
        play,
        h("a", { class: "button small", href: t.url, download: name }, "Download"),
        can("operate")
          ? h("button", {
            type: "button", class: "danger small",
            onclick: async () => {
              if (!confirm("Delete this timelapse video?")) return;
              try {
                await request("DELETE", `/api/v1/timelapses/${enc(t.id)}`);
                await loadVideos();
              } catch (e) {
                toast(message(e));
              }
            },
          }, "Delete")
          : null),
      player);
  }

  async function loadVideos() {
    const list = await get(`/api/v1/cameras/${enc(id)}/timelapses`);
    // Keep a playing video playing: only add and remove items.
    const seen = new Set(list.map((t) => t.id));
    for (const li of [...videoList.children]) {
      if (!li.dataset.timelapse || !seen.has(li.dataset.timelapse)) li.remove();
    }
    const have = new Set([...videoList.children].map((li) => li.dataset.timelapse));
    let before = null;
    for (const t of list.slice().reverse()) {
      // Newest first: insert each older one after the next newer.
      if (have.has(t.id)) {
        before = videoList.querySelector(`[data-timelapse="${t.id}"]`);
        continue;
      }
      const li = videoItem(t);
      videoList.insertBefore(li, before ? before : videoList.firstChild);
      before = li;
    }
    if (!list.length && !videoList.querySelector(".empty-note")) {
      videoList.append(h("li", { class: "muted empty-note" }, "No timelapse videos yet."));
    } else if (list.length) {
      videoList.querySelector(".empty-note")?.remove();
    }
  }

  async function refresh() {
    paintRange();
    const all = await get(`/api/v1/jobs?camera=${enc(id)}`);
    for (const j of all) {
      if (j.state === "queued" || j.state === "running" || jobs.has(j.id)) paintJob(j);
    }
    await loadVideos();
  }

  function onEvent(name, data) {
    if (name === "job.progress") {
      const row = jobs.get(data.job_id);
      if (!row) return refresh();
      row.li.dataset.events = String(Number(row.li.dataset.events) + 1);
      paintJob({
        id: data.job_id, state: "running", frames_done: data.frames_done,
        frames_total: data.frames_total, eta_seconds: data.eta_seconds,
      });
    } else if (name === "job.finished") {
      const row = jobs.get(data.job_id);
      if (row) {
        paintJob({
          id: data.job_id, state: data.state, frames_done: Number(row.bar.value),
          frames_total: Number(row.bar.max), code: data.code, error: data.error,
        });
      }
      if (data.state === "done") loadVideos().catch((e) => console.warn("timelapses", e));
    } else if (name === "timelapse.done") {
      loadVideos().catch((e) => console.warn("timelapses", e));
    }
  }

  // The timeline's range changes under its own controls: repaint the note after any change.
  const repaint = () => setTimeout(paintRange, 0);
  const rangeTimer = setInterval(paintRange, 30000);
  document.addEventListener("change", repaint, true);
  document.addEventListener("submit", repaint, true);
  refresh().catch((e) => console.warn("timelapses", e));
  return {
    refresh,
    onEvent,
    stop() {
      clearInterval(rangeTimer);
      document.removeEventListener("change", repaint, true);
      document.removeEventListener("submit", repaint, true);
    },
  };
}
