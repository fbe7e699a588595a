// Headless Chromium for the browser peers (browser-peer.mjs, browser-web-peer.mjs): Debian's
// `chromium` (or CHROMIUM_PATH), loopback peer connections allowed, and with
// `hideWithMdns` false its mDNS hiding of host addresses turned off (raw candidates); and
// the JSON-lines commands both read on stdin.
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

export async function launchChromium(hideWithMdns) {
  const args = [
    '--headless=new',
    '--no-sandbox',
    '--allow-loopback-in-peer-connection',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ];
  if (!hideWithMdns) args.push('--disable-features=WebRtcHideLocalIpsWithMdns');
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args,
  });
}

// Hands each JSON line of stdin to `handle` until `{"quit": true}` or the end of input; a
// line that is not JSON is reported through `out` as an `error` and skipped.
export async function readCommands(out, handle) {
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      out({ error: `bad input line: ${e}` });
      continue;
    }
    if (cmd.quit) return;
    await handle(cmd);
  }
}
