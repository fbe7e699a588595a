// E2E of the real app binary: tauri-driver + WebKitWebDriver under Xvfb, against a
// real jamz-server, with a headless `jamz node` in the same session.
//
//   xvfb-run -a node tests/app/e2e.mjs          (scripts/app-e2e.sh builds first)
//
// Env: APP_BIN (default target/debug/trafficjamz), JAMZ_BIN, SERVER_BIN,
// ARTIFACTS (default tests/app/artifacts). Screenshots: ARTIFACTS/NN-screen-day.png and
// NN-screen-night.png, every screen in both themes (the directory is printed at the end).
// Map tiles come from a local tile server started here (tests/app/tile-server.mjs),
// which is stopped before the end: the map then draws from the app's tile cache.
// YouTube is a local stand-in too (tests/app/youtube-server.mjs; its origin is allowed by
// the test build's CSP, see scripts/app-e2e.sh).
// E2E_SCENARIOS: a comma-separated choice of main, hosting, youtube (default: all).

import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { createServer } from "node:net";
import { startTileServer } from "./tile-server.mjs";
import { startYoutubeStandin } from "./youtube-server.mjs";
import { WebDriver, waitFor } from "./webdriver.mjs";

const ROOT = resolve(import.meta.dirname, "../..");
const TARGET = process.env.CARGO_TARGET_DIR ?? join(ROOT, "target");
const APP_BIN = process.env.APP_BIN ?? join(TARGET, "debug/trafficjamz");
const JAMZ_BIN = process.env.JAMZ_BIN ?? join(TARGET, "debug/jamz");
const SERVER_BIN = process.env.SERVER_BIN ?? join(TARGET, "debug/jamz-server");
const ARTIFACTS = process.env.ARTIFACTS ?? join(ROOT, "tests/app/artifacts");
const DRIVER_PORT = 4444;

const children = [];
const tmp = mkdtempSync(join(tmpdir(), "jamz-app-e2e-"));
// Screenshots of this run only.
rmSync(ARTIFACTS, { recursive: true, force: true });
mkdirSync(ARTIFACTS, { recursive: true });
const log = (...a) => console.error("[e2e]", ...a);
// The app's file picker returns what this file lists (JAMZ_TEST_PICKED_FILES; a
// native dialog cannot be driven): files enter the app only through the picker.
const PICKED = join(tmp, "picked.txt");
process.env.JAMZ_TEST_PICKED_FILES = PICKED;
async function pickFile(wd, path) {
  writeFileSync(PICKED, `${path}\n`);
  await wd.click("[data-action=pick-files]");
}

function start(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], ...opts });
  children.push(child);
  child.stderr.on("data", (d) => {
    if (process.env.E2E_VERBOSE) process.stderr.write(`[${cmd.split("/").pop()}] ${d}`);
  });
  return child;
}

/** A mono 16-bit WAV of a 440 Hz tone. */
function writeTone(path, seconds, rate = 22050) {
  const n = Math.floor(seconds * rate);
  const buf = Buffer.alloc(44 + n * 2);
  buf.write("RIFF", 0); buf.writeUInt32LE(36 + n * 2, 4); buf.write("WAVE", 8);
  buf.write("fmt ", 12); buf.writeUInt32LE(16, 16); buf.writeUInt16LE(1, 20); buf.writeUInt16LE(1, 22);
  buf.writeUInt32LE(rate, 24); buf.writeUInt32LE(rate * 2, 28); buf.writeUInt16LE(2, 32); buf.writeUInt16LE(16, 34);
  buf.write("data", 36); buf.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) buf.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + i * 2);
  writeFileSync(path, buf);
}

async function startServer(dir = "server") {
  const server = start(SERVER_BIN, ["--bind", "127.0.0.1:0", "--db", join(tmp, `${dir}/jamz.db`), "--data-dir", join(tmp, dir)]);
  const lines = createInterface({ input: server.stdout });
  return waitFor("the server's listening line", () => new Promise((res, rej) => {
    lines.once("line", (l) => {
      const m = /listening on (http:\/\/\S+)/.exec(l);
      if (m) res(m[1]); else rej(new Error(`unexpected server line: ${l}`));
    });
    server.once("exit", (c) => rej(new Error(`server exited ${c}`)));
  }), 30000);
}

async function registerUser(server, username) {
  const res = await fetch(`${server}/api/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, email: `${username}@example.com`, password: "pw-secret-1" }),
  });
  if (!res.ok) throw new Error(`register ${username}: ${res.status} ${await res.text()}`);
}

/** The headless node: JSON lines; remembers its latest event of each kind. */
function startNode(server, groupId, user = "bo", name = "Bo's car") {
  const node = start(JAMZ_BIN, ["node", "--server", server, "--username", user, "--password", "pw-secret-1",
    "--group", groupId, "--name", name, "--output", "null", "--cache-dir", join(tmp, `${user}-cache`), "--json"]);
  const latest = new Map();
  const playbacks = [];
  createInterface({ input: node.stdout }).on("line", (l) => {
    try {
      const ev = JSON.parse(l);
      latest.set(ev.event, ev);
      // What the node reports of its playback: `playback` on changes, `status` on request.
      if (ev.event === "playback" || ev.event === "status") playbacks.push(ev);
    } catch { log("node said:", l); }
  });
  return { node, latest, playbacks, send: (c) => node.stdin.write(`${JSON.stringify(c)}\n`) };
}

/** Creates a group on the groups screen and adds `member`; its id. */
async function createGroup(wd, name, member) {
  await wd.type("input[name=group-name]", name);
  await wd.click("form[aria-label='Create a group'] button");
  const groupId = await waitFor("the new group", async () => {
    const ids = await wd.findAll("li.group");
    return ids.length === 1 ? wd.attr("li.group", "data-group") : null;
  });
  await wd.type("li.group input[name=member]", member);
  await wd.click("li.group form button");
  await waitFor("two members", async () => (await wd.text("[data-testid=member-count]")) === "2 members");
  return groupId;
}

let shot = 0;
/** The window as it is, in the day theme and in the night one; then the theme as it was. */
async function screenshot(wd, name) {
  shot += 1;
  const was = await wd.exec("return document.documentElement.dataset.theme ?? null");
  for (const [theme, label] of [["light", "day"], ["dark", "night"]]) {
    // Two frames: the new colours are painted before the picture is taken.
    await wd.exec(`document.documentElement.dataset.theme = '${theme}'`);
    await wd.exec("return new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))");
    const file = join(ARTIFACTS, `${String(shot).padStart(2, "0")}-${name}-${label}.png`);
    writeFileSync(file, await wd.screenshot());
    log("screenshot", file);
  }
  await wd.exec(was === null ? "delete document.documentElement.dataset.theme" : `document.documentElement.dataset.theme = '${was}'`);
}

/** A FLAC of the tone with a picture as its cover (ffmpeg), or `null` without ffmpeg. */
function withCover(wav) {
  const cover = join(tmp, "cover.png");
  const flac = wav.replace(/\.wav$/, ".flac");
  const ff = (args) => spawnSync("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", ...args], { stdio: "inherit" });
  const a = ff(["-f", "lavfi", "-i", "color=c=0xe63946:s=128x128", "-frames:v", "1", cover]);
  if (a.error || a.status !== 0) return null;
  const b = ff(["-i", wav, "-i", cover, "-map", "0:a", "-map", "1:v", "-c:a", "flac", "-c:v", "copy",
    "-disposition:v", "attached_pic", "-metadata", "title=Road Tone", "-metadata", "artist=The Convoy", flac]);
  return b.status === 0 ? flac : null;
}

/** The first run's "this car" step: a name, the silent output (Xvfb has no sound card), done. */
async function firstRunCar(wd, name) {
  await waitFor("this car's step", () => wd.findAll("[data-step=car]").then((a) => a.length === 1));
  await waitFor("the output list", () => wd.findAll("select[name=output] option[value=null]").then((a) => a.length === 1));
  await waitFor("the location sources", () => wd.findAll("select[name=location-mode] option[value=manual]").then((a) => a.length === 1));
  await wd.type("input[name=display-name]", name);
  await wd.click("select[name=output] option[value=null]");
  await screenshot(wd, "first-run-car");
  await wd.click("[data-action=finish-setup]");
}

/** Adds a file by typed path (the native file picker cannot be driven here). */
/** The map's tiles shown (loaded) now, as `z/x/y`. */
const loadedTiles = (wd) => wd.exec(
  "return [...document.querySelectorAll('.map img.leaflet-tile-loaded')].map((i) => new URL(i.src).pathname.replace(/^\\//, ''))");

/** The tile cache's figures as the map section shows them. */
async function tileFigures(wd) {
  const [fromCache, fetched] = await wd.exec(
    "const e = document.querySelector('[data-testid=map-tiles]'); return [Number(e?.dataset.fromCache ?? -1), Number(e?.dataset.fetched ?? -1)]");
  return { fromCache, fetched };
}

/** This car's position by hand (the fields keep it for "Meet at this position" too). */
async function typeFix(wd, lat, lon) {
  await wd.exec("for (const n of ['latitude', 'longitude']) document.querySelector(`input[name=${n}]`).value = ''");
  await wd.type("input[name=latitude]", String(lat));
  await wd.type("input[name=longitude]", String(lon));
}

async function main() {
  const server = await startServer();
  const tiles = await startTileServer();
  log("tile server", tiles.template);
  log("server", server);
  await registerUser(server, "bo");
  const wav = join(tmp, "tone.wav");
  writeTone(wav, 40);
  const flac = withCover(wav);
  if (!flac && process.env.JAMZ_REQUIRE_FFMPEG) throw new Error("ffmpeg is required (JAMZ_REQUIRE_FFMPEG)");
  if (!flac) log("no ffmpeg: the first track has no cover art, its check is skipped");

  await withApp({ JAMZ_CONFIG_DIR: join(tmp, "app-config"), JAMZ_CACHE_DIR: join(tmp, "app-cache") }, async (wd) => {
    // 1. the first run, joining a server; then register
    await waitFor("the first-run screen", () => wd.findAll("[data-step=choose]").then((a) => a.length === 1));
    await screenshot(wd, "first-run");
    await wd.click("[data-choice=join]");
    await wd.type("input[name=server]", server);
    await screenshot(wd, "first-run-server");
    await wd.click("form button[type=submit]");
    await firstRunCar(wd, "Ann's car");
    await waitFor("the sign-in screen", () => wd.findAll("[data-screen=auth]").then((a) => a.length === 1));
    if ((await wd.exec("return document.querySelector('input[name=server]').value")) !== server) throw new Error("the first run's server is not the sign-in's");
    await screenshot(wd, "sign-in");
    await wd.click("button.link");
    await wd.type("input[name=server]", server);
    await wd.type("input[name=username]", "ann");
    await wd.type("input[name=email]", "ann@example.com");
    await wd.type("input[name=password]", "pw-secret-1");
    await screenshot(wd, "register");
    await wd.click("button[type=submit]");
    await waitFor("the groups screen", () => wd.findAll("[data-screen=groups]").then((a) => a.length === 1));

    // 2. settings: silent output (Xvfb has no sound card), picked from the output list
    await wd.click("header button:nth-of-type(1)");
    await waitFor("the settings screen", () => wd.findAll("[data-screen=settings]").then((a) => a.length === 1));
    await waitFor("the output list", () => wd.findAll("select[name=output] option[value=null]").then((a) => a.length === 1));
    await wd.click("select[name=output] option[value=null]");
    // The map's tiles from the local tile server (OpenStreetMap by default).
    await wd.exec("document.querySelector('input[name=map-tiles]').value = ''");
    await wd.type("input[name=map-tiles]", tiles.template);
    // Another server than OpenStreetMap's: no credit until one is typed.
    if ((await wd.exec("return document.querySelector('input[name=map-attribution]').value")) !== "") throw new Error("OpenStreetMap's credit kept for another tile server");
    await wd.type("input[name=map-attribution]", "© Test tiles");
    await wd.click("form button[type=submit]");
    await waitFor("settings saved", async () => (await wd.text("[data-testid=settings-saved]")) === "Saved.");
    await screenshot(wd, "settings");
    await wd.click("header button");
    await waitFor("the groups screen again", () => wd.findAll("[data-screen=groups]").then((a) => a.length === 1));

    // 3. create a group, add bo
    const groupId = await createGroup(wd, "Convoy", "bo");
    await screenshot(wd, "groups");
    log("group", groupId);

    // 4. the session: add a track, take control, play
    await wd.click("[data-action=open-session]");
    await waitFor("the session screen", () => wd.findAll("[data-screen=session]").then((a) => a.length === 1));
    const bo = startNode(server, groupId);
    await waitFor("the headless node ready", () => bo.latest.has("ready"), 30000);
    await pickFile(wd, flac ?? wav);
    const trackId = await waitFor("the track in the playlist", async () => {
      const ids = await wd.findAll("[data-track]");
      return ids.length === 1 ? wd.attr("[data-track]", "data-track") : null;
    }, 30000);
    await wd.click("[data-action=take-control]");
    await waitFor("DJ controls enabled", async () => (await wd.text("[data-testid=dj]")) === "You are the DJ");
    await wd.click("[data-action=play]");
    await waitFor("the app playing", async () => (await wd.text("[data-testid=play-state]")) === "playing", 30000);
    const p1 = Number(await wd.attr("[data-testid=position]", "data-seconds"));
    await waitFor("the position moving", async () => Number(await wd.attr("[data-testid=position]", "data-seconds")) > p1 + 1, 15000);
    if (flac) {
      try {
        await waitFor("the cover art from the track's tags", async () =>
          (await wd.exec("const i = document.querySelector('[data-testid=cover]'); return !i.hidden && i.complete && i.naturalWidth === 128 && i.src.startsWith('data:image/png')")), 30000);
      } catch (e) {
        const sha = (bo.latest.get("playlist")?.playlist ?? [])[0]?.sha256;
        const asked = await wd.execAsync("const done = arguments[arguments.length - 1]; window.__TAURI_INTERNALS__.invoke('cover_art', { sha256: arguments[0] }).then((u) => done(`answer: ${String(u).slice(0, 40)}`), (err) => done(`error: ${JSON.stringify(err)}`));", [sha]).catch((x) => String(x));
        log("cover_art for", sha, "->", asked);
        throw e;
      }
      if ((await wd.text("[data-testid=now-playing]")) !== "Road Tone") throw new Error("the title from the tags is not shown");
    }
    await screenshot(wd, "session-playing");
    // A phone in portrait: the same screen at 390 px wide.
    await wd.req("POST", wd.s("/window/rect"), { width: 390, height: 844 }).catch((e) => log("no window resize:", String(e)));
    await wd.exec("window.scrollTo(0, 0)");
    await screenshot(wd, "session-phone");
    await wd.req("POST", wd.s("/window/rect"), { width: 1280, height: 900 }).catch(() => undefined);

    // 5. the headless node reports the same playback
    await waitFor("the node playing the same track, position moving", () => {
      bo.send({ cmd: "status" });
      const playing = bo.playbacks.filter((p) => p.playing && p.track === trackId);
      return playing.length >= 2 && playing[playing.length - 1].position > playing[0].position;
    }, 30000, 200);
    log("node playback", JSON.stringify(bo.latest.get("playback")));

    // 6. the map: a fix by hand from each car (sharing is off until each turns it on)
    bo.send({ cmd: "share-location", enabled: true });
    await wd.click("[data-action=share-location]");
    // About 330 m apart: close enough to travel together.
    const BO = { latitude: 47.3869, longitude: 8.5417 };
    const ANN = { latitude: 47.3839, longitude: 8.5427 };
    bo.send({ cmd: "location", ...BO });
    await typeFix(wd, ANN.latitude, ANN.longitude);
    await wd.click("[data-action=send-fix]");
    await waitFor("a distance between the cars", () => wd.findAll(".distance").then((a) => a.length >= 1), 20000);
    // Both cars' markers are drawn, with no tile server reachable (vector markers).
    await waitFor("two markers on the map", () => wd.findAll(".map path.leaflet-interactive").then((a) => a.length === 2), 10000);
    // The tiles, through the app's tile cache from the local tile server.
    await waitFor("map tiles drawn", async () => (await loadedTiles(wd)).length >= 4, 20000);
    if (tiles.served.length === 0) throw new Error("tiles drawn but none asked of the tile server");
    const credit = () => wd.exec("return document.querySelector('.map .leaflet-control-attribution')?.textContent ?? ''");
    if (!(await credit()).includes("© Test tiles")) throw new Error(`the map's credit is not the setting's: ${await credit()}`);
    await wd.exec("document.getElementById('sec-map').scrollIntoView()");
    await screenshot(wd, "map");
    log("position at map", await wd.attr("[data-testid=position]", "data-seconds"), JSON.stringify(bo.latest.get("playback")));

    // 7. settings while playing: latency offset and cache size apply at once, the music goes on
    await wd.exec("window.scrollTo(0, 0)");
    await wd.click("[data-action=settings]");
    await waitFor("the settings panel", () => wd.findAll("#sec-settings:not([hidden]) select[name=output]").then((a) => a.length === 1));
    await wd.exec("const i = document.querySelector('#sec-settings input[name=latency]'); i.value = ''; const c = document.querySelector('#sec-settings input[name=cache-limit]'); c.value = '';");
    await wd.type("#sec-settings input[name=latency]", "120");
    await wd.type("#sec-settings input[name=cache-limit]", "256");
    // The map's credit too: it applies at once, the map stays.
    await wd.exec("document.querySelector('#sec-settings input[name=map-attribution]').value = ''");
    await wd.type("#sec-settings input[name=map-attribution]", "© Test tiles, live");
    await wd.click("#sec-settings button[type=submit]");
    await waitFor("the node using the new offset", async () => (await wd.text("[data-testid=output-in-use]")) === "In use: output null · latency offset 120 ms", 10000);
    await waitFor("the new cache limit", async () => (await wd.text("[data-testid=cache-summary]")).endsWith("limit 256 MiB"), 10000);
    await waitFor("the new map credit", async () => (await credit()).includes("© Test tiles, live"), 10000);
    await waitFor("map tiles drawn again", async () => (await loadedTiles(wd)).length >= 4, 20000);
    await wd.exec("document.getElementById('sec-settings').scrollIntoView()");
    await screenshot(wd, "session-settings");
    log("position at settings", await wd.attr("[data-testid=position]", "data-seconds"), JSON.stringify(bo.latest.get("playback")));
    if ((await wd.text("[data-testid=play-state]")) !== "playing") throw new Error("playback stopped when settings changed");
    await wd.click("[data-action=settings]");

    // 8. playlist: a second track; the DJ reorders and removes; the headless node sees each change
    const wav2 = join(tmp, "second.wav");
    writeTone(wav2, 20, 16000);
    await pickFile(wd, wav2);
    await waitFor("two tracks", () => wd.findAll("[data-track]").then((a) => a.length === 2), 30000);
    const order = () => wd.exec("return [...document.querySelectorAll('[data-track]')].map((e) => e.dataset.track)");
    const [first, second] = await order();
    const nodeOrder = () => (bo.latest.get("playlist")?.playlist ?? []).map((t) => t.id).join(",");
    await waitFor("the node's playlist of two", () => nodeOrder() === `${first},${second}`, 10000);
    await wd.click(`[data-track="${first}"] [data-action=down]`);
    await waitFor("the reordered playlist", async () => (await order()).join(",") === `${second},${first}`, 10000);
    await waitFor("the node's playlist reordered", () => nodeOrder() === `${second},${first}`, 10000);
    await wd.exec("document.getElementById('sec-pl').scrollIntoView()");
    await screenshot(wd, "playlist-reordered");
    const removed = first === trackId ? second : first;
    await wd.click(`[data-track="${removed}"] [data-action=remove]`);
    await waitFor("one track left", async () => (await order()).join(",") === trackId, 10000);
    await waitFor("the node's playlist of one", () => nodeOrder() === trackId, 10000);

    // 9. cache: preload the playlist (progress to the end), then clear it while the music plays
    await wd.click("[data-action=preload]");
    await waitFor("preload done", async () => /^(\d+) of \1 tracks?$/.test(await wd.text("#sec-cache [role=status]")), 30000);
    await waitFor("a track in the cache", async () => /^[1-9]\d* tracks? cached/.test(await wd.text("[data-testid=cache-summary]")), 10000);
    await wd.exec("document.getElementById('sec-cache').scrollIntoView()");
    await screenshot(wd, "cache-preloaded");
    await wd.click("[data-action=cache-clear]");
    await waitFor("an empty cache", async () => (await wd.text("[data-testid=cache-summary]")).startsWith("0 tracks cached, 0 B"), 10000);
    if ((await wd.text("[data-testid=play-state]")) !== "playing") throw new Error("playback stopped when the cache was cleared");

    // 10. the map: the two cars travel together (parked side by side, after the engine's
    // window), the meeting point between them (so the view stays the one fitted to the cars)
    await wd.exec("document.getElementById('sec-map').scrollIntoView()");
    await typeFix(wd, (BO.latitude + ANN.latitude) / 2, (BO.longitude + ANN.longitude) / 2);
    await wd.click("[data-action=regroup]");
    await waitFor("the meeting point on the map", () => wd.findAll(".map .regroup-marker").then((a) => a.length === 1), 20000);
    await typeFix(wd, ANN.latitude, ANN.longitude);
    await waitFor("the two cars together", async () => {
      // Fresh fixes keep both cars live while the engine's window passes.
      bo.send({ cmd: "location", ...BO });
      await wd.click("[data-action=send-fix]");
      return (await wd.findAll(".map .together-line")).length === 1;
    }, 90000, 3000);
    if (!(await wd.text("[data-testid=distances]")).includes("Together: ")) throw new Error("the together group is drawn but not listed");
    await waitFor("map tiles drawn", async () => (await loadedTiles(wd)).length >= 4, 20000);
    await screenshot(wd, "map-together-regroup");
    const seen = new Set(await loadedTiles(wd));

    // 11. the tile server stops: the session opened again draws the same view from the
    // app's tile cache (the shell serves what it kept; the web view asks it again)
    await tiles.stop();
    const servedBefore = tiles.served.length;
    const before = await waitFor("the tile figures", async () => {
      const f = await tileFigures(wd);
      return f.fetched > 0 ? f : null;
    }, 10000);
    log("tile server stopped after", servedBefore, "tiles; cache figures", JSON.stringify(before));
    await wd.exec("window.scrollTo(0, 0)");
    await wd.click("[data-action=leave]");
    await waitFor("the groups screen after leaving", () => wd.findAll("[data-screen=groups]").then((a) => a.length === 1));
    await wd.click("[data-action=open-session]");
    await waitFor("the session screen again", () => wd.findAll("[data-screen=session]").then((a) => a.length === 1));
    await waitFor("sharing again", async () => {
      if ((await wd.text("[data-action=share-location]")) === "Stop sharing my position") return true;
      await wd.click("[data-action=share-location]");
      return false;
    }, 20000, 1000);
    await typeFix(wd, ANN.latitude, ANN.longitude);
    await wd.click("[data-action=send-fix]");
    bo.send({ cmd: "location", ...BO });
    await waitFor("two markers on the map again", () => wd.findAll(".map path.leaflet-interactive").then((a) => a.length === 2), 20000);
    await wd.exec("document.getElementById('sec-map').scrollIntoView()");
    const again = await waitFor("map tiles drawn from the cache", async () => {
      const t = await loadedTiles(wd);
      return t.length >= 4 ? t : null;
    }, 20000);
    const after = await waitFor("tiles counted as shown from the cache", async () => {
      const f = await tileFigures(wd);
      return f.fromCache >= before.fromCache + again.length ? f : null;
    }, 10000);
    if (tiles.served.length !== servedBefore) throw new Error("the stopped tile server served tiles");
    const fromSeen = again.filter((t) => seen.has(t.split("?")[0])).length;
    log(`offline: ${again.length} tiles drawn (${fromSeen} of them seen before), cache figures`, JSON.stringify(after));
    if (fromSeen === 0) throw new Error(`the offline map shows none of the tiles seen online: ${again.join(" ")}`);
    await screenshot(wd, "map-offline");
    bo.send({ cmd: "quit" });
    log("PASS: main scenario");
  });
}

/** Runs `scenario` against the app started by a fresh tauri-driver with `env`; then stops both. */
async function withApp(env, scenario) {
  const driver = start("tauri-driver", ["--port", String(DRIVER_PORT)], { env: { ...process.env, ...env } });
  const wd = new WebDriver(`http://127.0.0.1:${DRIVER_PORT}`);
  await waitFor("tauri-driver /status", async () => (await fetch(`${wd.base}/status`)).ok, 20000, 200);
  await wd.start(APP_BIN);
  try {
    // Settings live in the web view's storage, which outlives the app (per user, not per
    // JAMZ_CONFIG_DIR): start each scenario from the defaults.
    await wd.exec("localStorage.clear(); setTimeout(() => location.reload(), 0)");
    await waitFor("the reloaded first-run screen", () =>
      wd.exec("return document.readyState === 'complete' && !!document.querySelector('[data-screen=welcome]') && localStorage.length === 0").catch(() => false));
    await scenario(wd);
  } catch (e) {
    await screenshot(wd, "failure").catch(() => undefined);
    const alerts = await wd.exec("return [...document.querySelectorAll('[role=alert], [role=status]')].map((e) => e.textContent).filter(Boolean)").catch(() => []);
    log("alerts and statuses on the page:", JSON.stringify(alerts));
    throw e;
  } finally {
    await wd.quit().catch(() => undefined);
    const exited = new Promise((res) => driver.once("exit", res));
    driver.kill("SIGTERM");
    await exited;
  }
}

/**
 * A YouTube video in the shared playlist, played by the app in the stand-in of YouTube's
 * IFrame player and steered by its engine, against a headless node's timeline (same
 * machine: both clocks are the wall clock): it starts at the agreed instant, pauses, seeks
 * and follows the DJ; the duration the player reads reaches the shared playlist (oEmbed
 * has none), so the next track, an upload, starts at the video's end on the node, which
 * is silent for the video and says why.
 */
async function youtube() {
  const VIDEO = "M7lc1UVf-VE";
  const LENGTH = 40;
  const yt = await startYoutubeStandin({ videos: { [VIDEO]: { title: "Stand-in drive", author: "Stand-in channel", duration: LENGTH } } });
  const server = await startServer("yt-server");
  log("YouTube stand-in", yt.origin, "server", server);
  await registerUser(server, "eve");
  const wav = join(tmp, "after-video.wav");
  writeTone(wav, 12);
  await withApp({ JAMZ_CONFIG_DIR: join(tmp, "yt-config"), JAMZ_CACHE_DIR: join(tmp, "yt-cache") }, async (wd) => {
    await waitFor("the first-run screen", () => wd.findAll("[data-step=choose]").then((a) => a.length === 1));
    await wd.click("[data-choice=join]");
    await wd.type("input[name=server]", server);
    await wd.click("form button[type=submit]");
    await firstRunCar(wd, "Fay's car");
    await waitFor("the sign-in screen", () => wd.findAll("[data-screen=auth]").then((a) => a.length === 1));
    await wd.click("button.link");
    await wd.type("input[name=username]", "fay");
    await wd.type("input[name=email]", "fay@example.com");
    await wd.type("input[name=password]", "pw-secret-1");
    await wd.click("button[type=submit]");
    await waitFor("the groups screen", () => wd.findAll("[data-screen=groups]").then((a) => a.length === 1));
    // The app's YouTube address: the stand-in (the IFrame API script and oEmbed).
    await wd.click("header button:nth-of-type(1)");
    await waitFor("the settings screen", () => wd.findAll("[data-screen=settings]").then((a) => a.length === 1));
    await wd.type("input[name=youtube-origin]", yt.origin);
    await wd.click("form button[type=submit]");
    await waitFor("settings saved", async () => (await wd.text("[data-testid=settings-saved]")) === "Saved.");
    await wd.click("header button");
    const groupId = await createGroup(wd, "Video convoy", "eve");
    await wd.click("[data-action=open-session]");
    await waitFor("the session screen", () => wd.findAll("[data-screen=session]").then((a) => a.length === 1));
    const eve = startNode(server, groupId, "eve", "Eve's car");
    const notPlayable = [];
    eve.node.stdout.on("data", () => { const n = eve.latest.get("not-playable"); if (n && !notPlayable.includes(n)) notPlayable.push(n); });
    await waitFor("the headless node ready", () => eve.latest.has("ready"), 30000);

    // The video by id, titled by (stand-in) oEmbed; then an upload after it.
    await wd.type("input[name=youtube]", VIDEO);
    await wd.click("[data-action=add-youtube]");
    const videoTrack = await waitFor("the video in the node's playlist", () =>
      (eve.latest.get("playlist")?.playlist ?? []).find((t) => t.youtube_id === VIDEO), 30000);
    if (videoTrack.title !== "Stand-in drive" || videoTrack.artist !== "Stand-in channel") throw new Error(`oEmbed's title not used: ${JSON.stringify(videoTrack)}`);
    if (!yt.requests.some((r) => r.startsWith("/oembed?"))) throw new Error("oEmbed was not asked");
    log("video added:", JSON.stringify(videoTrack), "(oEmbed gives no duration)");
    await pickFile(wd, wav);
    await waitFor("two tracks", () => wd.findAll("[data-track]").then((a) => a.length === 2), 30000);
    const uploadId = await wd.exec("return [...document.querySelectorAll('[data-track]')].map((e) => e.dataset.track)[1]");
    await waitFor("the node's playlist of two", () => (eve.latest.get("playlist")?.playlist ?? []).length === 2, 10000);

    // Play: the stand-in is cued at 0 and told to play at the agreed instant.
    await wd.click("[data-action=take-control]");
    await waitFor("DJ controls enabled", async () => (await wd.text("[data-testid=dj]")) === "You are the DJ");
    await wd.click("[data-action=play]");
    const player = "const p = window.__ytStandin.players[0];";
    const sample = () => wd.exec(`${player} return p ? [performance.timeOrigin + performance.now(), p.getCurrentTime(), p.getPlayerState()] : null`);
    const calls = () => wd.exec("return (window.__ytStandin?.calls ?? []).map((c) => [c.call, c.args, c.at])");
    await waitFor("the stand-in playing", async () => (await sample())?.[2] === 1, 30000);
    if (!yt.requests.includes("/iframe_api")) throw new Error("the IFrame API script was not fetched from the stand-in");
    /** The node's timeline position at epoch instant `t` (its latest playback report). */
    const nodeAt = (t, track) => {
      const p = [...eve.playbacks].reverse().find((e) => e.event === "playback" && e.track === track);
      if (!p) return null;
      return p.playing ? p.position + (t - p.at) / 1000 : p.position;
    };
    /** Offsets (ms) of the stand-in's position from the node's timeline: `n` readings
     * while it plays (fewer if it stops playing meanwhile). */
    const offsets = async (n) => {
      const out = [];
      for (let tries = 0; out.length < n && tries < 4 * n; tries++) {
        const [t, pos, state] = await sample();
        const due = nodeAt(t, videoTrack.id);
        if (state === 1 && due !== null) out.push(Math.round((pos - due) * 1000));
        await new Promise((r) => setTimeout(r, 300));
      }
      return out;
    };
    const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
    /**
     * Readings until their median is within the engine's soft bound (EXTERNAL_SOFT_SYNC_MS,
     * 150 ms): a player that starts late (a loaded machine delays the page's timers) is
     * the engine's to move, by a seek once its cooldown and window have passed.
     */
    const inStep = async (what) => {
      let tries = 0;
      return waitFor(`${what} in step with the node`, async () => {
        const o = await offsets(5);
        tries += 1;
        log(`${what}: stand-in minus the node's timeline (ms):`, o.join(" "), "median", median(o), tries > 1 ? `(reading ${tries})` : "");
        return o.length >= 3 && Math.abs(median(o)) <= 150 ? o : null;
      }, 30000, 0);
    };
    await waitFor("the node's timeline of the video", () => nodeAt(Date.now(), videoTrack.id) !== null, 20000);
    await inStep("video playing");
    const playCall = (await calls()).find(([c]) => c === "playVideo");
    const p0 = [...eve.playbacks].find((e) => e.event === "playback" && e.track === videoTrack.id && e.playing);
    const agreedStart = p0.at - p0.position * 1000;
    log(`playVideo() ${Math.round(playCall[2] - agreedStart)} ms after the agreed start`);
    // Late is the machine's load (printed); early would be the app's error.
    if (playCall[2] < agreedStart - 20) throw new Error(`playVideo() ${agreedStart - playCall[2]} ms before the agreed start`);
    if (!notPlayable.some((n) => n.track === videoTrack.id)) throw new Error("the headless node did not say it cannot play the video");
    log("the node says:", notPlayable.find((n) => n.track === videoTrack.id).reason);

    // The duration: read from the player, shared by the DJ's app (docs/protocol.md).
    await waitFor("the video's duration in the node's playlist", () =>
      (eve.latest.get("playlist")?.playlist ?? []).find((t) => t.id === videoTrack.id)?.duration === LENGTH, 20000);
    await waitFor("the duration shown", async () => (await wd.text("[data-testid=duration]")) === "0:40", 10000);
    log("duration from getDuration() in the shared playlist:", LENGTH, "s");
    await screenshot(wd, "youtube-playing");

    // Pause: the stand-in paused where the node's timeline stopped.
    await wd.click("[data-action=pause]");
    await waitFor("the stand-in paused", async () => (await sample())?.[2] === 2, 10000);
    await waitFor("the node paused", () => eve.playbacks.at(-1)?.playing === false, 10000);
    const [, pausedAt] = await sample();
    const nodePaused = nodeAt(Date.now(), videoTrack.id);
    log(`paused: stand-in at ${pausedAt.toFixed(3)} s, node at ${nodePaused.toFixed(3)} s`);
    if (Math.abs(pausedAt - nodePaused) > 0.05) throw new Error("the stand-in paused elsewhere than the timeline");

    // Play again, then seek to 24 s while playing: seekTo(24), played at the instant.
    await wd.click("[data-action=play]");
    await waitFor("the stand-in playing again", async () => (await sample())?.[2] === 1, 10000);
    await wd.exec("const b = document.querySelector('[data-testid=position-bar]'); b.value = '24'; b.dispatchEvent(new Event('change'))");
    await waitFor("seekTo(24)", async () => (await calls()).some(([c, a]) => c === "seekTo" && a[0] === 24), 10000);
    await waitFor("the node's timeline past 24 s", () => (nodeAt(Date.now(), videoTrack.id) ?? 0) >= 24.5, 10000);
    await waitFor("the stand-in playing after the seek", async () => {
      const s = await sample();
      return s?.[2] === 1 && s[1] >= 24;
    }, 10000);
    await inStep("after the seek");

    // The video's end (known only from the player): the node starts the upload then.
    const last = [...eve.playbacks].reverse().find((e) => e.event === "playback" && e.track === videoTrack.id && e.playing);
    const videoEnd = last.at + (LENGTH - last.position) * 1000;
    const up = await waitFor("the node playing the upload", () =>
      eve.playbacks.find((e) => e.event === "playback" && e.track === uploadId && e.playing), 30000);
    const uploadStart = up.at - up.position * 1000;
    log(`the upload starts on the node ${Math.round(uploadStart - videoEnd)} ms from the video's end`);
    if (Math.abs(uploadStart - videoEnd) > 250) throw new Error(`the upload did not start at the video's end (${uploadStart - videoEnd} ms)`);
    await waitFor("the stand-in stopped", async () => (await calls()).some(([c]) => c === "stopVideo"), 10000);
    eve.send({ cmd: "quit" });
    log("PASS: youtube scenario");
  });
  await yt.stop();
}

function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

/** "This device hosts the session": the app runs the server; a headless node joins it. */
async function hosting() {
  const port = await freePort();
  const hosted = `http://127.0.0.1:${port}`;
  await withApp({
    JAMZ_CONFIG_DIR: join(tmp, "host-config"), JAMZ_CACHE_DIR: join(tmp, "host-cache"), JAMZ_HOST_PORT: String(port),
    // No mDNS announcement of the hosted session on this machine's real network.
    JAMZ_MDNS: "off",
  }, async (wd) => {
    // The first run, hosting: the sign-in that follows has "this device hosts" ticked.
    await waitFor("the first-run screen", () => wd.findAll("[data-step=choose]").then((a) => a.length === 1));
    await wd.click("[data-choice=host]");
    await firstRunCar(wd, "Cara's car");
    await waitFor("the sign-in screen", () => wd.findAll("[data-screen=auth]").then((a) => a.length === 1));
    if (!(await wd.exec("return document.querySelector('input[name=host]').checked"))) throw new Error("hosting is not ticked after the first run chose it");
    await wd.click("button.link");
    await wd.type("input[name=username]", "cara");
    await wd.type("input[name=email]", "cara@example.com");
    await wd.type("input[name=password]", "pw-secret-1");
    await wd.click("button[type=submit]");
    await waitFor("the groups screen", () => wd.findAll("[data-screen=groups]").then((a) => a.length === 1), 30000);
    await waitFor("the hosting card", () => wd.findAll("[data-testid=hosting]:not([hidden]) [data-action=stop-hosting]").then((a) => a.length === 1));
    log("hosting card:", await wd.text("[data-testid=hosting]"));
    await screenshot(wd, "hosting");
    // Another car registers on the hosted server and is added to the group.
    await registerUser(hosted, "dan");
    const groupId = await createGroup(wd, "Off-grid", "dan");
    await wd.click("[data-action=open-session]");
    await waitFor("the session screen", () => wd.findAll("[data-screen=session]").then((a) => a.length === 1));
    const dan = startNode(hosted, groupId, "dan", "Dan's car");
    await waitFor("the headless node in the hosted session", () => dan.latest.has("ready"), 30000);
    await waitFor("Dan's car among the participants", async () => (await wd.text("[data-testid=participants]")).includes("Dan's car"), 20000);
    await waitFor("the node seeing Cara's car", () => (dan.latest.get("participants")?.participants ?? []).some((p) => p.display_name === "Cara's car"), 20000);
    await screenshot(wd, "hosted-session");
    log("participants after", await wd.text("[data-testid=participants]"), JSON.stringify(dan.latest.get("participants")));
    dan.send({ cmd: "quit" });
    await wd.click("[data-action=leave]");
    await waitFor("the groups screen after leaving", () => wd.findAll("[data-action=stop-hosting]").then((a) => a.length === 1));
    await wd.click("[data-action=stop-hosting]");
    await waitFor("signed out", () => wd.findAll("[data-screen=auth]").then((a) => a.length === 1));
    const gone = await fetch(`${hosted}/api/groups`).then(() => false, () => true);
    if (!gone) throw new Error("the hosted server still answers after stop hosting");
    log("PASS: hosting scenario");
  });
}

const SCENARIOS = { main, hosting, youtube };
const chosen = (process.env.E2E_SCENARIOS ?? Object.keys(SCENARIOS).join(",")).split(",").map((s) => s.trim()).filter(Boolean);
let code = 0;
try {
  for (const name of chosen) {
    const run = SCENARIOS[name];
    if (!run) throw new Error(`no scenario ${name} (there are ${Object.keys(SCENARIOS).join(", ")})`);
    await run();
  }
} catch (e) {
  console.error("[e2e] FAIL:", e instanceof Error ? e.stack : e);
  code = 1;
} finally {
  for (const c of children.reverse()) c.kill("SIGTERM");
  rmSync(tmp, { recursive: true, force: true });
}
console.log(`screenshots (day and night): ${ARTIFACTS}`);
process.exit(code);
