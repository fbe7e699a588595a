// Settings before a session (output device, latency offset, cache size, location
// source, name) and the track cache, which no session holds here.

import type { Route, Screen } from "../app";
import { h, showError } from "../dom";
import { formatBytes, plural } from "../words";
import { settingsForm } from "./settings-form";

export const settingsScreen = (back: Route): Screen => (root, ctx) => {
  const form = settingsForm(ctx, null);
  const error = h("p", { class: "error", role: "alert" });
  const cacheStats = h("p", { "data-testid": "cache-stats" }, "…");

  const showCache = (p: Promise<{ tracks: number; bytes: number; dir: string }>): void => {
    void p.then(
      (c) => {
        cacheStats.textContent = c.tracks === 0
          ? `Empty (${c.dir}). Tracks are kept here as they play, and ahead of time while online.`
          : `${plural(c.tracks, "track")}, ${formatBytes(c.bytes)}, in ${c.dir}`;
      },
      (err: unknown) => { cacheStats.textContent = ""; showError(error, err); },
    );
  };
  const clear = h("button", { type: "button", "data-action": "cache-clear" }, "Clear the cache");
  clear.addEventListener("click", () => showCache(ctx.backend.cacheClear()));
  const backButton = h("button", { type: "button" }, "Back");
  backButton.addEventListener("click", () => ctx.go(back));

  root.append(h("main", { class: "screen settings", "data-screen": "settings" },
    h("header", { class: "row spread" }, h("h1", { tabindex: -1 }, "Settings"), backButton),
    form,
    h("section", { class: "card", "aria-labelledby": "cache-h" }, h("h2", { id: "cache-h" }, "Track cache"), cacheStats, clear, error)));
  form.querySelector<HTMLSelectElement>("[name=output]")?.focus();
  showCache(ctx.backend.cacheInfo());
  return () => undefined;
};
