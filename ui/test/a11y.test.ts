// The accessibility pass: axe-core over every screen, in the states a user sees them;
// no violation of the serious or critical kinds. (Colour contrast needs layout, which
// happy-dom has not: the palette's contrast is checked in contrast.test.ts.)

import axe from "axe-core";
import { emit } from "@tauri-apps/api/event";
import { describe, expect, it } from "vitest";
import type { Ctx } from "../src/app";
import { appHarness, button, fakeBackend, memoryStorage, setUpStorage, until } from "./helpers";

const ACCOUNT = { server: "http://127.0.0.1:5050", username: "ann", userId: 1, tokenStore: "keyring" };
const OUTPUTS = [{ id: "default", name: "System default", is_default: true }];
const GROUP = { id: "g1", name: "Road trip", description: "Saturday", creator_id: 1, members: [1, 2] };

const ui = appHarness();

async function app(account: unknown, storage: Storage = setUpStorage()): Promise<Ctx> {
  fakeBackend({
    current_account: () => account,
    app_info: () => ({ version: "0", mobile: false, hosting: { url: "http://127.0.0.1:5050", port: 5050, lanUrls: ["http://192.168.43.1:5050"] }, sessionGroup: null }),
    list_groups: () => [GROUP],
    list_outputs: () => OUTPUTS,
    cache_info: () => ({ dir: "/c", tracks: 0, bytes: 0 }),
    open_session: () => ({ groupId: "g1", userId: 1, sessionId: "s1" }),
    node_command: () => null,
    cover_art: () => null,
    location_sources: () => [{ spec: "manual", name: "Entered by hand" }],
  });
  return ui.start(storage);
}

/** The serious and critical violations on the page, one line each. */
async function violations(): Promise<string[]> {
  const result = await axe.run(document.body, { rules: { "color-contrast": { enabled: false } } });
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .flatMap((v) => v.nodes.map((n) => `${v.id} (${v.impact}): ${n.target.join(" ")}: ${v.help}`));
}

// axe walks the whole page several times: slow under happy-dom on a busy machine.
describe("accessibility (axe-core)", { timeout: 30_000 }, () => {
  it("finds an unlabelled control (the pass can fail)", async () => {
    ui.root.append(Object.assign(document.createElement("input"), { name: "unlabelled" }));
    expect((await violations()).some((v) => v.startsWith("label (critical)"))).toBe(true);
  });

  it("the first run: the choice, the server, this car", async () => {
    await app(null, memoryStorage());
    expect(await violations()).toEqual([]);
    button(ui.root, "[data-choice=join]").click();
    expect(await violations()).toEqual([]);
    ui.root.querySelector("form")?.requestSubmit();
    await until(() => ui.root.querySelectorAll("[name=output] option").length >= 2, "the output list");
    expect(await violations()).toEqual([]);
  });

  it("sign in and register", async () => {
    await app(null);
    expect(await violations()).toEqual([]);
    button(ui.root, "button.link").click();
    expect(await violations()).toEqual([]);
  });

  it("groups, with the hosting card", async () => {
    await app(ACCOUNT);
    await until(() => ui.root.querySelectorAll("li.group").length === 1, "the group");
    await until(() => ui.root.querySelector("[data-testid=lan-urls]") !== null, "the hosting card");
    expect(await violations()).toEqual([]);
  });

  it("settings", async () => {
    const ctx = await app(ACCOUNT);
    ctx.go({ screen: "settings", back: { screen: "groups" } });
    await until(() => ui.root.querySelectorAll("[name=output] option").length >= 2, "the output list");
    expect(await violations()).toEqual([]);
  });

  it("the session: now playing, playlist, people, map, cache and its settings panel", async () => {
    const ctx = await app(ACCOUNT);
    ctx.go({ screen: "session", groupId: "g1", groupName: "Road trip" });
    await until(() => ui.root.querySelector("[data-screen=session]") !== null, "the session");
    expect(await violations()).toEqual([]);
    await emit("node-event", { event: "controller", userId: 1 });
    await emit("node-event", { event: "playlist", playlist: [
      { id: "a", title: "Alpha", artist: "X", source: "upload", duration: 200 },
      { id: "b", title: "Beta", artist: "", source: "upload", duration: 40 },
    ] });
    await emit("node-event", { event: "playback", playing: true, track: "a", position: 5, at: 0 });
    await emit("node-event", { event: "participants", participants: [{ userId: 2, display_name: "Bo's car", socketId: "s" }] });
    await emit("node-event", { event: "outbox", pending: [{ action: "add", label: "Song 2" }] });
    await until(() => ui.root.querySelectorAll("[data-track]").length === 2, "the playlist");
    expect(await violations()).toEqual([]);
    button(ui.root, "[data-action=settings]").click();
    expect(await violations()).toEqual([]);
  });
});
