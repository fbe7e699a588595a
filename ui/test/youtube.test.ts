// The YouTube player module against the stand-in of YouTube's IFrame API
// (tests/app/youtube-standin/iframe_api.js, the script the app E2E serves): the loader
// (script address from the origin setting, ready callback, a script that fails), and the
// executor (a start at an instant, a late start, pause, seek, stop, readings, errors).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { iframeApiUrl, loadIframeApi, VideoPlayer, type VideoSink, type YtNamespace } from "../src/youtube";
import { until } from "./helpers";

const STANDIN = readFileSync(join(import.meta.dirname, "../../tests/app/youtube-standin/iframe_api.js"), "utf8");
const VIDEO = "dQw4w9WgXcQ";

type StandinWindow = Window & {
  YT?: YtNamespace;
  onYouTubeIframeAPIReady?: () => void;
  __ytStandin?: { bufferMs?: number; errors?: Record<string, number>; durations?: Record<string, number>; calls?: { call: string; args: unknown[]; at: number }[] };
};
const win = window as StandinWindow;

/** Runs the stand-in script in this window, as the browser would run the fetched one. */
function runStandin(): YtNamespace {
  new Function(STANDIN)();
  if (!win.YT) throw new Error("the stand-in defined no YT");
  return win.YT;
}

function recorder(): VideoSink & { readings: [string, number, number, number | undefined][]; errors: [string, number][] } {
  const readings: [string, number, number, number | undefined][] = [];
  const errors: [string, number][] = [];
  return {
    readings,
    errors,
    reading: (v, p, s, d) => { readings.push([v, p, s, d]); },
    error: (v, c) => { errors.push([v, c]); },
  };
}

const calls = (): string[] => (win.__ytStandin?.calls ?? []).map((c) => c.call);

beforeEach(() => {
  delete win.YT;
  delete win.onYouTubeIframeAPIReady;
  win.__ytStandin = { bufferMs: 30, durations: { [VIDEO]: 212.5 } };
});
afterEach(() => {
  document.head.querySelectorAll("script").forEach((s) => s.remove());
  document.body.replaceChildren();
});

describe("loading the IFrame API", () => {
  // What the page is asked to fetch; `fail` is how a fetch that failed is reported.
  const injected: { src: string; fail: () => void }[] = [];
  const inject = (src: string, fail: () => void): void => { injected.push({ src, fail }); };
  beforeEach(() => { injected.length = 0; });

  it("asks the configured origin and resolves when the script is ready", async () => {
    expect(iframeApiUrl("http://127.0.0.1:9/yt/")).toBe("http://127.0.0.1:9/yt/iframe_api");
    const loaded = loadIframeApi("http://127.0.0.1:9", inject);
    expect(injected.map((i) => i.src)).toEqual(["http://127.0.0.1:9/iframe_api"]);
    runStandin(); // what the fetched script does
    const yt = await loaded;
    expect(typeof yt.Player).toBe("function");
    // Loaded once: later calls reuse it.
    await expect(loadIframeApi("http://elsewhere.invalid", inject)).resolves.toBe(yt);
    expect(injected.length).toBe(1);
  });

  it("says why when the script cannot be fetched, and tries again next time", async () => {
    const loaded = loadIframeApi("http://127.0.0.1:9", inject);
    injected[0]?.fail();
    await expect(loaded).rejects.toThrow(/could not be loaded from http:\/\/127\.0\.0\.1:9\/iframe_api.*silent/);
    const again = loadIframeApi("http://127.0.0.1:9", inject);
    expect(injected.length).toBe(2);
    runStandin();
    await expect(again).resolves.toBeDefined();
  });

  it("appends a script element by default", () => {
    void loadIframeApi("http://127.0.0.1:9").catch(() => undefined);
    expect(document.head.querySelector("script")?.getAttribute("src")).toBe("http://127.0.0.1:9/iframe_api");
  });
});

describe("the player executes the engine's directives", () => {
  it("plays at the instant, reads back, pauses, seeks and stops", async () => {
    const yt = runStandin();
    const sink = recorder();
    const player = new VideoPlayer(yt, document.body, sink);
    const t0 = performance.now();
    player.apply({ do: "play", video: VIDEO, position: 5, in_ms: 100 });
    // Cued at the position, played only at the instant.
    await until(() => calls().includes("playVideo"), "play");
    const log = win.__ytStandin?.calls ?? [];
    const cue = log.find((c) => c.call === "cueVideoById");
    expect(cue?.args[0]).toEqual({ videoId: VIDEO, startSeconds: 5 });
    const play = log.find((c) => c.call === "playVideo");
    expect((play?.at ?? 0) - t0).toBeGreaterThanOrEqual(99);
    // Readings come while it plays, with the video, a position past the start, PLAYING.
    await until(() => sink.readings.some(([, , s]) => s === 1), "a reading while playing");
    const [video, position, , duration] = sink.readings.find(([, , s]) => s === 1) ?? ["", 0];
    expect(video).toBe(VIDEO);
    expect(position).toBeGreaterThanOrEqual(5);
    // The video's length as the player knows it (a track added by link has none yet).
    expect(duration).toBe(212.5);

    player.apply({ do: "pause", video: VIDEO, position: 12 });
    expect(calls().slice(-2)).toEqual(["pauseVideo", "seekTo"]);
    const n = sink.readings.length;
    await until(() => sink.readings.length > n + 1, "readings while paused");
    expect(sink.readings.at(-1)).toEqual([VIDEO, 12, 2, 212.5]);

    // A seek of the loaded video: pause, seek, play at the instant (no reload).
    player.apply({ do: "play", video: VIDEO, position: 20, in_ms: 50 });
    await until(() => calls().filter((c) => c === "playVideo").length === 2, "second play");
    expect(calls().filter((c) => c === "cueVideoById").length).toBe(1);

    player.apply({ do: "stop" });
    expect(calls().at(-1)).toBe("stopVideo");
    expect(player.current).toBeNull();
    player.dispose();
  });

  it("starts late from where the group is, and a directive before ready waits for it", () => {
    const yt = runStandin();
    const player = new VideoPlayer(yt, document.body, recorder());
    // Before onReady (the stand-in fires it on the next turn): kept, not lost.
    player.apply({ do: "play", video: VIDEO, position: 10, in_ms: -2000 });
    expect(calls()).toEqual([]);
    return until(() => calls().includes("playVideo"), "the late start").then(() => {
      const log = win.__ytStandin?.calls ?? [];
      const seek = log.find((c) => c.call === "seekTo");
      expect(seek?.args).toEqual([12, true]);
      player.dispose();
    });
  });

  it("reads no duration while the player answers 0 (metadata not loaded)", async () => {
    win.__ytStandin = { bufferMs: 30, durations: { [VIDEO]: 0 } };
    const yt = runStandin();
    const sink = recorder();
    const player = new VideoPlayer(yt, document.body, sink);
    player.apply({ do: "pause", video: VIDEO, position: 3 });
    await until(() => sink.readings.length > 0, "a reading");
    expect(sink.readings[0]).toEqual([VIDEO, 3, 5, undefined]);
    player.dispose();
  });

  it("hands the player's error codes on", async () => {
    win.__ytStandin = { bufferMs: 30, errors: { notEmbed001: 150 } };
    const yt = runStandin();
    const sink = recorder();
    const player = new VideoPlayer(yt, document.body, sink);
    player.apply({ do: "play", video: "notEmbed001", position: 0, in_ms: 10 });
    await until(() => sink.errors.length > 0, "the error");
    expect(sink.errors).toEqual([["notEmbed001", 150]]);
    player.dispose();
  });
});

describe("the shipped CSP", () => {
  const conf = JSON.parse(readFileSync(join(import.meta.dirname, "../../src-tauri/tauri.conf.json"), "utf8")) as {
    app: { security: { csp: string } };
  };
  const directives = new Map(
    conf.app.security.csp.split(";").map((d) => d.trim().split(/\s+/)).map(([name, ...sources]) => [name ?? "", sources]),
  );
  it("allows exactly YouTube's player origins, and no local script", () => {
    expect(directives.get("script-src")).toEqual(["'self'", "https://www.youtube.com"]);
    expect(directives.get("frame-src")).toEqual(["https://www.youtube.com", "https://www.youtube-nocookie.com"]);
    const youtube = [...directives.values()].flat().filter((s) => /youtube|ytimg/.test(s));
    expect(new Set(youtube)).toEqual(new Set(["https://www.youtube.com", "https://www.youtube-nocookie.com", "https://i.ytimg.com"]));
    expect(conf.app.security.csp).not.toMatch(/127\.0\.0\.1|localhost:|unsafe-eval/);
  });
});
