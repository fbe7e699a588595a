// The first run: what the user wants (join a group's session on a server, or host it
// on this device), then this car (its name, sound output and location source) chosen
// from lists of what this device has. Ends on the sign-in screen, set up.

import type { LocationSourceView, Output } from "../backend";
import type { Screen } from "../app";
import { field, h, showError } from "../dom";
import { looksLikeJoinLink, takeJoinLink } from "../join";
import { DEFAULT_SETTINGS, sanitize } from "../settings";
import { locationChoice, locationOptions, outputOptions } from "./settings-form";

type Choice = "join" | "host";

export const welcomeScreen: Screen = (root, ctx) => {
  let choice: Choice = ctx.settings.hosting ? "host" : "join";
  const main = h("main", { class: "screen welcome", "data-screen": "welcome" });
  root.append(main);

  const step = (name: string, heading: string, ...children: (Node | null)[]): void => {
    const h1 = h("h1", { tabindex: -1 }, heading);
    main.replaceChildren(h("div", { class: "card", "data-step": name }, h1, ...children));
    h1.focus();
  };

  const choose = (): void => {
    const option = (c: Choice, title: string, detail: string): HTMLButtonElement => {
      const b = h("button", { type: "button", class: "choice", "data-choice": c }, h("strong", {}, title), h("span", {}, detail));
      b.addEventListener("click", () => {
        choice = c;
        if (c === "join") server();
        else car();
      });
      return b;
    };
    step("choose", "Welcome to TrafficJamz",
      h("p", {}, "The same music in every car of a convoy, in sync, and where everyone is on a map. How will this device take part?"),
      h("div", { class: "choices" },
        option("join", "Join my group's session", "Your group's server runs at home, online, or on one car's hotspot."),
        option("host", "Host the session on this device", "For a convoy without internet: the other cars join over this device's hotspot.")));
  };

  const server = (): void => {
    const url = h("input", { name: "server", type: "text", inputmode: "url", spellcheck: "false", required: true, value: ctx.settings.server, autocomplete: "url" });
    const error = h("p", { class: "error", role: "alert" });
    const back = h("button", { type: "button" }, "Back");
    back.addEventListener("click", choose);
    const form = h("form", { "aria-label": "Server" },
      field("The server's address or a join link (ask whoever runs it)", url), error,
      h("div", { class: "row" }, back, h("button", { type: "submit", class: "primary" }, "Continue")));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (looksLikeJoinLink(url.value)) {
        // A join link fills in the server (and remembers the group to open).
        void takeJoinLink(ctx, url.value).then((link) => {
          url.value = link.server;
          car();
        }, (err: unknown) => showError(error, err));
        return;
      }
      if (!/^https?:\/\/\S+$/.test(url.value.trim())) {
        showError(error, "An address starts with http:// or https://, like http://192.168.1.20:5050");
        return;
      }
      ctx.saveSettings({ ...ctx.settings, server: url.value.trim() });
      car();
    });
    step("server", "Where is the session?", form);
  };

  const car = (): void => {
    const s = ctx.settings;
    const name = h("input", { name: "display-name", value: s.displayName, autocomplete: "nickname" });
    const output = h("select", { name: "output" });
    const fillOutputs = (devices: readonly Output[]): void => {
      output.replaceChildren(...outputOptions(devices, s.output).map((o) => h("option", { value: o.id, selected: o.id === s.output }, o.name)));
    };
    const location = h("select", { name: "location-mode" });
    const fillLocations = (found: readonly LocationSourceView[]): void => {
      // Replay and a gpsd address need typing: they stay in the settings.
      location.replaceChildren(...locationOptions(found, s).filter((o) => o.value !== "replay" && o.value !== "gpsd")
        .map((o) => h("option", { value: o.value, selected: o.selected }, o.name)));
    };
    fillOutputs([]);
    fillLocations([]);
    const error = h("p", { class: "error", role: "alert" });
    void ctx.backend.listOutputs().then(fillOutputs, (e: unknown) => showError(error, e));
    void ctx.backend.locationSources().then(fillLocations, () => undefined);
    const back = h("button", { type: "button" }, "Back");
    back.addEventListener("click", () => (choice === "join" ? server() : choose()));
    const form = h("form", { "aria-label": "This car" },
      field("Your name in the session (what the other cars see)", name),
      field("Sound output", output),
      field("Where this car's position comes from", location),
      h("p", { class: "hint" }, "Your position is shared only when you turn sharing on. All of this can be changed later in Settings."),
      error,
      h("div", { class: "row" }, back, h("button", { type: "submit", class: "primary", "data-action": "finish-setup" }, "Done")));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      ctx.saveSettings(sanitize({
        ...DEFAULT_SETTINGS,
        ...ctx.settings,
        displayName: name.value.trim(),
        output: output.value || "default",
        ...locationChoice(location.value, ""),
        hosting: choice === "host",
        setUp: true,
      }));
      ctx.go({ screen: "auth" });
    });
    step("car", "This car", form);
  };

  choose();
  return () => undefined;
};
