// The dashboard's entry point: hash routing, the session, the header.
//
//   #/                     cameras at a glance       (grid.js)
//   #/cameras/new          add a camera              (form.js)
//   #/cameras/{id}         one camera                (camera.js)
//   #/cameras/{id}/edit    edit a camera             (form.js)
//   #/system               health, disk, counts      (system.js)
//   #/login                token → session cookie    (login.js)

import { loadSession, currentSession, logout, can } from "./api.js";
import { h, clear, message } from "./util.js";
import * as grid from "./grid.js";
import * as form from "./form.js";
import * as camera from "./camera.js";
import * as system from "./system.js";
import * as loginPage from "./login.js";

const main = document.getElementById("main");
let cleanup = null;

function parse(hash) {
  const raw = (hash || "#/").replace(/^#/, "") || "/";
  const [path, query] = raw.split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0) return { page: grid, nav: "grid", params };
  if (parts[0] === "system" && parts.length === 1) return { page: system, nav: "system", params };
  if (parts[0] === "login" && parts.length === 1) return { page: loginPage, nav: null, params };
  if (parts[0] === "cameras") {
    if (parts[1] === "new" && parts.length === 2) return { page: form, nav: "grid", params };
    if (parts.length === 2) return { page: camera, nav: "grid", params, id: parts[1] };
    if (parts.length === 3 && parts[2] === "edit") {
      return { page: form, nav: "grid", params, id: parts[1] };
    }
  }
  return { page: null, nav: null, params };
}

function renderWho() {
  const who = clear(document.getElementById("who"));
  const s = currentSession();
  if (!s || !s.auth) return;
  who.append(
    h("span", { class: "role" }, `${s.name || "signed in"} · ${s.role}`),
    h("button", {
      type: "button",
      class: "link",
      onclick: async () => {
        try {
          await logout();
        } catch (_) {
          // Signed out either way on this side.
        }
        location.hash = "#/login";
      },
    }, "Sign out"),
  );
}

async function route() {
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  const r = parse(location.hash);
  if (r.page !== loginPage && !currentSession()) {
    try {
      await loadSession();
    } catch (e) {
      clear(main).append(h("p", { class: "alert" }, "Cannot reach the Heldar API: " + message(e)));
      return;
    }
    if (!currentSession()) {
      location.hash = "#/login?next=" + encodeURIComponent(location.hash || "#/");
      return;
    }
  }
  renderWho();
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === r.nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  clear(main);
  document.body.dataset.page = r.page ? (r.page.NAME || "") : "missing";
  if (!r.page) {
    document.title = "Not found · Heldar";
    main.append(
      h("h1", {}, "Page not found"),
      h("p", {}, "There is no such page. ", h("a", { href: "#/" }, "Back to the cameras")),
    );
    return;
  }
  try {
    cleanup = (await r.page.render(main, r)) || null;
  } catch (e) {
    main.append(h("p", { class: "alert", role: "alert" }, message(e)));
  }
}

window.addEventListener("hashchange", () => {
  route();
  main.focus({ preventScroll: true });
});
route();

export { can };
