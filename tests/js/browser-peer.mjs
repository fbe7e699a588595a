// A browser mesh peer for jamz-mesh's interop test: headless Chromium with one standard
// RTCPeerConnection and a `music-control` DataChannel. Signaling is carried by whoever runs
// this script, as JSON lines over stdio, in docs/protocol.md's `webrtc-signal` payload shape:
//   stdin:  {"signal": {sessionId, from, to, type, data}} | {"send": "text"} | {"quit": true}
//   stdout: {"signal": {...}} | {"event": "open"|"message"|"state"|"ready", ...} | {"error": "..."}
// Usage: node tests/js/browser-peer.mjs --me ID --peer ID --session ID [--offer] [--no-mdns]
import { launchChromium, readCommands } from './chromium.mjs';

const argv = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
};
// user ids are numbers on the wire when they look like numbers
const asId = (s) => (/^-?\d+$/.test(s) ? Number(s) : s);
const me = asId(arg('--me', 'browser'));
const peer = asId(arg('--peer', 'native'));
const sessionId = arg('--session', 'session');
const offer = argv.includes('--offer');
const hideWithMdns = !argv.includes('--no-mdns');

const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

const browser = await launchChromium(hideWithMdns);
const shutdown = async (code) => {
  await browser.close().catch(() => {});
  process.exit(code);
};

try {
  const page = await browser.newPage();
  await page.exposeFunction('jamzOut', (line) => out(JSON.parse(line)));
  await page.evaluate(
    ({ me, peer, sessionId, offer }) => {
      const emit = (obj) => window.jamzOut(JSON.stringify(obj));
      const signal = (type, data) => emit({ signal: { sessionId, from: me, to: peer, type, data } });
      const pc = new RTCPeerConnection({ iceServers: [] });
      let channel = null;
      const pending = [];
      const wire = (dc) => {
        channel = dc;
        dc.onopen = () => emit({ event: 'open', label: dc.label, ordered: dc.ordered, maxRetransmits: dc.maxRetransmits });
        dc.onmessage = (e) => emit({ event: 'message', text: String(e.data) });
        dc.onclose = () => emit({ event: 'close' });
      };
      pc.onicecandidate = (e) => {
        if (e.candidate) signal('ice-candidate', { candidate: e.candidate.toJSON() });
      };
      pc.onconnectionstatechange = () => emit({ event: 'state', state: pc.connectionState });
      pc.ondatachannel = (e) => wire(e.channel);
      window.jamzSignal = async (s) => {
        try {
          if (s.type === 'offer' || s.type === 'answer') {
            await pc.setRemoteDescription({ type: s.type, sdp: s.data.sdp });
            if (s.type === 'offer') {
              const answer = await pc.createAnswer();
              await pc.setLocalDescription(answer);
              signal('answer', { sdp: pc.localDescription.sdp });
            }
            for (const c of pending.splice(0)) await pc.addIceCandidate(c);
          } else if (s.type === 'ice-candidate') {
            if (pc.remoteDescription) await pc.addIceCandidate(s.data.candidate);
            else pending.push(s.data.candidate);
          }
        } catch (e) {
          emit({ error: `signal ${s.type}: ${e}` });
        }
      };
      window.jamzSend = (text) => {
        if (channel && channel.readyState === 'open') channel.send(text);
        else emit({ error: 'send before open' });
      };
      if (offer) {
        wire(pc.createDataChannel('music-control', { ordered: true, maxRetransmits: 3 }));
        pc.createOffer()
          .then((o) => pc.setLocalDescription(o))
          .then(() => signal('offer', { sdp: pc.localDescription.sdp }))
          .catch((e) => emit({ error: `offer: ${e}` }));
      }
    },
    { me, peer, sessionId, offer },
  );
  out({ event: 'ready' });

  await readCommands(out, async (msg) => {
    if (msg.signal) await page.evaluate((s) => window.jamzSignal(s), msg.signal);
    else if (typeof msg.send === 'string') await page.evaluate((t) => window.jamzSend(t), msg.send);
  });
  await shutdown(0);
} catch (e) {
  out({ error: String(e) });
  await shutdown(1);
}
