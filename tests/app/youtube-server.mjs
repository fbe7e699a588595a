// A local stand-in of YouTube for the app's E2E (no test reaches the public internet):
// `/iframe_api` answers the IFrame API stand-in (tests/app/youtube-standin/iframe_api.js,
// the player's JavaScript surface driven by a clock), preceded by its settings; `/oembed`
// answers a video's title and channel as YouTube's oEmbed does (no duration: YouTube's
// has none). The app is pointed at it by its "YouTube address" setting; the test build
// allows its origin in the CSP (scripts/app-e2e.sh, TAURI_CONFIG).

import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";

const STANDIN = readFileSync(join(import.meta.dirname, "youtube-standin/iframe_api.js"), "utf8");

/**
 * Starts the stand-in on a free loopback port: `{origin, requests, stop}`. `videos` maps a
 * video id to `{title, author, duration}` (oEmbed answers 404 for any other id);
 * `bufferMs`: how long the stand-in player buffers a play or seek. The player's clock is
 * the wall clock (ms since the Unix epoch, as `jamz node`'s `at`), so a test can compare
 * what it plays with a node's timeline.
 */
export async function startYoutubeStandin({ videos, bufferMs = 50 }) {
  const requests = [];
  const settings = {
    bufferMs,
    durations: Object.fromEntries(Object.entries(videos).map(([id, v]) => [id, v.duration])),
  };
  const script = `window.__ytStandin = Object.assign(window.__ytStandin || {}, ${JSON.stringify(settings)}, `
    + "{ now: function () { return performance.timeOrigin + performance.now(); } });\n" + STANDIN;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://stand-in");
    requests.push(`${url.pathname}${url.search}`);
    if (url.pathname === "/iframe_api") {
      res.writeHead(200, { "content-type": "text/javascript", "cache-control": "no-store" }).end(script);
      return;
    }
    if (url.pathname === "/oembed") {
      const watch = url.searchParams.get("url") ?? "";
      const id = new URL(watch, "https://www.youtube.com").searchParams.get("v") ?? "";
      const v = videos[id];
      if (!v) {
        res.writeHead(404, { "content-type": "text/plain" }).end("Not Found");
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({
        title: v.title, author_name: v.author, type: "video", provider_name: "YouTube",
      }));
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("not here");
  });
  await new Promise((res, rej) => {
    server.once("error", rej);
    server.listen(0, "127.0.0.1", res);
  });
  const { port } = server.address();
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    stop: () => new Promise((res) => {
      server.close(() => res());
      server.closeAllConnections();
    }),
  };
}
