// Join links in the UI: a hosting device shows each group's link and QR code; a joining
// device opens or pastes one and is taken to the group's session.
import { emit } from "@tauri-apps/api/event";
import { describe, expect, it } from "vitest";
import type { Ctx } from "../src/app";
import { appHarness, button, fakeBackend, input, memoryStorage, setUpStorage, until } from "./helpers";

const ACCOUNT = { server: "http://10.42.0.1:5050", username: "bob", userId: 2, tokenStore: "keyring" };
const GROUP = { id: "g1", name: "Road trip", description: "", creator_id: 1, members: [1, 2] };
const LINK = "trafficjamz://join?server=http%3A%2F%2F10.42.0.1%3A5050&group=g1&name=Ann%27s%20car";
const SVG = '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>';

/** What the shell answers for `read_join_link` / `make_join_link` (parsing is Rust's, tested there). */
function view(server: string, group: string | null, name: string | null): Record<string, unknown> {
  return { link: LINK, server, group, name, qrSvg: SVG };
}
const readLink = (a: Record<string, unknown>): unknown => {
  if (!String(a.link).startsWith("trafficjamz://")) {
    throw { code: "invalid", message: "not a TrafficJamz join link (it starts with trafficjamz://join?)" };
  }
  return view("http://10.42.0.1:5050", "g1", "Ann's car");
};

const ui = appHarness();
const app = (storage: Storage): Promise<Ctx> => ui.start(storage);
const screen = (): string | undefined => ui.screen();

describe("join links", () => {
  it("a hosting device shows each group's join link as text and as a QR code", async () => {
    const storage = memoryStorage();
    storage.setItem("trafficjamz.settings", JSON.stringify({ hosting: true, setUp: true }));
    const hosting = { url: "http://127.0.0.1:5050", port: 5050, lanUrls: ["http://10.42.0.1:5050", "http://192.168.1.5:5050"] };
    const calls = fakeBackend({
      current_account: () => ACCOUNT,
      app_info: () => ({ version: "0", mobile: false, hosting, sessionGroup: null }),
      list_groups: () => [GROUP],
      make_join_link: (a) => view(String(a.server), a.group as string, a.name as string),
    });
    await app(storage);
    await until(() => ui.root.querySelector("[data-action=show-join-link]") !== null, "the invite button");
    const show = button(ui.root, "[data-action=show-join-link]");
    expect(show.getAttribute("aria-expanded")).toBe("false");
    // A button: Enter and Space work from the keyboard as a click does.
    show.focus();
    show.click();
    await until(() => ui.root.querySelector("img.qr") !== null, "the QR code");
    expect(calls.find((c) => c.cmd === "make_join_link")?.args).toEqual({ server: "http://10.42.0.1:5050", group: "g1", name: "Road trip" });
    expect(show.getAttribute("aria-expanded")).toBe("true");
    const img = ui.root.querySelector<HTMLImageElement>("img.qr")!;
    expect(img.alt).toBe("QR code of the join link to Road trip");
    expect(decodeURIComponent(img.src.replace(/^data:image\/svg\+xml;charset=utf-8,/, ""))).toBe(SVG);
    expect(input(ui.root, "join-link").value).toBe(LINK);
    expect(input(ui.root, "join-link").readOnly).toBe(true);
    show.click();
    expect(ui.root.querySelector<HTMLElement>("[data-testid=invite]")!.hidden).toBe(true);
    expect(show.getAttribute("aria-expanded")).toBe("false");
  });

  it("the app opened with a join link signs in to its server and offers the group's session", async () => {
    const storage = memoryStorage();
    let account: unknown = null;
    const calls = fakeBackend({
      current_account: () => account,
      launch_link: () => LINK,
      read_join_link: readLink,
      login: () => { account = ACCOUNT; return ACCOUNT; },
      list_groups: () => [GROUP],
      open_session: () => ({ groupId: "g1", userId: 2, sessionId: "s1" }),
      node_command: () => null,
    });
    await app(storage);
    // Not set up yet, but the link says where: straight to signing in, server filled in.
    expect(screen()).toBe("auth");
    expect(input(ui.root, "server").value).toBe("http://10.42.0.1:5050");
    expect(ui.root.querySelector("[data-testid=joining]")?.textContent).toBe("Joining Ann's car: sign in or register on its server.");
    input(ui.root, "username").value = "bob";
    input(ui.root, "password").value = "pw";
    ui.root.querySelector("form")?.requestSubmit();
    await until(() => ui.root.querySelector("[data-action=open-joined]") !== null, "the join card");
    const open = button(ui.root, "[data-action=open-joined]");
    expect(open.textContent).toBe("Open the session of Road trip");
    expect(document.activeElement).toBe(open);
    open.click();
    await until(() => calls.some((c) => c.cmd === "open_session"), "open_session");
    expect(screen()).toBe("session");
  });

  it("a link pasted in the server field fills in the server; a bad one is refused in words", async () => {
    const calls = fakeBackend({
      current_account: () => null,
      read_join_link: (a) => {
        if (String(a.link).includes("oops")) throw { code: "invalid", message: "the join link names no server" };
        return readLink(a);
      },
      login: () => ACCOUNT,
      list_groups: () => [],
    });
    const ctx = await app(setUpStorage());
    input(ui.root, "server").value = "trafficjamz://join?oops";
    input(ui.root, "username").value = "bob";
    input(ui.root, "password").value = "pw";
    // Starts with the scheme: read as a link, and the shell's refusal is shown.
    ui.root.querySelector("form")?.requestSubmit();
    await until(() => (ui.root.querySelector("[role=alert]")?.textContent ?? "") !== "", "an error");
    expect(ui.root.querySelector("[role=alert]")?.textContent).toBe("the join link names no server");
    expect(screen()).toBe("auth");
    expect(calls.some((c) => c.cmd === "login")).toBe(false);
    input(ui.root, "server").value = LINK;
    ui.root.querySelector("form")?.requestSubmit();
    await until(() => screen() === "groups", "the groups screen");
    expect(calls.find((c) => c.cmd === "login")?.args).toEqual({ args: { server: "http://10.42.0.1:5050", username: "bob", password: "pw" } });
    expect(ctx.settings.server).toBe("http://10.42.0.1:5050");
    // Not a member of the link's group: told what to do.
    await until(() => ui.root.querySelector("[data-testid=join]:not([hidden])") !== null, "the join card");
    expect(ui.root.querySelector("[data-testid=join]")?.textContent).toContain("ask its host to add your username, bob");
  });

  it("a link handed over by a second launch takes the app to its group", async () => {
    fakeBackend({
      current_account: () => ACCOUNT,
      read_join_link: readLink,
      list_groups: () => [GROUP],
    });
    await app(setUpStorage());
    await until(() => screen() === "groups", "the groups screen");
    expect(ui.root.querySelector<HTMLElement>("[data-testid=join]")!.hidden).toBe(true);
    await emit("join-link", LINK);
    await until(() => ui.root.querySelector("[data-action=open-joined]") !== null, "the join card");
    button(ui.root, "[data-action=dismiss-join]").click();
    expect(ui.root.querySelector<HTMLElement>("[data-testid=join]")!.hidden).toBe(true);
  });
});
