import { readFileSync } from "node:fs";
import { join } from "node:path";
import { emit } from "@tauri-apps/api/event";
import { describe, expect, it, vi } from "vitest";
import { backend } from "../src/backend";
import type { Ctx } from "../src/app";
import { appHarness, button, fakeBackend, input, memoryStorage, setUpStorage, until } from "./helpers";

const ACCOUNT = { server: "http://127.0.0.1:5050", username: "ann", userId: 1, tokenStore: "keyring" };
const OUTPUTS = [
  { id: "default", name: "System default", is_default: true },
  { id: "device:alsa:pulse", name: "PulseAudio Sound Server", is_default: false },
];
const GROUP = { id: "g1", name: "Road trip", description: "", creator_id: 1, members: [1] };

const ui = appHarness();
const app = (storage: Storage): Promise<Ctx> => ui.start(storage);

const screen = (): string | undefined => ui.screen();

describe("sign in", () => {
  it("registers against the typed server and shows the groups", async () => {
    const calls = fakeBackend({
      current_account: () => null,
      register: () => ACCOUNT,
      list_groups: () => [],
    });
    await app(setUpStorage());
    expect(screen()).toBe("auth");
    expect(ui.root.querySelector("[data-testid=tier]")?.textContent).toMatch(/Online|Offline/);
    button(ui.root, "button.link").click();
    input(ui.root, "server").value = "http://10.0.0.2:5050";
    input(ui.root, "username").value = "ann";
    input(ui.root, "email").value = "ann@example.com";
    input(ui.root, "password").value = "pw";
    ui.root.querySelector("form")?.requestSubmit();
    await until(() => screen() === "groups", "the groups screen");
    expect(calls.find((c) => c.cmd === "register")?.args).toEqual({
      args: { server: "http://10.0.0.2:5050", username: "ann", email: "ann@example.com", password: "pw" },
    });
  });

  it("first run, joining: the server, then this car from lists, then sign in", async () => {
    const storage = memoryStorage();
    fakeBackend({
      current_account: () => null,
      list_outputs: () => OUTPUTS,
      location_sources: () => [
        { spec: "manual", name: "Entered by hand" },
        { spec: "gpsd:localhost:2947", name: "GPS receiver through gpsd on this computer" },
      ],
    });
    await app(storage);
    expect(screen()).toBe("welcome");
    button(ui.root, "[data-choice=join]").click();
    input(ui.root, "server").value = "ftp://10.0.0.2";
    ui.root.querySelector("form")?.requestSubmit();
    expect(ui.root.querySelector("[role=alert]")?.textContent).toMatch(/^An address starts with http/);
    input(ui.root, "server").value = "http://10.0.0.2:5050";
    ui.root.querySelector("form")?.requestSubmit();
    expect(ui.root.querySelector("[data-step]")?.getAttribute("data-step")).toBe("car");
    await until(() => ui.root.querySelectorAll("[name=output] option").length === 3, "the output list");
    await until(() => ui.root.querySelectorAll("[name=location-mode] option").length === 3, "the location sources");
    expect([...ui.root.querySelectorAll<HTMLOptionElement>("[name=location-mode] option")].map((o) => o.value))
      .toEqual(["manual", "gpsd:localhost:2947", "device"]);
    input(ui.root, "display-name").value = "Ann's car";
    ui.root.querySelector<HTMLSelectElement>("[name=output]")!.value = "device:alsa:pulse";
    ui.root.querySelector<HTMLSelectElement>("[name=location-mode]")!.value = "gpsd:localhost:2947";
    ui.root.querySelector("form")?.requestSubmit();
    expect(screen()).toBe("auth");
    expect(input(ui.root, "server").value).toBe("http://10.0.0.2:5050");
    expect(input(ui.root, "host").checked).toBe(false);
    const saved = JSON.parse(storage.getItem("trafficjamz.settings")!);
    expect([saved.setUp, saved.hosting, saved.server, saved.displayName, saved.output, saved.locationMode, saved.locationArg])
      .toEqual([true, false, "http://10.0.0.2:5050", "Ann's car", "device:alsa:pulse", "gpsd", "localhost:2947"]);
  });

  it("first run, hosting: this device runs the server, then signs in to it", async () => {
    const calls = fakeBackend({
      current_account: () => null,
      list_outputs: () => OUTPUTS,
      location_sources: () => [{ spec: "manual", name: "Entered by hand" }],
      app_info: () => ({ version: "0", mobile: false, hosting: null, sessionGroup: null }),
      host_session: () => ({ url: "http://127.0.0.1:5151", port: 5151, lanUrls: ["http://192.168.43.1:5151"] }),
      login: () => ACCOUNT,
      list_groups: () => [],
    });
    await app(memoryStorage());
    button(ui.root, "[data-choice=host]").click();
    expect(ui.root.querySelector("[data-step]")?.getAttribute("data-step")).toBe("car");
    ui.root.querySelector("form")?.requestSubmit();
    expect(screen()).toBe("auth");
    expect(input(ui.root, "host").checked).toBe(true);
    expect(input(ui.root, "server").disabled).toBe(true);
    input(ui.root, "username").value = "ann";
    input(ui.root, "password").value = "pw";
    ui.root.querySelector("form")?.requestSubmit();
    await until(() => screen() === "groups", "the groups screen");
    const login = calls.find((c) => c.cmd === "login");
    expect(login?.args).toEqual({ args: { server: "http://127.0.0.1:5151", username: "ann", password: "pw" } });
    expect(calls.findIndex((c) => c.cmd === "host_session")).toBeLessThan(calls.indexOf(login!));
  });

  it("shows where other cars join a hosted session, and stops hosting", async () => {
    const storage = memoryStorage();
    storage.setItem("trafficjamz.settings", JSON.stringify({ hosting: true }));
    let hosting: unknown = null;
    const calls = fakeBackend({
      current_account: () => ACCOUNT,
      app_info: () => ({ version: "0", mobile: false, hosting, sessionGroup: null }),
      host_session: () => {
        hosting = { url: "http://127.0.0.1:5050", port: 5050, lanUrls: ["http://192.168.43.1:5050"] };
        return hosting;
      },
      stop_hosting: () => { hosting = null; return null; },
      logout: () => null,
      list_groups: () => [],
    });
    await app(storage);
    // the app restarts the server it hosted before
    expect(calls.filter((c) => c.cmd === "host_session")).toHaveLength(1);
    await until(() => ui.root.querySelector("[data-testid=lan-urls]") !== null, "the LAN URLs");
    expect(ui.root.querySelector("[data-testid=lan-urls]")?.textContent).toBe("http://192.168.43.1:5050");
    button(ui.root, "[data-action=stop-hosting]").click();
    await until(() => screen() === "auth", "the sign-in screen");
    expect(calls.map((c) => c.cmd)).toContain("stop_hosting");
    expect(JSON.parse(storage.getItem("trafficjamz.settings")!).hosting).toBe(false);
  });

  it("shows the server's message when signing in fails", async () => {
    fakeBackend({
      current_account: () => null,
      login: () => { throw { code: "unauthorized", message: "invalid username or password" }; },
    });
    await app(setUpStorage());
    input(ui.root, "username").value = "ann";
    input(ui.root, "password").value = "bad";
    ui.root.querySelector("form")?.requestSubmit();
    await until(() => (ui.root.querySelector("[role=alert]")?.textContent ?? "") !== "", "an error");
    expect(ui.root.querySelector("[role=alert]")?.textContent).toBe("invalid username or password");
    expect(screen()).toBe("auth");
  });
});

describe("groups", () => {
  it("creates a group, adds a member by username and opens the session", async () => {
    const groups = [GROUP];
    const calls = fakeBackend({
      current_account: () => ACCOUNT,
      list_groups: () => groups,
      create_group: (a) => { const g = { ...GROUP, id: "g2", name: String(a.name) }; groups.push(g); return g; },
      add_member: () => ({ ...GROUP, members: [1, 2] }),
      open_session: () => ({ groupId: "g1", userId: 1, sessionId: "s1" }),
      node_command: () => null,
    });
    await app(memoryStorage());
    await until(() => ui.root.querySelectorAll("li.group").length === 1, "the group list");
    input(ui.root, "group-name").value = "Convoy";
    ui.root.querySelector<HTMLFormElement>("form[aria-label='Create a group']")?.requestSubmit();
    await until(() => ui.root.querySelectorAll("li.group").length === 2, "the new group");
    const first = ui.root.querySelector<HTMLElement>("li.group[data-group=g1]")!;
    input(first, "member").value = "bo";
    first.querySelector("form")?.requestSubmit();
    await until(() => first.querySelector("[data-testid=member-count]")?.textContent === "2 members", "two members");
    expect(calls.find((c) => c.cmd === "add_member")?.args).toEqual({ groupId: "g1", username: "bo" });
    button(first, "[data-action=open-session]").click();
    await until(() => calls.some((c) => c.cmd === "open_session"), "open_session");
    expect(screen()).toBe("session");
  });

  it("lists the groups one is in, says where the login is kept, and leaves one", async () => {
    let groups = [GROUP, { ...GROUP, id: "g2", name: "Convoy" }];
    const calls = fakeBackend({
      current_account: () => ACCOUNT,
      list_groups: () => groups,
      leave_group: (a) => { groups = groups.filter((g) => g.id !== a.groupId); return null; },
    });
    await app(memoryStorage());
    await until(() => ui.root.querySelectorAll("li.group").length === 2, "both groups");
    expect(ui.root.querySelector("[data-testid=signed-in]")?.textContent).toContain("system keyring");
    const second = ui.root.querySelector<HTMLElement>("li.group[data-group=g2]")!;
    button(second, "[data-action=leave-group]").click();
    await until(() => ui.root.querySelectorAll("li.group").length === 1, "one group left");
    expect(calls.find((c) => c.cmd === "leave_group")?.args).toEqual({ groupId: "g2" });
    expect(ui.root.querySelector("li.group[data-group=g1]")).not.toBeNull();
  });
});

/** A node's `status` with nothing going on. */
const STATUS = {
  event: "status", tier: "socket", playing: false, track: null, position: null, clock_offset_ms: null, drift_ms: null, peers: 0,
  cache: { tracks: 0, bytes: 0, hits: 0, misses: 0, max_bytes: 1 << 30, max_tracks: 50 }, queued: 0, output: "null",
  latency_offset_ms: 0, token_store: null, underruns: 0, underrun_ms: 0,
};

describe("session", () => {
  async function openSession(extra: Record<string, (args: Record<string, unknown>) => unknown> = {}) {
    const calls = fakeBackend({
      current_account: () => ACCOUNT,
      list_groups: () => [GROUP],
      open_session: () => ({ groupId: "g1", userId: 1, sessionId: "s1" }),
      node_command: () => null,
      leave_session: () => null,
      list_outputs: () => OUTPUTS,
      cover_art: (a) => (a.sha256 === "c0ffee" ? "data:image/png;base64,iVBORw0KGgo=" : null),
      // A test's own answers win over these.
      ...extra,
    });
    const ctx = await app(memoryStorage());
    ctx.go({ screen: "session", groupId: "g1", groupName: "Road trip" });
    await until(() => calls.some((c) => c.cmd === "open_session"), "open_session");
    return calls;
  }
  const commands = (calls: { cmd: string; args: Record<string, unknown> }[]) =>
    calls.filter((c) => c.cmd === "node_command").map((c) => c.args.command).filter((c) => (c as { cmd: string }).cmd !== "status");

  it("says a track is buffering on this device while its bytes are downloading", async () => {
    await openSession();
    await emit("node-event", { event: "playlist", playlist: [
      { id: "a", title: "Alpha", artist: "X", source: "upload", duration: 200 },
    ] });
    await emit("node-event", { event: "playback", playing: true, track: "a", position: 5, at: 0 });
    await emit("node-event", { event: "buffering", track: "a", buffering: true });
    const note = () => ui.root.querySelector<HTMLElement>("[data-testid=not-playable]")!;
    await until(() => !note().hidden, "the buffering note");
    expect(note().textContent).toMatch(/^Buffering/);
    await emit("node-event", { event: "buffering", track: "a", buffering: false });
    await until(() => note().hidden === true, "the note gone once the bytes came");
  });

  it("calibrates the speakers in a session: the node measures, the result is applied, a failure is said in words", async () => {
    const calls = await openSession();
    await emit("node-event", { ...STATUS, output: "default", latency_offset_ms: 0 });
    button(ui.root, "[data-action=settings]").click();
    const panel = () => ui.root.querySelector<HTMLElement>("#sec-settings")!;
    await until(() => !panel().hidden, "the settings beside the session");
    const calibrate = () => panel().querySelector<HTMLButtonElement>("[data-action=calibrate]")!;
    const words = () => panel().querySelector("[data-testid=calibration]")?.textContent ?? "";
    const inUse = () => ui.root.querySelector("[data-testid=output-in-use]")?.textContent ?? "";

    // The button asks the node, and says it is listening while the probes play.
    calibrate().click();
    await until(() => commands(calls).some((c) => (c as { cmd: string }).cmd === "calibrate"), "the calibrate command");
    expect(commands(calls).filter((c) => (c as { cmd: string }).cmd === "calibrate")).toEqual([{ cmd: "calibrate" }]);
    expect(calibrate().disabled).toBe(true);
    expect(words()).toMatch(/^Listening/);

    // The node's result: said in words, the offset shown in use and kept in the settings.
    await emit("node-event", { event: "calibration", delay_ms: 151.6, spread_ms: 0.4, confidence: 0.96, probes: 9, agreeing: 8, latency_offset_ms: 151.6 });
    await until(() => words().startsWith("Heard"), "the result");
    expect(words()).toBe("Heard 151.6 ms later than expected (8 of 9 probes agree, confidence 0.96): latency offset set to 152 ms.");
    expect(calibrate().disabled).toBe(false);
    expect(panel().querySelector<HTMLInputElement>("[name=latency]")!.value).toBe("152");
    expect(inUse()).toBe("In use: output default · latency offset 152 ms");

    // Again, and the node refuses: the reason in words, the button back, the offset kept.
    calibrate().click();
    await until(() => words().startsWith("Listening"), "listening again");
    await emit("node-event", { event: "error", cmd: "calibrate", message: "calibration: the microphone hears nothing usable (level -120.0 dBFS)" });
    await until(() => !calibrate().disabled, "the button back");
    expect(ui.root.querySelector("[data-testid=session-error]")?.textContent)
      .toBe("calibrate: calibration: the microphone hears nothing usable (level -120.0 dBFS)");
    expect(words()).toBe("");
    expect(panel().querySelector<HTMLInputElement>("[name=latency]")!.value).toBe("152");
    expect(inUse()).toBe("In use: output default · latency offset 152 ms");
  });

  describe("calibrating another member's speakers with this device's microphone", () => {
    const MEMBERS = { event: "participants", participants: [
      { userId: 1, display_name: "Ann", socketId: "s1" },
      { userId: 2, display_name: "Bo's car", socketId: "s2" },
      { userId: 3, display_name: "Cy", socketId: "s3" },
    ] };
    const peerButtons = () => [...ui.root.querySelectorAll<HTMLButtonElement>("[data-testid=participants] [data-action=calibrate-peer]")];
    const peerButton = (user: number) => ui.root.querySelector<HTMLButtonElement>(`[data-testid=participants] [data-user='${user}'] [data-action=calibrate-peer]`);
    const note = () => ui.root.querySelector<HTMLElement>("[data-testid=peer-calibration]")!;
    const sessionError = () => ui.root.querySelector("[data-testid=session-error]")?.textContent ?? "";
    const peerCommands = (calls: { cmd: string; args: Record<string, unknown> }[]) =>
      commands(calls).filter((c) => (c as { cmd: string }).cmd === "calibrate-peer");

    it("sends calibrate-peer for the member chosen, waits with every button disabled, then says the result", async () => {
      const calls = await openSession();
      await emit("node-event", MEMBERS);
      await until(() => peerButtons().length === 2, "a button for each other member");
      const bo = peerButton(2)!;
      expect(bo.getAttribute("aria-label")).toBe("Calibrate their speakers: Bo's car's, with this device's microphone");
      expect(bo.textContent).toBe("Calibrate their speakers");
      expect(bo.type).toBe("button");
      expect(peerButtons().every((b) => !b.disabled)).toBe(true);

      bo.focus();
      bo.click();
      await until(() => peerCommands(calls).length > 0, "the calibrate-peer command");
      expect(peerCommands(calls)).toEqual([{ cmd: "calibrate-peer", user: 2 }]);
      expect(peerButtons().map((b) => b.disabled)).toEqual([true, true]);
      expect(note().getAttribute("role")).toBe("status");
      expect(note().textContent).toMatch(/^Listening to Bo's car's speakers .*about 8 seconds; pause the music first/);
      // The keyboard waits on the status line while the button pressed is disabled.
      expect(document.activeElement).toBe(note());

      // The rows are drawn again on every status: the buttons stay disabled meanwhile, and
      // a second click starts nothing.
      await emit("node-event", { ...STATUS });
      await emit("node-event", { event: "peer", userId: 3, state: "connected", rtt_ms: 12 });
      await until(() => ui.root.querySelector("[data-user='3']")?.getAttribute("data-link") === "peer", "the rows drawn again");
      expect(peerButtons().map((b) => b.disabled)).toEqual([true, true]);
      peerButton(3)!.click();
      expect(peerCommands(calls)).toHaveLength(1);

      // A result for another member is not this run's.
      await emit("node-event", { event: "peer-calibration", userId: 3, delay_ms: 20, spread_ms: 1, confidence: 0.9, probes: 5, agreeing: 5, from_offset_ms: 0, latency_offset_ms: 20 });
      await emit("node-event", { event: "peer-calibration", userId: 2, delay_ms: 149.2, spread_ms: 0.8, confidence: 0.97, probes: 5, agreeing: 5, from_offset_ms: 0, latency_offset_ms: 149.2 });
      await until(() => !peerButton(2)!.disabled, "the buttons back");
      expect(note().textContent).toBe("Bo's car's speakers were heard 149.2 ms later than expected (5 of 5 probes agree, confidence 0.97): their latency offset went from 0 ms to 149 ms.");
      expect(peerButtons().map((b) => b.disabled)).toEqual([false, false]);
      expect(document.activeElement).toBe(peerButton(2));
      // This device's own offset is not the one that changed.
      expect(ui.root.querySelector("[data-testid=output-in-use]")?.textContent).toBe("In use: output null · latency offset 0 ms");
      expect(sessionError()).toBe("");
    });

    it("says in words why a run failed, from the node or from the shell, and gives the buttons back", async () => {
      let shellRefuses = false;
      const calls = await openSession({
        node_command: (a) => {
          if (shellRefuses && (a.command as { cmd: string }).cmd === "calibrate-peer") throw { code: "no-session", message: "no session is open" };
          return null;
        },
      });
      await emit("node-event", MEMBERS);
      await until(() => peerButtons().length === 2, "the buttons");

      peerButton(3)!.click();
      await until(() => peerCommands(calls).length === 1, "the calibrate-peer command");
      expect(peerCommands(calls)).toEqual([{ cmd: "calibrate-peer", user: 3 }]);
      expect(peerButtons().map((b) => b.disabled)).toEqual([true, true]);
      await emit("node-event", { event: "error", cmd: "calibrate-peer", message: "user 3 refused: the session is playing: pause first" });
      await until(() => !peerButton(3)!.disabled, "the buttons back after the refusal");
      expect(peerButtons().map((b) => b.disabled)).toEqual([false, false]);
      expect(sessionError()).toBe("Could not calibrate Cy's speakers: user 3 refused: the session is playing: pause first");
      expect(ui.root.querySelector("[data-testid=session-error]")?.getAttribute("role")).toBe("alert");
      expect(note().textContent).toBe("");

      // The command itself refused: the same.
      shellRefuses = true;
      peerButton(2)!.click();
      await until(() => sessionError().startsWith("Could not calibrate Bo's car's"), "the shell's refusal");
      expect(sessionError()).toBe("Could not calibrate Bo's car's speakers: no session is open");
      expect(peerButtons().map((b) => b.disabled)).toEqual([false, false]);
      expect(note().textContent).toBe("");
    });

    it("offers no button for this device's own user, and says who calibrated this device", async () => {
      await openSession();
      await emit("node-event", MEMBERS);
      await until(() => peerButtons().length === 2, "the buttons");
      const own = ui.root.querySelector("[data-testid=participants] [data-user='1']")!;
      expect(own.textContent).toMatch(/^Ann \(you\)/);
      expect(own.querySelector("button")).toBeNull();
      expect(peerButtons().map((b) => b.closest("li")?.getAttribute("data-user"))).toEqual(["2", "3"]);

      const by = ui.root.querySelector<HTMLElement>("[data-testid=calibrated-by]")!;
      expect(by.hidden).toBe(true);
      await emit("node-event", { event: "calibration", delay_ms: 149.2, spread_ms: 0.8, confidence: 0.97, probes: 5, agreeing: 5, latency_offset_ms: 149.2, from: 2 });
      await until(() => !by.hidden, "the note");
      expect(by.textContent).toBe("Bo's car calibrated this device's speakers with their microphone: latency offset set to 149 ms.");
    });
  });

  it("enables DJ controls only for the DJ and sends take-control, play and seek", async () => {
    const calls = await openSession();
    await emit("node-event", { event: "playlist", playlist: [
      { id: "a", title: "Alpha", artist: "X", source: "upload", duration: 200 },
      { id: "b", title: "Beta", artist: "Y", source: "upload", duration: 100 },
    ] });
    await until(() => ui.root.querySelectorAll("[data-track]").length === 2, "the playlist");
    expect(button(ui.root, "[data-action=play]").disabled).toBe(true);
    button(ui.root, "[data-action=take-control]").click();
    await emit("node-event", { event: "controller", userId: 1 });
    await until(() => !button(ui.root, "[data-action=play]").disabled, "DJ controls");
    button(ui.root, "[data-action=play]").click();
    await emit("node-event", { event: "playback", playing: true, track: "a", position: 5, at: 0 });
    await until(() => ui.root.querySelector("[data-testid=play-state]")?.textContent === "playing", "playing");
    expect(ui.root.querySelector("[data-testid=now-playing]")?.textContent).toBe("Alpha");
    expect(ui.root.querySelector("[data-testid=artist]")?.textContent).toBe("X");
    // one of play and pause at a time, in the same place
    expect(button(ui.root, "[data-action=play]").hidden).toBe(true);
    expect(button(ui.root, "[data-action=pause]").hidden).toBe(false);
    const seek = ui.root.querySelector<HTMLInputElement>("[data-testid=position-bar]")!;
    seek.value = "42";
    seek.dispatchEvent(new Event("change"));
    await until(() => commands(calls).length === 3, "three commands");
    expect(commands(calls)).toEqual([
      { cmd: "take-control" },
      { cmd: "play", track: "a", position: 0 },
      { cmd: "seek", position: 42 },
    ]);
  });

  it("adds a YouTube video by link and plays the engine's directives in YouTube's player", async () => {
    const calls = await openSession();
    input(ui.root, "youtube").value = " https://youtu.be/dQw4w9WgXcQ ";
    ui.root.querySelector<HTMLFormElement>("form[data-testid=add-youtube]")?.requestSubmit();
    await until(() => commands(calls).length === 1, "the add");
    expect(commands(calls)).toEqual([{ cmd: "add", youtube: "https://youtu.be/dQw4w9WgXcQ" }]);
    // YouTube's script already in the page (the stand-in's surface): the node's directive is
    // carried out and the player read back to the node.
    (window as { __ytStandin?: unknown }).__ytStandin = { bufferMs: 10 };
    new Function(readFileSync(join(import.meta.dirname, "../../tests/app/youtube-standin/iframe_api.js"), "utf8"))();
    await emit("node-event", { event: "youtube", do: "play", video: "dQw4w9WgXcQ", position: 3, in_ms: 0 });
    await until(() => commands(calls).some((c) => (c as { cmd: string; state?: number }).cmd === "youtube-reading"
      && (c as { state?: number }).state === 1), "a reading while playing");
    const reading = commands(calls).find((c) => (c as { state?: number }).state === 1) as { video: string; position: number };
    expect(reading.video).toBe("dQw4w9WgXcQ");
    expect(reading.position).toBeGreaterThanOrEqual(3);
    expect(ui.root.querySelector<HTMLElement>("[data-testid=youtube-player]")?.hidden).toBe(false);
    await emit("node-event", { event: "youtube", do: "stop" });
    await until(() => ui.root.querySelector<HTMLElement>("[data-testid=youtube-player]")?.hidden === true, "the player hidden");
    delete (window as { YT?: unknown }).YT;
  });

  it("shows the playing track's cover art from its tags, and a placeholder without one", async () => {
    const calls = await openSession();
    await emit("node-event", { event: "playlist", playlist: [
      { id: "a", title: "Alpha", artist: "X", source: "upload", sha256: "c0ffee" },
      { id: "b", title: "Beta", artist: "Y", source: "upload", sha256: "beef" },
    ] });
    const cover = ui.root.querySelector<HTMLImageElement>("[data-testid=cover]")!;
    expect(cover.hidden).toBe(true);
    await emit("node-event", { event: "playback", playing: true, track: "a", position: 0, at: 0 });
    await until(() => !cover.hidden, "the cover");
    expect(cover.getAttribute("src")).toBe("data:image/png;base64,iVBORw0KGgo=");
    expect(calls.find((c) => c.cmd === "cover_art")?.args).toEqual({ sha256: "c0ffee" });
    await emit("node-event", { event: "playback", playing: true, track: "b", position: 0, at: 0 });
    await until(() => cover.hidden === true, "the placeholder");
    expect(ui.root.querySelector(".np-art .placeholder")?.hasAttribute("hidden")).toBe(false);
  });

  it("lets the DJ reorder with the keyboard and remove tracks", async () => {
    const calls = await openSession();
    await emit("node-event", { event: "controller", userId: 1 });
    await emit("node-event", { event: "playlist", playlist: [
      { id: "a", title: "Alpha", artist: "", source: "upload" }, { id: "b", title: "Beta", artist: "", source: "upload" }, { id: "c", title: "Gamma", artist: "", source: "upload" },
    ] });
    await until(() => ui.root.querySelectorAll("[data-track]").length === 3, "the playlist");
    const a = ui.root.querySelector<HTMLElement>("[data-track=a]")!;
    a.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown", altKey: true, bubbles: true }));
    button(ui.root, "[data-track=c] [data-action=remove]").click();
    button(ui.root, "[data-track=c] [data-action=up]").click();
    await until(() => commands(calls).length === 3, "three commands");
    expect(commands(calls)).toEqual([
      { cmd: "reorder", order: ["b", "a", "c"] },
      { cmd: "remove", track: "c" },
      { cmd: "reorder", order: ["a", "c", "b"] },
    ]);
  });

  it("shows the link tier and queued changes in the banner, and members' links", async () => {
    await openSession();
    await emit("node-event", { event: "participants", participants: [{ userId: 2, display_name: "Bo's car", socketId: "s" }] });
    await emit("node-event", { event: "tier", tier: "mesh", reason: "server unreachable" });
    await emit("node-event", { event: "status", tier: "mesh", playing: false, track: null, position: null, clock_offset_ms: null, drift_ms: null, peers: 1, cache: { tracks: 2, bytes: 2048, hits: 3, misses: 1, max_bytes: 1 << 30, max_tracks: 50 }, queued: 2, output: "null", latency_offset_ms: 0 });
    await until(() => ui.root.querySelector("[data-testid=tier]")?.textContent === "Peer mesh", "the mesh tier");
    expect(ui.root.querySelector("[data-testid=queued]")?.textContent).toContain("2 queued changes");
    expect(ui.root.querySelector("[data-user='2']")?.getAttribute("data-link")).toBe("socket");
    expect(ui.root.querySelector("[data-testid=cache-summary]")?.textContent).toBe("2 tracks cached, 2 KiB · 75 % played from the cache · limit 1 GiB");
    await emit("node-event", { event: "peer", userId: 2, state: "connected" });
    await until(() => ui.root.querySelector("[data-user='2']")?.getAttribute("data-link") === "peer", "a peer link");
    expect(ui.root.querySelector<HTMLElement>("[data-testid=sync]")?.hidden).toBe(true);
    await emit("node-event", { event: "playback", playing: true, track: null, position: 1, at: 0, sync_offset_ms: -0.42 });
    await until(() => ui.root.querySelector("[data-testid=sync]")?.textContent === " · sync −0.4 ms", "the sync meter");
    await emit("node-event", { event: "playback", playing: false, track: null, position: 1, at: 0, sync_offset_ms: null });
    await until(() => ui.root.querySelector<HTMLElement>("[data-testid=sync]")?.hidden === true, "no meter when paused");
  });

  it("lists the changes made offline until the server has them", async () => {
    await openSession();
    expect(ui.root.querySelector<HTMLElement>("[data-testid=pending]")?.hidden).toBe(true);
    await emit("node-event", { event: "outbox", pending: [
      { action: "add", label: "Song 2" }, { action: "upload", label: "tone.wav" },
    ] });
    await until(() => ui.root.querySelectorAll("[data-testid=pending] li[data-action]").length === 2, "two waiting changes");
    expect(ui.root.querySelector("[data-testid=pending]")?.textContent).toBe("Waiting for the server:add: Song 2upload and add: tone.wav");
    await emit("node-event", { event: "outbox", pending: [] });
    await until(() => ui.root.querySelector<HTMLElement>("[data-testid=pending]")?.hidden === true, "an empty list");
  });

  it("sends a fix entered by hand and lists distances between cars", async () => {
    const calls = await openSession();
    input(ui.root, "latitude").value = "47.3769";
    input(ui.root, "longitude").value = "8.5417";
    ui.root.querySelector<HTMLFormElement>("form[aria-label='Enter a position']")?.requestSubmit();
    await until(() => commands(calls).length === 1, "the location command");
    expect(commands(calls)[0]).toEqual({ cmd: "location", latitude: 47.3769, longitude: 8.5417 });
    // the node echoes this device's own fix, and relays the other car's
    await emit("node-event", { event: "location", userId: 1, latitude: 47.3769, longitude: 8.5417, speed: null, heading: null, together: [] });
    await emit("node-event", { event: "location", userId: 2, latitude: 47.3869, longitude: 8.5417, speed: 20, heading: 0, together: [] });
    await until(() => ui.root.querySelector(".distance") !== null, "a distance");
    expect(ui.root.querySelector(".distance")?.textContent).toMatch(/^(ann ↔ user 2|user 2 ↔ ann): 1\.11 km$/);
    expect(ui.root.querySelector("[data-testid=distances] [data-user='1']")?.textContent).toBe("ann: 47.37690, 8.54170");
  });

  it("turns sharing on and off, and shows together, the meeting point's ETAs and a car falling behind", async () => {
    const calls = await openSession();
    button(ui.root, "[data-action=share-location]").click();
    await until(() => commands(calls).length === 1, "the share-location command");
    expect(commands(calls)[0]).toEqual({ cmd: "share-location", enabled: true });
    await emit("node-event", { event: "sharing", enabled: true, until: null, reason: "turned on" });
    await until(() => button(ui.root, "[data-action=share-location]").textContent === "Stop sharing my position", "the button to stop");
    await emit("node-event", { event: "location", userId: 2, latitude: 47.3869, longitude: 8.5417, speed: 20, heading: 0, together: [1] });
    await emit("node-event", { event: "together", groups: [[1, 2]] });
    await emit("node-event", { event: "regroup", latitude: 47.4, longitude: 8.55, setBy: 2, etas: [{ userId: 2, distance_m: 1500, eta_s: 120, arrived: false }] });
    await emit("node-event", { event: "falling-behind", userId: 3, behind_m: 2400 });
    await until(() => ui.root.querySelector(".behind") !== null, "the alert");
    expect(ui.root.querySelector(".together")?.textContent).toBe("Together: ann, user 2");
    expect(ui.root.querySelector(".eta")?.textContent).toBe("user 2: 1.50 km, about 2 min");
    expect(ui.root.querySelector(".behind")?.textContent).toBe("user 3 is falling behind (2.40 km)");
    await emit("node-event", { event: "location-off", userId: 2 });
    await until(() => ui.root.querySelector("[data-testid=distances] [data-user='2']:not(.eta)") === null, "user 2's marker gone");
  });

  it("asks the shell for the map's tiles and says how many are kept for offline use", async () => {
    const calls = await openSession({
      map_tiles_info: () => ({ source: "x", tiles: 12, bytes: 1536 * 1024, maxBytes: 256 * 1024 * 1024, fromCache: 7, fetched: 12, failed: 0 }),
    });
    // The settings' tile server (OpenStreetMap by default) goes to the shell before the node starts.
    const set = calls.findIndex((c) => c.cmd === "set_map_tiles");
    expect(set).toBeGreaterThanOrEqual(0);
    expect(set).toBeLessThan(calls.findIndex((c) => c.cmd === "open_session"));
    expect(calls[set]?.args).toEqual({ template: "https://tile.openstreetmap.org/{z}/{x}/{y}.png" });
    await emit("node-event", { ...STATUS });
    const tiles = ui.root.querySelector<HTMLElement>("[data-testid=map-tiles]")!;
    await until(() => !tiles.hidden, "the tile line");
    expect(tiles.textContent).toBe("12 map tiles kept for offline use (1.5 MiB of 256 MiB)");
    expect(tiles.dataset.fromCache).toBe("7");
  });

  it("applies a new tile server and its credit at once, the credit as plain text", async () => {
    const calls = await openSession({
      set_map_tiles: () => ({ source: "x", tiles: 0, bytes: 0, maxBytes: 1, fromCache: 0, fetched: 0, failed: 0 }),
      map_tiles_info: () => ({ source: "x", tiles: 0, bytes: 0, maxBytes: 1, fromCache: 0, fetched: 0, failed: 0 }),
    });
    await emit("node-event", { event: "location", userId: 2, latitude: 47.3869, longitude: 8.5417, speed: 20, heading: 0, together: [] });
    const credit = (): string => ui.root.querySelector(".leaflet-control-attribution")?.textContent ?? "";
    await until(() => credit().includes("© OpenStreetMap contributors"), "OpenStreetMap's credit");
    const layerUrls = (): string[] => [...ui.root.querySelectorAll<HTMLImageElement>(".convoy-tiles img")].map((i) => i.getAttribute("src") ?? "");
    const tilesBefore = layerUrls();

    // The session's settings: another tile server; the credit field follows the address
    // (it was that address's default), then the user types the new server's credit.
    button(ui.root, "[data-action=settings]").click();
    const url = ui.root.querySelector<HTMLInputElement>("#sec-settings input[name=map-tiles]")!;
    const attribution = ui.root.querySelector<HTMLInputElement>("#sec-settings input[name=map-attribution]")!;
    expect(attribution.value).toBe("© OpenStreetMap contributors");
    url.value = "https://tiles.example.org/{z}/{x}/{y}.png";
    url.dispatchEvent(new Event("input"));
    expect(attribution.value).toBe("");
    attribution.value = "<b>Example</b> tiles";
    ui.root.querySelector<HTMLFormElement>("#sec-settings form")!.requestSubmit();

    await until(() => calls.filter((c) => c.cmd === "set_map_tiles").length === 2, "the new tile server to the shell");
    expect(calls.filter((c) => c.cmd === "set_map_tiles").at(-1)?.args).toEqual({ template: "https://tiles.example.org/{z}/{x}/{y}.png" });
    await until(() => credit().includes("<b>Example</b> tiles"), "the new credit, as text");
    expect(credit()).not.toContain("OpenStreetMap");
    expect(ui.root.querySelector(".leaflet-control-attribution b")).toBeNull();
    // One tile layer, with URLs of its own (the web view asks the shell again).
    const tilesAfter = layerUrls();
    expect(tilesBefore.length).toBeGreaterThan(0);
    expect(tilesAfter.length).toBe(tilesBefore.length);
    expect(tilesAfter.some((u) => tilesBefore.includes(u))).toBe(false);
    // No tile server: the map stays, without tiles or credit.
    url.value = "";
    url.dispatchEvent(new Event("input"));
    ui.root.querySelector<HTMLFormElement>("#sec-settings form")!.requestSubmit();
    await until(() => calls.filter((c) => c.cmd === "set_map_tiles").length === 3, "no tile server to the shell");
    expect(calls.filter((c) => c.cmd === "set_map_tiles").at(-1)?.args).toEqual({ template: null });
    await until(() => !credit().includes("Example"), "the credit gone");
    expect(ui.root.querySelectorAll(".convoy-tiles img").length).toBe(0);
  });

  it("draws the groups travelling together and the meeting point on the map", async () => {
    await openSession();
    await emit("node-event", { event: "location", userId: 1, latitude: 47.38, longitude: 8.54, speed: 20, heading: 0, together: [2] });
    await emit("node-event", { event: "location", userId: 2, latitude: 47.3869, longitude: 8.5417, speed: 20, heading: 0, together: [1] });
    await emit("node-event", { event: "together", groups: [[1, 2]] });
    await emit("node-event", { event: "regroup", latitude: 47.4, longitude: 8.55, setBy: 2, etas: [] });
    await until(() => ui.root.querySelector(".regroup-marker") !== null, "the meeting point");
    expect(ui.root.querySelectorAll(".together-line").length).toBe(1);
    expect(ui.root.querySelector(".leaflet-tooltip-bottom")?.textContent).toBe("Meeting point");
    await emit("node-event", { event: "regroup-cleared" });
    await emit("node-event", { event: "together", groups: [] });
    await until(() => ui.root.querySelector(".regroup-marker") === null, "the meeting point gone");
    expect(ui.root.querySelectorAll(".together-line").length).toBe(0);
  });

  it("says when a peer link goes through a TURN relay, and forgets it when the link closes", async () => {
    await openSession();
    await emit("node-event", { event: "participants", participants: [{ userId: 2, display_name: "Bo's car", socket_id: "s2" }] });
    const bo = () => ui.root.querySelector<HTMLElement>("[data-testid=participants] [data-user='2']")!;
    // The row's text is what a screen reader reads.
    await emit("node-event", { event: "peer", userId: 2, state: "connected", rtt_ms: 12, path: "relay" });
    await until(() => bo()?.querySelector("[data-testid=rtt]") !== null, "the relayed link");
    expect(bo().textContent).toBe("Bo's carpeer 12 ms · via relayCalibrate their speakers");
    await emit("node-event", { event: "peer", userId: 2, state: "closed" });
    await until(() => bo().querySelector("[data-testid=rtt]") === null, "the relayed link closed");
    expect(bo().textContent).not.toContain("relay");
    // Linked again, path not yet known, then direct: no relay is named.
    await emit("node-event", { event: "peer", userId: 2, state: "connected", rtt_ms: 9 });
    await until(() => bo().querySelector("[data-testid=rtt]") !== null, "linked again");
    expect(bo().textContent).toBe("Bo's carpeer 9 msCalibrate their speakers");
    await emit("node-event", { event: "peer", userId: 2, state: "connected", rtt_ms: 8, path: "direct" });
    await until(() => bo().textContent!.includes("8 ms"), "the direct link");
    expect(bo().textContent).toBe("Bo's carpeer 8 msCalibrate their speakers");
  });

  it("shows each peer link's round trip, refusals over the mesh and gaps in the sound", async () => {
    await openSession();
    await emit("node-event", { event: "participants", participants: [{ userId: 2, display_name: "Bo's car", socket_id: "s2" }] });
    await emit("node-event", { event: "peer", userId: 2, state: "connected", rtt_ms: 42.4 });
    const bo = () => ui.root.querySelector<HTMLElement>("[data-testid=participants] [data-user='2']")!;
    await until(() => bo()?.querySelector("[data-testid=rtt]") !== null, "the round trip");
    expect(bo().textContent).toBe("Bo's carpeer 42 msCalibrate their speakers");
    await emit("node-event", { event: "peer", userId: 2, state: "closed" });
    await until(() => bo().querySelector("[data-testid=rtt]") === null, "no round trip once closed");

    const refusal = { event: "mesh-refused", from: 3, via: 2, type: "control", reason: "not-controller", message: "user 3 is not the DJ", count: 2 };
    await emit("node-event", refusal);
    await emit("node-event", { ...refusal, count: 1 });
    const list = ui.root.querySelector<HTMLElement>("[data-testid=mesh-refused]")!;
    await until(() => list.textContent!.includes("3 times"), "the refusals counted");
    expect(list.hidden).toBe(false);
    expect([...list.querySelectorAll("li")].map((l) => l.textContent)).toEqual([
      "Refused from user 3 (relayed by Bo's car): user 3 is not the DJ (3 times)",
    ]);
    // Cleared from the keyboard: a native button, then focus stays in the section.
    const clear = button(ui.root, "[data-action=clear-refused]");
    clear.focus();
    clear.click();
    expect(list.hidden).toBe(true);
    expect(clear.hidden).toBe(true);
    expect(document.activeElement).toBe(ui.root.querySelector("[data-testid=participants]"));

    const gaps = ui.root.querySelector<HTMLElement>("[data-testid=underruns]")!;
    expect(gaps.hidden).toBe(true);
    await emit("node-event", { ...STATUS, underruns: 3, underrun_ms: 84.6 });
    await until(() => !gaps.hidden, "the gaps line");
    expect(gaps.textContent).toBe("3 gaps in the sound on this device (85 ms of silence)");
  });

  it("applies output, latency offset and cache size at once, without leaving the session", async () => {
    const calls = await openSession();
    button(ui.root, "[data-action=settings]").click();
    const panel = ui.root.querySelector<HTMLElement>("#sec-settings")!;
    expect(panel.hidden).toBe(false);
    await until(() => panel.querySelectorAll("[name=output] option").length === 3, "the output list");
    expect([...panel.querySelectorAll<HTMLOptionElement>("[name=output] option")].map((o) => o.textContent)).toEqual([
      "System default", "PulseAudio Sound Server", "No sound (keep time only)",
    ]);
    panel.querySelector<HTMLSelectElement>("[name=output]")!.value = "device:alsa:pulse";
    input(panel, "latency").value = "250";
    input(panel, "cache-limit").value = "1024";
    input(panel, "auto-preload").checked = false;
    panel.querySelector("form")?.requestSubmit();
    await until(() => commands(calls).length === 4, "four commands");
    expect(commands(calls)).toEqual([
      { cmd: "output", spec: "device:alsa:pulse" },
      { cmd: "latency-offset", ms: 250 },
      { cmd: "cache-limit", bytes: 1024 * 1024 * 1024 },
      { cmd: "auto-preload", enabled: false },
    ]);
    expect(calls.some((c) => c.cmd === "leave_session")).toBe(false);
    expect(screen()).toBe("session");
    // saving again with nothing changed sends nothing
    panel.querySelector("form")?.requestSubmit();
    button(ui.root, "[data-action=cache-clear]").click();
    await until(() => commands(calls).length === 5, "cache-clear");
    expect(commands(calls)[4]).toEqual({ cmd: "cache-clear" });
  });
});

describe("settings before a session", () => {
  it("offers the machine's outputs and saves the choice for the next session", async () => {
    const storage = memoryStorage();
    const calls = fakeBackend({
      current_account: () => ACCOUNT,
      list_groups: () => [GROUP],
      list_outputs: () => OUTPUTS,
      cache_info: () => ({ dir: "/c", tracks: 1, bytes: 10 }),
      open_session: () => ({ groupId: "g1", userId: 1, sessionId: "s1" }),
      node_command: () => null,
    });
    const ctx = await app(storage);
    ctx.go({ screen: "settings", back: { screen: "groups" } });
    await until(() => ui.root.querySelectorAll("[name=output] option").length === 3, "the output list");
    ui.root.querySelector<HTMLSelectElement>("[name=output]")!.value = "device:alsa:pulse";
    input(ui.root, "latency").value = "180";
    ui.root.querySelector<HTMLFormElement>("form.settings-form")?.requestSubmit();
    expect(calls.some((c) => c.cmd === "node_command")).toBe(false);
    const saved = JSON.parse(storage.getItem("trafficjamz.settings")!);
    expect([saved.output, saved.latencyOffsetMs]).toEqual(["device:alsa:pulse", 180]);
    ctx.go({ screen: "session", groupId: "g1", groupName: "Road trip" });
    await until(() => calls.some((c) => c.cmd === "open_session"), "open_session");
    const args = calls.find((c) => c.cmd === "open_session")?.args.args as Record<string, unknown>;
    expect([args.output, args.latencyOffsetMs, args.cacheMaxMib, args.autoPreload]).toEqual(["device:alsa:pulse", 180, 2048, true]);
  });
});

describe("STUN and TURN servers in the settings", () => {
  it("refuses what the node cannot use by name and why, keeps STUN servers and TURN relays and gives them to the next session", async () => {
    const storage = memoryStorage();
    const calls = fakeBackend({
      current_account: () => ACCOUNT,
      list_groups: () => [GROUP],
      list_outputs: () => OUTPUTS,
      cache_info: () => ({ dir: "/c", tracks: 1, bytes: 10 }),
      open_session: () => ({ groupId: "g1", userId: 1, sessionId: "s1" }),
      node_command: () => null,
    });
    const ctx = await app(storage);
    ctx.go({ screen: "settings", back: { screen: "groups" } });
    await until(() => ui.root.querySelector("[name=ice-servers]") !== null, "the settings form");
    const ice = ui.root.querySelector<HTMLInputElement>("[name=ice-servers]")!;
    expect(ice.closest("label")?.textContent).toContain("STUN/TURN servers");
    const alert = () => ui.root.querySelector("[role=alert]")?.textContent ?? "";
    ice.value = "stun:stun.example.org, turn:relay.example.org:3478, turns:u:secret@relay.example.org, turn:u:secret@relay.example.org?transport=tcp";
    ui.root.querySelector<HTMLFormElement>("form.settings-form")?.requestSubmit();
    expect(alert()).toContain("turn:relay.example.org:3478: a TURN relay needs a user name and a password");
    expect(alert()).toContain("turns:u:…@relay.example.org: TURN over TLS (turns:) is not supported");
    expect(alert()).toContain("turn:u:…@relay.example.org?transport=tcp: only UDP to a TURN relay is supported");
    // The alert is read aloud: the password is not in it.
    expect(alert()).not.toContain("secret");
    expect(alert()).not.toContain("stun:");
    // The keyboard is back on the field, which says it is wrong.
    expect(document.activeElement).toBe(ice);
    expect(ice.getAttribute("aria-invalid")).toBe("true");
    expect(storage.getItem("trafficjamz.settings")).toBeNull();
    const servers = ["stun:stun.example.org", "stun:127.0.0.1:3478", "turn:car%40jamz:p%3Ass@relay.example.org:3478?transport=udp"];
    ice.value = servers.join(" , ");
    ui.root.querySelector<HTMLFormElement>("form.settings-form")?.requestSubmit();
    expect(alert()).toBe("");
    expect(ice.hasAttribute("aria-invalid")).toBe(false);
    expect(JSON.parse(storage.getItem("trafficjamz.settings")!).iceServers).toEqual(servers);
    ctx.go({ screen: "session", groupId: "g1", groupName: "Road trip" });
    await until(() => calls.some((c) => c.cmd === "open_session"), "open_session");
    const args = calls.find((c) => c.cmd === "open_session")?.args.args as Record<string, unknown>;
    expect(args.iceServers).toEqual(servers);
  });
});

describe("day and night", () => {
  it("follows the system until the user picks day or night, and keeps the choice", async () => {
    const storage = memoryStorage();
    fakeBackend({ current_account: () => ACCOUNT, list_groups: () => [], list_outputs: () => OUTPUTS, cache_info: () => ({ dir: "/c", tracks: 1, bytes: 1800000 }) });
    const ctx = await app(storage);
    expect(document.documentElement.dataset.theme).toBeUndefined();
    ctx.go({ screen: "settings", back: { screen: "groups" } });
    await until(() => (ui.root.querySelector("[data-testid=cache-stats]")?.textContent ?? "").startsWith("1 track,"), "the cache stats");
    expect(ui.root.querySelector("[data-testid=cache-stats]")?.textContent).toBe("1 track, 1.7 MiB, in /c");
    ui.root.querySelector<HTMLSelectElement>("[name=theme]")!.value = "dark";
    ui.root.querySelector<HTMLFormElement>("form.settings-form")?.requestSubmit();
    expect(document.documentElement.dataset.theme).toBe("dark");
    expect(JSON.parse(storage.getItem("trafficjamz.settings")!).theme).toBe("dark");
    ui.root.querySelector<HTMLSelectElement>("[name=theme]")!.value = "system";
    ui.root.querySelector<HTMLFormElement>("form.settings-form")?.requestSubmit();
    expect(document.documentElement.dataset.theme).toBeUndefined();
  });
});

describe("calibrate this car's speakers", () => {
  it("measures the chosen output before a session and sets the latency offset it found", async () => {
    const storage = memoryStorage();
    let asked: unknown = null;
    fakeBackend({
      current_account: () => ACCOUNT, list_groups: () => [], list_outputs: () => OUTPUTS,
      cache_info: () => ({ dir: "/c", tracks: 0, bytes: 0 }),
      calibrate_output: (args: unknown) => {
        asked = args;
        return { delay_ms: 152.4, spread_ms: 0.3, confidence: 0.97, probes: 9, agreeing: 9, from_offset_ms: 0, latency_offset_ms: 152.4 };
      },
    });
    const ctx = await app(storage);
    ctx.go({ screen: "settings", back: { screen: "groups" } });
    await until(() => ui.root.querySelector("[data-action=calibrate]") !== null, "the calibrate button");
    ui.root.querySelector<HTMLButtonElement>("[data-action=calibrate]")!.click();
    await until(() => (ui.root.querySelector("[data-testid=calibration]")?.textContent ?? "").startsWith("Heard"), "the result");
    expect(asked).toEqual({ output: "default", latencyOffsetMs: 0 });
    expect(ui.root.querySelector("[data-testid=calibration]")?.textContent)
      .toBe("Heard 152.4 ms later than expected (9 of 9 probes agree, confidence 0.97): latency offset set to 152 ms.");
    expect(ui.root.querySelector<HTMLInputElement>("[name=latency]")!.value).toBe("152");
    expect(JSON.parse(storage.getItem("trafficjamz.settings")!).latencyOffsetMs).toBe(152);
  });
});

describe("a session that cannot go on", () => {
  it("offers to join again when the node stops, and stops polling it", async () => {
    let opens = 0;
    const calls = fakeBackend({
      current_account: () => ACCOUNT,
      list_groups: () => [GROUP],
      open_session: () => { opens += 1; return { groupId: "g1", userId: 1, sessionId: "s1" }; },
      node_command: () => null,
      list_outputs: () => OUTPUTS,
    });
    // Only the intervals run on a fake clock (the waits below use real timeouts).
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    try {
      const ctx = await app(memoryStorage());
      ctx.go({ screen: "session", groupId: "g1", groupName: "Road trip" });
      await until(() => opens === 1, "open_session");
      expect(button(ui.root, "[data-action=rejoin]").hidden).toBe(true);
      const statuses = (): number => calls.filter((c) => c.cmd === "node_command").length;
      const before = statuses();
      vi.advanceTimersByTime(5000);
      await until(() => statuses() > before, "the status poll");
      await emit("session-ended", { reason: "track cache: disk full" });
      await until(() => !button(ui.root, "[data-action=rejoin]").hidden, "the rejoin button");
      expect(ui.root.querySelector("[data-testid=session-error]")?.textContent).toBe("The session stopped: track cache: disk full");
      expect(ui.root.querySelector("[data-testid=tier]")?.textContent).toBe("Offline");
      const after = statuses();
      vi.advanceTimersByTime(10_000);
      // A sentinel call: once it is answered, every call made before it was recorded.
      await backend.cacheInfo().catch(() => undefined);
      expect(calls.at(-1)?.cmd).toBe("cache_info");
      expect(statuses()).toBe(after);
    } finally {
      vi.useRealTimers();
    }
    button(ui.root, "[data-action=rejoin]").click();
    await until(() => opens === 2, "a second open_session");
    expect(button(ui.root, "[data-action=rejoin]").hidden).toBe(true);
  });

  it("asks to sign in again when the server no longer accepts the saved login", async () => {
    const calls = fakeBackend({
      current_account: () => ACCOUNT,
      list_groups: () => [GROUP],
      open_session: () => { throw { code: "unauthorized", message: "invalid token" }; },
      logout: () => null,
      list_outputs: () => OUTPUTS,
    });
    const ctx = await app(memoryStorage());
    ctx.go({ screen: "session", groupId: "g1", groupName: "Road trip" });
    await until(() => screen() === "auth", "the sign-in screen");
    expect(ui.root.querySelector("[role=alert]")?.textContent).toBe("Sign in again: invalid token");
    expect(calls.map((c) => c.cmd)).toContain("logout");
    expect(ctx.account).toBeNull();
  });
});
