// Device settings, kept in this web view's localStorage (they are per device).

export type LocationMode = "manual" | "device" | "desktop" | "replay" | "gpsd" | "nmea";
const LOCATION_MODES: readonly LocationMode[] = ["manual", "device", "desktop", "replay", "gpsd", "nmea"];

/** Day or night colours: `system` follows the system's dark setting. */
export type Theme = "system" | "light" | "dark";
export const THEMES: readonly Theme[] = ["system", "light", "dark"];

export interface Settings {
  server: string;
  /**
   * Further servers of the same backend (processes sharing its database): the node moves to
   * one of them when the server it is on dies or shuts down (docs/node-control.md).
   */
  otherServers: string[];
  /**
   * STUN servers (`stun:host[:port]`) the peer mesh asks for this device's address outside
   * its NAT, so cars on different mobile networks can link (none: host addresses only).
   */
  iceServers: string[];
  /** jamz-audio output spec: `default`, `device:ID`, `null` or `wav:PATH`. */
  output: string;
  /** Extra latency of this device's output, 0-2000 ms (a Bluetooth stereo: 150-300). */
  latencyOffsetMs: number;
  cacheLimitMiB: number;
  locationMode: LocationMode;
  /** `replay:` file, `gpsd:` address or `nmea:` serial device for those modes. */
  locationArg: string;
  displayName: string;
  /** This device hosts the session: the server restarts with the app. */
  hosting: boolean;
  /** Cache every playlist track in the background while online. */
  autoPreload: boolean;
  /**
   * Map tiles (`https://.../{z}/{x}/{y}.png`), fetched and cached on disk by the shell;
   * empty: cars on a blank map, no tile server.
   */
  mapTiles: string;
  /**
   * The credit the tile server asks for, shown on the map (plain text). It follows the
   * tile address while the user has not changed it ([`defaultAttribution`]).
   */
  mapAttribution: string;
  theme: Theme;
  /** Where YouTube's IFrame API script (`{origin}/iframe_api`) and oEmbed answer; empty: YouTube's own. */
  youtubeOrigin: string;
  /** The first-run questions were answered (join or host, this car); until then the app asks. */
  setUp: boolean;
}

/**
 * OpenStreetMap's standard tiles. Their policy (operations.osmfoundation.org/policies/tiles)
 * asks for the attribution, an app that names itself (the shell's User-Agent), local
 * caching (7 days at least: the shell's tile cache) and no bulk downloads (tiles are
 * fetched only as the map shows them).
 */
export const OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";

/** OpenStreetMap's credit, as its licence asks (openstreetmap.org/copyright). */
export const OSM_ATTRIBUTION = "© OpenStreetMap contributors";

/** The longest credit kept: a line under the map, not a text. */
export const MAX_ATTRIBUTION_LEN = 300;

/**
 * The credit for a tile address when the user gave none: OpenStreetMap's for its own
 * tile servers (`tile.openstreetmap.org`, and `{s}.tile...` with its `a.`/`b.`/`c.` mirrors), else none (the
 * user types what that server's terms ask for).
 */
export function defaultAttribution(tiles: string): string {
  let host = "";
  try {
    host = new URL(tiles.trim().replace(/[{}]/g, "")).hostname;
  } catch {
    return "";
  }
  return /^([abcs]\.)?tile\.openstreetmap\.org$/.test(host) ? OSM_ATTRIBUTION : "";
}

export const DEFAULT_SETTINGS: Settings = {
  server: "http://127.0.0.1:5050",
  otherServers: [],
  iceServers: [],
  output: "default",
  latencyOffsetMs: 0,
  cacheLimitMiB: 2048,
  locationMode: "manual",
  locationArg: "",
  displayName: "",
  hosting: false,
  autoPreload: true,
  mapTiles: OSM_TILES,
  mapAttribution: OSM_ATTRIBUTION,
  theme: "system",
  youtubeOrigin: "",
  setUp: false,
};

const KEY = "trafficjamz.settings";

export function loadSettings(storage: Storage = localStorage): Settings {
  try {
    const raw = storage.getItem(KEY);
    if (!raw) return { ...DEFAULT_SETTINGS };
    const parsed = JSON.parse(raw) as Partial<Settings>;
    // Settings kept before the credit was one: the default for their tile address.
    const mapAttribution = typeof parsed.mapAttribution === "string"
      ? parsed.mapAttribution
      : defaultAttribution(typeof parsed.mapTiles === "string" ? parsed.mapTiles : DEFAULT_SETTINGS.mapTiles);
    return sanitize({ ...DEFAULT_SETTINGS, ...parsed, mapAttribution });
  } catch {
    return { ...DEFAULT_SETTINGS };
  }
}

/** Output latency offsets the node accepts, ms. */
export const MAX_LATENCY_OFFSET_MS = 2000;
/** Smallest cache limit offered, MiB (the node refuses under 16). */
export const MIN_CACHE_MIB = 64;

/** Keeps stored values within what the node accepts (older versions allowed negatives). */
export function sanitize(s: Settings): Settings {
  const latency = Number.isFinite(s.latencyOffsetMs) ? s.latencyOffsetMs : 0;
  const cache = Number.isFinite(s.cacheLimitMiB) ? s.cacheLimitMiB : DEFAULT_SETTINGS.cacheLimitMiB;
  return {
    ...s,
    latencyOffsetMs: Math.round(Math.min(MAX_LATENCY_OFFSET_MS, Math.max(0, latency))),
    cacheLimitMiB: Math.round(Math.max(MIN_CACHE_MIB, cache)),
    mapTiles: validTileUrl(s.mapTiles) ? s.mapTiles.trim() : "",
    mapAttribution: typeof s.mapAttribution === "string"
      ? s.mapAttribution.replace(/\s+/g, " ").trim().slice(0, MAX_ATTRIBUTION_LEN)
      : "",
    otherServers: serverList(s.otherServers),
    iceServers: iceServerList(s.iceServers).kept,
    theme: THEMES.includes(s.theme) ? s.theme : "system",
    locationMode: LOCATION_MODES.includes(s.locationMode) ? s.locationMode : "manual",
    setUp: s.setUp === true,
  };
}

/**
 * Server addresses as the settings keep them: `http(s)://` ones, trimmed, each once; from a
 * list or a comma-separated line (what the settings form has).
 */
export function serverList(value: unknown): string[] {
  const items = Array.isArray(value) ? value : typeof value === "string" ? value.split(",") : [];
  const out: string[] = [];
  for (const item of items) {
    if (typeof item !== "string") continue;
    const u = item.trim();
    if (/^https?:\/\/\S+$/.test(u) && !out.includes(u)) out.push(u);
  }
  return out;
}

/**
 * STUN server URLs as the settings keep them (`stun:host[:port]`, trimmed, each once), from a
 * list or a comma-separated line, and what was left out (a TURN relay, which the node does
 * not support, or anything else), for the form to say so.
 */
export function iceServerList(value: unknown): { kept: string[]; refused: string[] } {
  const items = Array.isArray(value) ? value : typeof value === "string" ? value.split(",") : [];
  const kept: string[] = [];
  const refused: string[] = [];
  for (const item of items) {
    if (typeof item !== "string") continue;
    const u = item.trim();
    if (u === "") continue;
    if (/^stun:[^\s/?#@]+$/i.test(u)) {
      if (!kept.includes(u)) kept.push(u);
    } else {
      refused.push(u);
    }
  }
  return { kept, refused };
}

/** A tile URL template Leaflet can use: http(s) with `{z}`, `{x}` and `{y}`. */
export function validTileUrl(url: unknown): url is string {
  if (typeof url !== "string") return false;
  const u = url.trim();
  return /^https?:\/\//.test(u) && ["{z}", "{x}", "{y}"].every((p) => u.includes(p));
}

export function saveSettings(s: Settings, storage: Storage = localStorage): void {
  storage.setItem(KEY, JSON.stringify(s));
}

/** The node's `location` option for these settings (manual and device fixes arrive as commands). */
export function nodeLocationSource(s: Settings): string {
  if (s.locationMode === "replay" && s.locationArg.trim()) return `replay:${s.locationArg.trim()}`;
  if (s.locationMode === "gpsd" && s.locationArg.trim()) return `gpsd:${s.locationArg.trim()}`;
  if (s.locationMode === "nmea" && s.locationArg.trim()) return `nmea:${s.locationArg.trim()}`;
  if (s.locationMode === "desktop") return "desktop";
  return "none";
}

/** Applies the theme to the document: `system` leaves it to `prefers-color-scheme`. */
export function applyTheme(theme: Theme, root: HTMLElement = document.documentElement): void {
  if (theme === "system") delete root.dataset.theme;
  else root.dataset.theme = theme;
}

/** A location choice as the settings keep it, from a detected source's node spec. */
export function locationFromSpec(spec: string): { locationMode: LocationMode; locationArg: string } {
  for (const mode of ["gpsd", "nmea", "replay"] as const) {
    if (spec.startsWith(`${mode}:`)) return { locationMode: mode, locationArg: spec.slice(mode.length + 1) };
  }
  const alone: LocationMode = spec === "device" || spec === "desktop" ? spec : "manual";
  return { locationMode: alone, locationArg: "" };
}

/** The node spec a location choice stands for (`device` for the phone's own). */
export function locationSpecOf(s: Pick<Settings, "locationMode" | "locationArg">): string {
  return s.locationMode === "manual" || s.locationMode === "device" || s.locationMode === "desktop"
    ? s.locationMode
    : `${s.locationMode}:${s.locationArg}`;
}
