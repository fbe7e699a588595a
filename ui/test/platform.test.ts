// The replay location source: its file comes from the native picker (the node replays
// only a file the picker returned), chosen with a button in the settings; and the
// playlist reordered by touch.
import { clearMocks } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { backend } from "../src/backend";
import type { Ctx } from "../src/app";
import { startApp } from "../src/start";
import { button, fakeBackend, input, memoryStorage, until } from "./helpers";

const ACCOUNT = { server: "http://127.0.0.1:5050", username: "ann", userId: 1, tokenStore: "keyring" };
const GROUP = { id: "g1", name: "Road trip", description: "", creator_id: 1, members: [1] };

let root: HTMLElement;
let ctx: Ctx | null = null;
beforeEach(() => {
  root = document.createElement("div");
  document.body.replaceChildren(root);
});
afterEach(() => {
  ctx?.go({ screen: "auth" });
  clearMocks();
});

it("the settings choose a drive to replay with the native picker, and the session replays it", async () => {
  const storage = memoryStorage();
  let picked: string | null = null;
  const calls = fakeBackend({
    current_account: () => ACCOUNT,
    list_groups: () => [GROUP],
    list_outputs: () => [],
    location_sources: () => [{ spec: "manual", name: "Entered by hand" }, { spec: "gpsd:localhost:2947", name: "GPS receiver through gpsd" }],
    pick_replay_file: () => picked,
    open_session: () => ({ groupId: "g1", userId: 1, sessionId: "s1" }),
    node_command: () => null,
  });
  ctx = await startApp(root, backend, storage);
  ctx.go({ screen: "settings", back: { screen: "groups" } });
  const mode = root.querySelector<HTMLSelectElement>("[name=location-mode]")!;
  await until(() => mode.options.length === 5, "the location sources");
  const pick = button(root, "[data-action=pick-replay]");
  // Only for a replay.
  expect(pick.closest<HTMLElement>(".row")!.hidden).toBe(true);
  mode.value = "replay";
  mode.dispatchEvent(new Event("change"));
  expect(pick.closest<HTMLElement>(".row")!.hidden).toBe(false);
  // Cancelled: nothing changes.
  pick.click();
  await until(() => calls.filter((c) => c.cmd === "pick_replay_file").length === 1, "the picker");
  expect(input(root, "location-arg").value).toBe("");
  picked = "/home/ann/drives/a9.gpx";
  pick.click();
  await until(() => input(root, "location-arg").value !== "", "the picked file");
  expect(input(root, "location-arg").value).toBe("/home/ann/drives/a9.gpx");
  root.querySelector<HTMLFormElement>("form.settings-form")?.requestSubmit();
  ctx.go({ screen: "session", groupId: "g1", groupName: "Road trip" });
  await until(() => calls.some((c) => c.cmd === "open_session"), "open_session");
  const args = calls.find((c) => c.cmd === "open_session")?.args.args as Record<string, unknown>;
  expect(args.location).toBe("replay:/home/ann/drives/a9.gpx");
});

it("the DJ reorders the playlist by touch: the grip follows the finger to another row", async () => {
  const calls = fakeBackend({
    current_account: () => ACCOUNT,
    list_groups: () => [GROUP],
    open_session: () => ({ groupId: "g1", userId: 1, sessionId: "s1" }),
    node_command: () => null,
    leave_session: () => null,
    list_outputs: () => [],
  });
  ctx = await startApp(root, backend, memoryStorage());
  ctx.go({ screen: "session", groupId: "g1", groupName: "Road trip" });
  await until(() => calls.some((c) => c.cmd === "open_session"), "open_session");
  await emit("node-event", { event: "controller", userId: 1 });
  await emit("node-event", { event: "playlist", playlist: [
    { id: "a", title: "Alpha", artist: "", source: "upload" }, { id: "b", title: "Beta", artist: "", source: "upload" }, { id: "c", title: "Gamma", artist: "", source: "upload" },
  ] });
  await until(() => root.querySelectorAll("[data-track] [data-action=grip]").length === 3, "the grips");
  const grip = root.querySelector<HTMLElement>("[data-track=a] [data-action=grip]")!;
  // No layout here: the row under the finger is the one the test names.
  const target = root.querySelector<HTMLElement>("[data-track=c] .t")!;
  const spy = vi.spyOn(document, "elementFromPoint").mockReturnValue(target);
  grip.dispatchEvent(new PointerEvent("pointerdown", { pointerType: "touch", bubbles: true, clientX: 10, clientY: 10 }));
  document.dispatchEvent(new PointerEvent("pointerup", { pointerType: "touch", bubbles: true, clientX: 10, clientY: 90 }));
  spy.mockRestore();
  const reorders = (): unknown[] => calls.filter((c) => c.cmd === "node_command").map((c) => c.args.command)
    .filter((c) => (c as { cmd: string }).cmd === "reorder");
  await until(() => reorders().length === 1, "the reorder");
  expect(reorders()).toEqual([{ cmd: "reorder", order: ["b", "c", "a"] }]);
  // A mouse uses HTML5 drag and drop instead: the grip ignores it.
  grip.dispatchEvent(new PointerEvent("pointerdown", { pointerType: "mouse", bubbles: true }));
  document.dispatchEvent(new PointerEvent("pointerup", { pointerType: "mouse", bubbles: true }));
  expect(reorders()).toHaveLength(1);
});
