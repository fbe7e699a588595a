// Headless Chromium for the browser peers (browser-peer.mjs, browser-web-peer.mjs): Debian's
// `chromium` (or CHROMIUM_PATH), loopback peer connections allowed, and with
// `hideWithMdns` false its mDNS hiding of host addresses turned off (raw candidates).
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
