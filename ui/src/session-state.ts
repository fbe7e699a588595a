// The session as the UI shows it, folded from node events. Pure: no DOM, no backend.

import type { CacheSummary, EtaView, LinkPath, NodeEvent, Participant, PendingChange, PeerState, Tier, Track, UserId } from "./backend";

export type LinkState = "socket" | "peer" | "offline";

/** A member's last fix: the node's `location` event without its tag. */
export type MemberPosition = Omit<Extract<NodeEvent, { event: "location" }>, "event">;

/** A message the mesh refused (a forged or unauthorised command), as the node reports it. */
export type MeshRefusal = Omit<Extract<NodeEvent, { event: "mesh-refused" }>, "event">;

/** Refusals kept for the people screen (newest first). */
export const MAX_REFUSALS = 5;

/** The group's meeting point and each car's way there. */
export interface Regroup {
  latitude: number;
  longitude: number;
  setBy: UserId;
  etas: EtaView[];
}

export interface SessionState {
  me: UserId | null;
  tier: Tier;
  tierReason: string;
  queued: number;
  participants: Participant[];
  peers: Map<UserId, PeerState>;
  /** Round-trip time of each peer link, ms (when the mesh measured it). */
  rtt: Map<UserId, number>;
  /** How each open peer link goes (when the node knows): straight or through a TURN relay. */
  paths: Map<UserId, LinkPath>;
  /** Messages refused over the mesh (newest first, at most MAX_REFUSALS). */
  refused: MeshRefusal[];
  /** Gaps in this device's sound since the output opened, and their total length (ms). */
  underruns: number;
  underrunMs: number;
  playlist: Track[];
  controller: UserId | null;
  playing: boolean;
  track: string | null;
  /** Seconds at `receivedAt` (ms, `performance.now()` of this page). */
  position: number;
  receivedAt: number;
  cache: CacheSummary;
  /** The output and latency offset the node reports using. */
  output: string;
  latencyOffsetMs: number;
  /** The sync meter: how far ahead (positive) of the group this device is heard, ms;
   * null while the node has measured nothing (paused, just started). */
  syncOffsetMs: number | null;
  positions: Map<UserId, MemberPosition>;
  /** Whether this device shares its position (off until the user turns it on). */
  sharing: boolean;
  /** The groups of cars travelling together. */
  together: UserId[][];
  regroup: Regroup | null;
  /** Cars falling behind the group, by how far (m). */
  behind: Map<UserId, number>;
  lastError: string | null;
  /** The track this device cannot play (a YouTube video on a device without YouTube's
   * player), and why: silent for it, in step for the next. */
  silent: { track: string; reason: string } | null;
  /** The track this device waits for the bytes of (silent meanwhile, in step once they come). */
  buffering: string | null;
  /** Changes made offline, waiting for the server (oldest first). */
  pending: PendingChange[];
}

export function initialState(me: UserId | null = null): SessionState {
  return {
    me,
    tier: "offline",
    tierReason: "connecting",
    queued: 0,
    participants: [],
    peers: new Map(),
    rtt: new Map(),
    paths: new Map(),
    refused: [],
    underruns: 0,
    underrunMs: 0,
    playlist: [],
    controller: null,
    playing: false,
    track: null,
    position: 0,
    receivedAt: 0,
    cache: { tracks: 0, bytes: 0, hits: 0, misses: 0, max_bytes: 0, max_tracks: 0 },
    output: "",
    latencyOffsetMs: 0,
    syncOffsetMs: null,
    positions: new Map(),
    sharing: false,
    together: [],
    regroup: null,
    behind: new Map(),
    lastError: null,
    silent: null,
    buffering: null,
    pending: [],
  };
}

/** Folds one event into the state (mutates and returns it). */
export function apply(s: SessionState, ev: NodeEvent, now: number): SessionState {
  switch (ev.event) {
    case "ready":
      s.me = ev.userId;
      break;
    case "participants":
      s.participants = ev.participants;
      break;
    case "playlist":
      s.playlist = ev.playlist;
      break;
    case "controller":
      s.controller = ev.userId;
      break;
    case "playback":
      if (s.silent !== null && ev.track !== s.silent.track) s.silent = null;
      s.playing = ev.playing;
      s.track = ev.track;
      s.position = ev.position;
      s.receivedAt = now;
      s.syncOffsetMs = ev.playing ? ev.sync_offset_ms ?? null : null;
      break;
    case "status":
      s.tier = ev.tier;
      s.queued = ev.queued;
      s.cache = ev.cache;
      s.output = ev.output;
      s.latencyOffsetMs = ev.latency_offset_ms;
      s.syncOffsetMs = ev.playing ? ev.sync_offset_ms ?? null : null;
      s.underruns = ev.underruns;
      s.underrunMs = ev.underrun_ms;
      s.buffering = ev.buffering ?? null;
      s.playing = ev.playing;
      s.track = ev.track;
      if (ev.position !== null) {
        s.position = ev.position;
        s.receivedAt = now;
      }
      break;
    case "calibration":
      s.latencyOffsetMs = ev.latency_offset_ms;
      break;
    case "tier":
      s.tier = ev.tier;
      s.tierReason = ev.reason;
      break;
    case "peer":
      s.peers.set(ev.userId, ev.state);
      if (ev.state !== "connected") {
        s.rtt.delete(ev.userId);
        s.paths.delete(ev.userId);
      } else {
        if (typeof ev.rtt_ms === "number") s.rtt.set(ev.userId, ev.rtt_ms);
        if (ev.path === "direct" || ev.path === "relay") s.paths.set(ev.userId, ev.path);
      }
      break;
    case "mesh-refused":
      {
        const { event: _, ...r } = ev;
        // One line per sender, kind and reason: the newest words, every refusal counted
        // (the node reports how many since its last report).
        const same = (x: MeshRefusal): boolean => x.from === r.from && x.type === r.type && x.reason === r.reason;
        const before = s.refused.find(same)?.count ?? 0;
        s.refused = [{ ...r, count: before + r.count }, ...s.refused.filter((x) => !same(x))].slice(0, MAX_REFUSALS);
      }
      break;
    case "location":
      {
        const { event: _, ...fix } = ev;
        s.positions.set(ev.userId, fix);
      }
      break;
    case "location-off":
      s.positions.delete(ev.userId);
      s.behind.delete(ev.userId);
      break;
    case "last-positions":
      // Kept from an earlier run: shown until a live fix replaces them.
      for (const p of ev.positions) {
        if (!s.positions.has(p.userId)) {
          s.positions.set(p.userId, { userId: p.userId, latitude: p.latitude, longitude: p.longitude, speed: p.speed, heading: p.heading, together: [] });
        }
      }
      break;
    case "sharing":
      s.sharing = ev.enabled;
      break;
    case "together":
      s.together = ev.groups;
      break;
    case "regroup":
      s.regroup = { latitude: ev.latitude, longitude: ev.longitude, setBy: ev.setBy, etas: ev.etas };
      break;
    case "regroup-cleared":
      s.regroup = null;
      break;
    case "falling-behind":
      s.behind.set(ev.userId, ev.behind_m);
      break;
    case "caught-up":
      s.behind.delete(ev.userId);
      break;
    case "error":
      s.lastError = ev.cmd ? `${ev.cmd}: ${ev.message}` : ev.message;
      break;
    case "not-playable":
      s.silent = { track: ev.track, reason: ev.reason };
      break;
    case "buffering":
      if (ev.buffering) s.buffering = ev.track;
      else if (s.buffering === ev.track) s.buffering = null;
      break;
    case "outbox":
      s.pending = ev.pending;
      break;
    case "progress":
    case "outputs":
      break;
  }
  return s;
}

/** The position now: extrapolated from the last report while playing, capped at the track's end. */
export function positionAt(s: SessionState, now: number): number {
  const base = s.playing ? s.position + Math.max(0, now - s.receivedAt) / 1000 : s.position;
  const d = currentTrack(s)?.duration;
  return d !== undefined && d > 0 ? Math.min(base, d) : base;
}

export function currentTrack(s: SessionState): Track | undefined {
  return s.playlist.find((t) => t.id === s.track);
}

export function isDj(s: SessionState): boolean {
  return s.me !== null && s.controller === s.me;
}

/** How a group member is reached: a direct peer link, the server socket, or not at all. */
export function linkState(s: SessionState, userId: UserId): LinkState {
  if (s.peers.get(userId) === "connected") return "peer";
  if (s.participants.some((p) => p.userId === userId)) return "socket";
  return "offline";
}

/** Moves the item at `from` to `to` (both clamped); returns the new order of ids. */
export function moved(ids: readonly string[], from: number, to: number): string[] {
  const out = [...ids];
  if (from < 0 || from >= out.length) return out;
  const [item] = out.splice(from, 1);
  const at = Math.max(0, Math.min(to, out.length));
  if (item !== undefined) out.splice(at, 0, item);
  return out;
}

export { formatBytes, formatTime } from "./words";
