// The settings form, shared by the settings screen (before a session) and the
// session's settings panel, where output, latency offset and cache limit apply
// at once through node commands.

import type { NodeCommand, Output } from "../backend";
import type { Ctx } from "../app";
import { field, h, showError } from "../dom";
import { MAX_LATENCY_OFFSET_MS, MIN_CACHE_MIB, sanitize, type LocationMode, type Settings } from "../settings";

/** Label of the outputs that are not devices. */
const SPECIAL_OUTPUTS: Record<string, string> = {
  default: "System default",
  null: "No sound (keep time only)",
};

/** The commands that make a running node match `next` (what changed since `prev`). */
export function liveCommands(prev: Settings, next: Settings): NodeCommand[] {
  const out: NodeCommand[] = [];
  if (next.output !== prev.output) out.push({ cmd: "output", spec: next.output });
  if (next.latencyOffsetMs !== prev.latencyOffsetMs) out.push({ cmd: "latency-offset", ms: next.latencyOffsetMs });
  if (next.cacheLimitMiB !== prev.cacheLimitMiB) out.push({ cmd: "cache-limit", bytes: next.cacheLimitMiB * 1024 * 1024 });
  if (next.autoPreload !== prev.autoPreload) out.push({ cmd: "auto-preload", enabled: next.autoPreload });
  return out;
}

/** Options of the output select: the devices, `null`, and the saved spec if it is none of those (a `wav:` file). */
export function outputOptions(devices: readonly Output[], current: string): { id: string; name: string }[] {
  const opts = devices.map((d) => ({ id: d.id, name: SPECIAL_OUTPUTS[d.id] ?? d.name }));
  if (!opts.some((o) => o.id === "default")) opts.unshift({ id: "default", name: SPECIAL_OUTPUTS.default ?? "default" });
  opts.push({ id: "null", name: SPECIAL_OUTPUTS.null ?? "null" });
  if (!opts.some((o) => o.id === current)) opts.push({ id: current, name: current.startsWith("device:") ? `${current} (not connected)` : current });
  return opts;
}

/**
 * Builds the form. `live` sends commands to the running node (in a session);
 * without it, changes apply when the next session opens.
 */
export function settingsForm(ctx: Ctx, live: ((c: NodeCommand) => Promise<void>) | null): HTMLFormElement {
  const s = ctx.settings;
  const output = h("select", { name: "output" });
  const fillOutputs = (devices: readonly Output[]): void => {
    output.replaceChildren(...outputOptions(devices, ctx.settings.output).map((o) =>
      h("option", { value: o.id, selected: o.id === ctx.settings.output }, o.name)));
  };
  fillOutputs([]);
  const latency = h("input", { name: "latency", type: "number", step: 1, min: 0, max: MAX_LATENCY_OFFSET_MS, value: s.latencyOffsetMs });
  const cacheLimit = h("input", { name: "cache-limit", type: "number", min: MIN_CACHE_MIB, step: 64, value: s.cacheLimitMiB });
  const autoPreload = h("input", { name: "auto-preload", type: "checkbox", checked: s.autoPreload });
  const mode = h("select", { name: "location-mode" },
    ...(["manual", "device", "replay", "gpsd"] as const).map((m) =>
      h("option", { value: m, selected: m === s.locationMode }, {
        manual: "Entered by hand", device: "This device (phones)", replay: "Replay an NMEA/GPX file", gpsd: "gpsd receiver",
      }[m])));
  const locationArg = h("input", { name: "location-arg", value: s.locationArg, placeholder: "file path or host:port" });
  const displayName = h("input", { name: "display-name", value: s.displayName });
  const mapTiles = h("input", { name: "map-tiles", value: s.mapTiles, placeholder: "https://tile.openstreetmap.org/{z}/{x}/{y}.png" });
  const saved = h("p", { class: "hint", role: "status", "data-testid": "settings-saved" });
  const error = h("p", { class: "error", role: "alert" });
  // For a bug report: the app's state and the end of its log file, to the clipboard.
  const copyDiagnostics = h("button", { type: "button", "data-action": "copy-diagnostics" }, "Copy diagnostics");
  copyDiagnostics.addEventListener("click", () => {
    void ctx.backend.diagnostics()
      .then((text) => navigator.clipboard.writeText(text))
      .then(() => { saved.textContent = "Diagnostics copied."; }, (err: unknown) => showError(error, err));
  });
  const hint = live
    ? "Output, latency offset and the cache settings apply now; location source and name when the session next opens."
    : "These apply when a session opens.";

  const form = h("form", { class: "card settings-form", "aria-label": "Settings" },
    field("Output device", output),
    field(`Output latency offset (ms, 0-${MAX_LATENCY_OFFSET_MS}; a Bluetooth stereo adds 150-300)`, latency),
    field("Cache size limit (MiB)", cacheLimit),
    h("label", { class: "check" }, autoPreload, h("span", {}, "Cache the playlist ahead while online, for stretches with no coverage")),
    field("Location source", mode),
    field("Location file or address", locationArg),
    field("Name in the session", displayName),
    field("Map tiles URL (empty: no tile server, cars on a blank map)", mapTiles),
    h("p", { class: "hint" }, hint),
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Save"), copyDiagnostics),
    saved, error);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    showError(error, null);
    const prev = ctx.settings;
    const next = sanitize({
      ...prev,
      output: output.value || "default",
      latencyOffsetMs: Number(latency.value),
      cacheLimitMiB: Number(cacheLimit.value),
      autoPreload: autoPreload.checked,
      locationMode: mode.value as LocationMode,
      locationArg: locationArg.value.trim(),
      displayName: displayName.value.trim(),
      mapTiles: mapTiles.value.trim(),
    });
    latency.value = String(next.latencyOffsetMs);
    cacheLimit.value = String(next.cacheLimitMiB);
    ctx.saveSettings(next);
    const commands = live ? liveCommands(prev, next) : [];
    saved.textContent = live && commands.length > 0 ? "Saved; applying…" : "Saved.";
    if (live && commands.length > 0) {
      void Promise.all(commands.map((c) => live(c))).then(
        () => { saved.textContent = "Saved and applied."; },
        (err: unknown) => { saved.textContent = "Saved."; showError(error, err); },
      );
    }
  });
  void ctx.backend.listOutputs().then(fillOutputs, (err: unknown) => showError(error, err));
  return form;
}
