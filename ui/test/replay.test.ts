// The replay location source: its file comes from the native picker (the node replays
// only a file the picker returned), chosen with a button in the settings.
import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, beforeEach, expect, it } from "vitest";
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
