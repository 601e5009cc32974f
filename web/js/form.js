// #/cameras/new and #/cameras/{id}/edit — add or change a camera.
//
// The API checks every field; a 422 names the `field`, and its sentence is shown under that
// input. The password is write-only: the form never shows it, an empty box keeps the stored
// one. "Save and test capture" saves, then grabs a live frame with the saved settings and shows
// the picture or the camera's precise failure beside the form. When the failure is a `tls`
// refusal of a certificate (a camera's self-signed one), its SHA-256 fingerprint is shown with a
// "Trust this certificate" button that pins it (tls_verify "pinned") once the operator confirms.

import { get, request, getImage, can, enc, ApiError } from "./api.js";
import { h, clear, message, toast } from "./util.js";

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

  const form = h("form", { class: "camera-form", novalidate: true, id: "camera-form" },
    formError,
    h("fieldset", {}, h("legend", {}, "Camera"),
      field("id", "Id", text("id", { required: true, pattern: "[a-z0-9][a-z0-9_-]{0,62}", maxlength: 63, disabled: editing }),
        editing ? "The id cannot change." : "Lower-case letters, digits, _ and -; it names the frame folder, e.g. gate_a."),
      field("name", "Name", text("name", { placeholder: "Defaults to the id" })),
      field("vendor", "Maker", vendor),
      presetNote,
      field("address", "Address", text("address", { placeholder: "192.168.1.64 or cam.local", inputmode: "url" }),
        "Host name or IP address, without http:// or a path."),
      h("div", { class: "row" },
        field("http_port", "HTTP port", text("http_port", { inputmode: "numeric" })),
        field("rtsp_port", "RTSP port", text("rtsp_port", { inputmode: "numeric" })))),
    h("fieldset", {}, h("legend", {}, "Credentials"),
      field("username", "User name", text("username", { autocomplete: "off" })),
      field("password", "Password", password,
        editing && cam.has_password ? "A password is stored. Leave empty to keep it." : "Stored on the server; it is never shown again."),
      editing && cam.has_password
        ? h("div", { class: "check" }, clearPw, h("label", { for: "f-clear-password" }, "Remove the stored password"))
        : null),
    h("details", { class: "advanced", open: editing && !!(cam.snapshot_url || cam.main_stream_url || cam.sub_stream_url) },
      h("summary", {}, "URLs and capture source"),
      field("snapshot_source", "Take frames from", source),
      field("snapshot_url", "Snapshot URL", text("snapshot_url", { inputmode: "url", placeholder: "http://…" }),
        "Overrides the maker's snapshot URL. No credentials in it: use the fields above."),
      field("main_stream_url", "Main stream URL", text("main_stream_url", { inputmode: "url", placeholder: "rtsp://…" })),
      field("sub_stream_url", "Sub stream URL", text("sub_stream_url", { inputmode: "url", placeholder: "rtsp://…" })),
      field("tls_verify", "Certificate check (https, rtsps)", tlsVerify),
      field("tls_fingerprint", "Pinned certificate", text("tls_fingerprint", { placeholder: "sha256:AB:CD:…" }),
        "SHA-256 fingerprint of the camera's certificate; a failed test capture shows it.")),
    h("div", { class: "actions" }, saveBtn, testBtn,
      h("a", { class: "button", href: editing ? `#/cameras/${enc(cam.id)}` : "#/" }, "Cancel")),
  );

  main.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/" }, "Cameras"),
      editing ? [" / ", h("a", { href: `#/cameras/${enc(cam.id)}` }, cam.name)] : null),
    h("h1", {}, editing ? `Edit ${cam.name}` : "Add a camera"),
    h("div", { class: "form-layout" }, form, testOut),
  );

  // Fill the form.
  if (cam) {
    for (const f of TEXT_FIELDS) inputs[f].value = cam[f] ?? "";
    for (const f of PORT_FIELDS) inputs[f].value = String(cam[f]);
    vendor.value = cam.vendor;
    source.value = cam.snapshot_source;
    tlsVerify.value = cam.tls_verify || "system";
  } else {
    vendor.value = "hikvision";
    inputs.http_port.value = "80";
    inputs.rtsp_port.value = "554";
  }
  const showPreset = () => {
    const p = VENDORS[vendor.value];
    const host = inputs.address.value.trim() || "ADDRESS";
    presetNote.textContent = p && p.snapshot
      ? `${p.label}: snapshots from http://${host}:${inputs.http_port.value || p.http}${p.snapshot}, stream rtsp://${host}:${inputs.rtsp_port.value || p.rtsp}${p.stream}.`
      : "This maker has no fixed URL layout: enter a snapshot URL or a stream URL below.";
    if (p && !p.snapshot) form.querySelector("details.advanced").open = true;
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
    if (errEl) {
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
    if (!editing) {
      b.id = str("id");
      for (const f of ["name", "address", "username", "snapshot_url", "main_stream_url", "sub_stream_url", "tls_fingerprint"]) {
        if (str(f)) b[f] = str(f);
      }
      b.tls_verify = tlsVerify.value;
      if (password.value) b.password = password.value;
      for (const f of PORT_FIELDS) if (str(f)) b[f] = port(f);
      b.vendor = vendor.value;
      b.snapshot_source = source.value;
      return b;
    }
    // PATCH: only what changed; an emptied optional field becomes null.
    for (const f of ["name", "address"]) if (str(f) !== (cam[f] ?? "")) b[f] = str(f);
    for (const f of ["username", "snapshot_url", "main_stream_url", "sub_stream_url", "tls_fingerprint"]) {
      if (str(f) !== (cam[f] ?? "")) b[f] = str(f) || null;
    }
    if (tlsVerify.value !== cam.tls_verify) b.tls_verify = tlsVerify.value;
    for (const f of PORT_FIELDS) if (str(f) !== String(cam[f])) b[f] = port(f);
    if (vendor.value !== cam.vendor) b.vendor = vendor.value;
    if (source.value !== cam.snapshot_source) b.snapshot_source = source.value;
    if (clearPw.checked) b.password = null;
    else if (password.value) b.password = password.value;
    return b;
  }

  async function testCapture(id) {
    clear(testOut).append(h("p", { class: "muted" }, "Grabbing a live frame…"));
    try {
      const { blob, width, height } = await getImage(`/api/v1/cameras/${enc(id)}/snapshot`);
      const url = URL.createObjectURL(blob);
      clear(testOut).append(
        h("p", { class: "ok" }, `Capture works: ${width || "?"}×${height || "?"} JPEG.`),
        h("img", { src: url, alt: "Live frame from the camera", class: "live", id: "test-frame" }),
      );
    } catch (e) {
      clear(testOut).append(h("p", { class: "alert", id: "test-error" },
        h("strong", {}, "Capture failed"), ` (${e.code || "error"}): ${message(e)}`));
      if (e.code === "tls" && e.tlsFingerprint) offerTrust(id, e.tlsFingerprint);
    }
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
      } else {
        saved = await request("POST", "/api/v1/cameras", body());
      }
      if (test) {
        if (!editing) {
          // Keep testing on the edit page: a failure is fixed there.
          location.hash = `#/cameras/${enc(saved.id)}/edit?test=1`;
          return;
        }
        toast("Saved.");
        await testCapture(saved.id);
      } else {
        toast(editing ? "Saved." : `Camera ${saved.id} added.`);
        location.hash = `#/cameras/${enc(saved.id)}`;
      }
    } catch (e) {
      showError(e);
    } finally {
      saveBtn.disabled = testBtn.disabled = false;
    }
  });

  if (editing && route.params.get("test") === "1") testCapture(cam.id);
  else if (!editing) inputs.id.focus();
}
