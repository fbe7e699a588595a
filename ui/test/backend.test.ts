import { clearMocks } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import type { Channel } from "@tauri-apps/api/core";
import { afterEach, describe, expect, it } from "vitest";
import { backend, BackendError, type NodeEvent, type ProgressEvent } from "../src/backend";
import { fakeBackend, until } from "./helpers";

afterEach(() => clearMocks());

describe("backend", () => {
  it("sends login arguments in one args object", async () => {
    const calls = fakeBackend({ login: () => ({ server: "http://s", username: "ann", userId: 7 }) });
    const acct = await backend.login("http://s", "ann", "pw");
    expect(acct.userId).toBe(7);
    expect(calls).toEqual([{ cmd: "login", args: { args: { server: "http://s", username: "ann", password: "pw" } } }]);
  });

  it("turns a {code, message} rejection into a BackendError with that code", async () => {
    fakeBackend({ login: () => { throw { code: "unauthorized", message: "wrong password" }; } });
    const err = await backend.login("http://s", "ann", "nope").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as BackendError).code).toBe("unauthorized");
    expect((err as BackendError).message).toBe("wrong password");
  });

  it("forwards node commands as the docs/node-control.md objects", async () => {
    const calls = fakeBackend({ node_command: () => null });
    await backend.command({ cmd: "seek", position: 42.5 });
    expect(calls[0]).toEqual({ cmd: "node_command", args: { command: { cmd: "seek", position: 42.5 } } });
  });

  it("streams progress from the channel passed to open_session", async () => {
    let channel: Channel<NodeEvent> | undefined;
    fakeBackend({
      open_session: (args) => {
        channel = args.onProgress as Channel<NodeEvent>;
        return { groupId: "g", userId: 1, sessionId: "s" };
      },
    });
    const seen: ProgressEvent[] = [];
    const info = await backend.openSession({ groupId: "g" }, (p) => seen.push(p));
    expect(info.sessionId).toBe("s");
    channel?.onmessage({ event: "progress", what: "preload", done: 1, total: 4 });
    expect(seen).toEqual([{ event: "progress", what: "preload", done: 1, total: 4 }]);
  });

  it("delivers node-event payloads to listeners", async () => {
    fakeBackend({});
    const seen: NodeEvent[] = [];
    const un = await backend.onNodeEvent((e) => seen.push(e));
    await emit("node-event", { event: "controller", userId: 3 });
    await until(() => seen.length === 1, "the event");
    expect(seen[0]).toEqual({ event: "controller", userId: 3 });
    un();
  });

  it("asks for location permission before reading the device's position, and says so when refused", async () => {
    let granted: "prompt" | "granted" | "denied" = "prompt";
    let answer: "granted" | "denied" = "granted";
    const calls = fakeBackend({
      "plugin:geolocation|check_permissions": () => ({ location: granted }),
      "plugin:geolocation|request_permissions": () => { granted = answer; return { location: granted }; },
      "plugin:geolocation|get_current_position": () => ({ coords: { latitude: 47.4, longitude: 8.5, speed: 20, heading: null } }),
    });
    expect(await backend.devicePosition()).toEqual({ latitude: 47.4, longitude: 8.5, speed: 20 });
    expect(calls.map((c) => c.cmd)).toEqual([
      "plugin:geolocation|check_permissions",
      "plugin:geolocation|request_permissions",
      "plugin:geolocation|get_current_position",
    ]);
    // Granted once: no second request.
    await backend.devicePosition();
    expect(calls.filter((c) => c.cmd === "plugin:geolocation|request_permissions")).toHaveLength(1);
    granted = "prompt";
    answer = "denied";
    await expect(backend.devicePosition()).rejects.toMatchObject({ code: "permission" });
  });
});
