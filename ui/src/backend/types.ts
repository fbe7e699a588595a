// Payload types of the app's commands and events. They mirror jamz-node's
// `NodeCommand` / `NodeEvent` (NODE_CONTROL.md) and jamz-proto's wire types.

export type UserId = number;

export interface Track {
  id: string;
  title: string;
  artist: string;
  source?: string;
  url?: string;
  album_art?: string;
  duration?: number;
  size?: number;
  sha256?: string;
  uploaded_by?: UserId;
}

export interface Group {
  id: string;
  name: string;
  description: string;
  creator_id: UserId;
  members: UserId[];
}

export interface Account {
  server: string;
  username: string;
  userId: UserId;
}

export interface AppInfo {
  version: string;
  mobile: boolean;
  hosting: Hosted | null;
  sessionGroup: string | null;
}

export interface Hosted {
  /** The URL this device uses. */
  url: string;
  port: number;
  /** What other cars type in: this device's address on each of its networks. */
  lanUrls: string[];
}

/** A change waiting for the server (made offline). */
export interface PendingChange {
  action: "add" | "upload" | "remove" | "reorder";
  label: string;
}

/** An audio output: `id` is the spec to pass as `output`. */
export interface Output {
  id: string;
  name: string;
  is_default: boolean;
}

export interface SessionInfo {
  groupId: string;
  userId: UserId;
  sessionId: string;
}

export interface CacheInfo {
  dir: string;
  tracks: number;
  bytes: number;
}

export type Tier = "socket" | "mesh" | "offline";
export type PeerState = "connecting" | "connected" | "closed";

export interface Participant {
  userId: UserId;
  display_name: string | null;
  socketId: string;
}

export interface CacheSummary {
  tracks: number;
  bytes: number;
  hits: number;
  misses: number;
  max_bytes: number;
  max_tracks: number;
}

export type NodeCommand =
  | { cmd: "status" }
  | { cmd: "take-control" }
  | { cmd: "add"; path: string }
  | { cmd: "add"; track: Track }
  | { cmd: "remove"; track: string }
  | { cmd: "reorder"; order: string[] }
  | { cmd: "play"; track?: string; position?: number }
  | { cmd: "pause" }
  | { cmd: "seek"; position: number }
  | { cmd: "next" }
  | { cmd: "previous" }
  | { cmd: "volume"; level: number }
  | { cmd: "preload" }
  | {
      cmd: "location";
      latitude: number;
      longitude: number;
      speed?: number;
      heading?: number;
    }
  | { cmd: "quit" }
  // Beyond NODE_CONTROL.md: settings applied while a session runs.
  | { cmd: "latency-offset"; ms: number }
  | { cmd: "cache-limit"; bytes: number; tracks?: number }
  | { cmd: "cache-clear" }
  | { cmd: "output"; spec: string }
  | { cmd: "outputs" }
  | { cmd: "auto-preload"; enabled: boolean };

export type NodeEvent =
  | { event: "ready"; userId: UserId; sessionId: string; socketId: string }
  | { event: "participants"; participants: Participant[] }
  | { event: "playlist"; playlist: Track[] }
  | { event: "controller"; userId: UserId | null }
  | {
      event: "playback";
      playing: boolean;
      track: string | null;
      position: number;
      at: number;
    }
  | {
      event: "status";
      tier: Tier;
      playing: boolean;
      track: string | null;
      position: number | null;
      clock_offset_ms: number | null;
      drift_ms: number | null;
      peers: number;
      cache: CacheSummary;
      queued: number;
      output: string;
      latency_offset_ms: number;
    }
  | { event: "tier"; tier: Tier; reason: string }
  | { event: "peer"; userId: UserId; state: PeerState }
  | {
      event: "location";
      userId: UserId;
      latitude: number;
      longitude: number;
      speed: number | null;
      heading: number | null;
      together: UserId[];
    }
  | { event: "progress"; what: string; done: number; total: number }
  | { event: "outputs"; outputs: Output[] }
  | { event: "outbox"; pending: PendingChange[] }
  | { event: "error"; message: string; cmd?: string };

export type ProgressEvent = Extract<NodeEvent, { event: "progress" }>;

export interface SessionEnded {
  reason: string | null;
}

export interface OpenSessionArgs {
  groupId: string;
  displayName?: string;
  output?: string;
  location?: string;
  latencyOffsetMs?: number;
  cacheMaxMib?: number;
  autoPreload?: boolean;
}

export interface Position {
  latitude: number;
  longitude: number;
  speed?: number;
  heading?: number;
}
