// The schedule form of the camera page, for adding a schedule and for changing one, and the
// words a schedule is listed with ("every 5 min, aligned, Europe/Berlin").
//
// The form edits everything docs/schedules.md describes: every N seconds/minutes/hours (with
// "align to the clock") or fixed times of day, the time zone (the browser's own by default,
// any IANA name from a searchable list), weekdays, and a daily window: all day, between two
// times (crossing midnight allowed), or sunrise to sunset at a place. While the operator edits,
// it shows the next five slots in the schedule's zone, asked of the server with the unsaved
// body (POST …/snapshot-schedules/preview), so what it shows is what the server will do — DST
// days included. The server checks every field: its 422 sentence is shown under the field it
// names, both while previewing and on saving. The form checks nothing itself beyond reading
// numbers, so the browser and the API never disagree about what is valid.
//
// Below the calendar, the schedule's frame rules (docs/schedules.md "Which frames are kept",
// "Which stream", "How long frames are kept"): skip dark frames (with their threshold), skip
// unchanged frames, the stream, and the schedule's own retention. Empty boxes mean the default
// (sent as null on an edit, so an edit can go back to it).

import { request, enc } from "./api.js";
import { h, clear, message } from "./util.js";

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_LABEL = { mon: "Mon", tue: "Tue", wed: "Wed", thu: "Thu", fri: "Fri", sat: "Sat", sun: "Sun" };
const UNITS = [["s", 1, "seconds"], ["min", 60, "minutes"], ["h", 3600, "hours"]];
const PREVIEW_N = 5;

const STREAMS = [["", "the camera's own choice"], ["main", "main stream"], ["sub", "sub stream"], ["snapshot", "snapshot URL"]];

/** The browser's IANA zone, or UTC when it does not say. */
export function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch (_) {
    return "UTC";
  }
}

/** "30 s", "5 min", "1 h 30 min", "1 day". */
export function spanWords(secs) {
  if (secs === 60) return "minute";
  if (secs === 3600) return "hour";
  if (secs === 86400) return "day";
  const parts = [];
  const hh = Math.floor(secs / 3600);
  const mm = Math.floor((secs % 3600) / 60);
  const ss = secs % 60;
  if (hh) parts.push(`${hh} h`);
  if (mm) parts.push(`${mm} min`);
  if (ss) parts.push(`${ss} s`);
  return parts.join(" ") || "0 s";
}

/** Weekday names in week order as "Mon–Fri", "Mon, Wed, Sat", "Sat–Sun"; runs of three or more as ranges. */
export function daysWords(days) {
  const on = DAYS.map((d) => days.includes(d));
  const out = [];
  for (let i = 0; i < 7;) {
    if (!on[i]) { i++; continue; }
    let j = i;
    while (j + 1 < 7 && on[j + 1]) j++;
    if (j - i >= 2) out.push(`${DAY_LABEL[DAYS[i]]}–${DAY_LABEL[DAYS[j]]}`);
    else for (let k = i; k <= j; k++) out.push(DAY_LABEL[DAYS[k]]);
    i = j + 1;
  }
  return out.join(", ");
}

/**
 * A schedule in words: "every 5 min, aligned, Europe/Berlin", "at 06:00, 12:00 on Mon–Fri",
 * "every 10 min, sunrise to sunset +30 min". The zone is named unless it is UTC. The same rule
 * as the CLI's (src/cli/schedule.rs `words`).
 */
export function scheduleWords(s) {
  let out = s.at && s.at.length ? `at ${s.at.join(", ")}` : `every ${spanWords(s.interval_seconds)}`;
  if (s.weekdays && s.weekdays.length && s.weekdays.length < 7) out += ` on ${daysWords(s.weekdays)}`;
  if (s.active_from && s.active_to) out += `, ${s.active_from}–${s.active_to}`;
  if (s.daylight) {
    const o = s.daylight.offset_minutes || 0;
    out += ", sunrise to sunset" + (o ? ` ${o > 0 ? "+" : "−"}${Math.abs(o)} min` : "");
  }
  if (s.align && !(s.at && s.at.length)) out += ", aligned";
  if (s.timezone && s.timezone !== "UTC") out += `, ${s.timezone}`;
  return out;
}

/** A schedule's frame rules in words, "" when it has none: "skips dark (< 16) and unchanged
 * frames, from the main stream, kept 48 h" (the CLI's `schedule` lines say the same). */
export function frameRulesWords(s) {
  const out = [];
  const skips = [];
  if (s.skip_dark) skips.push(`dark (< ${s.dark_threshold ?? 16})`);
  if (s.skip_unchanged) skips.push("unchanged");
  if (skips.length) out.push(`skips ${skips.join(" and ")} frames`);
  if (s.stream) out.push(`from the ${s.stream} stream`);
  if (s.retention_hours) out.push(`kept ${s.retention_hours} h`);
  return out.join(", ");
}

/** A slot for people, in `zone`: "Mon 30 Nov, 08:00 CET" (seconds when it has them). */
export function slotWords(iso, zone) {
  const d = new Date(iso);
  const opts = { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short" };
  if (d.getUTCSeconds()) opts.second = "2-digit";
  try {
    return d.toLocaleString(undefined, { ...opts, timeZone: zone || "UTC" });
  } catch (_) {
    return d.toLocaleString(undefined, opts);
  }
}

let zoneList = null;
/** The zones to offer (Intl.supportedValuesOf where the browser has it), once per page. */
function zones() {
  if (zoneList) return zoneList;
  zoneList = h("datalist", { id: "schedule-zones" });
  let names = [];
  try {
    names = Intl.supportedValuesOf("timeZone");
  } catch (_) {
    names = [];
  }
  if (!names.includes("UTC")) names = ["UTC", ...names];
  for (const n of names) zoneList.append(h("option", { value: n }));
  document.body.append(zoneList);
  return zoneList;
}

/**
 * A schedule form. `p` prefixes every id (`new` for the add form, so its interval is
 * `#new-interval`); `schedule` is the one being changed (absent: a new one). `save(body)`
 * stores the body (POST or PATCH) and throws the API's error; `cancel` (edit only) closes it.
 * Returns the form element, with `focus()` on it.
 */
export function scheduleForm({ p, cameraId, schedule = null, save, cancel = null, submitLabel = "Add schedule" }) {
  const s = schedule || {};
  const id = (name) => `${p}-${name}`;
  const errs = {};
  const errEl = (field) => (errs[field] = h("p", { class: "field-error", id: id(`err-${field}`), hidden: true }));

  // Mode: every … or at fixed times.
  const fixed = !!(s.at && s.at.length);
  const modeEvery = h("input", { type: "radio", name: id("mode"), id: id("mode-every"), value: "every", checked: !fixed });
  const modeAt = h("input", { type: "radio", name: id("mode"), id: id("mode-at"), value: "at", checked: fixed });

  const secs = s.interval_seconds || 300;
  const unit = !schedule ? UNITS[0] : [...UNITS].reverse().find(([, f]) => secs % f === 0);
  const interval = h("input", {
    type: "number", id: p === "new" ? "new-interval" : id("interval"), min: 1, step: 1, value: schedule ? secs / unit[1] : secs,
    inputmode: "numeric", required: true, "aria-label": "Interval",
  });
  const unitSel = h("select", { id: id("unit"), "aria-label": "Unit" },
    UNITS.map(([u, , label]) => h("option", { value: u, selected: u === unit[0] }, label)));
  const align = h("input", { type: "checkbox", id: id("align"), checked: !!s.align });
  const at = h("input", {
    type: "text", id: id("at"), value: fixed ? s.at.join(", ") : "06:00, 12:00, 18:00", placeholder: "06:00, 12:00",
    autocomplete: "off", spellcheck: "false", "aria-label": "Times of day",
  });
  const everyBox = h("div", { class: "sched-row", id: id("every-box") },
    h("label", { for: interval.id }, "Every"), interval, unitSel,
    h("span", { class: "check" }, align, h("label", { for: align.id }, "Align to the clock (:00, :05, …)")),
    h("p", { class: "hint" }, "From 5 seconds to one day; Heldar keeps an interval outside that at the nearer bound."),
    errEl("interval_seconds"), errEl("align"));
  const atBox = h("div", { class: "sched-row", id: id("at-box") },
    h("label", { for: at.id }, "At"), at,
    h("p", { class: "hint" }, "Local times of day, HH:MM, separated by commas."), errEl("at"));

  // Time zone: the browser's unless the schedule has one; any IANA name, searchable.
  const tz = h("input", {
    type: "text", id: id("tz"), list: zones().id, value: schedule ? s.timezone || "UTC" : browserZone(),
    autocomplete: "off", spellcheck: "false", "aria-label": "Time zone",
  });
  const tzBox = h("div", { class: "sched-row" }, h("label", { for: tz.id }, "Time zone"), tz, errEl("timezone"));

  // Weekdays: all ticked means every day (sent as no weekdays).
  const dayBoxes = DAYS.map((d) => h("input", {
    type: "checkbox", id: id(`wd-${d}`), value: d, checked: !s.weekdays || s.weekdays.includes(d),
  }));
  const daysBox = h("div", { class: "sched-row sched-days", id: id("weekdays") },
    h("span", { class: "label" }, "On"),
    DAYS.map((d, i) => h("span", { class: "check" }, dayBoxes[i], h("label", { for: dayBoxes[i].id }, DAY_LABEL[d]))),
    errEl("weekdays"));

  // Window: all day, between two times, or sunrise to sunset.
  const winKind = s.daylight ? "daylight" : s.active_from ? "hours" : "all";
  const win = h("select", { id: id("window"), "aria-label": "Active" },
    h("option", { value: "all", selected: winKind === "all" }, "all day"),
    h("option", { value: "hours", selected: winKind === "hours" }, "between two times"),
    h("option", { value: "daylight", selected: winKind === "daylight" }, "sunrise to sunset"));
  const from = h("input", { type: "text", id: id("from"), value: s.active_from || "07:00", placeholder: "HH:MM", "aria-label": "From", autocomplete: "off" });
  const to = h("input", { type: "text", id: id("to"), value: s.active_to || "19:00", placeholder: "HH:MM", "aria-label": "To", autocomplete: "off" });
  const dl = s.daylight || {};
  const num = (name, label, v, attrs) => h("input", { type: "number", id: id(name), value: v ?? "", "aria-label": label, step: "any", ...attrs });
  const lat = num("lat", "Latitude", dl.lat, { min: -90, max: 90 });
  const lon = num("lon", "Longitude", dl.lon, { min: -180, max: 180 });
  const offset = num("offset", "Minutes before sunrise and after sunset", dl.offset_minutes ?? 0, { min: -240, max: 240, step: 1 });
  const hoursBox = h("div", { class: "sched-row", id: id("hours-box") },
    h("label", { for: from.id }, "From"), from, h("label", { for: to.id }, "to"), to,
    h("p", { class: "hint" }, "Local HH:MM; a window may cross midnight (22:00 to 06:00)."),
    errEl("active_from"), errEl("active_to"));
  const dayBox = h("div", { class: "sched-row", id: id("daylight-box") },
    h("label", { for: lat.id }, "Latitude"), lat, h("label", { for: lon.id }, "Longitude"), lon,
    h("label", { for: offset.id }, "± minutes"), offset,
    h("p", { class: "hint" }, "Opens that many minutes before sunrise and closes as many after sunset."),
    errEl("daylight"));
  const winBox = h("div", { class: "sched-row" }, h("label", { for: win.id }, "Active"), win);

  // Which frames are kept, from where, for how long.
  const skipDark = h("input", { type: "checkbox", id: id("skip-dark"), checked: !!s.skip_dark });
  const darkThreshold = h("input", {
    type: "number", id: id("dark-threshold"), min: 0, max: 255, step: 1, value: s.dark_threshold ?? "",
    placeholder: "16", inputmode: "numeric", "aria-label": "Dark below mean luma (0 to 255)",
  });
  const skipUnchanged = h("input", { type: "checkbox", id: id("skip-unchanged"), checked: !!s.skip_unchanged });
  const stream = h("select", { id: id("stream"), "aria-label": "Stream" },
    STREAMS.map(([v, label]) => h("option", { value: v, selected: (s.stream || "") === v }, label)));
  const keepHours = h("input", {
    type: "number", id: id("retention-hours"), min: 1, step: 1, value: s.retention_hours ?? "",
    placeholder: "global", inputmode: "numeric", "aria-label": "Keep this schedule's frames for hours",
  });
  const extra = h("div", { class: "sched-extra", id: id("extra") },
    h("div", { class: "sched-row" },
      h("span", { class: "check" }, skipDark, h("label", { for: skipDark.id }, "Skip dark frames")),
      h("label", { for: darkThreshold.id }, "darker than mean luma"), darkThreshold,
      h("p", { class: "hint" }, "0 (black) to 255 (white); empty means 16, an unlit night scene."),
      errEl("skip_dark"), errEl("dark_threshold")),
    h("div", { class: "sched-row" },
      h("span", { class: "check" }, skipUnchanged,
        h("label", { for: skipUnchanged.id }, "Skip frames that look like the last one kept")),
      errEl("skip_unchanged")),
    h("div", { class: "sched-row" }, h("label", { for: stream.id }, "Frames from"), stream, errEl("stream")),
    h("div", { class: "sched-row" }, h("label", { for: keepHours.id }, "Keep frames for"), keepHours, h("span", {}, "hours"),
      h("p", { class: "hint" }, "Empty: the server's retention for all frames."),
      errEl("retention_hours")));

  const preview = h("ol", { class: "sched-preview", id: id("preview"), "aria-live": "polite" });
  const previewNote = h("p", { class: "hint", id: id("preview-note") });
  const formError = h("p", { class: "alert", role: "alert", id: id("form-error"), hidden: true });
  const submit = h("button", { type: "submit", class: "primary" }, submitLabel);
  const form = h("form", { class: "schedule-edit", id: p === "new" ? "schedule-form" : id("form"), novalidate: true },
    h("fieldset", {},
      h("legend", {}, schedule ? "Change schedule" : "New schedule"),
      h("div", { class: "sched-row" },
        h("span", { class: "check" }, modeEvery, h("label", { for: modeEvery.id }, "Every …")),
        h("span", { class: "check" }, modeAt, h("label", { for: modeAt.id }, "At fixed times"))),
      everyBox, atBox, tzBox, daysBox, winBox, hoursBox, dayBox, extra,
      h("div", { class: "sched-next" }, h("h3", {}, "Next slots"), previewNote, preview),
      formError,
      h("div", { class: "actions" }, submit,
        cancel ? h("button", { type: "button", id: id("cancel"), onclick: cancel }, "Cancel") : null)));

  function show() {
    const at_ = modeAt.checked;
    everyBox.hidden = at_;
    atBox.hidden = !at_;
    hoursBox.hidden = win.value !== "hours";
    dayBox.hidden = win.value !== "daylight";
  }

  /** The create body the inputs describe. With `nulls`, cleared calendar fields are null (for a PATCH). */
  function body(nulls = false) {
    const b = {};
    const none = (k) => { if (nulls) b[k] = null; };
    if (modeAt.checked) {
      b.at = at.value.split(/[\s,;]+/).filter(Boolean);
      none("align");
    } else {
      const u = UNITS.find(([name]) => name === unitSel.value) || UNITS[0];
      b.interval_seconds = Math.round(Number(interval.value) * u[1]);
      b.align = align.checked;
      none("at");
    }
    const days = dayBoxes.filter((d) => d.checked).map((d) => d.value);
    if (days.length < 7) b.weekdays = days;
    else none("weekdays");
    if (win.value === "hours") {
      b.active_from = from.value.trim();
      b.active_to = to.value.trim();
    } else {
      none("active_from");
      none("active_to");
    }
    if (win.value === "daylight") {
      // An empty box is sent as null (the server says what is missing), never as 0°.
      const coord = (el) => (el.value.trim() === "" ? null : Number(el.value));
      b.daylight = { lat: coord(lat), lon: coord(lon), offset_minutes: Math.round(Number(offset.value) || 0) };
    } else none("daylight");
    // The zone matters only to local times: a plain interval, every day, all day, stays a plain
    // schedule (listed without a zone) whatever zone the browser is in.
    const local = b.at || b.align || b.weekdays || b.active_from || b.daylight;
    if (local) b.timezone = tz.value.trim() || "UTC";
    else none("timezone");
    b.skip_dark = skipDark.checked;
    b.skip_unchanged = skipUnchanged.checked;
    const number = (el, k) => {
      const v = el.value.trim();
      if (v !== "") b[k] = Number(v);
      else none(k);
    };
    number(darkThreshold, "dark_threshold");
    number(keepHours, "retention_hours");
    if (stream.value) b.stream = stream.value;
    else none("stream");
    return b;
  }

  function clearErrors() {
    for (const e of Object.values(errs)) {
      e.textContent = "";
      e.hidden = true;
    }
    formError.hidden = true;
  }

  /** Put the API's sentence under the field it names (or above the buttons). */
  function showError(e) {
    // Under its field when that field is on show (the error element itself is hidden until now).
    const el = e && e.field && errs[e.field];
    const target = el && !el.parentElement.closest("[hidden]") ? el : formError;
    target.textContent = message(e);
    target.hidden = false;
    return target;
  }

  // The preview: the newest answer wins; an older one arriving late is dropped.
  let seq = 0;
  let timer = null;
  async function refresh() {
    const mine = ++seq;
    try {
      const v = await request("POST", `/api/v1/cameras/${enc(cameraId)}/snapshot-schedules/preview?n=${PREVIEW_N}`, body());
      if (mine !== seq) return;
      clearErrors();
      clear(preview);
      previewNote.textContent = v.slots.length ? `In ${v.timezone}:` : "No slot within the next 400 days: the window never opens.";
      v.slots.forEach((slot, i) => preview.append(h("li", { dataset: { slot, local: v.local[i] } },
        h("time", { datetime: v.local[i] }, slotWords(slot, v.timezone)))));
      form.dataset.preview = "ok";
    } catch (e) {
      if (mine !== seq) return;
      clearErrors();
      clear(preview);
      previewNote.textContent = "No preview until the schedule is valid.";
      showError(e);
      form.dataset.preview = "error";
    }
  }
  const soon = () => {
    show();
    delete form.dataset.preview;
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  };
  form.addEventListener("input", soon);
  form.addEventListener("change", soon);

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors();
    submit.disabled = true;
    try {
      await save(body(!!schedule));
    } catch (e) {
      showError(e);
    } finally {
      submit.disabled = false;
    }
  });

  show();
  refresh();
  form.focusFirst = () => (modeAt.checked ? at : interval).focus();
  form.stop = () => {
    seq++;
    clearTimeout(timer);
  };
  return form;
}
