// Device settings, kept in this web view's localStorage (they are per device).

export type LocationMode = "manual" | "device" | "replay" | "gpsd";

export interface Settings {
  server: string;
  /** jamz-audio output spec: `default`, `null` or `wav:PATH`. */
  output: string;
  /** Added to this device's output latency, ms (positive: sound comes out later). */
  latencyOffsetMs: number;
  cacheLimitMiB: number;
  locationMode: LocationMode;
  /** `replay:` file or `gpsd:` address for those modes. */
  locationArg: string;
  displayName: string;
}

export const DEFAULT_SETTINGS: Settings = {
  server: "http://127.0.0.1:5050",
  output: "default",
  latencyOffsetMs: 0,
  cacheLimitMiB: 2048,
  locationMode: "manual",
  locationArg: "",
  displayName: "",
};

const KEY = "trafficjamz.settings";

export function loadSettings(storage: Storage = localStorage): Settings {
  try {
    const raw = storage.getItem(KEY);
    if (!raw) return { ...DEFAULT_SETTINGS };
    const parsed = JSON.parse(raw) as Partial<Settings>;
    return { ...DEFAULT_SETTINGS, ...parsed };
  } catch {
    return { ...DEFAULT_SETTINGS };
  }
}

export function saveSettings(s: Settings, storage: Storage = localStorage): void {
  storage.setItem(KEY, JSON.stringify(s));
}

/** The node's `location` option for these settings (manual and device fixes arrive as commands). */
export function nodeLocationSource(s: Settings): string {
  if (s.locationMode === "replay" && s.locationArg.trim()) return `replay:${s.locationArg.trim()}`;
  if (s.locationMode === "gpsd" && s.locationArg.trim()) return `gpsd:${s.locationArg.trim()}`;
  return "none";
}
