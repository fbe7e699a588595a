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
   * ICE servers of the peer mesh: STUN servers (`stun:host[:port]`) it asks for this
   * device's address outside its NAT, so cars on different mobile networks can link, and
   * TURN relays (`turn:user:credential@host[:port]`) for cars whose networks allow nothing
   * else (none: host addresses only). See [`iceServerRefusal`].
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

/** The STUN and TURN port when a URL names none (RFC 8489 §18.6, RFC 8656 §18.3). */
export const DEFAULT_ICE_PORT = 3478;

// What Rust's `char::is_whitespace` and `str::trim` take for white space (Unicode
// White_Space), which the node's parser (jamz-mesh `ice_url`) refuses in a host.
const WS = "\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
const TRIM = new RegExp(`^[${WS}]+|[${WS}]+$`, "g");
const BAD_HOST = new RegExp(`[${WS}/?#@\\[\\]]`);

/**
 * `[v6]:port`, `[v6]`, `host:port` or `host` (no path, query or user part, port 1-65535):
 * the host and port, or null.
 */
function hostPort(rest: string): { host: string; port: number } | null {
  let host: string;
  let port: string | null;
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0) return null;
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after === "") port = null;
    else if (after.startsWith(":")) port = after.slice(1);
    else return null;
  } else {
    const colon = rest.lastIndexOf(":");
    host = colon < 0 ? rest : rest.slice(0, colon);
    port = colon < 0 ? null : rest.slice(colon + 1);
  }
  if (host === "" || BAD_HOST.test(host)) return null;
  if (port === null) return { host, port: DEFAULT_ICE_PORT };
  if (!/^[0-9]+$/.test(port)) return null;
  const n = Number(port);
  return n >= 1 && n <= 65535 ? { host, port: n } : null;
}

/** `%XX` escapes decoded; null for a bad escape or bytes that are not UTF-8. */
function percentDecoded(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

/**
 * Why the node would refuse this ICE server URL, in words; null when it takes it. The
 * grammar is the node's (jamz-mesh `ice_url`):
 * - `stun:host`, `stun:host:port`, `stun:[v6]:port` (no user part);
 * - `turn:user:credential@host[:port][?transport=udp]`, user and credential both given and
 *   percent-encoded where they hold `:` or `@`: a TURN relay over UDP. TURN over TLS
 *   (`turns:`) and over TCP are not supported.
 * The scheme is case-insensitive; the port 1-65535, 3478 when none is given.
 */
export function iceServerRefusal(url: string): string | null {
  const u = url.replace(TRIM, "");
  const malformed = "not a STUN or TURN server address (stun:host[:port] or turn:user:password@host[:port])";
  const colon = u.indexOf(":");
  if (colon < 0) return malformed;
  const scheme = u.slice(0, colon);
  const rest = u.slice(colon + 1);
  if (/^stun$/i.test(scheme)) {
    if (rest.includes("@")) return "a STUN server takes no user name or password (stun:host[:port]); a relay with a password is turn:user:password@host[:port]";
    return hostPort(rest) ? null : malformed;
  }
  if (/^turns$/i.test(scheme)) return "TURN over TLS (turns:) is not supported; give turn:user:password@host[:port]";
  if (!/^turn$/i.test(scheme)) return malformed;
  const q = rest.indexOf("?");
  if (q >= 0 && !/^transport=udp$/i.test(rest.slice(q + 1))) {
    return "only UDP to a TURN relay is supported (?transport=udp or nothing), not TCP or TLS";
  }
  const beforeQuery = q < 0 ? rest : rest.slice(0, q);
  const noCredentials = "a TURN relay needs a user name and a password, both not empty: turn:user:password@host[:port] (%40 for an @ in them, %3A for a :)";
  const at = beforeQuery.lastIndexOf("@");
  if (at < 0) return noCredentials;
  const userinfo = beforeQuery.slice(0, at);
  const sep = userinfo.indexOf(":");
  if (sep < 0) return noCredentials;
  const user = percentDecoded(userinfo.slice(0, sep));
  const credential = percentDecoded(userinfo.slice(sep + 1));
  if (!user || !credential) return noCredentials;
  return hostPort(beforeQuery.slice(at + 1)) ? null : malformed;
}

/**
 * An ICE server URL as it may be shown (a refusal read out by a screen reader): the
 * password of a user part left out, `turn:user:…@host` (as the node shows it).
 */
export function iceServerShown(url: string): string {
  const u = url.replace(TRIM, "");
  const colon = u.indexOf(":");
  const at = u.lastIndexOf("@");
  if (colon < 0 || at < 0) return u;
  const scheme = u.slice(0, colon);
  const user = u.slice(colon + 1, Math.max(colon + 1, at)).split(":")[0];
  return `${scheme}:${user}:…@${u.slice(at + 1)}`;
}

/**
 * ICE server URLs as the settings keep them (STUN servers and TURN relays the node takes,
 * see [`iceServerRefusal`]; trimmed, each once), from a list or a comma-separated line, and
 * what was left out, for the form to say so.
 */
export function iceServerList(value: unknown): { kept: string[]; refused: string[] } {
  const items = Array.isArray(value) ? value : typeof value === "string" ? value.split(",") : [];
  const kept: string[] = [];
  const refused: string[] = [];
  for (const item of items) {
    if (typeof item !== "string") continue;
    const u = item.replace(TRIM, "");
    if (u === "") continue;
    if (iceServerRefusal(u) === null) {
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
