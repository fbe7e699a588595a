import { describe, expect, it } from "vitest";
import { distanceMeters, formatDistance, pairwiseDistances } from "../src/geo";
import { formatBytes, plural } from "../src/words";
import { apply, formatTime, initialState, isDj, linkState, MAX_REFUSALS, moved, positionAt } from "../src/session-state";
import { DEFAULT_SETTINGS, defaultAttribution, loadSettings, MAX_ATTRIBUTION_LEN, nodeLocationSource, OSM_ATTRIBUTION, sanitize, saveSettings, serverList, iceServerList, iceServerRefusal, iceServerShown } from "../src/settings";
import { DESKTOP_SOURCE_NAME, locationChoice, locationOptions } from "../src/screens/settings-form";
import { liveCommands, outputOptions } from "../src/screens/settings-form";
import { memoryStorage } from "./helpers";

describe("session state", () => {
  it("extrapolates the position while playing and holds it when paused", () => {
    const s = initialState(1);
    apply(s, { event: "playlist", playlist: [{ id: "a", title: "A", artist: "", source: "upload", duration: 100 }] }, 0);
    apply(s, { event: "playback", playing: true, track: "a", position: 10, at: 0 }, 1000);
    expect(positionAt(s, 3000)).toBeCloseTo(12);
    expect(positionAt(s, 1_000_000)).toBe(100);
    apply(s, { event: "playback", playing: false, track: "a", position: 12, at: 0 }, 3000);
    expect(positionAt(s, 9000)).toBe(12);
  });

  it("keeps the sync meter of the last playback or status while playing, and none when paused", () => {
    const s = initialState(1);
    apply(s, { event: "playback", playing: true, track: "a", position: 0, at: 0 }, 0);
    expect(s.syncOffsetMs).toBeNull();
    apply(s, { event: "playback", playing: true, track: "a", position: 1, at: 1000, sync_offset_ms: 12.5 }, 1000);
    expect(s.syncOffsetMs).toBe(12.5);
    apply(s, { event: "playback", playing: false, track: "a", position: 2, at: 2000, sync_offset_ms: 3 }, 2000);
    expect(s.syncOffsetMs).toBeNull();
  });

  it("keeps how each peer link goes while linked, once the node knows, and forgets it when the link closes", () => {
    const s = initialState(1);
    apply(s, { event: "peer", userId: 2, state: "connected", rtt_ms: 80, path: null }, 0);
    expect(s.paths.has(2)).toBe(false);
    apply(s, { event: "peer", userId: 2, state: "connected", rtt_ms: 80, path: "relay" }, 0);
    // A later report without the path keeps it.
    apply(s, { event: "peer", userId: 2, state: "connected", rtt_ms: 81 }, 0);
    expect(s.paths.get(2)).toBe("relay");
    apply(s, { event: "peer", userId: 2, state: "connected", path: "direct" }, 0);
    expect(s.paths.get(2)).toBe("direct");
    apply(s, { event: "peer", userId: 2, state: "connected", path: "relay" }, 0);
    apply(s, { event: "peer", userId: 3, state: "connected", path: "relay" }, 0);
    apply(s, { event: "peer", userId: 2, state: "closed" }, 0);
    expect(s.paths.has(2)).toBe(false);
    expect(s.paths.get(3)).toBe("relay");
    apply(s, { event: "peer", userId: 3, state: "connecting" }, 0);
    expect(s.paths.has(3)).toBe(false);
  });

  it("keeps peer round trips while linked, and the newest refusals, one per sender and reason", () => {
    const s = initialState(1);
    apply(s, { event: "peer", userId: 2, state: "connecting" }, 0);
    expect(s.rtt.has(2)).toBe(false);
    apply(s, { event: "peer", userId: 2, state: "connected", rtt_ms: 30 }, 0);
    apply(s, { event: "peer", userId: 2, state: "connected", rtt_ms: 55 }, 0);
    expect(s.rtt.get(2)).toBe(55);
    apply(s, { event: "peer", userId: 2, state: "closed" }, 0);
    expect(s.rtt.has(2)).toBe(false);
    const refused = (from: number, reason: string, count = 1) =>
      apply(s, { event: "mesh-refused", from, via: from, type: "control", reason, message: `${reason} from ${from}`, count }, 0);
    refused(3, "no-grant", 2);
    refused(4, "no-grant");
    refused(3, "no-grant", 5);
    expect(s.refused.map((r) => [r.from, r.count])).toEqual([[3, 7], [4, 1]]);
    for (let u = 10; u < 20; u++) refused(u, "not-controller");
    expect(s.refused.length).toBe(MAX_REFUSALS);
    expect(s.refused[0]?.from).toBe(19);
  });

  it("knows who is DJ and each member's link", () => {
    const s = initialState(1);
    apply(s, { event: "controller", userId: 1 }, 0);
    apply(s, { event: "participants", participants: [{ userId: 2, display_name: "Bo", socketId: "x" }] }, 0);
    apply(s, { event: "peer", userId: 3, state: "connected" }, 0);
    expect(isDj(s)).toBe(true);
    expect(linkState(s, 2)).toBe("socket");
    expect(linkState(s, 3)).toBe("peer");
    expect(linkState(s, 4)).toBe("offline");
  });

  it("moves a playlist item and clamps the target", () => {
    expect(moved(["a", "b", "c"], 0, 2)).toEqual(["b", "c", "a"]);
    expect(moved(["a", "b", "c"], 2, -5)).toEqual(["c", "a", "b"]);
    expect(moved(["a", "b"], 9, 0)).toEqual(["a", "b"]);
  });

  it("folds the convoy: together, the meeting point, a car behind, a car that stopped sharing", () => {
    const s = initialState(1);
    apply(s, { event: "last-positions", positions: [{ userId: 3, latitude: 48, longitude: 11, speed: null, heading: null, at: 0 }] }, 0);
    apply(s, { event: "location", userId: 2, latitude: 48.1, longitude: 11.5, speed: 20, heading: 0, together: [1] }, 0);
    apply(s, { event: "together", groups: [[1, 2]] }, 0);
    apply(s, { event: "regroup", latitude: 48.2, longitude: 11.6, setBy: 2, etas: [{ userId: 2, distance_m: 1000, eta_s: 65, arrived: false }] }, 0);
    apply(s, { event: "falling-behind", userId: 3, behind_m: 2500 }, 0);
    apply(s, { event: "sharing", enabled: true, until: null, reason: "turned on" }, 0);
    expect([...s.positions.keys()].sort()).toEqual([2, 3]);
    expect(s.together).toEqual([[1, 2]]);
    expect(s.regroup?.etas[0]?.eta_s).toBe(65);
    expect(s.behind.get(3)).toBe(2500);
    expect(s.sharing).toBe(true);
    apply(s, { event: "location-off", userId: 3 }, 0);
    apply(s, { event: "regroup-cleared", userId: 2 }, 0);
    expect([...s.positions.keys()]).toEqual([2]);
    expect(s.behind.size).toBe(0);
    expect(s.regroup).toBeNull();
  });

  it("keeps why this device is silent for a track until another plays", () => {
    const s = initialState(1);
    apply(s, { event: "playback", playing: true, track: "v", position: 0, at: 0 }, 0);
    apply(s, { event: "not-playable", track: "v", reason: "a YouTube video plays only in YouTube's own player" }, 0);
    expect(s.silent?.track).toBe("v");
    apply(s, { event: "playback", playing: true, track: "v", position: 1, at: 0 }, 1000);
    expect(s.silent?.reason).toMatch(/YouTube/);
    apply(s, { event: "playback", playing: true, track: "u", position: 0, at: 0 }, 3000);
    expect(s.silent).toBeNull();
  });

  it("knows which track this device is buffering until its bytes come", () => {
    const s = initialState(1);
    apply(s, { event: "playback", playing: true, track: "u", position: 0, at: 0 }, 0);
    apply(s, { event: "buffering", track: "u", buffering: true }, 0);
    expect(s.buffering).toBe("u");
    // Over for another track: still waiting for this one.
    apply(s, { event: "buffering", track: "w", buffering: false }, 10);
    expect(s.buffering).toBe("u");
    apply(s, { event: "buffering", track: "u", buffering: false }, 20);
    expect(s.buffering).toBeNull();
  });

  it("formats times", () => {
    expect(formatTime(0)).toBe("0:00");
    expect(formatTime(125.9)).toBe("2:05");
  });
});

describe("geo", () => {
  it("measures one degree of latitude as about 111 km", () => {
    const d = distanceMeters({ latitude: 0, longitude: 0 }, { latitude: 1, longitude: 0 });
    expect(d).toBeGreaterThan(111_000);
    expect(d).toBeLessThan(111_400);
    expect(formatDistance(d)).toBe("111.2 km");
    expect(formatDistance(420.4)).toBe("420 m");
  });

  it("lists every pair nearest first", () => {
    const pts = [
      { userId: 1, latitude: 47.0, longitude: 8.0 },
      { userId: 2, latitude: 47.01, longitude: 8.0 },
      { userId: 3, latitude: 47.5, longitude: 8.0 },
    ];
    const pairs = pairwiseDistances(pts);
    expect(pairs.map((p) => [p.a, p.b])).toEqual([[1, 2], [2, 3], [1, 3]]);
  });
});

describe("settings", () => {
  it("round-trips and falls back to defaults on garbage", () => {
    const st = memoryStorage();
    expect(loadSettings(st)).toEqual(DEFAULT_SETTINGS);
    saveSettings({ ...DEFAULT_SETTINGS, latencyOffsetMs: 35 }, st);
    expect(loadSettings(st).latencyOffsetMs).toBe(35);
    st.setItem("trafficjamz.settings", "{nope");
    expect(loadSettings(st)).toEqual(DEFAULT_SETTINGS);
  });

  it("keeps a map tile URL only when Leaflet can use it", () => {
    const osm = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";
    expect(sanitize({ ...DEFAULT_SETTINGS, mapTiles: osm }).mapTiles).toBe(osm);
    expect(sanitize({ ...DEFAULT_SETTINGS, mapTiles: "ftp://x/{z}/{x}/{y}" }).mapTiles).toBe("");
    expect(sanitize({ ...DEFAULT_SETTINGS, mapTiles: "https://x/tiles.png" }).mapTiles).toBe("");
    expect(DEFAULT_SETTINGS.mapTiles).toBe("https://tile.openstreetmap.org/{z}/{x}/{y}.png");
    // Chosen empty (no tile server) stays empty.
    expect(sanitize({ ...DEFAULT_SETTINGS, mapTiles: "" }).mapTiles).toBe("");
  });

  it("credits OpenStreetMap for its own tiles by default, and another server as the user says", () => {
    expect(DEFAULT_SETTINGS.mapAttribution).toBe(OSM_ATTRIBUTION);
    expect(defaultAttribution("https://tile.openstreetmap.org/{z}/{x}/{y}.png")).toBe("© OpenStreetMap contributors");
    expect(defaultAttribution("https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png")).toBe(OSM_ATTRIBUTION);
    expect(defaultAttribution("https://tiles.example.org/{z}/{x}/{y}.png")).toBe("");
    expect(defaultAttribution("https://tile.openstreetmap.org.evil.example/{z}/{x}/{y}.png")).toBe("");
    expect(defaultAttribution("not a url")).toBe("");
    expect(defaultAttribution("")).toBe("");
    // One line, of bounded length.
    expect(sanitize({ ...DEFAULT_SETTINGS, mapAttribution: "  © Example\n tiles " }).mapAttribution).toBe("© Example tiles");
    expect(sanitize({ ...DEFAULT_SETTINGS, mapAttribution: "x".repeat(1000) }).mapAttribution.length).toBe(MAX_ATTRIBUTION_LEN);
  });

  it("keeps other servers as a list of http(s) addresses, each once", () => {
    expect(serverList("http://a:1, https://b:2 ,, ftp://c, http://a:1, not a url")).toEqual(["http://a:1", "https://b:2"]);
    expect(serverList(["http://a:1", 7, " http://b:2 "])).toEqual(["http://a:1", "http://b:2"]);
    expect(serverList(undefined)).toEqual([]);
    const st = memoryStorage();
    // Settings kept before the list existed, and a list stored wrong.
    st.setItem("trafficjamz.settings", JSON.stringify({ latencyOffsetMs: 20 }));
    expect(loadSettings(st).otherServers).toEqual([]);
    st.setItem("trafficjamz.settings", JSON.stringify({ otherServers: "http://b:2" }));
    expect(loadSettings(st).otherServers).toEqual(["http://b:2"]);
  });

  it("keeps STUN servers and TURN relays with credentials each once and names what it leaves out", () => {
    // A TURN relay without credentials is refused.
    expect(iceServerList("stun:a.example:3478, STUN:[::1]:5000 ,, turn:relay:3478, stun:a.example:3478, http://x"))
      .toEqual({ kept: ["stun:a.example:3478", "STUN:[::1]:5000"], refused: ["turn:relay:3478", "http://x"] });
    expect(iceServerList(["stun:b", 7, "stun:user@b"])).toEqual({ kept: ["stun:b"], refused: ["stun:user@b"] });
    expect(iceServerList(undefined)).toEqual({ kept: [], refused: [] });
    expect(iceServerList("turn:u:p@relay:3478, TURN:u%40x:p%3Ab@[::1]:5000?transport=udp, turn:u:p@relay:3478, turn:u:p@h?transport=UDP"))
      .toEqual({ kept: ["turn:u:p@relay:3478", "TURN:u%40x:p%3Ab@[::1]:5000?transport=udp", "turn:u:p@h?transport=UDP"], refused: [] });
    const refusedTurn = ["turns:u:p@h", "turn:u:p@h?transport=tcp", "turn::p@h", "turn:u@h", "turn:u:@h", "turn:u:p%zz@h", "turn:u:p@h:0", "turn:u:p@", "turn:u:p@h?x"];
    expect(iceServerList(refusedTurn)).toEqual({ kept: [], refused: refusedTurn });
    // The host and port as the node reads them, for STUN and TURN alike.
    const refusedHosts = ["stun:", "stun:host:0", "stun:host:65536", "stun:host:x", "stun:host:", "stun:host/path", "stun:[::1", "stun:[::1]x", "stun:a]b", "host:3478", "turn:u:p@[::1", "turn:u:p@h/x", "turn:u:p@h:99999"];
    expect(iceServerList(refusedHosts)).toEqual({ kept: [], refused: refusedHosts });
    expect(iceServerList(["stun:[2001:db8::1]", "stun:h:65535", "turn:a%3Ab:c@d@h:1"]).kept).toEqual(["stun:[2001:db8::1]", "stun:h:65535", "turn:a%3Ab:c@d@h:1"]);
    // Why, in words the settings form shows; a password never shown.
    expect(iceServerRefusal("turns:u:p@h")).toContain("TLS");
    expect(iceServerRefusal("turn:u:p@h?transport=tcp")).toContain("only UDP");
    for (const u of ["turn:relay:3478", "turn::p@h", "turn:u@h"]) expect(iceServerRefusal(u)).toContain("needs a user name and a password");
    expect(iceServerRefusal("stun:user@b")).toContain("takes no user name or password");
    expect(iceServerRefusal("http://x")).toContain("not a STUN or TURN server address");
    expect(iceServerRefusal("turn:u:p@relay:3478")).toBeNull();
    expect(iceServerShown("turn:u:secret@h?transport=tcp")).toBe("turn:u:…@h?transport=tcp");
    expect(iceServerShown("stun:h:1")).toBe("stun:h:1");
    const st = memoryStorage();
    st.setItem("trafficjamz.settings", JSON.stringify({ latencyOffsetMs: 20 }));
    expect(loadSettings(st).iceServers).toEqual([]);
    st.setItem("trafficjamz.settings", JSON.stringify({ iceServers: ["stun:b:1", "turn:c", "turn:u:p@c"] }));
    expect(loadSettings(st).iceServers).toEqual(["stun:b:1", "turn:u:p@c"]);
  });

  it("gives settings kept before the credit existed the credit of their tile address", () => {
    const st = memoryStorage();
    st.setItem("trafficjamz.settings", JSON.stringify({ mapTiles: "https://tiles.example.org/{z}/{x}/{y}.png" }));
    expect(loadSettings(st).mapAttribution).toBe("");
    st.setItem("trafficjamz.settings", JSON.stringify({ latencyOffsetMs: 20 }));
    expect(loadSettings(st).mapAttribution).toBe(OSM_ATTRIBUTION);
    st.setItem("trafficjamz.settings", JSON.stringify({ mapTiles: "https://tiles.example.org/{z}/{x}/{y}.png", mapAttribution: "© Example" }));
    expect(loadSettings(st).mapAttribution).toBe("© Example");
  });

  it("maps the location source to the node's option", () => {
    expect(nodeLocationSource({ ...DEFAULT_SETTINGS, locationMode: "gpsd", locationArg: "car:2947" })).toBe("gpsd:car:2947");
    expect(nodeLocationSource({ ...DEFAULT_SETTINGS, locationMode: "manual" })).toBe("none");
    expect(nodeLocationSource({ ...DEFAULT_SETTINGS, locationMode: "desktop" })).toBe("desktop");
    expect(sanitize({ ...DEFAULT_SETTINGS, locationMode: "desktop" }).locationMode).toBe("desktop");
    expect(locationChoice("desktop", "")).toEqual({ locationMode: "desktop", locationArg: "" });
    // Chosen before, and the node's list not loaded yet: still offered and selected.
    const opts = locationOptions([], { locationMode: "desktop", locationArg: "" });
    expect(opts.filter((o) => o.selected)).toEqual([{ value: "desktop", name: DESKTOP_SOURCE_NAME, selected: true }]);
    // Listed by the node: once.
    const listed = locationOptions([{ spec: "desktop", name: DESKTOP_SOURCE_NAME }], { locationMode: "desktop", locationArg: "" });
    expect(listed.filter((o) => o.value === "desktop")).toHaveLength(1);
  });
});

describe("settings", () => {
  it("keeps stored values within what the node accepts", () => {
    expect(sanitize({ ...DEFAULT_SETTINGS, latencyOffsetMs: -40, cacheLimitMiB: 3 })).toMatchObject({ latencyOffsetMs: 0, cacheLimitMiB: 64 });
    expect(sanitize({ ...DEFAULT_SETTINGS, latencyOffsetMs: 9000, cacheLimitMiB: Number.NaN })).toMatchObject({ latencyOffsetMs: 2000, cacheLimitMiB: 2048 });
    const storage = memoryStorage();
    storage.setItem("trafficjamz.settings", JSON.stringify({ latencyOffsetMs: -300 }));
    expect(loadSettings(storage).latencyOffsetMs).toBe(0);
  });

  it("sends only what changed to a running node", () => {
    const next = { ...DEFAULT_SETTINGS, output: "null", cacheLimitMiB: 512 };
    expect(liveCommands(DEFAULT_SETTINGS, next)).toEqual([
      { cmd: "output", spec: "null" },
      { cmd: "cache-limit", bytes: 512 * 1024 * 1024 },
    ]);
    expect(liveCommands(next, next)).toEqual([]);
  });

  it("always offers the default and no-sound outputs, and keeps a saved one that is gone", () => {
    expect(outputOptions([], "wav:/tmp/a.wav").map((o) => o.id)).toEqual(["default", "null", "wav:/tmp/a.wav"]);
    const opts = outputOptions([{ id: "default", name: "x", is_default: true }, { id: "device:hw:1", name: "USB DAC", is_default: false }], "device:gone");
    expect(opts.map((o) => o.name)).toEqual(["System default", "USB DAC", "No sound (keep time only)", "device:gone (not connected)"]);
  });
});

describe("words", () => {
  it("counts with the right plural", () => {
    expect(plural(1, "track")).toBe("1 track");
    expect(plural(0, "track")).toBe("0 tracks");
    expect(plural(2, "car")).toBe("2 cars");
  });

  it("reads sizes and times at a glance", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(2048)).toBe("2 KiB");
    expect(formatBytes(1.7 * 1024 * 1024)).toBe("1.7 MiB");
    expect(formatBytes(256 * 1024 * 1024)).toBe("256 MiB");
    expect(formatTime(40)).toBe("0:40");
    expect(formatTime(3723)).toBe("1:02:03");
  });
});
