// How numbers read to people: counts with the right plural, sizes and times a glance
// can take in. Sizes are binary (KiB, MiB, GiB) like the cache limit set in MiB, so a
// limit of 256 reads "256 MiB" wherever it shows.

/** "1 track", "2 tracks", "0 tracks"; `many` when the plural is not `one` + "s". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** "0 B", "512 B", "2 KiB", "1.7 MiB", "256 MiB": one decimal under 10, none above. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 1024) return `${Math.max(0, Math.round(Number.isFinite(n) ? n : 0))} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  const shown = v < 10 ? String(Math.round(v * 10) / 10) : String(Math.round(v));
  return `${shown} ${units[i]}`;
}

/** "0:40", "3:05", "1:02:03". */
export function formatTime(seconds: number): string {
  const s = Math.max(0, Math.floor(Number.isFinite(seconds) ? seconds : 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}
