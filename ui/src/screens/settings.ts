// Settings: output device, output latency offset, cache size, location source; the cache.

import type { Route, Screen } from "../app";
import { field, h, showError } from "../dom";
import { formatBytes } from "../session-state";
import type { LocationMode } from "../settings";

export const settingsScreen = (back: Route): Screen => (root, ctx) => {
  const s = ctx.settings;
  const output = h("input", { name: "output", value: s.output, list: "outputs" });
  const outputs = h("datalist", { id: "outputs" }, h("option", { value: "default" }), h("option", { value: "null" }));
  const latency = h("input", { name: "latency", type: "number", step: 1, min: -500, max: 500, value: s.latencyOffsetMs });
  const cacheLimit = h("input", { name: "cache-limit", type: "number", min: 64, step: 64, value: s.cacheLimitMiB });
  const mode = h("select", { name: "location-mode" },
    ...(["manual", "device", "replay", "gpsd"] as const).map((m) =>
      h("option", { value: m, selected: m === s.locationMode }, {
        manual: "Entered by hand", device: "This device (phones)", replay: "Replay an NMEA/GPX file", gpsd: "gpsd receiver",
      }[m])));
  const locationArg = h("input", { name: "location-arg", value: s.locationArg, placeholder: "file path or host:port" });
  const displayName = h("input", { name: "display-name", value: s.displayName });
  const saved = h("p", { class: "hint", role: "status" });
  const error = h("p", { class: "error", role: "alert" });
  const cacheStats = h("p", { "data-testid": "cache-stats" }, "…");

  const form = h("form", { class: "card" },
    field("Output device", output), outputs,
    field("Output latency offset (ms)", latency),
    field("Cache size limit (MiB)", cacheLimit),
    field("Location source", mode),
    field("Location file or address", locationArg),
    field("Name in the session", displayName),
    h("p", { class: "hint" }, "Output, location source and name apply when a session opens. The latency offset and cache limit are kept here until the node takes them."),
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Save")),
    saved);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    ctx.saveSettings({
      ...ctx.settings,
      output: output.value.trim() || "default",
      latencyOffsetMs: Number(latency.value) || 0,
      cacheLimitMiB: Math.max(64, Number(cacheLimit.value) || 64),
      locationMode: mode.value as LocationMode,
      locationArg: locationArg.value.trim(),
      displayName: displayName.value.trim(),
    });
    saved.textContent = "Saved.";
  });

  const showCache = (p: Promise<{ tracks: number; bytes: number; dir: string }>): void => {
    void p.then(
      (c) => { cacheStats.textContent = `${c.tracks} tracks, ${formatBytes(c.bytes)} in ${c.dir}`; },
      (err: unknown) => { cacheStats.textContent = ""; showError(error, err); },
    );
  };
  const clear = h("button", { type: "button" }, "Clear the cache");
  clear.addEventListener("click", () => showCache(ctx.backend.cacheClear()));
  const backButton = h("button", { type: "button" }, "Back");
  backButton.addEventListener("click", () => ctx.go(back));

  root.append(h("main", { class: "screen settings", "data-screen": "settings" },
    h("header", { class: "row spread" }, h("h1", { tabindex: -1 }, "Settings"), backButton),
    form,
    h("section", { class: "card", "aria-labelledby": "cache-h" }, h("h2", { id: "cache-h" }, "Track cache"), cacheStats, clear, error)));
  output.focus();
  showCache(ctx.backend.cacheInfo());
  return () => undefined;
};
