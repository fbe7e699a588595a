// Generated from the Rust types by jamz-node's `ui_types` (the `ts` feature): do not edit.
// After changing one of them: JAMZ_UPDATE_TS=1 cargo test -p jamz-node --test ui_types

/**
 * A date as the backends send it: milliseconds since the Unix epoch, or an
 * ISO-8601 string (MongoDB dates serialized by the web backend).
 */
export type DateValue = number | string;

export type TrackSource = "upload" | "youtube" | "spotify" | "unknown";

/**
 * A playable track. Encodes as docs/protocol.md's `Track`.
 */
export type Track = { 
/**
 * Empty when the track has not been given an id yet (a client proposing
 * it); then it is left out on the wire and the server assigns one.
 */
id: string, title: string, artist: string, source: TrackSource, 
/**
 * Empty for sources played by id (YouTube); then left out on the wire.
 */
url?: string, youtube_id?: string, spotify_preview_url?: string, album_art?: string, 
/**
 * Seconds.
 */
duration?: number, 
/**
 * Bytes of the file behind `url`.
 */
size?: number, 
/**
 * Lower-case hex SHA-256 of the file behind `url`.
 */
sha256?: string, uploaded_by?: number, created_at?: DateValue, };

export type Group = { id: string, name: string, description: string, creator_id: number, members: Array<number>, created_at?: DateValue | null, };

/**
 * One live connection of a member, as the user sees it (and as the node's `participants`
 * event lists it: docs/node-control.md spelling).
 */
export type ParticipantView = { userId: number, display_name: string | null, socketId: string, };

/**
 * Events for the user, in docs/node-control.md spelling: the node's `--json` events and
 * the app's session events are these, as they are (jamz-node's `NodeEvent::Session`), so
 * each is spelled once. Not every one is shown: `clock-estimate` and `resync` are logged.
 */
export type Notification = { "event": "ready", userId: number, sessionId: string, socketId: string, } | { "event": "playlist", playlist: Array<Track>, } | { "event": "controller", userId: number | null, } | { "event": "participants", participants: Array<ParticipantView>, } | { "event": "playback", playing: boolean, track: string | null, position: number, at: number, sync_offset_ms?: number | null, } | { "event": "not-playable", track: string, reason: string, } | { "event": "buffering", track: string, buffering: boolean, } | { "event": "error", message: string, cmd?: string | null, } | { "event": "clock-estimate", offset_ms: number, drift_ppm: number, rtt_ms: number | null, source: ClockSource, } | { "event": "tier", tier: Tier, reason: string, } | { "event": "resync", cause: RestartCause, } | { "event": "mesh-refused", from: number, via: number, type: string, reason: string, message: string, count: number, } | { "event": "peer-calibration" } & PeerCalibrated | LocationEvent;

/**
 * A relative calibration's figures: on the player, from the listener `user`; on the
 * listener, of the player `user`.
 */
export type PeerCalibrated = { userId: number, 
/**
 * How much later than the player reckoned (with `from_offset_ms` in force) the probes
 * were heard, ms.
 */
delay_ms: number, spread_ms: number, confidence: number, probes: number, agreeing: number, 
/**
 * The player's latency offset in force during the measurement, ms.
 */
from_offset_ms: number, 
/**
 * The player's latency offset from now on, ms.
 */
latency_offset_ms: number, };

/**
 * The local user's commands (docs/node-control.md); DJ-only ones are refused with an error
 * notification when this user is not the DJ. Spelled as the node's control lines spell them
 * (jamz-node's `NodeCommand::Session` carries them as they are), except `Add`: a line names a
 * file or a track, which the node uploads or checks before it hands the engine a `Track`.
 */
export type Command = { "cmd": "take-control" } | { "cmd": "play", track?: string | null, position?: number | null, } | { "cmd": "pause" } | { "cmd": "seek", position: number, } | { "cmd": "next" } | { "cmd": "previous" } | { "cmd": "remove", track: string, } | { "cmd": "reorder", order: Array<string>, };

/**
 * Where the engine's server clock estimate comes from, best first.
 */
export type ClockSource = "time-sync" | "session-state" | "seeds-rule";

/**
 * Why the engine restarted the player (every restart has one, see `Engine`'s restart path).
 */
export type RestartCause = { "cause": "drift", errorMs: number, } | { "cause": "silence" } | { "cause": "stall", gapMs: number, } | { "cause": "device-restored" } | { "cause": "output-switched" };

/**
 * A command, one JSON object per line on stdin.
 */
export type NodeCommand = { "cmd": "status" } | { "cmd": "add", path?: string | null, track?: Track | null, youtube?: string | null, duration?: number | null, } | { "cmd": "volume", level: number, } | { "cmd": "preload" } | { "cmd": "location", latitude: number, longitude: number, speed?: number | null, heading?: number | null, } | { "cmd": "share-location", enabled: boolean, duration_s?: number | null, } | { "cmd": "regroup", latitude: number, longitude: number, } | { "cmd": "regroup-clear" } | { "cmd": "quit" } | { "cmd": "latency-offset", ms: number, } | { "cmd": "cache-limit", bytes: number, tracks?: number | null, } | { "cmd": "cache-clear" } | { "cmd": "output", spec: string, } | { "cmd": "outputs" } | { "cmd": "auto-preload", enabled: boolean, } | { "cmd": "youtube-reading", video: string, position: number, state: number, duration?: number | null, } | { "cmd": "youtube-error", video: string, code: number, } | { "cmd": "calibrate", probes?: number | null, } | { "cmd": "calibrate-peer", user: number, probes?: number | null, } | Command;

/**
 * An event, one JSON object per line on stdout: the engine's [`Notification`]s as they
 * are (`ready`, `playlist`, `controller`, `participants`, `playback`, `tier`, `error`),
 * and what only the node knows.
 */
export type NodeEvent = { "event": "status" } & StatusView | { "event": "peer", userId: number, state: PeerState, rtt_ms?: number | null, path?: LinkPath | null, } | { "event": "progress", what: string, done: number, total: number, } | { "event": "outputs", outputs: Array<OutputView>, } | { "event": "calibration", delay_ms: number, spread_ms: number, confidence: number, probes: number, agreeing: number, latency_offset_ms: number, 
/**
 * Set by another member's relative calibration: the listening member's user id
 * (absent for this device's own `calibrate`).
 */
from?: number, } | { "event": "outbox", pending: Array<PendingView>, } | { "event": "last-positions", positions: Array<KnownPosition>, } | { "event": "server", url: string, previous: string | null, notice: boolean, } | { "event": "youtube" } & VideoDirective | Notification;

/**
 * A directive for the app's YouTube IFrame player (`youtube` event).
 */
export type VideoDirective = { "do": "play", video: string, position: number, in_ms: number, } | { "do": "pause", video: string, position: number, } | { "do": "stop" };

/**
 * The `status` event's fields.
 */
export type StatusView = { tier: Tier, playing: boolean, track: string | null, 
/**
 * Seconds, this device's audio clock (`null` when nothing is loaded).
 */
position: number | null, clock_offset_ms: number | null, drift_ms: number | null, 
/**
 * The sync meter: how far ahead (positive) of the group's timeline this device is
 * heard, ms, the median of the last second's measurements (`jamz_sync::sync_meter`);
 * `null` while nothing was measured (paused, just started, silent) (beyond
 * docs/node-control.md).
 */
sync_offset_ms?: number | null, peers: number, cache: CacheSummary, queued: number, 
/**
 * The audio output in use (beyond docs/node-control.md).
 */
output: string, 
/**
 * The output latency offset in use, ms (beyond docs/node-control.md).
 */
latency_offset_ms: number, 
/**
 * Where the saved login's token is kept: `keyring` (the OS keyring) or
 * `file` (the 0600 credentials file, where no keyring answers); `null`
 * when the node was given a password (beyond docs/node-control.md).
 */
token_store: TokenStore | null, 
/**
 * Underruns of the output since it opened: stretches where the playing track's
 * decoding fell behind the device, played as silence and skipped over so the track
 * stays on the group's timeline (beyond docs/node-control.md).
 */
underruns: number, 
/**
 * The silence those underruns cost, ms (beyond docs/node-control.md).
 */
underrun_ms: number, 
/**
 * The track this device waits for the bytes of (still downloading: silent
 * meanwhile, in step once they are there), `null` otherwise (beyond
 * docs/node-control.md).
 */
buffering: string | null, 
/**
 * What the peer mesh carried (beyond docs/node-control.md); boxed to keep
 * [`NodeEvent`] small.
 */
mesh: MeshCounters, 
/**
 * The server the link is on now, as configured (one of `--server`'s), `null`
 * before the first connection (beyond docs/node-control.md).
 */
server?: string | null, };

/**
 * The `cache` object of a `status` event.
 */
export type CacheSummary = { tracks: number, bytes: number, hits: number, misses: number, 
/**
 * The size limits (beyond docs/node-control.md).
 */
max_bytes: number, max_tracks: number, };

/**
 * The `mesh` object of a `status` event (beyond docs/node-control.md): what the peer
 * mesh carried since the node started (docs/mesh-trust.md).
 */
export type MeshCounters = { 
/**
 * Messages this device sent signed (it is the DJ, under a grant naming its key).
 */
signed: number, 
/**
 * Messages obeyed that arrived relayed by another peer: each signed by the DJ's
 * device, the signature checked against the server's grant.
 */
relayed_in: number, 
/**
 * Copies of the DJ's messages this device passed on to its other peers.
 */
relayed: number, 
/**
 * Messages refused by the trust rules (each also a `mesh-refused` report, at most
 * one per peer and reason every 5 s).
 */
refused: number, 
/**
 * Messages admitted before and dropped as copies (another path, a replay).
 */
duplicates: number, 
/**
 * `webrtc-signal`s this device sent over the mesh (the server could not carry them).
 */
signals_sent: number, 
/**
 * Other members' signals this device carried on.
 */
signals_relayed: number, 
/**
 * Signals for this device that arrived over the mesh.
 */
signals_in: number, 
/**
 * **(ext)** `mesh-rejoin`s this device sent: it started from a kept session with the
 * server gone and asked peers for links (docs/node-control.md).
 */
rejoins_sent: number, 
/**
 * `mesh-rejoin`s for this device acted on: a restarted member asked it for a link.
 */
rejoins_in: number, 
/**
 * Messages taken that came straight to this device's mesh socket (a restarted
 * member's `mesh-rejoin` and signals, before its link is open).
 */
direct_in: number, };

/**
 * How this device reaches the group, as the engine judges both transports' health:
 * `socket` while the server link is up and answers; `mesh` when it does not but at least
 * one peer's mesh link is open (the DJ's controls still arrive); `offline` with neither
 * (playback goes on by the last clock estimate).
 */
export type Tier = "socket" | "mesh" | "offline";

/**
 * A peer connection's state.
 */
export type PeerState = "connecting" | "connected" | "closed";

/**
 * How a peer's mesh link goes, once its pair of addresses is chosen.
 */
export type LinkPath = "direct" | "relay";

/**
 * One change waiting for the server, as the `outbox` event lists it.
 */
export type PendingView = { 
/**
 * `add`, `upload`, `remove` or `reorder`.
 */
action: "add" | "upload" | "remove" | "reorder", 
/**
 * What to show a person: a track's title, a file's name.
 */
label: string, };

/**
 * One output device, as the `outputs` event lists it.
 */
export type OutputView = { 
/**
 * The spec to pass to `output` (`default`, `device:ID`).
 */
id: string, 
/**
 * What to show a person.
 */
name: string, is_default: boolean, };

/**
 * Location notifications (docs/node-control.md spelling; each serializes as one event).
 */
export type LocationEvent = { "event": "location", userId: number, latitude: number, longitude: number, speed: number | null, heading: number | null, together: Array<number>, } | { "event": "location-off", userId: number, } | { "event": "sharing", enabled: boolean, until: number | null, reason: string, } | { "event": "together", groups: Array<Array<number>>, } | { "event": "regroup", latitude: number, longitude: number, setBy: number, etas: Array<EtaView>, } | { "event": "regroup-cleared", userId: number, } | { "event": "falling-behind", userId: number, behind_m: number, } | { "event": "caught-up", userId: number, };

/**
 * One car's way to the regroup point, as the `regroup` event lists it.
 */
export type EtaView = { userId: number, 
/**
 * Straight-line distance, m.
 */
distance_m: number, 
/**
 * Rough time to get there, s; `null` for a car that is not moving.
 */
eta_s: number | null, arrived: boolean, };

/**
 * One member's last position, with when this device learnt it.
 */
export type KnownPosition = { userId: number, latitude: number, longitude: number, speed: number | null, heading: number | null, 
/**
 * Milliseconds since the Unix epoch (this device's clock) when it arrived.
 */
at: number, };

/**
 * Which store holds the saved login's token (shown by `status` and the app).
 */
export type TokenStore = "keyring" | "file";

/**
 * What the app shows about itself.
 */
export type AppInfo = { version: string, mobile: boolean, hosting: HostedView | null, 
/**
 * The group whose session is running.
 */
sessionGroup: string | null, };

/**
 * A hosted session as the UI shows it.
 */
export type HostedView = { 
/**
 * The URL this device uses.
 */
url: string, port: number, 
/**
 * What the other cars type in: this device's address on each of its networks.
 */
lanUrls: Array<string>, };

/**
 * A join link, read or made, as the UI shows it.
 */
export type JoinLinkView = { 
/**
 * `trafficjamz://join?server=...`, as written by this version.
 */
link: string, server: string, group: string | null, name: string | null, 
/**
 * The link as a QR code: an SVG document (black on white, with its quiet zone).
 */
qrSvg: string, };

/**
 * The map tiles as the UI shows them.
 */
export type MapTilesInfo = { 
/**
 * The tile URL template in use; `None`: no tile server (cars on a blank map).
 */
source: string | null, 
/**
 * Tiles on this device and their size on disk, within `max_bytes`.
 */
tiles: number, bytes: number, maxBytes: number, 
/**
 * Since the app started: tiles shown from this device, fetched, not available.
 */
fromCache: number, fetched: number, failed: number, };

/**
 * The signed-in account as the UI sees it (never the token).
 */
export type AccountView = { server: string, username: string, userId: number, 
/**
 * Where the token is kept on this device.
 */
tokenStore: TokenStore, };

/**
 * How a logout went: the saved login is always forgotten on this device; the
 * server revokes the account's tokens when it can be reached.
 */
export type LogoutOutcome = { 
/**
 * The server revoked every token of the account (on all its devices).
 */
revokedOnServer: boolean, 
/**
 * Why it could not, when it could not.
 */
problem: string | null, };

/**
 * What `open_session` takes (the app's session form).
 */
export type OpenArgs = { groupId: string, displayName?: string, 
/**
 * `default`, `null`, `wav:PATH` or `device:ID` (jamz-audio's output spec).
 */
output?: string, 
/**
 * `none`, `replay:FILE`, `gpsd:HOST:PORT` (manual and mobile fixes arrive as commands).
 */
location?: string, 
/**
 * Extra output latency, 0-2000 ms.
 */
latencyOffsetMs?: number, 
/**
 * Cache size limit, MiB.
 */
cacheMaxMib?: number, 
/**
 * Cache the playlist in the background while online (default: on).
 */
autoPreload?: boolean, 
/**
 * Share this car's position with the group from the start (default: off).
 */
shareLocation?: boolean, 
/**
 * Where YouTube answers oEmbed, a video's title (default: YouTube's own origin).
 */
youtubeOrigin?: string, 
/**
 * Further servers of the saved login's backend (processes sharing its database),
 * tried in turn when the one in use dies (docs/node-control.md, "Several servers").
 */
fallbackServers?: Array<string>, 
/**
 * ICE servers of the peer mesh (default: none, host addresses only): STUN servers
 * (`stun:host[:port]`) it asks for this device's address outside its NAT, TURN
 * servers (`turn:user:credential@host[:port]`) that relay where NATs allow nothing
 * else.
 */
iceServers?: Array<string>, };

/**
 * The session a node joined.
 */
export type SessionView = { groupId: string, userId: number, sessionId: string, };

/**
 * Sent once when the node stops, after its last event.
 */
export type SessionEnded = { 
/**
 * Why it stopped; `null` on a clean leave.
 */
reason: string | null, };

/**
 * The track cache on disk.
 */
export type CacheInfo = { dir: string, tracks: number, bytes: number, };

/**
 * One location source the app can offer.
 */
export type LocationSourceView = { 
/**
 * The node's `location` spec (`manual`, `desktop`, `gpsd:HOST:PORT`, `nmea:DEVICE`).
 */
spec: string, 
/**
 * What to show a person.
 */
name: string, };

/**
 * A calibration's figures and the latency offset they call for.
 */
export type Calibrated = { 
/**
 * How much later than the output reckoned (with `from_offset_ms` in force) the probes
 * were heard, ms.
 */
delay_ms: number, 
/**
 * The agreeing probes' delays lie within this, ms.
 */
spread_ms: number, 
/**
 * 0 to 1.
 */
confidence: number, probes: number, agreeing: number, 
/**
 * The latency offset in force during the measurement, ms.
 */
from_offset_ms: number, 
/**
 * The latency offset to use from now on, ms.
 */
latency_offset_ms: number, };

/**
 * An error as a face hands it on: the code to branch on and a message for people.
 */
export type ErrorView = { code: ErrorCode, message: string, };

/**
 * A stable, machine-readable name for a kind of failure (the app's `code`).
 */
export type ErrorCode = "bad-request" | "unauthorized" | "forbidden" | "not-found" | "conflict" | "too-large" | "throttled" | "too-slow" | "not-audio" | "server-error" | "unreachable" | "bad-url" | "link" | "not-logged-in" | "audio" | "cache" | "invalid" | "stopped" | "host" | "node" | "no-session" | "session-open" | "already-hosting";
