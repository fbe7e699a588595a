// The only module that talks to Rust (the only importer of `@tauri-apps/*`).
// Everything else in the UI calls these functions and never knows about Tauri.

import { Channel, convertFileSrc, invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type {
  Account,
  AppInfo,
  Calibrated,
  CacheInfo,
  ErrorView,
  Group,
  Hosted,
  JoinLink,
  LocationSourceView,
  LogoutOutcome,
  MapTilesInfo,
  NodeCommand,
  NodeEvent,
  OpenSessionArgs,
  Output,
  Position,
  ProgressEvent,
  SessionEnded,
  SessionInfo,
} from "./types";

export type * from "./types";

/** A command failed: `code` is stable and machine-readable, `message` is for people. */
export class BackendError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "BackendError";
    this.code = code;
  }
}

function isCodedError(e: unknown): e is ErrorView {
  return (
    typeof e === "object" &&
    e !== null &&
    typeof (e as { code?: unknown }).code === "string" &&
    typeof (e as { message?: unknown }).message === "string"
  );
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e: unknown) {
    if (isCodedError(e)) throw new BackendError(e.code, e.message);
    throw new BackendError("ipc", e instanceof Error ? e.message : String(e));
  }
}

/** `maptile://localhost/`, or `http://maptile.localhost/` where the platform wants that. */
function tileBase(): string {
  try {
    return convertFileSrc("", "maptile");
  } catch {
    // No Tauri (the UI's unit tests): the form most platforms use.
    return "maptile://localhost/";
  }
}

export const NODE_EVENT = "node-event";
export const SESSION_ENDED = "session-ended";
/** A `trafficjamz://` link handed over by a second launch of the app. */
export const JOIN_LINK = "join-link";

export const backend = {
  appInfo: (): Promise<AppInfo> => call("app_info"),
  /** Tells the shell the first screen is painted (start-up measurement). */
  firstPaint: (): Promise<void> => call("first_paint"),

  hostSession: (port?: number): Promise<Hosted> => call("host_session", { port: port ?? null }),
  stopHosting: (): Promise<void> => call("stop_hosting"),

  register: (server: string, username: string, email: string, password: string): Promise<Account> =>
    call("register", { args: { server, username, email, password } }),
  login: (server: string, username: string, password: string): Promise<Account> =>
    call("login", { args: { server, username, password } }),
  currentAccount: (): Promise<Account | null> => call("current_account"),
  /** Revokes the account's tokens on the server (when it answers) and forgets the login here. */
  logout: (): Promise<LogoutOutcome> => call("logout"),
  changePassword: (currentPassword: string, newPassword: string): Promise<Account> =>
    call("change_password", { args: { currentPassword, newPassword } }),

  listGroups: (): Promise<Group[]> => call("list_groups"),
  createGroup: (name: string, description?: string): Promise<Group> =>
    call("create_group", { name, description: description ?? null }),
  addMember: (groupId: string, username: string): Promise<Group> =>
    call("add_member", { groupId, username }),
  /** Leaves a group: its session and map no longer include this account. */
  leaveGroup: (groupId: string): Promise<void> => call("leave_group", { groupId }),

  /** Starts the node; `onProgress` receives upload and preload progress. */
  openSession: (args: OpenSessionArgs, onProgress: (p: ProgressEvent) => void): Promise<SessionInfo> => {
    const channel = new Channel<NodeEvent>();
    channel.onmessage = (ev) => {
      if (ev.event === "progress") onProgress(ev);
    };
    return call("open_session", { args, onProgress: channel });
  },
  leaveSession: (): Promise<void> => call("leave_session"),
  command: (command: NodeCommand): Promise<void> => call("node_command", { command }),

  pickAudioFiles: (): Promise<string[]> => call("pick_audio_files"),
  /** The native picker for a recorded drive (NMEA or GPX) to replay; `null`: cancelled. */
  pickReplayFile: (): Promise<string | null> => call("pick_replay_file"),
  cacheInfo: (): Promise<CacheInfo> => call("cache_info"),
  /** The cover art in the tags of the cached file with this SHA-256, as a `data:` URL; `null` when none. */
  coverArt: (sha256: string): Promise<string | null> => call("cover_art", { sha256 }),
  cacheClear: (): Promise<CacheInfo> => call("cache_clear"),
  listOutputs: (): Promise<Output[]> => call("list_outputs"),
  /** "Calibrate this car's speakers" outside a session: plays probes on `output` and listens with the microphone. */
  calibrateOutput: (output: string, latencyOffsetMs: number): Promise<Calibrated> =>
    call("calibrate_output", { output, latencyOffsetMs }),
  /** The location sources found on this device (`manual` always first). */
  locationSources: (): Promise<LocationSourceView[]> => call("location_sources"),
  /** Where the map's tiles come from (a URL template with {z}/{x}/{y}), or `null`: none. */
  setMapTiles: (template: string | null): Promise<MapTilesInfo> => call("set_map_tiles", { template }),
  /** The tile cache: tiles on this device, shown from it, fetched. */
  mapTilesInfo: (): Promise<MapTilesInfo> => call("map_tiles_info"),
  /**
   * The tile layer's URL template: the shell's `maptile:` protocol, which serves each
   * tile from the device's tile cache or the tile server (the web view reaches no
   * tile server itself). `map` makes each map's URLs its own, so a new map asks the
   * shell again rather than reuse pictures the web view kept.
   */
  mapTileUrl: (map: number): string => `${tileBase()}{z}/{x}/{y}?map=${map}`,
  /** The `trafficjamz://` link the app was started with (once), or `null`. */
  launchLink: (): Promise<string | null> => call("launch_link"),
  /** Reads a join link (refused in words when it is not one). */
  readJoinLink: (link: string): Promise<JoinLink> => call("read_join_link", { link }),
  /** The join link (and QR code) to `group` on `server`, for a hosting device to show. */
  makeJoinLink: (server: string, group: string | null, name: string | null): Promise<JoinLink> =>
    call("make_join_link", { server, group, name }),
  /** "Copy diagnostics": the app's version, state and the end of its log file, as text. */
  diagnostics: (): Promise<string> => call("diagnostics"),

  /** Every node event but `progress`. */
  onNodeEvent: (handler: (ev: NodeEvent) => void): Promise<UnlistenFn> =>
    listen<NodeEvent>(NODE_EVENT, (e) => handler(e.payload)),
  onSessionEnded: (handler: (ev: SessionEnded) => void): Promise<UnlistenFn> =>
    listen<SessionEnded>(SESSION_ENDED, (e) => handler(e.payload)),
  /** Join links a second launch of the app handed over while it runs. */
  onJoinLink: (handler: (link: string) => void): Promise<UnlistenFn> =>
    listen<string>(JOIN_LINK, (e) => handler(e.payload)),

  /** The device's position from tauri-plugin-geolocation (phones and tablets only). */
  devicePosition: async (): Promise<Position> => {
    // Android and iOS ask the user once; a refusal is the user's to undo in the settings.
    type Permission = "granted" | "denied" | "prompt" | "prompt-with-rationale";
    let perm = await call<{ location: Permission }>("plugin:geolocation|check_permissions");
    if (perm.location !== "granted") {
      perm = await call<{ location: Permission }>("plugin:geolocation|request_permissions", { permissions: ["location"] });
    }
    if (perm.location !== "granted") {
      throw new BackendError("permission", "Location access is not allowed: allow it for TrafficJamz in the system settings, or enter positions by hand.");
    }
    const p = await call<{ coords: { latitude: number; longitude: number; speed: number | null; heading: number | null } }>(
      "plugin:geolocation|get_current_position",
      { options: { enableHighAccuracy: true, timeout: 10000, maximumAge: 0 } },
    );
    const pos: Position = { latitude: p.coords.latitude, longitude: p.coords.longitude };
    if (p.coords.speed !== null) pos.speed = p.coords.speed;
    if (p.coords.heading !== null) pos.heading = p.coords.heading;
    return pos;
  },
};

export type Backend = typeof backend;
export type { UnlistenFn };
