// Sign in / register, with the server URL and "this device hosts the session".

import type { Screen } from "../app";
import { field, h, showError } from "../dom";
import { joinLabel, looksLikeJoinLink, takeJoinLink } from "../join";

/** `notice`: why the user is asked to sign in (a login the server refused). */
export const authScreen = (notice?: string): Screen => (root, ctx) => {
  let mode: "login" | "register" = "login";
  const server = h("input", { name: "server", type: "text", inputmode: "url", spellcheck: "false", required: true, value: ctx.settings.server, autocomplete: "url" });
  const username = h("input", { name: "username", required: true, autocomplete: "username" });
  const email = h("input", { name: "email", type: "email", autocomplete: "email" });
  const password = h("input", { name: "password", type: "password", required: true, autocomplete: "current-password" });
  const host = h("input", { name: "host", type: "checkbox", checked: ctx.settings.hosting });
  const emailField = field("Email", email);
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const toggle = h("button", { type: "button", class: "link" }, "New here? Register");
  const error = h("p", { class: "error", role: "alert" });
  const restart = h("button", { type: "button", class: "link", "data-action": "first-run" }, "Set up again (join or host)");
  restart.addEventListener("click", () => ctx.go({ screen: "welcome" }));
  const hostNote = h(
    "p",
    { class: "hint" },
    "For a car with no internet: this device runs the session server itself; other cars join it over this device's hotspot.",
  );

  const setMode = (m: "login" | "register"): void => {
    mode = m;
    emailField.hidden = m === "login";
    email.required = m === "register";
    password.autocomplete = m === "login" ? "current-password" : "new-password";
    submit.textContent = m === "login" ? "Sign in" : "Register";
    toggle.textContent = m === "login" ? "New here? Register" : "Have an account? Sign in";
    heading.textContent = m === "login" ? "Sign in" : "Register";
  };
  const heading = h("h1", { tabindex: -1 }, "Sign in");

  const joining = ctx.join
    ? h("p", { class: "hint", "data-testid": "joining" }, `Joining ${joinLabel(ctx.join)}: sign in or register on its server.`)
    : null;
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "auth-heading" },
    joining,
    field("Server URL or join link", server),
    h("label", { class: "check" }, host, h("span", {}, "This device hosts the session")),
    hostNote,
    field("Username", username),
    emailField,
    field("Password", password),
    error,
    h("div", { class: "row" }, submit, toggle, restart),
  );
  heading.id = "auth-heading";
  host.addEventListener("change", () => {
    server.disabled = host.checked;
  });
  toggle.addEventListener("click", () => setMode(mode === "login" ? "register" : "login"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void (async () => {
      showError(error, null);
      submit.disabled = true;
      try {
        let url = server.value.trim();
        if (!host.checked && looksLikeJoinLink(url)) {
          url = (await takeJoinLink(ctx, url)).server;
          server.value = url;
        }
        if (host.checked) {
          const info = await ctx.backend.appInfo();
          url = (info.hosting ?? (await ctx.backend.hostSession())).url;
        }
        ctx.account =
          mode === "login"
            ? await ctx.backend.login(url, username.value.trim(), password.value)
            : await ctx.backend.register(url, username.value.trim(), email.value.trim(), password.value);
        ctx.saveSettings({ ...ctx.settings, server: url, hosting: host.checked });
        ctx.go({ screen: "groups" });
      } catch (err: unknown) {
        showError(error, err);
      } finally {
        submit.disabled = false;
      }
    })();
  });
  server.disabled = host.checked;
  if (notice) error.textContent = notice;
  setMode("login");
  root.append(h("main", { class: "screen auth", "data-screen": "auth" }, heading, form));
  username.focus();
  return () => undefined;
};
