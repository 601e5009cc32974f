// #/cameras/new and #/cameras/{id}/edit — add or change a camera.
//
// The API checks every field; a 422 names the `field`, and its sentence is shown under that
// input. The password is write-only: the form never shows it, an empty box keeps the stored
// one. The form follows the maker: a maker with URL templates asks for address and ports (its
// URLs can be overridden under "Advanced"); ONVIF and generic cameras ask for their URLs instead
// and hide address and ports, which do nothing for them.
//
// Adding a camera also gives it a schedule ("Take a frame every 60 s", on by default), so a new
// camera starts keeping frames at once. "Save and test capture" saves, then takes a frame with
// the saved settings and KEEPS it (POST …/snapshot?store=true), so the camera's first stored
// frame is the test frame and the grid shows it at once; beside the form it shows the picture or
// the camera's precise failure. When the failure is a `tls` refusal of a certificate (a camera's
// self-signed one), its SHA-256 fingerprint is shown with a "Trust this certificate" button that
// pins it (tls_verify "pinned") once the operator confirms.

import { get, request, postImage, can, enc, ApiError } from "./api.js";
import { h, clear, message, toast } from "./util.js";
import { panel as onvifPanel } from "./onvif.js";

export const NAME = "form";

// What each maker's preset means (the server builds the URLs; see DESIGN.md §6).
export const VENDORS = {
  hikvision: { label: "Hikvision", http: 80, rtsp: 554, snapshot: "/ISAPI/Streaming/channels/101/picture", stream: "/Streaming/Channels/101" },
  dahua: { label: "Dahua", http: 80, rtsp: 554, snapshot: "/cgi-bin/snapshot.cgi", stream: "/cam/realmonitor?channel=1&subtype=0" },
  amcrest: { label: "Amcrest", http: 80, rtsp: 554, snapshot: "/cgi-bin/snapshot.cgi", stream: "/cam/realmonitor?channel=1&subtype=0" },
  reolink: { label: "Reolink", http: 80, rtsp: 554, snapshot: "/cgi-bin/api.cgi?cmd=Snap&channel=0", stream: "/h264Preview_01_main" },
  axis: { label: "Axis", http: 80, rtsp: 554, snapshot: "/axis-cgi/jpg/image.cgi", stream: "/axis-media/media.amp" },
  onvif: { label: "ONVIF (enter URLs)", http: 80, rtsp: 554, snapshot: null, stream: null },
  generic: { label: "Other / generic (enter URLs)", http: 80, rtsp: 554, snapshot: null, stream: null },
};

const TEXT_FIELDS = ["id", "name", "address", "username", "snapshot_url", "main_stream_url", "sub_stream_url", "tls_fingerprint"];
const PORT_FIELDS = ["http_port", "rtsp_port"];
/** The fields a maker's URL template is built from: shown only for makers that have one. */
const TEMPLATE_FIELDS = ["address", ...PORT_FIELDS];
/** The new camera's schedule: the default interval, and the API's bounds. */
export const DEFAULT_INTERVAL = 60;
const MIN_INTERVAL = 5;
const MAX_INTERVAL = 86400;

/** Whether the maker has URL templates (else the camera is reached by its explicit URLs). */
export const hasTemplate = (vendor) => !!(VENDORS[vendor] && VENDORS[vendor].snapshot);

// The outcome of the add page's test capture, handed to the edit page it opens (same document),
// so the edit page shows that frame instead of taking another.
let pendingTest = null;

function field(name, label, input, hint) {
  input.id = "f-" + name;
  input.name = name;
  const err = h("p", { class: "field-error", id: "err-" + name, hidden: true });
  const hintEl = hint ? h("p", { class: "hint", id: "hint-" + name }, hint) : null;
  input.setAttribute("aria-describedby", ["err-" + name, hint ? "hint-" + name : null].filter(Boolean).join(" "));
  return h("div", { class: "field", dataset: { field: name } }, h("label", { for: input.id }, label), input, hintEl, err);
}

export async function render(main, route) {
  const editing = !!route.id;
  document.title = (editing ? "Edit camera" : "Add camera") + " · Heldar";
  let cam = null;
  if (editing) {
    cam = await get(`/api/v1/cameras/${enc(route.id)}`);
  }
  if (!can("admin")) {
    main.append(h("h1", {}, editing ? "Edit camera" : "Add camera"),
      h("p", { class: "alert" }, "Only an administrator can add or change cameras."));
    return;
  }

  const inputs = {};
  const text = (name, attrs = {}) => (inputs[name] = h("input", { type: "text", autocomplete: "off", spellcheck: "false", ...attrs }));
  const vendor = (inputs.vendor = h("select", {},
    Object.entries(VENDORS).map(([v, p]) => h("option", { value: v }, p.label))));
  const source = (inputs.snapshot_source = h("select", {},
    h("option", { value: "auto" }, "Automatic (HTTP snapshot if known, else the RTSP stream)"),
    h("option", { value: "http" }, "HTTP snapshot URL"),
    h("option", { value: "native" }, "RTSP stream, read in process (ffmpeg only for what it cannot decode)"),
    h("option", { value: "rtsp" }, "RTSP stream through ffmpeg (needs ffmpeg)")));
  const password = (inputs.password = h("input", { type: "password", autocomplete: "new-password" }));
  const clearPw = h("input", { type: "checkbox", id: "f-clear-password" });
  const presetNote = h("p", { class: "hint", id: "preset-note", "aria-live": "polite" });

  const tlsVerify = (inputs.tls_verify = h("select", {},
    h("option", { value: "system" }, "Verify (a trusted authority, for this host)"),
    h("option", { value: "pinned" }, "Pinned: only the certificate with this fingerprint"),
    h("option", { value: "off" }, "Off: accept any certificate (encrypted, not authenticated)")));
  const formError = h("p", { class: "alert", id: "form-error", role: "alert", hidden: true });
  const testOut = h("div", { class: "test-out", id: "test-out", "aria-live": "polite" });
  const saveBtn = h("button", { type: "submit", class: "primary", value: "save" }, editing ? "Save changes" : "Add camera");
  const testBtn = h("button", { type: "submit", value: "test" }, "Save and test capture");

  // The explicit URLs: the way in for ONVIF and generic cameras, overrides for the others. They
  // move between the "Camera URLs" fieldset and "Advanced" with the maker (placeUrls).
  const urlBox = h("div", { id: "url-fields" },
    field("snapshot_url", "Snapshot URL", text("snapshot_url", { inputmode: "url", placeholder: "http://…" }),
      "An http or https URL that answers with one JPEG."),
    field("main_stream_url", "Main stream URL", text("main_stream_url", { inputmode: "url", placeholder: "rtsp://…" })),
    field("sub_stream_url", "Sub stream URL", text("sub_stream_url", { inputmode: "url", placeholder: "rtsp://…" }),
      "Frames are taken from the sub stream when there is one (RTSP needs ffmpeg)."),
    h("p", { class: "hint", id: "hint-url-credentials" },
      "A user name and password written into a URL (http://user:pass@…) are moved into User name and " +
      "Password below and removed from the URL. If those fields hold different ones, the camera is " +
      "refused with a message. Credentials the camera wants in the query (?password=…) stay in the URL, " +
      "stored sealed and never shown."));
  const urlSet = h("fieldset", { id: "url-set" }, h("legend", {}, "Camera URLs"));
  const urlSlot = h("div", { id: "url-slot" });
  const vendorFields = h("div", { id: "vendor-fields" },
    field("address", "Address", text("address", { placeholder: "192.168.1.64 or cam.local", inputmode: "url" }),
      "Host name or IP address, without http:// or a path."),
    h("div", { class: "row" },
      field("http_port", "HTTP port", text("http_port", { inputmode: "numeric" })),
      field("rtsp_port", "RTSP port", text("rtsp_port", { inputmode: "numeric" }))));

  // A new camera's schedule: on by default, so it keeps frames from the start.
  const scheduleOn = h("input", { type: "checkbox", id: "f-schedule", checked: true });
  const interval = (inputs.interval_seconds = h("input", {
    type: "number", id: "f-interval_seconds", name: "interval_seconds", min: MIN_INTERVAL, max: MAX_INTERVAL,
    step: 1, value: DEFAULT_INTERVAL, inputmode: "numeric", "aria-label": "Seconds between frames",
    "aria-describedby": "err-interval_seconds hint-schedule",
  }));
  scheduleOn.addEventListener("change", () => { interval.disabled = !scheduleOn.checked; });
  const scheduleSet = editing ? null : h("fieldset", { id: "schedule-set" }, h("legend", {}, "Schedule"),
    h("div", { class: "schedule-field", dataset: { field: "interval_seconds" } },
      h("div", { class: "check" }, scheduleOn,
        h("label", { for: "f-schedule" }, "Take a frame every"), interval,
        h("span", {}, "seconds")),
      h("p", { class: "hint", id: "hint-schedule" },
        `Without a schedule frames are taken only on demand. From ${MIN_INTERVAL} s to ${MAX_INTERVAL} s (one day); ` +
        "the camera's page changes it or adds more."),
      h("p", { class: "field-error", id: "err-interval_seconds", hidden: true })));

  const form = h("form", { class: "camera-form", novalidate: true, id: "camera-form" },
    formError,
    h("fieldset", {}, h("legend", {}, "Camera"),
      field("id", "Id", text("id", { required: true, pattern: "[a-z0-9][a-z0-9_-]{0,62}", maxlength: 63, disabled: editing }),
        editing ? "The id cannot change." : "Lower-case letters, digits, _ and -; it names the frame folder, e.g. gate_a."),
      field("name", "Name", text("name", { placeholder: "Defaults to the id" })),
      field("vendor", "Maker", vendor),
      presetNote,
      vendorFields),
    urlSet,
    h("fieldset", {}, h("legend", {}, "Credentials"),
      field("username", "User name", text("username", { autocomplete: "off" })),
      field("password", "Password", password,
        editing && cam.has_password ? "A password is stored. Leave empty to keep it." : "Stored on the server; it is never shown again."),
      editing && cam.has_password
        ? h("div", { class: "check" }, clearPw, h("label", { for: "f-clear-password" }, "Remove the stored password"))
        : null),
    scheduleSet,
    h("details", { class: "advanced", open: editing && !!(cam.snapshot_url || cam.main_stream_url || cam.sub_stream_url) },
      h("summary", { id: "advanced-summary" }, "Advanced"),
      urlSlot,
      field("snapshot_source", "Take frames from", source),
      field("tls_verify", "Certificate check (https, rtsps)", tlsVerify),
      field("tls_fingerprint", "Pinned certificate", text("tls_fingerprint", { placeholder: "sha256:AB:CD:…" }),
        "SHA-256 fingerprint of the camera's certificate; a failed test capture shows it."),
      field("max_gb", "Storage cap (GB)", text("max_gb", { inputmode: "decimal", placeholder: "no cap" }),
        "This camera's frames are pruned oldest first above this many gigabytes (10⁹ bytes); empty for no cap.")),
    h("div", { class: "actions" }, saveBtn, testBtn,
      h("a", { class: "button", href: editing ? `#/cameras/${enc(cam.id)}` : "#/" }, "Cancel")),
  );

  main.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/" }, "Cameras"),
      editing ? [" / ", h("a", { href: `#/cameras/${enc(cam.id)}` }, cam.name)] : null),
    h("h1", {}, editing ? `Edit ${cam.name}` : "Add a camera"),
    editing ? null : onvifPanel(),
    h("div", { class: "form-layout" }, form, testOut),
  );

  // Fill the form.
  if (cam) {
    for (const f of TEXT_FIELDS) inputs[f].value = cam[f] ?? "";
    for (const f of PORT_FIELDS) inputs[f].value = String(cam[f]);
    vendor.value = cam.vendor;
    source.value = cam.snapshot_source;
    tlsVerify.value = cam.tls_verify || "system";
    inputs.max_gb.value = cam.max_gb ?? "";
  } else {
    vendor.value = "hikvision";
    inputs.http_port.value = "80";
    inputs.rtsp_port.value = "554";
  }
  // The form follows the maker: its template's fields, or the camera's URLs.
  const placeUrls = () => {
    const templated = hasTemplate(vendor.value);
    vendorFields.hidden = !templated;
    urlSet.hidden = templated;
    (templated ? urlSlot : urlSet).append(urlBox);
    form.querySelector("#advanced-summary").textContent = templated
      ? "Advanced: URLs, capture source, certificates"
      : "Advanced: capture source, certificates";
    const snapLabel = form.querySelector("label[for='f-snapshot_url']");
    snapLabel.textContent = templated ? "Snapshot URL (overrides the maker's)" : "Snapshot URL";
  };
  const showPreset = () => {
    const p = VENDORS[vendor.value];
    const host = inputs.address.value.trim() || "ADDRESS";
    presetNote.textContent = p && p.snapshot
      ? `${p.label}: snapshots from http://${host}:${inputs.http_port.value || p.http}${p.snapshot}, stream rtsp://${host}:${inputs.rtsp_port.value || p.rtsp}${p.stream}. Other URLs: under Advanced.`
      : "This maker has no fixed URL layout: give the camera's snapshot URL, its stream URL, or both, below.";
    placeUrls();
  };
  vendor.addEventListener("change", () => {
    const p = VENDORS[vendor.value];
    inputs.http_port.value = String(p.http);
    inputs.rtsp_port.value = String(p.rtsp);
    showPreset();
  });
  inputs.http_port.addEventListener("input", showPreset);
  inputs.address.addEventListener("input", showPreset);
  inputs.rtsp_port.addEventListener("input", showPreset);
  showPreset();

  function clearErrors() {
    formError.hidden = true;
    for (const el of form.querySelectorAll(".field-error")) {
      el.hidden = true;
      el.textContent = "";
    }
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  }

  function showError(e) {
    const f = e instanceof ApiError && e.field;
    const errEl = f && form.querySelector(`#err-${CSS.escape(f)}`);
    // A field this maker hides (address for a generic camera) cannot show its error: the
    // sentence goes above the form.
    if (errEl && !errEl.closest("[hidden]:not(.field-error)")) {
      errEl.textContent = e.message;
      errEl.hidden = false;
      const input = inputs[f];
      input.setAttribute("aria-invalid", "true");
      if (input.closest("details")) input.closest("details").open = true;
      input.focus();
    } else {
      formError.textContent = message(e);
      formError.hidden = false;
      formError.scrollIntoView({ block: "nearest" });
    }
  }

  function body() {
    const b = {};
    const str = (f) => inputs[f].value.trim();
    const port = (f) => {
      const v = str(f);
      if (!/^\d{1,5}$/.test(v)) {
        throw new ApiError(422, { error: `${f} must be a whole number from 1 to 65535`, code: "invalid_field", field: f });
      }
      return Number(v);
    };
    // A number the server checks (it refuses 0 and negatives with its own sentence); text that
    // is no number at all is refused here, naming the field.
    const gigabytes = () => {
      const n = Number(str("max_gb"));
      if (!Number.isFinite(n)) {
        throw new ApiError(422, { error: "max_gb must be a number of gigabytes, e.g. 50 or 0.5", code: "invalid_field", field: "max_gb" });
      }
      return n;
    };
    // Address and ports do nothing for a maker without a template: they are hidden, not sent.
    const templated = hasTemplate(vendor.value);
    if (!editing) {
      b.id = str("id");
      for (const f of ["name", "address", "username", "snapshot_url", "main_stream_url", "sub_stream_url", "tls_fingerprint"]) {
        if (str(f) && (templated || f !== "address")) b[f] = str(f);
      }
      b.tls_verify = tlsVerify.value;
      if (password.value) b.password = password.value;
      if (templated) for (const f of PORT_FIELDS) if (str(f)) b[f] = port(f);
      b.vendor = vendor.value;
      b.snapshot_source = source.value;
      if (str("max_gb")) b.max_gb = gigabytes();
      return b;
    }
    // PATCH: only what changed; an emptied optional field becomes null.
    if (str("name") !== cam.name) b.name = str("name");
    if (templated && str("address") !== (cam.address ?? "")) b.address = str("address");
    for (const f of ["username", "snapshot_url", "main_stream_url", "sub_stream_url", "tls_fingerprint"]) {
      if (str(f) !== (cam[f] ?? "")) b[f] = str(f) || null;
    }
    if (tlsVerify.value !== cam.tls_verify) b.tls_verify = tlsVerify.value;
    if (templated) for (const f of PORT_FIELDS) if (str(f) !== String(cam[f])) b[f] = port(f);
    if (vendor.value !== cam.vendor) b.vendor = vendor.value;
    if (source.value !== cam.snapshot_source) b.snapshot_source = source.value;
    if (str("max_gb") !== String(cam.max_gb ?? "")) b.max_gb = str("max_gb") ? gigabytes() : null;
    if (clearPw.checked) b.password = null;
    else if (password.value) b.password = password.value;
    return b;
  }

  /** The new camera's schedule interval, checked before anything is saved; null when off. */
  function scheduleInterval() {
    if (editing || !scheduleOn.checked) return null;
    const v = interval.value.trim();
    const n = Number(v);
    if (!/^\d{1,5}$/.test(v) || n < MIN_INTERVAL || n > MAX_INTERVAL) {
      throw new ApiError(422, {
        error: `Take a frame every ${MIN_INTERVAL} to ${MAX_INTERVAL} seconds (a whole number), or untick the schedule.`,
        code: "invalid_field", field: "interval_seconds",
      });
    }
    return n;
  }

  /** Take a frame and keep it: {ok, blob, width, height} or {ok: false, error}. */
  async function takeTestFrame(id) {
    try {
      return { ok: true, ...(await postImage(`/api/v1/cameras/${enc(id)}/snapshot?store=true`)) };
    } catch (e) {
      return { ok: false, error: e };
    }
  }

  function showTest(id, r) {
    if (r.ok) {
      const url = URL.createObjectURL(r.blob);
      clear(testOut).append(
        h("p", { class: "ok", id: "test-ok" }, `Capture works: ${r.width || "?"}×${r.height || "?"} JPEG, kept with the camera's stored frames.`),
        h("img", { src: url, alt: "Live frame from the camera", class: "live", id: "test-frame", dataset: { snapshotId: r.snapshotId || "" } }),
      );
    } else {
      const e = r.error;
      clear(testOut).append(h("p", { class: "alert", id: "test-error" },
        h("strong", {}, "Capture failed"), ` (${e.code || "error"}): ${message(e)}`));
      if (e.code === "tls" && e.tlsFingerprint) offerTrust(id, e.tlsFingerprint);
    }
  }

  async function testCapture(id) {
    clear(testOut).append(h("p", { class: "muted" }, "Grabbing a frame…"));
    showTest(id, await takeTestFrame(id));
  }

  // The camera presented a certificate Heldar refused: show its fingerprint and offer to pin it.
  function offerTrust(id, fingerprint) {
    const trust = h("button", { type: "button", id: "trust-cert" }, "Trust this certificate");
    trust.addEventListener("click", async () => {
      const ok = confirm(`Trust the certificate with SHA-256 fingerprint\n${fingerprint}\nfor ${cam.name}?\n\n` +
        "Only if it is your camera's certificate: compare it with the fingerprint the camera's own " +
        "settings page shows. From now on only this certificate is accepted.");
      if (!ok) return;
      trust.disabled = true;
      try {
        cam = await request("PATCH", `/api/v1/cameras/${enc(id)}`, { tls_verify: "pinned", tls_fingerprint: fingerprint });
        tlsVerify.value = cam.tls_verify;
        inputs.tls_fingerprint.value = cam.tls_fingerprint ?? "";
        toast("Certificate pinned.");
        await testCapture(id);
      } catch (err) {
        trust.disabled = false;
        showError(err);
      }
    });
    testOut.append(h("div", { class: "trust", id: "trust-offer" },
      h("p", {}, "The camera presented the certificate with SHA-256 fingerprint ",
        h("code", { id: "presented-fingerprint" }, fingerprint), "."),
      trust));
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const test = ev.submitter && ev.submitter.value === "test";
    clearErrors();
    saveBtn.disabled = testBtn.disabled = true;
    try {
      let saved;
      if (editing) {
        saved = await request("PATCH", `/api/v1/cameras/${enc(cam.id)}`, body());
        cam = saved;
        password.value = "";
        // Show what the server kept: credentials typed into a URL are now in the user name.
        for (const f of ["username", "snapshot_url", "main_stream_url", "sub_stream_url"]) inputs[f].value = cam[f] ?? "";
      } else {
        const every = scheduleInterval();
        saved = await request("POST", "/api/v1/cameras", body());
        // The test frame first, so it is the camera's first stored frame; then the schedule
        // (which fires at once). The schedule is made even when the test fails: the camera then
        // shows as failing, with its error, rather than sitting unscheduled once it is fixed.
        if (test) clear(testOut).append(h("p", { class: "muted" }, `Camera ${saved.id} added; grabbing a frame…`));
        const result = test ? await takeTestFrame(saved.id) : null;
        let note = `Camera ${saved.id} added`;
        if (every !== null) {
          try {
            await request("POST", `/api/v1/cameras/${enc(saved.id)}/snapshot-schedules`, { interval_seconds: every });
            note += `, a frame every ${every} s.`;
          } catch (e) {
            note += `, but its schedule was not: ${message(e)}`;
          }
        } else {
          note += " without a schedule.";
        }
        toast(note);
        if (test) {
          // Keep testing on the edit page: a failure is fixed there.
          pendingTest = { id: saved.id, result };
          location.hash = `#/cameras/${enc(saved.id)}/edit?test=1`;
        } else {
          location.hash = `#/cameras/${enc(saved.id)}`;
        }
        return;
      }
      if (test) {
        toast("Saved.");
        await testCapture(saved.id);
      } else {
        toast("Saved.");
        location.hash = `#/cameras/${enc(saved.id)}`;
      }
    } catch (e) {
      showError(e);
    } finally {
      saveBtn.disabled = testBtn.disabled = false;
    }
  });

  if (editing && pendingTest && pendingTest.id === cam.id) {
    // The add page's test: show its frame (already kept) or its failure, without taking another.
    const { result } = pendingTest;
    pendingTest = null;
    showTest(cam.id, result);
  } else if (editing && route.params.get("test") === "1") {
    testCapture(cam.id);
  } else if (!editing) {
    inputs.id.focus();
  }
}
