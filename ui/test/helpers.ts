import { mockIPC } from "@tauri-apps/api/mocks";

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
