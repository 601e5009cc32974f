// #/login — trade an API token for a session cookie (POST /api/v1/session).

import { login, loadSession, currentSession } from "./api.js";
import { h, message } from "./util.js";

export const NAME = "login";

export async function render(main, route) {
  document.title = "Sign in · Heldar";
  const next = route.params.get("next") || "#/";
  const safeNext = next.startsWith("#/") && !next.startsWith("#/login") ? next : "#/";
  try {
    await loadSession();
  } catch (_) {
    // Shown on submit.
  }
  const s = currentSession();
  if (s && !s.auth) {
    main.append(h("h1", {}, "Sign in"),
      h("p", {}, "Authentication is off on this server, so no sign-in is needed (an administrator turns it on with ", h("code", {}, "heldar auth on"), "). ", h("a", { href: "#/" }, "Go to the cameras")));
    return;
  }
  const token = h("input", {
    type: "password", id: "token", name: "token", autocomplete: "current-password", required: true,
    "aria-describedby": "token-hint token-error", spellcheck: "false",
  });
  const error = h("p", { class: "field-error", id: "token-error", role: "alert", hidden: true });
  const btn = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", { class: "login card", id: "login-form", novalidate: true },
    h("h1", {}, "Sign in to Heldar"),
    s && s.auth ? h("p", { class: "muted" }, `Signed in as ${s.name || s.role}. Sign in again to switch.`) : null,
    h("div", { class: "field" },
      h("label", { for: "token" }, "API token"), token,
      h("p", { class: "hint", id: "token-hint" }, "An administrator creates tokens with ", h("code", {}, "heldar token create"), "."),
      error),
    h("div", { class: "actions" }, btn));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.hidden = true;
    if (!token.value.trim()) {
      error.textContent = "Enter your API token.";
      error.hidden = false;
      token.focus();
      return;
    }
    btn.disabled = true;
    try {
      await login(token.value.trim());
      token.value = "";
      location.hash = safeNext;
    } catch (err) {
      error.textContent = message(err);
      error.hidden = false;
      token.setAttribute("aria-invalid", "true");
      token.focus();
      token.select();
    } finally {
      btn.disabled = false;
    }
  });
  main.append(form);
  token.focus();
}
