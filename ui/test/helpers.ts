import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { afterEach, beforeEach } from "vitest";
import type { Ctx } from "../src/app";
import { backend } from "../src/backend";
import { startApp } from "../src/start";

export interface Call {
  cmd: string;
  args: Record<string, unknown>;
}

/** The tile cache as the shell reports it, for `map_tiles_info`. */
export const NO_TILES = { source: null, tiles: 0, bytes: 0, maxBytes: 268435456, fromCache: 0, fetched: 0, failed: 0 };

/** Commands every screen may use, answered like an idle shell unless a test says otherwise. */
const DEFAULT_HANDLERS: Record<string, (args: Record<string, unknown>) => unknown> = {
  set_map_tiles: (a) => ({ ...NO_TILES, source: a.template ?? null }),
  map_tiles_info: () => NO_TILES,
  launch_link: () => null,
};

/** Mocks the IPC with per-command handlers; records every call (event plugin calls excluded). */
export function fakeBackend(given: Record<string, (args: Record<string, unknown>) => unknown>): Call[] {
  const handlers = { ...DEFAULT_HANDLERS, ...given };
  const calls: Call[] = [];
  mockIPC(
    (cmd, payload) => {
      const args = (payload ?? {}) as Record<string, unknown>;
      calls.push({ cmd, args });
      const h = handlers[cmd];
      if (!h) throw { code: "unknown-command", message: `no mock for ${cmd}` };
      return h(args);
    },
    { shouldMockEvents: true },
  );
  return calls;
}

/** Waits (bounded) until `pred` holds, polling on the event loop. */
export async function until(pred: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const start = Date.now();
  while (!pred()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function memoryStorage(): Storage {
  const m = new Map<string, string>();
  return {
    get length() { return m.size; },
    clear: () => m.clear(),
    getItem: (k) => m.get(k) ?? null,
    key: (i) => [...m.keys()][i] ?? null,
    removeItem: (k) => { m.delete(k); },
    setItem: (k, v) => { m.set(k, v); },
  };
}

export function input(root: ParentNode, name: string): HTMLInputElement {
  const el = root.querySelector<HTMLInputElement>(`[name="${name}"]`);
  if (!el) throw new Error(`no input ${name}`);
  return el;
}

export function button(root: ParentNode, selector: string): HTMLButtonElement {
  const el = root.querySelector<HTMLButtonElement>(selector);
  if (!el) throw new Error(`no button ${selector}`);
  return el;
}

/** Storage of a device whose first-run questions were answered. */
export function setUpStorage(): Storage {
  const s = memoryStorage();
  s.setItem("trafficjamz.settings", JSON.stringify({ setUp: true }));
  return s;
}

/**
 * The app under test, one per test: a fresh root element before each test, and every app
 * a test started taken back to the sign-in screen afterwards, so no screen of one test (a
 * session's status poll) keeps calling into the next one.
 */
export interface AppHarness {
  /** The element the current test's app renders into. */
  readonly root: HTMLElement;
  /** Starts the app in `root` with the (mocked) backend. */
  start(storage: Storage): Promise<Ctx>;
  /** The name of the screen shown now. */
  screen(): string | undefined;
}

export function appHarness(): AppHarness {
  let current: HTMLElement | null = null;
  const started: Ctx[] = [];
  beforeEach(() => {
    current = document.createElement("div");
    document.body.replaceChildren(current);
  });
  afterEach(() => {
    for (const ctx of started.splice(0)) ctx.go({ screen: "auth" });
    clearMocks();
  });
  const harness: AppHarness = {
    get root(): HTMLElement {
      if (!current) throw new Error("the app's root exists only inside a test");
      return current;
    },
    async start(storage: Storage): Promise<Ctx> {
      const ctx = await startApp(harness.root, backend, storage);
      started.push(ctx);
      return ctx;
    },
    screen: () => harness.root.querySelector<HTMLElement>("[data-screen]")?.dataset.screen,
  };
  return harness;
}
