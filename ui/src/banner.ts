// The status banner: always Online / Peer mesh / Offline, and queued changes.

import type { Tier } from "./backend";
import { h } from "./dom";

export const TIER_LABEL: Record<Tier, string> = {
  socket: "Online",
  mesh: "Peer mesh",
  offline: "Offline",
};

export class Banner {
  readonly el: HTMLElement;
  private readonly label: HTMLElement;
  private readonly detail: HTMLElement;
  private readonly sync: HTMLElement;

  constructor() {
    this.label = h("strong", { "data-testid": "tier" });
    this.detail = h("span", { class: "detail", "data-testid": "queued" });
    // The sync meter changes every second: outside the live region's text that is read out.
    this.sync = h("span", { class: "detail", "data-testid": "sync", "aria-live": "off", hidden: true });
    this.el = h("div", { class: "banner", role: "status", "aria-live": "polite" }, this.label, this.detail, this.sync);
    this.set("offline", 0, "not in a session");
  }

  /** The sync meter: this device's offset to the group (ms, positive: ahead), or nothing. */
  setSync(offsetMs: number | null): void {
    this.sync.hidden = offsetMs === null;
    this.sync.textContent = offsetMs === null ? "" : ` · sync ${offsetMs >= 0 ? "+" : "−"}${Math.abs(offsetMs).toFixed(1)} ms`;
  }

  set(tier: Tier, queued: number, reason = ""): void {
    this.el.dataset.tier = tier;
    this.label.textContent = TIER_LABEL[tier];
    const parts: string[] = [];
    if (queued > 0) parts.push(`${queued} queued change${queued === 1 ? "" : "s"}`);
    else parts.push("no queued changes");
    if (reason) parts.push(reason);
    this.detail.textContent = ` · ${parts.join(" · ")}`;
  }
}
