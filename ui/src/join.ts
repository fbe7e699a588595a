// Join links (docs/protocol.md, "Join links"): `trafficjamz://join?server=...&group=...`.
// A hosting device shows one per group (text and QR code, made by the shell); a joining
// device reads one (pasted in a server field, or the link the system opened the app
// with) and it becomes the pending join: the server to sign in to and the group to open.

import type { Ctx } from "./app";
import type { JoinLink } from "./backend";

/** Whether a typed or pasted text is meant as a join link (rather than a server URL). */
export function looksLikeJoinLink(text: string): boolean {
  return text.trim().toLowerCase().startsWith("trafficjamz:");
}

/** Reads `text` (the shell checks it) and makes it the pending join. */
export async function takeJoinLink(ctx: Ctx, text: string): Promise<JoinLink> {
  const link = await ctx.backend.readJoinLink(text);
  ctx.join = link;
  // A device that hosts the session keeps its own server.
  if (!ctx.settings.hosting) ctx.saveSettings({ ...ctx.settings, server: link.server });
  return link;
}

/** The QR code as an image source (the shell's SVG; the CSP allows `data:` images). */
export function qrSource(link: JoinLink): string {
  return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(link.qrSvg)}`;
}

/** What to call the link's session: its name, else its server. */
export function joinLabel(link: JoinLink): string {
  return link.name ?? link.server;
}
