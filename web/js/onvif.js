// "Find cameras" on the add-camera page: ONVIF discovery, then probe one device with its
// credentials, pick a profile, and add it (POST /api/v1/discovery, /onvif/probe, /onvif/add;
// docs/onvif.md). The password goes to the server only; nothing here shows it back.

import { request, enc } from "./api.js";
import { h, clear, message } from "./util.js";

/** The "Find cameras" panel: a button, the devices found, and the probe/add form. */
export function panel() {
  const status = h("p", { class: "hint", id: "onvif-status", "aria-live": "polite" });
  const list = h("ul", { class: "onvif-devices", id: "onvif-devices" });
  const error = h("p", { class: "alert", id: "onvif-error", role: "alert", hidden: true });
  const address = h("input", { type: "text", id: "onvif-address", autocomplete: "off", spellcheck: "false", placeholder: "192.168.1.64" });
  const port = h("input", { type: "text", id: "onvif-port", inputmode: "numeric", value: "80" });
  const username = h("input", { type: "text", id: "onvif-username", autocomplete: "off" });
  const password = h("input", { type: "password", id: "onvif-password", autocomplete: "new-password" });
  const id = h("input", { type: "text", id: "onvif-id", autocomplete: "off", spellcheck: "false", placeholder: "from the model and address" });
  const profiles = h("div", { id: "onvif-profiles" });
  const probeBtn = h("button", { type: "button", id: "onvif-probe" }, "Probe");
  const addBtn = h("button", { type: "button", class: "primary", id: "onvif-add", hidden: true }, "Add this camera");
  const findBtn = h("button", { type: "button", id: "onvif-find" }, "Find cameras");
  const iface = h("input", { type: "text", id: "onvif-interface", autocomplete: "off", spellcheck: "false", placeholder: "default route", size: 16 });

  const lbl = (forId, text) => h("label", { for: forId }, text);
  const creds = h("div", { id: "onvif-form", hidden: true },
    h("div", { class: "row" },
      h("div", { class: "field" }, lbl("onvif-address", "Address"), address),
      h("div", { class: "field" }, lbl("onvif-port", "ONVIF port"), port)),
    h("div", { class: "row" },
      h("div", { class: "field" }, lbl("onvif-username", "ONVIF user name"), username),
      h("div", { class: "field" }, lbl("onvif-password", "Password"), password)),
    h("p", { class: "hint" }, "Many cameras keep ONVIF users apart from web users. The password is sent to the camera only as a digest and stored sealed."),
    probeBtn, profiles,
    h("div", { class: "field" }, lbl("onvif-id", "Id (optional)"), id),
    addBtn);

  const showError = (text) => { error.textContent = text; error.hidden = !text; };

  const choose = (d) => {
    address.value = d.address;
    port.value = String(d.port);
    creds.hidden = false;
    clear(profiles);
    addBtn.hidden = true;
    username.focus();
  };

  findBtn.addEventListener("click", async () => {
    showError("");
    clear(list);
    status.textContent = "Looking for ONVIF cameras on the server's network (3 s)…";
    findBtn.disabled = true;
    try {
      const req = {};
      if (iface.value.trim()) req.interface = iface.value.trim();
      const r = await request("POST", "/api/v1/discovery", req);
      status.textContent = r.devices.length
        ? `${r.devices.length} found. Pick one, or type an address below.`
        : "No camera answered (same network segment? UDP 3702 open?). Type its address below.";
      for (const d of r.devices) {
        const label = [d.name, d.hardware, d.location].filter(Boolean).join(" · ") || "ONVIF device";
        list.append(h("li", { dataset: { address: d.address } },
          h("span", {}, `${d.address}:${d.port} — ${label}`),
          d.registered_camera_id
            ? h("a", { href: `#/cameras/${enc(d.registered_camera_id)}` }, ` already added as ${d.registered_camera_id}`)
            : h("button", { type: "button", class: "onvif-use", onclick: () => choose(d) }, "Use")));
      }
    } catch (e) {
      status.textContent = "";
      showError(message(e));
    } finally {
      findBtn.disabled = false;
    }
    creds.hidden = false;
  });

  const body = () => {
    const b = { address: address.value.trim(), username: username.value, password: password.value };
    const p = port.value.trim();
    if (p) b.port = Number(p);
    return b;
  };

  probeBtn.addEventListener("click", async () => {
    showError("");
    clear(profiles);
    addBtn.hidden = true;
    probeBtn.disabled = true;
    status.textContent = "Asking the camera for its profiles…";
    try {
      const r = await request("POST", "/api/v1/onvif/probe", body());
      status.textContent = `${r.device.manufacturer} ${r.device.model} (firmware ${r.device.firmware}).`;
      const suggested = r.suggested ? r.suggested.profile_token : null;
      profiles.append(h("p", {}, "Profile to use:"));
      for (const p of r.profiles) {
        const radio = h("input", {
          type: "radio", name: "onvif-profile", value: p.token, id: `onvif-p-${p.token}`,
          checked: p.token === suggested, disabled: !!p.problem,
        });
        const size = p.width && p.height ? `${p.width}×${p.height}` : "size unknown";
        profiles.append(h("div", { class: "check onvif-profile", dataset: { token: p.token } }, radio,
          h("label", { for: `onvif-p-${p.token}` },
            `${p.name} — ${p.encoding || "no video"}, ${size}${p.token === suggested ? " (suggested)" : ""}`),
          p.problem ? h("p", { class: "field-error" }, p.problem) : null,
          p.note ? h("p", { class: "hint" }, p.note) : null));
      }
      addBtn.hidden = !suggested;
      if (!suggested) showError("No profile of this camera can be used; each one's problem is listed.");
    } catch (e) {
      status.textContent = "";
      showError(message(e));
    } finally {
      probeBtn.disabled = false;
    }
  });

  addBtn.addEventListener("click", async () => {
    showError("");
    addBtn.disabled = true;
    const b = body();
    const picked = profiles.querySelector("input[name='onvif-profile']:checked");
    if (picked) b.profile_token = picked.value;
    if (id.value.trim()) b.id = id.value.trim();
    try {
      const cam = await request("POST", "/api/v1/onvif/add", b);
      location.hash = `#/cameras/${enc(cam.id)}`;
    } catch (e) {
      showError(message(e));
    } finally {
      addBtn.disabled = false;
    }
  });

  return h("fieldset", { id: "onvif-set", class: "onvif" },
    h("legend", {}, "Find ONVIF cameras"),
    h("p", { class: "hint" }, "Most cameras speak ONVIF: Heldar can find them on its network and fill in their URLs."),
    h("div", { class: "check" }, findBtn, lbl("onvif-interface", "from the server's interface"), iface),
    status, error, list, creds);
}
