// The settings form, shared by the settings screen (before a session) and the
// session's settings panel, where output, latency offset and cache limit apply
// at once through node commands.

import type { Calibrated, LocationSourceView, NodeCommand, Output, PeerCalibrated } from "../backend";
import type { Ctx } from "../app";
import { field, h, showError } from "../dom";
import {
  defaultAttribution, locationFromSpec, locationSpecOf, MAX_ATTRIBUTION_LEN, MAX_LATENCY_OFFSET_MS, MIN_CACHE_MIB, iceServerList, iceServerRefusal, iceServerShown, sanitize, serverList, THEMES,
  type LocationMode, type Settings, type Theme,
} from "../settings";

const THEME_LABEL: Record<Theme, string> = {
  system: "Follow the system (day or night)",
  light: "Day",
  dark: "Night",
};

/** Label of the outputs that are not devices. */
const SPECIAL_OUTPUTS: Record<string, string> = {
  default: "System default",
  null: "No sound (keep time only)",
};

/** The name of the node's `desktop` source (as jamz-node's list gives it). */
export const DESKTOP_SOURCE_NAME = "This computer's location service (GeoClue, Location Services)";

/** The commands that make a running node match `next` (what changed since `prev`). */
export function liveCommands(prev: Settings, next: Settings): NodeCommand[] {
  const out: NodeCommand[] = [];
  if (next.output !== prev.output) out.push({ cmd: "output", spec: next.output });
  if (next.latencyOffsetMs !== prev.latencyOffsetMs) out.push({ cmd: "latency-offset", ms: next.latencyOffsetMs });
  if (next.cacheLimitMiB !== prev.cacheLimitMiB) out.push({ cmd: "cache-limit", bytes: next.cacheLimitMiB * 1024 * 1024 });
  if (next.autoPreload !== prev.autoPreload) out.push({ cmd: "auto-preload", enabled: next.autoPreload });
  return out;
}

/**
 * Options of the location select: the sources found on this device (by their node
 * spec), this device's own (phones), and the two that need a file or an address
 * (`replay`, `gpsd`: the field below shows for them). The saved choice is selected.
 */
export function locationOptions(found: readonly LocationSourceView[], current: Pick<Settings, "locationMode" | "locationArg">): { value: string; name: string; selected: boolean }[] {
  const saved = locationSpecOf(current);
  const opts: { value: string; name: string }[] = [...found.map((f) => ({ value: f.spec, name: f.name }))];
  if (!opts.some((o) => o.value === "manual")) opts.unshift({ value: "manual", name: "Entered by hand" });
  opts.push({ value: "device", name: "This device's own position (phones and tablets)" });
  // The desktop's location service, chosen before: kept while the list is still loading.
  if (current.locationMode === "desktop" && !opts.some((o) => o.value === "desktop")) {
    opts.push({ value: "desktop", name: DESKTOP_SOURCE_NAME });
  }
  if (current.locationMode === "nmea" && !opts.some((o) => o.value === saved)) {
    opts.push({ value: saved, name: `GPS receiver on ${current.locationArg} (not connected)` });
  }
  opts.push({ value: "replay", name: "Replay a recorded drive (NMEA or GPX file)" });
  opts.push({ value: "gpsd", name: "gpsd at an address" });
  const pick = opts.some((o) => o.value === saved) ? saved : current.locationMode;
  return opts.map((o) => ({ ...o, selected: o.value === pick }));
}

/** The settings' location fields for a value of the location select. */
export function locationChoice(value: string, arg: string): { locationMode: LocationMode; locationArg: string } {
  if (value === "replay" || value === "gpsd") return { locationMode: value, locationArg: arg.trim() };
  return locationFromSpec(value);
}

/** Options of the output select: the devices, `null`, and the saved spec if it is none of those (a `wav:` file). */
export function outputOptions(devices: readonly Output[], current: string): { id: string; name: string }[] {
  const opts = devices.map((d) => ({ id: d.id, name: SPECIAL_OUTPUTS[d.id] ?? d.name }));
  if (!opts.some((o) => o.id === "default")) opts.unshift({ id: "default", name: SPECIAL_OUTPUTS.default ?? "default" });
  opts.push({ id: "null", name: SPECIAL_OUTPUTS.null ?? "null" });
  if (!opts.some((o) => o.id === current)) opts.push({ id: current, name: current.startsWith("device:") ? `${current} (not connected)` : current });
  return opts;
}

/** "151.6 ms later", "3.0 ms earlier". */
const lateWords = (delayMs: number): string =>
  delayMs >= 0 ? `${delayMs.toFixed(1)} ms later` : `${(-delayMs).toFixed(1)} ms earlier`;

/** "8 of 9 probes agree, confidence 0.96". */
const agreementWords = (r: Pick<Calibrated, "agreeing" | "probes" | "confidence">): string =>
  `${r.agreeing} of ${r.probes} probes agree, confidence ${r.confidence.toFixed(2)}`;

/** A calibration's outcome in words. */
export function calibrationWords(r: Pick<Calibrated, "delay_ms" | "agreeing" | "probes" | "confidence" | "latency_offset_ms">): string {
  return `Heard ${lateWords(r.delay_ms)} than expected (${agreementWords(r)}): latency offset set to ${Math.round(r.latency_offset_ms)} ms.`;
}

/**
 * The outcome in words of a relative calibration this device's microphone made of
 * another member's speakers (`name`): how late they were heard against the offset they
 * played with, and their offset now.
 */
export function peerCalibrationWords(
  name: string,
  r: Pick<PeerCalibrated, "delay_ms" | "agreeing" | "probes" | "confidence" | "from_offset_ms" | "latency_offset_ms">,
): string {
  const was = Math.round(r.from_offset_ms);
  const now = Math.round(r.latency_offset_ms);
  const offset = was === now ? `their latency offset stays ${now} ms` : `their latency offset went from ${was} ms to ${now} ms`;
  return `${name}'s speakers were heard ${lateWords(r.delay_ms)} than expected (${agreementWords(r)}): ${offset}.`;
}

/**
 * Builds the form. `live` sends commands to the running node (in a session);
 * without it, changes apply when the next session opens. `onSave` hears every save
 * (what the session applies itself, such as the map's tiles).
 */
export function settingsForm(
  ctx: Ctx,
  live: ((c: NodeCommand) => Promise<void>) | null,
  onSave: (prev: Settings, next: Settings) => void = () => undefined,
): SettingsForm {
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
  const mode = h("select", { name: "location-mode" });
  const locationArg = h("input", { name: "location-arg", value: s.locationArg });
  const locationArgField = field("File to replay, or the gpsd address (host:port)", locationArg);
  // A drive to replay comes through the native file picker: the node replays only a file
  // the picker returned (docs/architecture.md, "Least privilege for the web view").
  const pickReplay = h("button", { type: "button", "data-action": "pick-replay" }, "Choose a recorded drive…");
  pickReplay.addEventListener("click", () => {
    void ctx.backend.pickReplayFile().then((file) => {
      if (file !== null) locationArg.value = file;
    }, (err: unknown) => showError(error, err));
  });
  const pickReplayRow = h("div", { class: "row" }, pickReplay);
  const showLocationArg = (): void => {
    locationArgField.hidden = mode.value !== "replay" && mode.value !== "gpsd";
    pickReplayRow.hidden = mode.value !== "replay";
  };
  mode.addEventListener("change", showLocationArg);
  const fillLocations = (found: readonly LocationSourceView[]): void => {
    mode.replaceChildren(...locationOptions(found, s).map((o) =>
      h("option", { value: o.value, selected: o.selected }, o.name)));
    showLocationArg();
  };
  fillLocations([]);
  const theme = h("select", { name: "theme" },
    ...THEMES.map((t) => h("option", { value: t, selected: t === s.theme }, THEME_LABEL[t])));
  const displayName = h("input", { name: "display-name", value: s.displayName });
  const mapTiles = h("input", { name: "map-tiles", value: s.mapTiles, placeholder: "https://tiles.example.org/{z}/{x}/{y}.png" });
  const mapAttribution = h("input", { name: "map-attribution", value: s.mapAttribution, maxlength: MAX_ATTRIBUTION_LEN, placeholder: "© the tile server's credit" });
  // The credit follows the address while it is the address's default (not typed over).
  let tilesBefore = mapTiles.value;
  mapTiles.addEventListener("input", () => {
    if (mapAttribution.value.trim() === defaultAttribution(tilesBefore)) mapAttribution.value = defaultAttribution(mapTiles.value);
    tilesBefore = mapTiles.value;
  });
  const youtubeOrigin = h("input", { name: "youtube-origin", value: s.youtubeOrigin, placeholder: "https://www.youtube.com" });
  const otherServers = h("input", { name: "other-servers", value: s.otherServers.join(", "), placeholder: "https://b.example:5050, https://c.example:5050" });
  const iceServers = h("input", { name: "ice-servers", value: s.iceServers.join(", "), placeholder: "stun:stun.example.org:3478, turn:user:password@relay.example.org:3478" });
  const saved = h("p", { class: "hint", role: "status", "data-testid": "settings-saved" });
  const error = h("p", { class: "error", role: "alert" });
  // For a bug report: the app's state and the end of its log file, to the clipboard.
  const copyDiagnostics = h("button", { type: "button", "data-action": "copy-diagnostics" }, "Copy diagnostics");
  copyDiagnostics.addEventListener("click", () => {
    void ctx.backend.diagnostics()
      .then((text) => navigator.clipboard.writeText(text))
      .then(() => { saved.textContent = "Diagnostics copied."; }, (err: unknown) => showError(error, err));
  });
  // "Calibrate this car's speakers": in a session the node measures the output in use
  // (its `calibration` event comes back to the session screen, which calls
  // `calibrated`); before one, the app measures the chosen output.
  const calibrate = h("button", { type: "button", "data-action": "calibrate" }, "Calibrate this car's speakers");
  const calibration = h("p", { class: "hint", role: "status", "data-testid": "calibration" },
    "Hold the microphone where you sit, keep the car quiet, and turn the volume up.");
  const calibrated = (r: Calibrated | Pick<Calibrated, "delay_ms" | "agreeing" | "probes" | "confidence" | "latency_offset_ms">): void => {
    calibrate.disabled = false;
    const ms = Math.round(r.latency_offset_ms);
    latency.value = String(ms);
    ctx.saveSettings(sanitize({ ...ctx.settings, latencyOffsetMs: ms }));
    calibration.textContent = calibrationWords(r);
  };
  const calibrationFailed = (err: unknown): void => {
    calibrate.disabled = false;
    calibration.textContent = "";
    showError(error, err);
  };
  calibrate.addEventListener("click", () => {
    showError(error, null);
    calibrate.disabled = true;
    calibration.textContent = "Listening… (about 8 seconds)";
    if (live) {
      void live({ cmd: "calibrate" }).catch(calibrationFailed);
    } else {
      void ctx.backend.calibrateOutput(output.value || "default", Number(latency.value) || 0).then(calibrated, calibrationFailed);
    }
  });
  const hint = live
    ? "Output, latency offset, the cache settings and the map's tiles apply now; location source and name when the session next opens."
    : "These apply when a session opens.";

  const form = h("form", { class: "card settings-form", "aria-label": "Settings" },
    field("Colours", theme),
    field("Output device", output),
    field(`Output latency offset (ms, 0-${MAX_LATENCY_OFFSET_MS}; a Bluetooth stereo adds 150-300)`, latency),
    h("div", { class: "row" }, calibrate),
    calibration,
    field("Cache size limit (MiB)", cacheLimit),
    h("label", { class: "check" }, autoPreload, h("span", {}, "Cache the playlist ahead while online, for stretches with no coverage")),
    field("Location source", mode),
    locationArgField,
    pickReplayRow,
    field("Name in the session", displayName),
    field("Map tiles address, with {z}/{x}/{y}; tiles seen are kept for offline use (empty: cars on a blank map)", mapTiles),
    field("Map credit, shown under the map (what the tile server's terms ask for)", mapAttribution),
    field("YouTube address (empty: YouTube's own; for tests)", youtubeOrigin),
    field("Other servers of the same backend, comma-separated (used when the server dies)", otherServers),
    field("STUN/TURN servers for the peer mesh, comma-separated (lets cars on different mobile networks link; a TURN relay, turn:user:password@host:3478, links cars whose networks allow nothing else; empty: same network only)", iceServers),
    h("p", { class: "hint" }, hint),
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Save"), copyDiagnostics),
    saved, error);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    showError(error, null);
    const ice = iceServerList(iceServers.value);
    if (ice.refused.length > 0) {
      // Each refused entry by name (its password left out: the alert is read aloud) and why.
      const why = ice.refused.map((u) => `${iceServerShown(u)}: ${iceServerRefusal(u) ?? "refused"}.`);
      showError(error, new Error(`Not saved, STUN/TURN servers refused: ${why.join(" ")}`));
      iceServers.setAttribute("aria-invalid", "true");
      iceServers.focus();
      return;
    }
    iceServers.removeAttribute("aria-invalid");
    const prev = ctx.settings;
    const next = sanitize({
      ...prev,
      output: output.value || "default",
      latencyOffsetMs: Number(latency.value),
      cacheLimitMiB: Number(cacheLimit.value),
      autoPreload: autoPreload.checked,
      ...locationChoice(mode.value, locationArg.value),
      displayName: displayName.value.trim(),
      mapTiles: mapTiles.value.trim(),
      mapAttribution: mapAttribution.value,
      youtubeOrigin: youtubeOrigin.value.trim(),
      otherServers: serverList(otherServers.value),
      iceServers: ice.kept,
      theme: theme.value as Theme,
    });
    latency.value = String(next.latencyOffsetMs);
    cacheLimit.value = String(next.cacheLimitMiB);
    ctx.saveSettings(next);
    mapAttribution.value = next.mapAttribution;
    onSave(prev, next);
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
  void ctx.backend.locationSources().then(fillLocations, () => undefined);
  return Object.assign(form, { calibrated, calibrationFailed });
}

/** The form, with what the session screen tells it of a calibration the node ran. */
export type SettingsForm = HTMLFormElement & {
  calibrated(r: Pick<Calibrated, "delay_ms" | "agreeing" | "probes" | "confidence" | "latency_offset_ms">): void;
  calibrationFailed(err: unknown): void;
};
