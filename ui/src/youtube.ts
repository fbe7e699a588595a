// YouTube's IFrame player in the web view: the only sanctioned way to play a YouTube video.
// It decides nothing. The node's engine says what to do (`youtube` events: play a video
// from a position at an instant, pause, stop) and this module does it, then reads the
// player back (`getCurrentTime()`, `getPlayerState()`, and `getDuration()` once known:
// a video added by link has no duration until a player has loaded it) every
// READING_INTERVAL_MS for the engine to judge, and hands on the player's errors. The script comes from a configurable
// origin (`{origin}/iframe_api`): YouTube's by default, a local stand-in in tests, through
// this same loading code.

import type { VideoDirective } from "./backend";

/** YouTube's own origin: the IFrame API script is `{origin}/iframe_api`. */
export const DEFAULT_YOUTUBE_ORIGIN = "https://www.youtube.com";

/** How often the player is read (jamz-sync's EXTERNAL_REPORT_INTERVAL_MS). */
export const READING_INTERVAL_MS = 250;

/** How long the IFrame API script may take to arrive before the app gives up on it. */
export const LOAD_TIMEOUT_MS = 15_000;

/** The part of YouTube's `YT.Player` the app uses. */
export interface YtPlayer {
  cueVideoById(args: { videoId: string; startSeconds?: number }): void;
  seekTo(seconds: number, allowSeekAhead: boolean): void;
  playVideo(): void;
  pauseVideo(): void;
  stopVideo(): void;
  getCurrentTime(): number;
  getPlayerState(): number;
  /** The video's length (s); 0 until its metadata has loaded. */
  getDuration(): number;
  destroy(): void;
}

export interface YtPlayerOptions {
  width: number;
  height: number;
  playerVars: Record<string, number | string>;
  events: {
    onReady?: (e: { target: YtPlayer }) => void;
    onStateChange?: (e: { target: YtPlayer; data: number }) => void;
    onError?: (e: { target: YtPlayer; data: number }) => void;
  };
}

export interface YtNamespace {
  Player: new (target: HTMLElement, options: YtPlayerOptions) => YtPlayer;
}

type YtWindow = Window & { YT?: YtNamespace; onYouTubeIframeAPIReady?: () => void };

/** The IFrame API script's address under `origin` (trailing slashes ignored). */
export function iframeApiUrl(origin: string): string {
  return `${origin.trim().replace(/\/+$/, "")}/iframe_api`;
}

/** The load under way (none once it is done: then `window.YT` is there). */
let loading: Promise<YtNamespace> | null = null;

/**
 * Loads the IFrame API once (from `{origin}/iframe_api`) and resolves with `YT` when the
 * script says it is ready (`onYouTubeIframeAPIReady`). A script that cannot be fetched or
 * does not get ready in LOAD_TIMEOUT_MS is an error with the user's words; the next call
 * tries again.
 */
/** Adds the script to the page; `failed` is called when it cannot be fetched. */
export type ScriptInjector = (src: string, failed: () => void) => void;

const appendScript: ScriptInjector = (src, failed) => {
  const script = document.createElement("script");
  script.src = src;
  script.async = true;
  script.addEventListener("error", failed);
  document.head.append(script);
};

export function loadIframeApi(
  origin: string,
  inject: ScriptInjector = appendScript,
  win: YtWindow = window as YtWindow,
): Promise<YtNamespace> {
  if (win.YT?.Player) return Promise.resolve(win.YT);
  if (loading) return loading;
  const src = iframeApiUrl(origin);
  loading = new Promise<YtNamespace>((resolve, reject) => {
    const fail = (why: string): void => {
      loading = null;
      reject(new Error(`YouTube's player could not be loaded from ${src} (${why}): YouTube videos stay silent on this device`));
    };
    const timer = win.setTimeout(() => fail("no answer"), LOAD_TIMEOUT_MS);
    const before = win.onYouTubeIframeAPIReady;
    win.onYouTubeIframeAPIReady = () => {
      win.clearTimeout(timer);
      before?.();
      if (win.YT?.Player) {
        loading = null; // from now on `YT` itself says it is loaded
        resolve(win.YT);
      } else {
        fail("the script defined no player");
      }
    };
    inject(src, () => { win.clearTimeout(timer); fail("offline, or refused"); });
  });
  return loading;
}

/** Where the player's readings and errors go (the node's `youtube-reading` / `youtube-error`). */
export interface VideoSink {
  /** `duration`: `getDuration()` once the player knows it (> 0), else `undefined`. */
  reading(video: string, position: number, state: number, duration: number | undefined): void;
  error(video: string, code: number): void;
}

/** Executes the engine's directives on one IFrame player. */
export class VideoPlayer {
  private player: YtPlayer | null = null;
  private ready = false;
  /** The last directive that arrived before the player was ready. */
  private waiting: VideoDirective | null = null;
  private video: string | null = null;
  private playTimer: number | null = null;
  private readTimer: number | null = null;

  constructor(yt: YtNamespace, host: HTMLElement, private readonly sink: VideoSink) {
    const target = document.createElement("div");
    host.replaceChildren(target);
    this.player = new yt.Player(target, {
      width: 320,
      height: 180,
      // No YouTube controls or keyboard: the DJ's controls steer every device.
      playerVars: { controls: 0, disablekb: 1, playsinline: 1, rel: 0, fs: 0 },
      events: {
        onReady: () => {
          this.ready = true;
          const d = this.waiting;
          this.waiting = null;
          if (d) this.apply(d);
        },
        onError: (e) => { if (this.video !== null) this.sink.error(this.video, e.data); },
      },
    });
  }

  /** The video the player holds (`null`: none). */
  get current(): string | null {
    return this.video;
  }

  apply(d: VideoDirective): void {
    const p = this.player;
    if (!p) return;
    if (!this.ready) {
      this.waiting = d;
      return;
    }
    this.clearPlay();
    switch (d.do) {
      case "play": {
        this.hold(p, d.video, d.position);
        if (d.in_ms > 0) {
          this.playTimer = window.setTimeout(() => { this.playTimer = null; p.playVideo(); }, d.in_ms);
        } else {
          // Late: play at once from where the group is now.
          p.seekTo(d.position - d.in_ms / 1000, true);
          p.playVideo();
        }
        this.startReading();
        break;
      }
      case "pause":
        this.hold(p, d.video, d.position);
        this.startReading();
        break;
      case "stop":
        p.stopVideo();
        this.video = null;
        this.stopReading();
        break;
    }
  }

  /** The player paused on `video` at `position` (loading it when it is another one). */
  private hold(p: YtPlayer, video: string, position: number): void {
    if (this.video !== video) {
      p.cueVideoById({ videoId: video, startSeconds: position });
      this.video = video;
    } else {
      p.pauseVideo();
      p.seekTo(position, true);
    }
  }

  private clearPlay(): void {
    if (this.playTimer !== null) window.clearTimeout(this.playTimer);
    this.playTimer = null;
  }

  private startReading(): void {
    if (this.readTimer !== null) return;
    this.readTimer = window.setInterval(() => {
      const p = this.player;
      if (p && this.video !== null) {
        const d = p.getDuration();
        this.sink.reading(this.video, p.getCurrentTime(), p.getPlayerState(), Number.isFinite(d) && d > 0 ? d : undefined);
      }
    }, READING_INTERVAL_MS);
  }

  private stopReading(): void {
    if (this.readTimer !== null) window.clearInterval(this.readTimer);
    this.readTimer = null;
  }

  dispose(): void {
    this.clearPlay();
    this.stopReading();
    this.player?.destroy();
    this.player = null;
    this.video = null;
  }
}
