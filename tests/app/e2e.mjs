// E2E of the real app binary: tauri-driver + WebKitWebDriver under Xvfb, against a
// real jamz-server, with a headless `jamz node` in the same session.
//
//   xvfb-run -a node tests/app/e2e.mjs          (scripts/app-e2e.sh builds first)
//
// Env: APP_BIN (default target/debug/trafficjamz), JAMZ_BIN, SERVER_BIN,
// ARTIFACTS (default tests/app/artifacts). Screenshots: ARTIFACTS/NN-screen.png.

import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
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

async function startServer() {
  const server = start(SERVER_BIN, ["--bind", "127.0.0.1:0", "--db", join(tmp, "server/jamz.db"), "--data-dir", join(tmp, "server")]);
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
function startNode(server, groupId) {
  const node = start(JAMZ_BIN, ["node", "--server", server, "--username", "bo", "--password", "pw-secret-1",
    "--group", groupId, "--name", "Bo's car", "--output", "null", "--cache-dir", join(tmp, "bo-cache"), "--json"]);
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

let shot = 0;
async function screenshot(wd, name) {
  shot += 1;
  const file = join(ARTIFACTS, `${String(shot).padStart(2, "0")}-${name}.png`);
  writeFileSync(file, await wd.screenshot());
  log("screenshot", file);
}

async function main() {
  const server = await startServer();
  log("server", server);
  await registerUser(server, "bo");
  const wav = join(tmp, "tone.wav");
  writeTone(wav, 40);

  const driver = start("tauri-driver", ["--port", String(DRIVER_PORT)], {
    env: { ...process.env, JAMZ_CONFIG_DIR: join(tmp, "app-config"), JAMZ_CACHE_DIR: join(tmp, "app-cache") },
  });
  void driver;
  const wd = new WebDriver(`http://127.0.0.1:${DRIVER_PORT}`);
  await waitFor("tauri-driver /status", async () => (await fetch(`${wd.base}/status`)).ok, 20000, 200);
  await wd.start(APP_BIN);
  try {
    // 1. register
    await waitFor("the sign-in screen", () => wd.findAll("[data-screen=auth]").then((a) => a.length === 1));
    await screenshot(wd, "sign-in");
    await wd.click("button.link");
    await wd.type("input[name=server]", server);
    await wd.type("input[name=username]", "ann");
    await wd.type("input[name=email]", "ann@example.com");
    await wd.type("input[name=password]", "pw-secret-1");
    await screenshot(wd, "register");
    await wd.click("button[type=submit]");
    await waitFor("the groups screen", () => wd.findAll("[data-screen=groups]").then((a) => a.length === 1));

    // 2. settings: silent output (no sound card under Xvfb)
    await wd.click("header button:nth-of-type(1)");
    await waitFor("the settings screen", () => wd.findAll("[data-screen=settings]").then((a) => a.length === 1));
    await wd.type("input[name=output]", "null");
    await wd.click("form button[type=submit]");
    await screenshot(wd, "settings");
    await wd.click("header button");
    await waitFor("the groups screen again", () => wd.findAll("[data-screen=groups]").then((a) => a.length === 1));

    // 3. create a group, add bo
    await wd.type("input[name=group-name]", "Convoy");
    await wd.click("form[aria-label='Create a group'] button");
    const groupId = await waitFor("the new group", async () => {
      const ids = await wd.findAll("li.group");
      return ids.length === 1 ? wd.attr("li.group", "data-group") : null;
    });
    await wd.type("li.group input[name=member]", "bo");
    await wd.click("li.group form button");
    await waitFor("two members", async () => (await wd.text("[data-testid=member-count]")) === "2 members");
    await screenshot(wd, "groups");
    log("group", groupId);

    // 4. the session: add a track, take control, play
    await wd.click("[data-action=open-session]");
    await waitFor("the session screen", () => wd.findAll("[data-screen=session]").then((a) => a.length === 1));
    const bo = startNode(server, groupId);
    await waitFor("the headless node ready", () => bo.latest.has("ready"), 30000);
    await wd.type("input[name=track-path]", wav);
    await wd.click("[data-action=add-path]");
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
    await screenshot(wd, "session-playing");

    // 5. the headless node reports the same playback
    await waitFor("the node playing the same track, position moving", () => {
      bo.send({ cmd: "status" });
      const playing = bo.playbacks.filter((p) => p.playing && p.track === trackId);
      return playing.length >= 2 && playing[playing.length - 1].position > playing[0].position;
    }, 30000, 200);
    log("node status", JSON.stringify(bo.latest.get("status")));

    // 6. the map: a fix by hand from each car
    bo.send({ cmd: "location", latitude: 47.3869, longitude: 8.5417 });
    await wd.type("input[name=latitude]", "47.3769");
    await wd.type("input[name=longitude]", "8.5417");
    await wd.click("[data-action=send-fix]");
    await waitFor("a distance between the cars", () => wd.findAll(".distance").then((a) => a.length >= 1), 20000);
    // Both cars' markers are drawn, with no tile server reachable (vector markers).
    await waitFor("two markers on the map", () => wd.findAll(".map path.leaflet-interactive").then((a) => a.length === 2), 10000);
    await wd.exec("document.getElementById('sec-map').scrollIntoView()");
    await screenshot(wd, "map");
    bo.send({ cmd: "quit" });
    log("PASS");
  } catch (e) {
    await screenshot(wd, "failure").catch(() => undefined);
    throw e;
  } finally {
    await wd.quit();
  }
}

let code = 0;
try {
  await main();
} catch (e) {
  console.error("[e2e] FAIL:", e instanceof Error ? e.stack : e);
  code = 1;
} finally {
  for (const c of children.reverse()) c.kill("SIGTERM");
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(code);
