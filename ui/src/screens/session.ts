// The session: participants and their links, now playing, DJ controls, volume,
// the playlist, the cache, the convoy map.

import { BackendError, type NodeCommand, type NodeEvent, type Position, type ProgressEvent, type UnlistenFn, type VideoDirective } from "../backend";
import type { Route, Screen } from "../app";
import { field, h, showError } from "../dom";
import { formatDistance, pairwiseDistances } from "../geo";
import { ConvoyMap, type MapTiles } from "../map";
import {
  apply,
  currentTrack,
  formatBytes,
  formatTime,
  initialState,
  isDj,
  linkState,
  moved,
  positionAt,
  type SessionState,
} from "../session-state";
import { nodeLocationSource, type Settings } from "../settings";
import { plural } from "../words";
import { DEFAULT_YOUTUBE_ORIGIN, loadIframeApi, VideoPlayer } from "../youtube";
import { peerCalibrationWords, settingsForm } from "./settings-form";

/** Shapes of the transport buttons: drawn, not glyphs a system font may lack. */
const ICON_PATHS = {
  play: "M8 5v14l11-7z",
  pause: "M6 5h4v14H6zM14 5h4v14h-4z",
  previous: "M6 5h2v14H6zM20 5v14L9 12z",
  next: "M16 5h2v14h-2zM4 5l11 7-11 7z",
} as const;

function icon(name: keyof typeof ICON_PATHS): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", ICON_PATHS[name]);
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

/** How often the screen asks the node for a `status` (tier, queue, cache). */
const STATUS_POLL_MS = 2000;
/** How often the position bar moves between playback reports. */
const TICK_MS = 250;

const LINK_LABEL = { socket: "socket", peer: "peer", offline: "offline" } as const;

/** Maps made in this page: each asks the shell for its tiles under its own URLs. */
let mapsMade = 0;

export const sessionScreen = (route: Extract<Route, { screen: "session" }>): Screen => (root, ctx) => {
  const st: SessionState = initialState(ctx.account?.userId ?? null);
  const unlisten: UnlistenFn[] = [];
  const timers: number[] = [];
  let closed = false;
  let mapView: ConvoyMap | null = null;

  const error = h("p", { class: "error", role: "alert", "data-testid": "session-error" });
  const send = (c: NodeCommand): void => {
    void ctx.backend.command(c).catch((e: unknown) => showError(error, e));
  };
  const nameOf = (userId: number): string => {
    const p = st.participants.find((x) => x.userId === userId);
    if (p?.display_name) return p.display_name;
    if (userId === st.me && ctx.account) return ctx.account.username;
    return `user ${userId}`;
  };

  // --- participants
  const people = h("ul", { class: "people", "data-testid": "participants", tabindex: -1 });
  const renderPeople = (): void => {
    // The rows are built anew: the button that had focus gets it back.
    const focused = people.contains(document.activeElement) && document.activeElement instanceof HTMLElement
      ? document.activeElement.dataset.key : undefined;
    const ids = new Set<number>([...st.participants.map((p) => p.userId), ...st.peers.keys(), ...st.positions.keys()]);
    if (st.me !== null) ids.add(st.me);
    people.replaceChildren(
      ...[...ids].map((id) => {
        const link = id === st.me ? (st.tier === "offline" ? "offline" : st.tier === "mesh" ? "peer" : "socket") : linkState(st, id);
        return h("li", { "data-user": id, "data-link": link },
          h("span", {}, nameOf(id)), id === st.me ? h("span", { class: "muted" }, " (you)") : null,
          id === st.controller ? h("span", { class: "badge dj" }, "DJ") : null,
          h("span", { class: `badge link-${link}` }, LINK_LABEL[link]),
          link === "peer" && st.rtt.has(id) ? h("span", { class: "muted rtt", "data-testid": "rtt" }, ` ${Math.round(st.rtt.get(id) ?? 0)} ms`) : null,
          // A link through a TURN relay says so (in the row's text, for screen readers too);
          // a direct one, the usual, adds nothing.
          link === "peer" && st.paths.get(id) === "relay"
            ? h("span", { class: "muted path", "data-testid": "path" }, st.rtt.has(id) ? " · via relay" : " via relay")
            : null,
          id === st.me ? null : peerButton(id));
      }),
    );
    if (focused) peerButtonOf(focused)?.focus();
    refusedList.hidden = st.refused.length === 0;
    refusedList.replaceChildren(...st.refused.map((r) =>
      h("li", { "data-reason": r.reason },
        `Refused from ${nameOf(r.from)}${r.via !== r.from ? ` (relayed by ${nameOf(r.via)})` : ""}: ${r.message}${r.count > 1 ? ` (${r.count} times)` : ""}`)));
    refusedClear.hidden = st.refused.length === 0;
  };
  // --- relative calibration: this device's microphone measures another member's speakers
  // (the car's laptop playing into the car stereo) and the node sets that member's latency
  // offset over the session (`calibrate-peer`, answered by `peer-calibration` or an
  // `error`). One run at a time: every member's button waits for the answer.
  let peerRun: number | null = null;
  const peerNote = h("p", { class: "hint", role: "status", "data-testid": "peer-calibration", tabindex: -1 }, "");
  // Another member calibrated this device (its `calibration` event names who).
  const calibratedBy = h("p", { class: "hint", role: "status", "data-testid": "calibrated-by", hidden: true }, "");
  const peerButtonOf = (key: string): HTMLButtonElement | null =>
    people.querySelector<HTMLButtonElement>(`[data-key="${CSS.escape(key)}"]`);
  const peerButton = (id: number): HTMLButtonElement => {
    const b = h("button", {
      type: "button", class: "peer-calibrate", "data-action": "calibrate-peer", "data-key": `calibrate-peer:${id}`,
      "aria-label": `Calibrate their speakers: ${nameOf(id)}'s, with this device's microphone`, disabled: peerRun !== null,
    }, "Calibrate their speakers");
    b.addEventListener("click", () => calibratePeer(id));
    return b;
  };
  /** Ends the run on `user`: the buttons back, and the keyboard's place with them. */
  const endPeerRun = (user: number): void => {
    peerRun = null;
    const lost = document.activeElement === peerNote || document.activeElement === document.body || document.activeElement === null;
    renderPeople();
    if (lost) peerButtonOf(`calibrate-peer:${user}`)?.focus();
  };
  const peerFailed = (user: number | null, e: unknown): void => {
    const who = user === null ? "another member" : nameOf(user);
    showError(error, `Could not calibrate ${who}'s speakers: ${e instanceof Error ? e.message : String(e)}`);
    peerNote.textContent = "";
    if (user !== null) endPeerRun(user);
  };
  const calibratePeer = (user: number): void => {
    if (peerRun !== null) return;
    peerRun = user;
    // The last run's failure is cleared; any other error stays.
    if (error.textContent?.startsWith("Could not calibrate")) showError(error, null);
    peerNote.textContent = `Listening to ${nameOf(user)}'s speakers with this device's microphone… (about 8 seconds; pause the music first, and keep the car quiet)`;
    const hadFocus = people.contains(document.activeElement);
    renderPeople();
    // The button pressed is disabled now: the keyboard waits on the status line.
    if (hadFocus) peerNote.focus();
    void ctx.backend.command({ cmd: "calibrate-peer", user }).catch((e: unknown) => {
      if (peerRun === user) peerFailed(user, e);
    });
  };
  const peerCalibrated = (r: Extract<NodeEvent, { event: "peer-calibration" }>): void => {
    // A result for another member than the one measured now is not this run's.
    if (peerRun !== null && peerRun !== r.userId) return;
    peerNote.textContent = peerCalibrationWords(nameOf(r.userId), r);
    endPeerRun(r.userId);
  };
  const peerStopped = (): void => {
    if (peerRun === null) return;
    peerNote.textContent = "";
    endPeerRun(peerRun);
  };

  // Messages a peer sent that this device refused (a forged or unauthorised command).
  const refusedList = h("ul", { class: "refused", "data-testid": "mesh-refused", "aria-label": "Refused over the peer mesh", "aria-live": "polite", hidden: true });
  const refusedClear = h("button", { type: "button", "data-action": "clear-refused", hidden: true }, "Clear refusals");
  refusedClear.addEventListener("click", () => {
    st.refused = [];
    renderPeople();
    people.focus();
  });

  // --- now playing and controls: big type and big targets, for a glance and a tap
  const title = h("p", { class: "np-title", "data-testid": "now-playing" }, "Nothing playing");
  const artist = h("p", { class: "np-artist", "data-testid": "artist" }, "");
  const cover = h("img", { alt: "", "data-testid": "cover", hidden: true });
  const coverPlaceholder = h("span", { class: "placeholder", "aria-hidden": "true" }, "♪");
  const art = h("div", { class: "np-art" }, cover, coverPlaceholder);
  const playState = h("span", { "data-testid": "play-state" }, "stopped");
  const timeText = h("span", { "data-testid": "position" }, "0:00");
  const durText = h("span", { "data-testid": "duration" }, "");
  const bar = h("input", { type: "range", min: 0, max: 1, step: 0.1, value: 0, "aria-label": "Position in the track", "data-testid": "position-bar" });
  let seeking = false;
  bar.addEventListener("input", () => { seeking = true; });
  bar.addEventListener("change", () => {
    seeking = false;
    send({ cmd: "seek", position: Number(bar.value) });
  });
  const btn = (label: string | Node, action: string, onClick: () => void, attrs: Record<string, string> = {}): HTMLButtonElement => {
    const b = h("button", { type: "button", "data-action": action, ...attrs }, label);
    b.addEventListener("click", onClick);
    return b;
  };
  const take = btn("Take control", "take-control", () => send({ cmd: "take-control" }), { class: "wide" });
  const prev = btn(icon("previous"), "previous", () => send({ cmd: "previous" }), { class: "big", "aria-label": "Previous track" });
  const play = btn(icon("play"), "play", () => {
    const first = st.playlist[0];
    if (st.track === null && first) send({ cmd: "play", track: first.id, position: 0 });
    else send({ cmd: "play" });
  }, { class: "big primary", "aria-label": "Play" });
  const pause = btn(icon("pause"), "pause", () => send({ cmd: "pause" }), { class: "big primary", "aria-label": "Pause" });
  const next = btn(icon("next"), "next", () => send({ cmd: "next" }), { class: "big", "aria-label": "Next track" });
  const volume = h("input", { type: "range", min: 0, max: 1, step: 0.05, value: 1, "aria-label": "Volume", name: "volume" });
  volume.addEventListener("change", () => send({ cmd: "volume", level: Number(volume.value) }));
  const djState = h("p", { class: "np-dj", "data-testid": "dj" }, "No DJ yet");
  // YouTube's own player, shown while it holds a video (YouTube's terms: a visible player).
  const videoHost = h("div", { class: "np-video", "data-testid": "youtube-player", hidden: true });
  let videoPlayer: VideoPlayer | null = null;
  let videoLoading: Promise<VideoPlayer | null> | null = null;
  const videoOrigin = (): string => ctx.settings.youtubeOrigin.trim() || DEFAULT_YOUTUBE_ORIGIN;
  /** Carries out the engine's directive on the player, loading YouTube's script first. */
  const onVideo = (d: VideoDirective): void => {
    if (videoPlayer) {
      videoPlayer.apply(d);
      videoHost.hidden = d.do === "stop";
      return;
    }
    if (d.do === "stop") return;
    videoLoading ??= loadIframeApi(videoOrigin()).then(
      (yt) => {
        if (closed) return null;
        videoPlayer = new VideoPlayer(yt, videoHost, {
          reading: (video, position, state, duration) =>
            send({ cmd: "youtube-reading", video, position, state, ...(duration === undefined ? {} : { duration }) }),
          error: (video, code) => send({ cmd: "youtube-error", video, code }),
        });
        return videoPlayer;
      },
      (e: unknown) => {
        videoLoading = null;
        showError(error, e);
        // The engine is told, so this device is silent for the video and says why.
        send({ cmd: "youtube-error", video: d.video, code: -1 });
        return null;
      },
    );
    void videoLoading.then((p) => {
      if (!p) return;
      // Each directive that came while loading is carried out in order: none is lost.
      p.apply(d);
      videoHost.hidden = false;
    });
  };
  const silentNote = h("p", { class: "np-silent", role: "status", "data-testid": "not-playable", hidden: true }, "");
  // Decoding that fell behind the device (a busy machine): heard as gaps, so shown.
  const gapsNote = h("p", { class: "muted", "data-testid": "underruns", hidden: true }, "");
  const renderGaps = (): void => {
    gapsNote.hidden = st.underruns === 0;
    gapsNote.textContent = st.underruns === 0 ? "" : `${plural(st.underruns, "gap")} in the sound on this device (${Math.round(st.underrunMs)} ms of silence)`;
  };

  // Cover art from the track's tags, read by the node from the cached file (by content
  // hash, so the same file shows the same picture in every session); `null`: none.
  const covers = new Map<string, string | null>();
  let coverFor: string | null = null;
  const showCover = (url: string | null): void => {
    cover.hidden = url === null;
    coverPlaceholder.hidden = url !== null;
    if (url !== null) cover.src = url;
    else cover.removeAttribute("src");
  };
  const renderCover = (): void => {
    const sha = currentTrack(st)?.sha256 ?? null;
    if (sha === coverFor) return;
    coverFor = sha;
    if (sha === null) { showCover(null); return; }
    const known = covers.get(sha);
    if (known !== undefined) { showCover(known); return; }
    showCover(null);
    void ctx.backend.coverArt(sha).then((url) => {
      // Not cached yet: asked again when the next status or playback event comes.
      if (url === null) coverFor = null;
      else covers.set(sha, url);
      if (coverFor === sha || url === null) showCover(url);
    }, () => { coverFor = null; });
  };

  const renderNowPlaying = (): void => {
    const t = currentTrack(st);
    title.textContent = t ? t.title || "Untitled track" : st.playlist.length > 0 ? "Nothing playing" : "Nothing to play yet";
    artist.textContent = t ? t.artist : st.playlist.length > 0 ? "The DJ starts the music with Play." : "Add songs to the playlist.";
    playState.textContent = st.playing ? "playing" : st.track ? "paused" : "stopped";
    const silent = st.silent !== null && st.silent.track === st.track ? st.silent.reason : null;
    const buffering = silent === null && st.buffering !== null && st.buffering === st.track;
    silentNote.hidden = silent === null && !buffering;
    silentNote.textContent = silent !== null
      ? `Silent on this device: ${silent}`
      : buffering ? "Buffering: this track is still downloading; it joins the group as soon as enough is here." : "";
    const dj = isDj(st);
    for (const b of [prev, play, pause, next]) b.disabled = !dj;
    // One of play and pause at a time, in the same place.
    const hadFocus = document.activeElement === play || document.activeElement === pause;
    play.hidden = st.playing;
    pause.hidden = !st.playing;
    if (hadFocus) (st.playing ? pause : play).focus();
    bar.disabled = !dj;
    take.disabled = dj;
    take.hidden = dj;
    djState.textContent = st.controller === null ? "No DJ yet: take control to choose the music." : dj ? "You are the DJ" : `DJ: ${nameOf(st.controller)}`;
    const d = t?.duration;
    bar.max = String(d && d > 0 ? d : Math.max(1, positionAt(st, performance.now())));
    durText.textContent = d ? formatTime(d) : "";
    renderCover();
  };
  const tick = (): void => {
    const pos = positionAt(st, performance.now());
    timeText.textContent = formatTime(pos);
    timeText.dataset.seconds = pos.toFixed(2);
    if (!seeking) {
      if (Number(bar.max) < pos) bar.max = String(pos);
      bar.value = String(pos);
    }
  };

  // --- playlist
  const playlist = h("ol", { class: "playlist", "data-testid": "playlist", "aria-label": "Playlist" });
  let dragFrom: number | null = null;
  let touchFrom: number | null = null;
  // The row under the lifted finger (touch pointers stay captured by where they went down).
  const dropTouch = (e: PointerEvent): void => {
    const from = touchFrom;
    touchFrom = null;
    if (from === null) return;
    const under = document.elementFromPoint(e.clientX, e.clientY)?.closest<HTMLElement>("li[data-track]");
    const to = under ? st.playlist.findIndex((t) => t.id === under.dataset.track) : -1;
    if (to >= 0 && to !== from) reorder(from, to);
  };
  const cancelTouch = (): void => { touchFrom = null; };
  document.addEventListener("pointerup", dropTouch);
  document.addEventListener("pointercancel", cancelTouch);
  const reorder = (from: number, to: number): void => {
    const order = moved(st.playlist.map((t) => t.id), from, to);
    send({ cmd: "reorder", order });
  };
  const renderPlaylist = (): void => {
    const focused = document.activeElement instanceof HTMLElement ? document.activeElement.dataset.key : undefined;
    const dj = isDj(st);
    playlist.replaceChildren(
      ...st.playlist.map((t, i) => {
        const li = h("li", { "data-track": t.id, draggable: dj ? "true" : null, class: t.id === st.track ? "current" : null });
        const mk = (label: string, action: string, aria: string, fn: () => void, enabled: boolean): HTMLButtonElement => {
          const b = h("button", { type: "button", "data-action": action, "data-key": `${action}:${t.id}`, "aria-label": `${aria} ${t.title}`, disabled: !enabled }, label);
          b.addEventListener("click", fn);
          return b;
        };
        // Touch and pen: HTML5 drag events never fire there, so the handle follows the
        // pointer and the track drops on the row under it (keyboard: Alt+↑/↓, the buttons).
        const handle = dj ? h("span", { class: "grip", "aria-hidden": "true", "data-action": "grip" }, "⠿") : null;
        handle?.addEventListener("pointerdown", (e) => {
          if (e.pointerType === "mouse") return;
          e.preventDefault();
          touchFrom = i;
        });
        li.append(
          ...(handle ? [handle] : []),
          h("span", { class: "t" }, t.title || "(untitled)", h("span", { class: "muted" }, t.artist ? ` — ${t.artist}` : "")),
          h("span", { class: "muted" }, t.duration ? formatTime(t.duration) : ""),
          mk("▶", "play-track", "Play", () => send({ cmd: "play", track: t.id, position: 0 }), dj),
          mk("↑", "up", "Move up", () => reorder(i, i - 1), dj && i > 0),
          mk("↓", "down", "Move down", () => reorder(i, i + 1), dj && i < st.playlist.length - 1),
          mk("✕", "remove", "Remove", () => send({ cmd: "remove", track: t.id }), dj),
        );
        li.addEventListener("keydown", (e) => {
          if (!dj || !e.altKey) return;
          if (e.key === "ArrowUp") { e.preventDefault(); reorder(i, i - 1); }
          if (e.key === "ArrowDown") { e.preventDefault(); reorder(i, i + 1); }
        });
        li.addEventListener("dragstart", () => { dragFrom = i; });
        li.addEventListener("dragover", (e) => { if (dragFrom !== null) e.preventDefault(); });
        li.addEventListener("drop", (e) => {
          e.preventDefault();
          if (dragFrom !== null && dragFrom !== i) reorder(dragFrom, i);
          dragFrom = null;
        });
        return li;
      }),
    );
    if (st.playlist.length === 0) {
      playlist.append(h("li", { class: "empty" }, dj
        ? "The playlist is empty: add songs with “Add files…”."
        : "The playlist is empty: the DJ adds songs (or take control to add your own)."));
    }
    if (focused) playlist.querySelector<HTMLElement>(`[data-key="${CSS.escape(focused)}"]`)?.focus();
  };
  const pendingList = h("ul", { class: "pending muted", "data-testid": "pending", "aria-label": "Changes waiting for the server" });
  const PENDING_VERB = { add: "add", upload: "upload and add", remove: "remove", reorder: "reorder" } as const;
  const renderPending = (): void => {
    pendingList.hidden = st.pending.length === 0;
    pendingList.replaceChildren(
      ...(st.pending.length > 0 ? [h("li", {}, "Waiting for the server:")] : []),
      ...st.pending.map((p) => h("li", { "data-action": p.action }, `${PENDING_VERB[p.action]}: ${p.label}`)),
    );
  };
  const uploadBar = h("progress", { max: 1, value: 0, "aria-label": "Upload progress", hidden: true });
  const uploadText = h("span", { class: "muted", role: "status" });
  const pick = btn("Add files…", "pick-files", () => {
    void ctx.backend.pickAudioFiles().then(
      (paths) => { for (const path of paths) send({ cmd: "add", path }); },
      (e: unknown) => showError(error, e),
    );
  });
  // A YouTube video by link or id: the node checks the link (a malformed one is an
  // `error` event shown below) and titles it from YouTube's oEmbed.
  const videoRef = h("input", {
    name: "youtube", type: "text", inputmode: "url", autocomplete: "off", spellcheck: "false",
    placeholder: "https://youtu.be/… or a video id", required: true,
  });
  const addVideo = h("form", { class: "inline", "aria-label": "Add a YouTube video", "data-testid": "add-youtube" },
    field("YouTube link or video id", videoRef),
    h("button", { type: "submit", "data-action": "add-youtube" }, "Add video"));
  addVideo.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = videoRef.value.trim();
    if (text === "") return;
    send({ cmd: "add", youtube: text });
    videoRef.value = "";
  });

  // --- cache
  const cacheText = h("p", { "data-testid": "cache-summary" }, "");
  const preloadBar = h("progress", { max: 1, value: 0, "aria-label": "Preload progress" });
  const preloadText = h("span", { class: "muted", role: "status" }, "");
  const preload = btn("Preload the playlist", "preload", () => send({ cmd: "preload" }));
  const clearCache = btn("Clear the cache", "cache-clear", () => send({ cmd: "cache-clear" }));
  const renderCache = (): void => {
    const c = st.cache;
    const limit = c.max_bytes > 0 ? formatBytes(c.max_bytes) : `${ctx.settings.cacheLimitMiB} MiB`;
    const lookups = c.hits + c.misses;
    // A hit rate means something only once tracks were looked up.
    const rate = lookups > 0 ? ` · ${Math.round((100 * c.hits) / lookups)} % played from the cache` : "";
    cacheText.textContent = `${plural(c.tracks, "track")} cached, ${formatBytes(c.bytes)}${rate} · limit ${limit}`;
  };
  const onProgress = (p: ProgressEvent): void => {
    const frac = p.total > 0 ? p.done / p.total : 1;
    if (p.what === "preload") {
      preloadBar.value = frac;
      preloadText.textContent = `${p.done} of ${plural(p.total, "track")}`;
    } else {
      uploadBar.hidden = frac >= 1;
      uploadBar.value = frac;
      uploadText.textContent = `${p.what}: ${Math.round(frac * 100)} %`;
    }
  };

  // --- map
  const mapEl = h("div", { class: "map", "data-testid": "map", role: "application", "aria-label": "Convoy map" });
  const distances = h("ul", { class: "distances", "data-testid": "distances" });
  // The tile server is the shell's to reach (with its cache); none set: a blank map.
  let tiles: MapTiles | null = null;
  /** Tells the shell the settings' tile server and draws the map from it (again, when they change). */
  const useTiles = (set: Pick<Settings, "mapTiles" | "mapAttribution">): Promise<void> => set.mapTiles
    ? ctx.backend.setMapTiles(set.mapTiles).then(
      () => {
        // New URLs for a new server: the web view asks the shell again rather than reuse
        // what it drew from the old one.
        tiles = { url: ctx.backend.mapTileUrl(++mapsMade), attribution: set.mapAttribution };
        mapView?.setTiles(tiles);
        renderTiles();
      },
      (e: unknown) => showError(error, e))
    : ctx.backend.setMapTiles(null).then(() => {
      tiles = null;
      mapView?.setTiles(null);
      tilesText.hidden = true;
    }, () => undefined);
  const tilesText = h("p", { class: "muted", "data-testid": "map-tiles", hidden: true });
  const tilesReady = useTiles(ctx.settings);
  const renderTiles = (): void => {
    if (!tiles) return;
    void ctx.backend.mapTilesInfo().then((t) => {
      tilesText.hidden = false;
      tilesText.dataset.fromCache = String(t.fromCache);
      tilesText.dataset.fetched = String(t.fetched);
      tilesText.textContent = `${plural(t.tiles, "map tile")} kept for offline use (${formatBytes(t.bytes)} of ${formatBytes(t.maxBytes)})`;
    }, () => undefined);
  };
  const lat = h("input", { name: "latitude", type: "number", step: "any", min: -90, max: 90, required: true });
  const lon = h("input", { name: "longitude", type: "number", step: "any", min: -180, max: 180, required: true });
  const fix = h("form", { class: "inline", "aria-label": "Enter a position" }, field("Latitude", lat), field("Longitude", lon),
    h("button", { type: "submit", "data-action": "send-fix" }, "Send position"));
  // The node answers every fix (this device's too) with a `location` event.
  const sendFix = (p: Position): void => send({ cmd: "location", ...p });
  fix.addEventListener("submit", (e) => {
    e.preventDefault();
    sendFix({ latitude: Number(lat.value), longitude: Number(lon.value) });
  });
  const devicePos = btn("Use this device's position", "device-position", () => {
    void ctx.backend.devicePosition().then(sendFix, (e: unknown) => showError(error, e));
  });
  devicePos.hidden = ctx.settings.locationMode !== "device";
  // Sharing is off until the user turns it on; off tells the others at once.
  const shareBtn = btn("Share my position", "share-location", () => {
    send({ cmd: "share-location", enabled: !st.sharing });
  });
  const meetHere = btn("Meet at this position", "regroup", () => {
    send({ cmd: "regroup", latitude: Number(lat.value), longitude: Number(lon.value) });
  });
  const clearMeet = btn("Clear meeting point", "regroup-clear", () => send({ cmd: "regroup-clear" }));
  const convoyLines = (): HTMLElement[] => {
    const out: HTMLElement[] = [];
    for (const g of st.together) {
      out.push(h("li", { class: "together" }, `Together: ${g.map(nameOf).join(", ")}`));
    }
    for (const [user, m] of st.behind) {
      out.push(h("li", { class: "behind", role: "alert" }, `${nameOf(user)} is falling behind (${formatDistance(m)})`));
    }
    const r = st.regroup;
    if (r) {
      out.push(h("li", { class: "regroup" }, `Meeting point (set by ${nameOf(r.setBy)}): ${r.latitude.toFixed(5)}, ${r.longitude.toFixed(5)}`));
      for (const e of r.etas) {
        const eta = e.arrived ? "arrived" : e.eta_s !== null ? `about ${Math.max(1, Math.round(e.eta_s / 60))} min` : "not moving";
        out.push(h("li", { class: "eta", "data-user": e.userId }, `${nameOf(e.userId)}: ${formatDistance(e.distance_m)}, ${eta}`));
      }
    }
    return out;
  };
  const renderMap = (): void => {
    shareBtn.textContent = st.sharing ? "Stop sharing my position" : "Share my position";
    clearMeet.hidden = st.regroup === null;
    const pts = [...st.positions.values()];
    distances.replaceChildren(
      ...convoyLines(),
      ...pts.map((p) => h("li", { "data-user": p.userId }, `${nameOf(p.userId)}: ${p.latitude.toFixed(5)}, ${p.longitude.toFixed(5)}${p.speed !== null ? ` · ${Math.round(p.speed * 3.6)} km/h` : ""}`)),
      ...pairwiseDistances(pts).map((d) => h("li", { class: "distance" }, `${nameOf(d.a)} ↔ ${nameOf(d.b)}: ${formatDistance(d.meters)}`)),
    );
    if (pts.length > 0 || mapView) {
      try {
        mapView ??= new ConvoyMap(mapEl, tiles);
        mapView.update(pts, nameOf, st.me, { together: st.together, regroup: st.regroup });
      } catch (e: unknown) {
        // The list above still shows every position.
        mapEl.textContent = `map unavailable: ${e instanceof Error ? e.message : String(e)}`;
      }
    }
  };

  // --- the node stopped on its own, or never started: say why and offer to join again
  let statusPoll: number | undefined;
  const stopPolling = (): void => {
    if (statusPoll !== undefined) window.clearInterval(statusPoll);
    statusPoll = undefined;
  };
  const rejoin = btn("Join again", "rejoin", () => {
    rejoin.hidden = true;
    showError(error, null);
    void open();
  });
  rejoin.hidden = true;

  // --- layout
  const leave = btn("Leave session", "leave", () => {
    void ctx.backend.leaveSession().finally(() => ctx.go({ screen: "groups" }));
  });
  // Settings open beside the session (leaving it would stop the music).
  const inUse = h("p", { class: "muted", "data-testid": "output-in-use" }, "");
  const renderInUse = (): void => {
    inUse.textContent = st.output ? `In use: output ${st.output} · latency offset ${Math.round(st.latencyOffsetMs)} ms` : "";
  };
  const liveSettings = settingsForm(ctx, (c) => ctx.backend.command(c), (prev, next) => {
    if (next.mapTiles !== prev.mapTiles || next.mapAttribution !== prev.mapAttribution) void useTiles(next);
  });
  const settingsPanel = h("section", { class: "card", "aria-labelledby": "settings-h", id: "sec-settings", hidden: true },
    h("h2", { id: "settings-h" }, "Settings"),
    inUse,
    liveSettings);
  const settings = btn("Settings", "settings", () => {
    settingsPanel.hidden = !settingsPanel.hidden;
    settings.setAttribute("aria-expanded", String(!settingsPanel.hidden));
    if (!settingsPanel.hidden) settingsPanel.querySelector<HTMLElement>("select, input")?.focus();
  });
  settings.setAttribute("aria-controls", "sec-settings");
  settings.setAttribute("aria-expanded", "false");
  const section = (id: string, heading: string, ...children: (Node | null)[]): HTMLElement =>
    h("section", { class: "card", "aria-labelledby": id, id: `sec-${id}` }, h("h2", { id }, heading), ...children);
  // Now playing first; the rest one tap away through the jump links.
  const jump = h("nav", { "aria-label": "Session sections" },
    h("ul", { class: "jump" },
      ...([["pl", "Playlist"], ["map", "Map"], ["people", "People"], ["cache", "Cache"]] as const).map(([id, label]) =>
        h("li", {}, h("a", { href: `#sec-${id}`, "data-jump": id }, label)))));
  root.append(
    h("main", { class: "screen session", "data-screen": "session" },
      h("header", { class: "row spread" }, h("h1", { tabindex: -1 }, route.groupName), h("span", { class: "row" }, settings, leave)),
      error,
      rejoin,
      settingsPanel,
      h("section", { class: "card now-playing", "aria-labelledby": "np", id: "sec-np" },
        h("h2", { id: "np" }, "Now playing"),
        art,
        h("div", { class: "np-main" },
          title, artist, djState, silentNote, gapsNote, videoHost,
          bar,
          h("p", { class: "np-time" }, h("span", {}, timeText, " · ", playState), durText),
          h("div", { class: "row controls", role: "group", "aria-label": "DJ controls" }, prev, play, pause, next, take),
          field("Volume", volume))),
      jump,
      h("div", { class: "grid" },
        section("pl", "Playlist", h("div", { class: "row" }, pick), addVideo, uploadBar, uploadText, pendingList, playlist,
          h("p", { class: "hint" }, "DJ: drag tracks (on a touch screen by their ⠿ grip), or focus one and press Alt+↑ / Alt+↓ to move it.")),
        section("map", "Map", mapEl, tilesText, fix, h("div", { class: "row" }, devicePos, shareBtn, meetHere, clearMeet), distances),
        section("people", "In the session", people, peerNote, calibratedBy, refusedList, refusedClear),
        section("cache", "Cache", cacheText, h("div", { class: "row" }, preload, preloadBar, preloadText, clearCache)),
      )),
  );

  const render = (ev: NodeEvent): void => {
    switch (ev.event) {
      case "participants": case "peer": case "ready": renderPeople(); renderNowPlaying(); break;
      case "controller": renderPeople(); renderNowPlaying(); renderPlaylist(); break;
      case "playlist": renderPlaylist(); renderNowPlaying(); break;
      case "playback":
        renderNowPlaying();
        // Rebuilding the list under the pointer would break a drag: only when the current track changes.
        if (playlist.querySelector("li.current")?.getAttribute("data-track") !== (st.track ?? undefined)) renderPlaylist();
        tick();
        ctx.banner.setSync(st.syncOffsetMs);
        break;
      case "status": ctx.banner.set(st.tier, st.queued); ctx.banner.setSync(st.syncOffsetMs); renderCache(); renderNowPlaying(); renderPeople(); renderInUse(); renderTiles(); renderGaps(); break;
      case "tier": ctx.banner.set(st.tier, st.queued, ev.reason); renderPeople(); break;
      case "location": case "location-off": case "last-positions": case "sharing": case "together":
      case "regroup": case "regroup-cleared": case "falling-behind": case "caught-up":
        renderMap(); renderPeople(); break;
      case "error":
        if (ev.cmd === "calibrate-peer") { peerFailed(peerRun, ev.message); break; }
        error.textContent = st.lastError;
        // Said once, here; the form only takes its button back.
        if (ev.cmd === "calibrate") liveSettings.calibrationFailed(null);
        break;
      case "calibration":
        liveSettings.calibrated(ev);
        renderInUse();
        if (typeof ev.from === "number") {
          calibratedBy.hidden = false;
          calibratedBy.textContent = `${nameOf(ev.from)} calibrated this device's speakers with their microphone: latency offset set to ${Math.round(ev.latency_offset_ms)} ms.`;
        }
        break;
      case "peer-calibration": peerCalibrated(ev); break;
      case "not-playable": case "buffering": renderNowPlaying(); break;
      case "outbox": renderPending(); break;
      case "youtube": onVideo(ev); break;
      case "mesh-refused": renderPeople(); break;
      case "progress": case "outputs": break;
    }
  };

  const open = async (): Promise<void> => {
    try {
      if (closed) return;
      const info = await ctx.backend.openSession({
        groupId: route.groupId,
        displayName: ctx.settings.displayName || undefined,
        output: ctx.settings.output,
        location: nodeLocationSource(ctx.settings),
        latencyOffsetMs: ctx.settings.latencyOffsetMs,
        cacheMaxMib: ctx.settings.cacheLimitMiB,
        autoPreload: ctx.settings.autoPreload,
        youtubeOrigin: ctx.settings.youtubeOrigin.trim() || undefined,
        fallbackServers: ctx.settings.otherServers.length > 0 ? ctx.settings.otherServers : undefined,
        iceServers: ctx.settings.iceServers.length > 0 ? ctx.settings.iceServers : undefined,
      }, onProgress);
      st.me = info.userId;
      send({ cmd: "status" });
      stopPolling();
      statusPoll = window.setInterval(() => send({ cmd: "status" }), STATUS_POLL_MS);
    } catch (e: unknown) {
      if (e instanceof BackendError && (e.code === "unauthorized" || e.code === "not-logged-in")) {
        // A saved login the server no longer accepts (a new server, a reset one).
        await ctx.backend.logout().catch(() => undefined);
        ctx.account = null;
        ctx.go({ screen: "auth", notice: `Sign in again: ${e.message}` });
        return;
      }
      showError(error, e);
      rejoin.hidden = false;
    }
  };
  void (async () => {
    try {
      unlisten.push(await ctx.backend.onNodeEvent((ev) => {
        apply(st, ev, performance.now());
        render(ev);
      }));
      unlisten.push(await ctx.backend.onSessionEnded((e) => {
        stopPolling();
        // A run the node was making ends with it: no answer comes.
        peerStopped();
        ctx.banner.set("offline", 0, e.reason ?? "left the session");
        ctx.banner.setSync(null);
        if (e.reason !== null && !closed) {
          showError(error, `The session stopped: ${e.reason}`);
          rejoin.hidden = false;
        }
      }));
    } catch (e: unknown) {
      showError(error, e);
    }
    // The map is drawn (at the first position) once the shell knows the tile server.
    await tilesReady;
    await open();
  })();
  timers.push(window.setInterval(tick, TICK_MS));
  renderPeople();
  renderNowPlaying();
  renderPlaylist();
  renderPending();
  renderCache();
  take.focus();

  return () => {
    closed = true;
    stopPolling();
    for (const t of timers) window.clearInterval(t);
    for (const u of unlisten) u();
    mapView?.destroy();
    videoPlayer?.dispose();
    document.removeEventListener("pointerup", dropTouch);
    document.removeEventListener("pointercancel", cancelTouch);
  };
};
