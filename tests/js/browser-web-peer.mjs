// A web app peer in headless Chromium, for tests/tests/node_browser_mesh.rs: a page of our
// own, served from the server's origin (playwright answers its URL; the server never sees
// it), that does what the web app does with only browser APIs: logs in over REST (fetch),
// finds its group's session, connects with the official socket.io-client's browser bundle
// (node_modules/socket.io-client/dist/socket.io.min.js, default transports), joins with
// `join-audio-session`, and links with every other participant through the server's
// `webrtc-signal` relay with one standard RTCPeerConnection each (the lower user id offers;
// candidates may come before their description) and a `music-control` DataChannel
// (ordered, maxRetransmits 3). On open it sends `state-hello`; it reports every mesh
// message it gets. Payloads are docs/protocol.md's, "Socket.IO" and "Peer mesh".
//
// Env: JAMZ_URL, JAMZ_USERNAME, JAMZ_PASSWORD, JAMZ_GROUP, CHROMIUM_PATH (default
// /usr/bin/chromium). Flag --no-mdns: Chromium without mDNS hiding of host addresses.
// stdout, JSON lines:
//   {"event":"joined","userId","sessionId","state":<music-session-state>}
//   {"event":"candidate","peer","candidate"}        a local ICE candidate signalled
//   {"event":"open","peer","label","ordered","maxRetransmits"}
//   {"event":"mesh","peer","message":<envelope>}      a DataChannel message, parsed
//   {"event":"socket","name","data"}                  socket events (webrtc-signal excepted)
//   {"event":"sent","peer","message"}                 a mesh message this page sent
//   {"event":"ready"}                                 the page is up, commands accepted
//   {"error":"..."}
// stdin, JSON lines (each answered by "sent" events or an error):
//   {"location":{latitude,longitude,speed?}}  a location-update to every open link
//   {"append":<Track>}                         a playlist-update appending it, to every open link
//   {"quit":true}
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, readCommands } from './chromium.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const config = {
  url: env('JAMZ_URL'),
  username: env('JAMZ_USERNAME'),
  password: env('JAMZ_PASSWORD'),
  group: env('JAMZ_GROUP'),
};
const hideWithMdns = !process.argv.includes('--no-mdns');
const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

// The page's own code: runs in Chromium, standard APIs and the socket.io bundle's `io` only.
function webPeer({ url, username, password, group }) {
  const emit = (obj) => window.jamzOut(JSON.stringify(obj));
  const fail = (what, e) => emit({ error: `${what}: ${e && e.stack ? e.stack : e}` });
  const api = async (method, route, token, body) => {
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(url + route, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const data = await res.json();
    if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${JSON.stringify(data)}`);
    return data;
  };
  // FNV-1a (64 bits, 16 hex digits) of the playlist's ids joined by newlines: state-hello's hash.
  const playlistHash = (playlist) => {
    let h = 0xcbf29ce484222325n;
    for (const b of new TextEncoder().encode(playlist.map((t) => t.id).join('\n'))) {
      h ^= BigInt(b);
      h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
    }
    return h.toString(16).padStart(16, '0');
  };

  const session = { me: null, id: null, playlist: [], controller: null, playing: false, position: 0, socket: null };
  const peers = new Map(); // userId -> {pc, channel, pending: [candidate]}
  let sequence = 0;

  const envelope = (type, data) => ({ type, data, sequence: ++sequence, from: session.me });
  const sendTo = (peer, p, msg) => {
    p.channel.send(JSON.stringify(msg));
    emit({ event: 'sent', peer, message: msg });
  };
  const broadcast = (type, data) => {
    const open = [...peers].filter(([, p]) => p.channel && p.channel.readyState === 'open');
    if (open.length === 0) return emit({ error: `${type}: no open music-control channel` });
    const msg = envelope(type, data);
    for (const [peer, p] of open) sendTo(peer, p, msg);
  };
  const signal = (to, type, data) => session.socket.emit('webrtc-signal', { sessionId: session.id, from: session.me, to, type, data });

  const wire = (peer, p, dc) => {
    p.channel = dc;
    dc.onopen = () => {
      emit({ event: 'open', peer, label: dc.label, ordered: dc.ordered, maxRetransmits: dc.maxRetransmits });
      sendTo(peer, p, envelope('state-hello', {
        playlistHash: playlistHash(session.playlist),
        controller: session.controller,
        epoch: 0,
        playing: session.playing,
        position: session.position,
        timestamp: Date.now(),
      }));
    };
    dc.onmessage = (e) => {
      let message;
      try { message = JSON.parse(String(e.data)); } catch (err) { return fail(`mesh message from ${peer}`, err); }
      if (message.type === 'playlist-update' && message.data && Array.isArray(message.data.playlist)) {
        session.playlist = message.data.playlist;
      }
      emit({ event: 'mesh', peer, message });
    };
    dc.onclose = () => emit({ event: 'close', peer });
  };
  const link = (peer) => {
    let p = peers.get(peer);
    if (p) return p;
    const pc = new RTCPeerConnection({ iceServers: [] });
    p = { pc, channel: null, pending: [] };
    peers.set(peer, p);
    pc.onicecandidate = (e) => {
      if (!e.candidate) return;
      emit({ event: 'candidate', peer, candidate: e.candidate.candidate });
      signal(peer, 'ice-candidate', { candidate: e.candidate.toJSON() });
    };
    pc.onconnectionstatechange = () => emit({ event: 'state', peer, state: pc.connectionState });
    pc.ondatachannel = (e) => wire(peer, p, e.channel);
    if (session.me < peer) {
      wire(peer, p, pc.createDataChannel('music-control', { ordered: true, maxRetransmits: 3 }));
      pc.createOffer()
        .then((o) => pc.setLocalDescription(o))
        .then(() => signal(peer, 'offer', { sdp: pc.localDescription.sdp }))
        .catch((e) => fail(`offer to ${peer}`, e));
    }
    return p;
  };
  const onSignal = async (s) => {
    if (s.to !== session.me) return;
    const p = link(s.from);
    try {
      if (s.type === 'offer' || s.type === 'answer') {
        await p.pc.setRemoteDescription({ type: s.type, sdp: s.data.sdp });
        if (s.type === 'offer') {
          await p.pc.setLocalDescription(await p.pc.createAnswer());
          signal(s.from, 'answer', { sdp: p.pc.localDescription.sdp });
        }
        for (const c of p.pending.splice(0)) await p.pc.addIceCandidate(c);
      } else if (s.type === 'ice-candidate') {
        if (p.pc.remoteDescription) await p.pc.addIceCandidate(s.data.candidate);
        else p.pending.push(s.data.candidate);
      }
    } catch (e) {
      fail(`signal ${s.type} from ${s.from}`, e);
    }
  };
  const adopt = (state) => {
    session.playlist = state.playlist || [];
    session.controller = state.controller_id ?? null;
    session.playing = !!state.is_playing;
    session.position = state.currently_playing ? state.currently_playing.position : 0;
  };

  window.jamzCommand = (cmd) => {
    try {
      if (cmd.location) {
        broadcast('location-update', { accuracy: 5, speed: 0, heading: 0, ...cmd.location, timestamp: Date.now() });
      } else if (cmd.append) {
        broadcast('playlist-update', { playlist: [...session.playlist, cmd.append] });
        session.playlist = [...session.playlist, cmd.append];
      } else {
        emit({ error: `unknown command ${JSON.stringify(cmd)}` });
      }
    } catch (e) {
      fail('command', e);
    }
  };

  (async () => {
    const auth = await api('POST', '/api/auth/login', null, { username, password });
    session.me = auth.user.id;
    const { session: s } = await api('GET', `/api/audio/sessions/group/${group}`, auth.token);
    session.id = s.id;
    const socket = window.io(url, { auth: { token: auth.token } });
    session.socket = socket;
    socket.on('webrtc-signal', onSignal);
    socket.onAny((name, data) => {
      if (name === 'webrtc-signal') return;
      if (name === 'music-session-state') {
        adopt(data);
        emit({ event: 'joined', userId: session.me, sessionId: session.id, state: data });
      }
      if (name === 'playlist-update') session.playlist = data.playlist;
      if (name === 'music-controller-changed') session.controller = data.userId;
      if (name === 'current-participants') {
        for (const p of data.participants) if (p.userId !== session.me) link(p.userId);
      }
      if (name === 'participant-joined' && data.userId !== session.me) link(data.userId);
      emit({ event: 'socket', name, data });
    });
    socket.on('connect', () => {
      emit({ event: 'socket', name: 'connect', data: { id: socket.id } });
      socket.emit('join-audio-session', { sessionId: session.id, userId: session.me, display_name: 'Web peer' });
    });
    socket.on('disconnect', (reason) => emit({ event: 'socket', name: 'disconnect', data: { reason } }));
    socket.on('connect_error', (e) => emit({ event: 'socket', name: 'connect_error', data: { message: e.message } }));
  })().catch((e) => fail('start', e));
}

const browser = await launchChromium(hideWithMdns);
const shutdown = async (code) => {
  await browser.close().catch(() => {});
  process.exit(code);
};

try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => out({ error: `page: ${e}` }));
  await page.exposeFunction('jamzOut', (line) => out(JSON.parse(line)));
  // The page lives on the server's origin, as the web app's would behind one host name.
  const pageUrl = new URL('/jamz-web-peer.html', config.url).href;
  await page.route(pageUrl, (route) => route.fulfill({
    contentType: 'text/html',
    body: '<!doctype html><meta charset="utf-8"><title>jamz web peer</title>',
  }));
  await page.goto(pageUrl);
  await page.addScriptTag({ content: readFileSync(path.join(repo, 'node_modules/socket.io-client/dist/socket.io.min.js'), 'utf8') });
  await page.addScriptTag({ content: `(${webPeer.toString()})(${JSON.stringify(config)});` });
  out({ event: 'ready' });

  await readCommands(out, (cmd) => page.evaluate((c) => window.jamzCommand(c), cmd));
  await shutdown(0);
} catch (e) {
  out({ error: String(e && e.stack ? e.stack : e) });
  await shutdown(1);
}
