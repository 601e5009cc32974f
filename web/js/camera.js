// #/cameras/{id} — one camera: state, live snapshot on demand, schedules, outages, stored frames.
//
// A live snapshot of a camera that does not answer takes up to the server's capture deadline
// (HELDAR_CAPTURE_TIMEOUT_S, read from GET /api/v1/system when first needed). Meanwhile the page
// stays usable: the wait shows as a progress bar with the seconds elapsed "of" the deadline and a
// Cancel button (an AbortController), and whatever ends it — a frame, a failure, a cancel — says
// how long it took.

import { get, request, getImage, postImage, can, enc } from "./api.js";
import { h, clear, healthBadge, ago, fmtTime, live as liveUpdates, debounce, message, toast, backoffLine, backoffWhy } from "./util.js";
import { mountTimeline } from "./timeline.js";
import { mountTimelapses, EVENTS as TIMELAPSE_EVENTS } from "./timelapse.js";
import { scheduleForm, scheduleWords, frameRulesWords, slotWords } from "./schedule_form.js";

export const NAME = "camera";

export async function render(main, route) {
  const id = route.id;
  const path = `/api/v1/cameras/${enc(id)}`;
  let cam = await get(path);
  document.title = `${cam.name} · Heldar`;

  const badge = h("span", { class: "badge", id: "camera-state" });
  const stateLine = h("p", { class: "state-line", id: "state-line" });
  const head = h("div", { class: "page-head" },
    h("h1", {}, cam.name, " ", badge),
    h("div", { class: "head-actions" },
      can("admin") ? h("a", { class: "button", href: `#/cameras/${enc(id)}/edit` }, "Edit") : null,
      can("admin") ? h("button", { type: "button", class: "danger", onclick: remove }, "Delete") : null));

  const liveOut = h("div", { class: "live-out", id: "live-out", "aria-live": "polite" });
  const keep = h("input", { type: "checkbox", id: "live-keep" });
  const liveBtn = h("button", { type: "button", class: "primary", id: "live-btn", onclick: live }, "Take live snapshot");
  const live_ = h("section", { class: "card", "aria-labelledby": "live-h" },
    h("h2", { id: "live-h" }, "Live snapshot"),
    can("operate")
      ? h("div", { class: "actions" }, liveBtn,
        h("span", { class: "check" }, keep, h("label", { for: "live-keep" }, "Keep it with the stored frames")))
      : h("p", { class: "muted" }, "Taking live snapshots needs the operator role."),
    liveOut);

  const schedList = h("ul", { class: "schedules", id: "schedules" });
  const schedError = h("p", { class: "alert", role: "alert", hidden: true, id: "schedule-error" });
  // The add form (schedule_form.js); the list's Edit opens the same form on that schedule.
  const schedForm = can("operate")
    ? scheduleForm({
      p: "new",
      cameraId: id,
      save: async (body) => {
        await request("POST", `${path}/snapshot-schedules`, body);
        toast("Schedule added.");
        await loadSchedules();
      },
    })
    : null;
  const sched = h("section", { class: "card", "aria-labelledby": "sched-h" },
    h("h2", { id: "sched-h" }, "Schedules"), schedError, schedList, schedForm);

  // The camera's newest outages (offline periods), refreshed by camera.offline/recovered.
  const outageList = h("ul", { class: "outages", id: "outages" });
  const outagesEl = h("section", { class: "card", "aria-labelledby": "outages-h" },
    h("h2", { id: "outages-h" }, "Outages"), outageList);

  const timelineEl = h("section", { class: "card timeline", id: "timeline", "aria-labelledby": "timeline-h" });
  const timelapseEl = h("section", { class: "card", id: "timelapse", "aria-labelledby": "tl-h" });

  main.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/" }, "Cameras"), " / ", cam.id),
    head, stateLine,
    h("div", { class: "camera-layout" }, h("div", { class: "side" }, live_, sched, timelapseEl, outagesEl), timelineEl),
  );

  function paintCamera() {
    const st = cam.status.state;
    const { cls, label } = healthBadge(cam);
    badge.className = `badge ${cls}`;
    badge.textContent = label;
    clear(stateLine);
    const s = cam.status;
    stateLine.append(...[
      h("span", {}, `Last good capture ${ago(s.last_success_at)}`),
      s.last_error && st !== "online"
        ? h("span", { class: "err-text" }, ` · Last error ${ago(s.last_error_at)}: ${s.last_error}`)
        : null,
      backoffLine(s) ? h("span", { class: "retry-text", title: backoffWhy(s) }, ` · Scheduled captures ${backoffLine(s)}`) : null,
      h("span", { class: "muted" }, ` · ${cam.vendor}, ${cam.snapshot_source} source`),
    ].filter(Boolean));
  }
  paintCamera();

  // The server's settings (capture deadline, scheduler on/off), asked for once, when needed.
  let systemP = null;
  const system = () => {
    systemP = systemP || get("/api/v1/system").catch((e) => {
      systemP = null;
      throw e;
    });
    return systemP;
  };

  let liveUrl = null;
  let liveAbort = null;
  const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;
  async function live() {
    if (liveAbort) return;
    const ctl = new AbortController();
    liveAbort = ctl;
    liveBtn.disabled = true;
    const kept = keep.checked;
    const started = performance.now();
    let deadline = null;
    const bar = h("progress", { id: "live-progress", "aria-label": "Waiting for the camera" });
    const elapsed = h("span", { id: "live-elapsed" }, "0.0 s");
    const of = h("span", { id: "live-deadline" });
    const cancel = h("button", { type: "button", id: "live-cancel", onclick: () => ctl.abort() }, "Cancel");
    // The ticking seconds are not announced (aria-live off); the outcome is.
    clear(liveOut).append(h("div", { class: "live-wait", id: "live-wait" },
      bar,
      h("p", { "aria-live": "off" }, "Waiting for the camera… ", elapsed, of),
      cancel));
    const tickTimer = setInterval(() => {
      const ms = performance.now() - started;
      elapsed.textContent = secs(ms);
      if (deadline) bar.value = Math.min(ms / 1000, deadline);
    }, 100);
    system().then((s) => {
      if (!s.capture || liveAbort !== ctl) return;
      deadline = s.capture.timeout_seconds;
      of.textContent = ` of ${deadline} s`;
      bar.max = deadline;
      bar.value = Math.min((performance.now() - started) / 1000, deadline);
    }).catch(() => {}); // without it the bar just stays indeterminate
    try {
      // Keeping a frame changes state, so it is a POST (with the session's CSRF token).
      const { blob, width, height } = kept
        ? await postImage(`${path}/snapshot?store=true`, { signal: ctl.signal })
        : await getImage(`${path}/snapshot`, { signal: ctl.signal });
      const took = performance.now() - started;
      if (liveUrl) URL.revokeObjectURL(liveUrl);
      liveUrl = URL.createObjectURL(blob);
      clear(liveOut).append(
        h("img", { class: "live", id: "live-frame", src: liveUrl, alt: `Live frame from ${cam.name}` }),
        h("p", { class: "muted", id: "live-info" },
          `${width || "?"}×${height || "?"}, taken ${fmtTime(new Date().toISOString())} in ${secs(took)}${kept ? ", kept" : ""}.`));
    } catch (e) {
      const took = secs(performance.now() - started);
      if (e && e.name === "AbortError") {
        clear(liveOut).append(h("p", { class: "notice", id: "live-cancelled" },
          h("strong", {}, `Cancelled after ${took}.`),
          deadline
            ? ` The server may go on waiting for the camera up to its ${deadline} s deadline; the camera's state above shows the outcome.`
            : " The server may go on waiting for the camera up to its capture deadline; the camera's state above shows the outcome."));
      } else if (e && e.code === "timeout") {
        clear(liveOut).append(h("p", { class: "alert", id: "live-error" },
          h("strong", {}, `No answer after ${took}`), `: ${message(e)}`));
      } else {
        clear(liveOut).append(h("p", { class: "alert", id: "live-error" },
          h("strong", {}, `Capture failed after ${took}`), ` (${e.code || "error"}): ${message(e)}`));
      }
    } finally {
      clearInterval(tickTimer);
      liveAbort = null;
      liveBtn.disabled = false;
    }
  }

  async function remove() {
    if (!confirm(`Delete camera ${cam.name}? Its schedules and every stored frame are deleted too.`)) return;
    try {
      await request("DELETE", path);
      toast(`Camera ${cam.id} deleted.`);
      location.hash = "#/";
    } catch (e) {
      toast(message(e));
    }
  }

  // --- schedules ----------------------------------------------------------------------------
  function schedError_(e) {
    schedError.textContent = e ? message(e) : "";
    schedError.hidden = !e;
  }

  // The schedule being changed in the list, if any: the list is not repainted under it.
  let editing = null;

  function scheduleItem(s) {
    const enabled = h("input", { type: "checkbox", id: `en-${s.id}`, checked: s.enabled, disabled: !can("operate") });
    enabled.addEventListener("change", async () => {
      try {
        schedError_(null);
        await request("PATCH", `/api/v1/snapshot-schedules/${enc(s.id)}`, { enabled: enabled.checked });
        await loadSchedules();
      } catch (e) {
        schedError_(e);
      }
    });
    const words = scheduleWords(s);
    const rules = frameRulesWords(s);
    const skipped = s.last_skipped_at ? ` · last skipped ${ago(s.last_skipped_at)} (${s.last_skip_reason})` : "";
    const li = h("li", { class: s.enabled ? "" : "disabled", dataset: { schedule: s.id } },
      h("span", { class: "sched-words" }, words),
      rules ? h("span", { class: "muted small sched-rules" }, rules) : null,
      h("span", { class: "check" }, enabled, h("label", { for: `en-${s.id}` }, "Enabled")),
      h("span", { class: "muted small sched-next-slot" },
        s.enabled ? `next ${s.next_due_at ? slotWords(s.next_due_at, s.timezone) : "— (no window ahead)"}` : "paused",
        s.last_fired_at ? ` · last ${ago(s.last_fired_at)}` : "", skipped),
      can("operate")
        ? h("button", { type: "button", class: "small sched-edit", "aria-label": `Change the schedule ${words}`, onclick: () => edit(s, li) }, "Edit")
        : null,
      can("operate")
        ? h("button", {
          type: "button", class: "danger small", "aria-label": `Delete the schedule ${words}`,
          onclick: async () => {
            try {
              schedError_(null);
              await request("DELETE", `/api/v1/snapshot-schedules/${enc(s.id)}`);
              await loadSchedules();
            } catch (e) {
              schedError_(e);
            }
          },
        }, "Delete")
        : null);
    return li;
  }

  function edit(s, li) {
    if (editing) editing.stop();
    const close = async () => {
      if (editing) editing.stop();
      editing = null;
      await loadSchedules();
    };
    editing = scheduleForm({
      p: "edit",
      cameraId: id,
      schedule: s,
      submitLabel: "Save",
      cancel: () => close().catch((e) => schedError_(e)),
      save: async (body) => {
        await request("PATCH", `/api/v1/snapshot-schedules/${enc(s.id)}`, body);
        toast("Schedule changed.");
        await close();
      },
    });
    li.classList.add("editing");
    li.append(editing);
    editing.focusFirst();
  }

  async function loadSchedules() {
    const list = await get(`${path}/snapshot-schedules`);
    timeline.setContext({ schedules: list });
    // Do not repaint under a user who is changing a schedule.
    if (editing) return;
    clear(schedList);
    if (!list.length) schedList.append(h("li", { class: "muted" }, "No schedules: frames are only taken on demand."));
    for (const s of list) schedList.append(scheduleItem(s));
  }

  // --- outages ------------------------------------------------------------------------------
  const OUTAGES_SHOWN = 10;
  const lasted = (secs) => {
    const s = Math.max(0, Math.round(secs));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  };
  function outageItem(o) {
    const open = !o.ended_at;
    return h("li", { class: open ? "open" : "", dataset: { outage: o.id } },
      open
        ? h("strong", { class: "err-text" }, `Offline since ${fmtTime(o.started_at)}`)
        : h("span", {}, `${fmtTime(o.started_at)} – ${fmtTime(o.ended_at)}`, h("span", { class: "muted" }, ` (${lasted(o.duration_s)})`)),
      h("span", { class: "muted small" }, ` · ${o.failures} failed ${o.failures === 1 ? "capture" : "captures"}`),
      o.first_error ? h("div", { class: "small err-text", title: o.last_error || o.first_error }, o.first_error) : null);
  }
  async function loadOutages() {
    const list = await get(`${path}/outages?limit=${OUTAGES_SHOWN}`);
    clear(outageList);
    if (!list.length) outageList.append(h("li", { class: "muted" }, "No outages recorded."));
    for (const o of list) outageList.append(outageItem(o));
  }

  const timeline = mountTimeline(timelineEl, cam, { system });
  const stopTimeline = timeline.stop;
  const timelapses = mountTimelapses(timelapseEl, cam, timeline);
  // This camera's events keep the page current; a re-read runs as a safety net (util.live).
  const reload = async () => {
    cam = await get(path);
    paintCamera();
    timeline.setContext({ camera: cam });
    await loadSchedules();
    await loadOutages();
  };
  const soon = debounce(300, () => reload().catch((e) => console.warn("refresh failed", e)));
  const stop = liveUpdates({
    query: `?camera=${enc(id)}`,
    names: ["frame.stored", "camera.state_changed", "camera.backoff", "camera.changed", "schedule.changed", "camera.offline", "camera.recovered", ...TIMELAPSE_EVENTS],
    refresh: async () => {
      await reload();
      await timeline.newer();
      await timelapses.refresh();
    },
    onEvent(name, data) {
      if (TIMELAPSE_EVENTS.includes(name)) timelapses.onEvent(name, data);
      else if (name === "frame.stored") {
        timeline.newer().catch((e) => console.warn("timeline", e));
        // The first frame changes the camera's health (waiting → ok).
        if (cam.health === "waiting") soon();
      } else soon();
    },
  });
  // From the grid's "Add a schedule" link: straight to the interval.
  if (route.params.get("schedule") === "new" && schedForm) {
    schedForm.scrollIntoView({ block: "center" });
    schedForm.focusFirst();
  }
  return () => {
    stop();
    stopTimeline();
    schedForm?.stop();
    if (editing) editing.stop();
    if (liveAbort) liveAbort.abort();
    timelapses.stop();
    if (liveUrl) URL.revokeObjectURL(liveUrl);
  };
}
