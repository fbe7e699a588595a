// A DJ the way the web app is one: the official socket.io-client with its default
// transports (long-polling, then upgrade), the event shapes of docs/protocol.md, and
// "play now" timestamps from its own clock (Date.now()), as the seeds' web client
// sends them. Driven by tests/tests/node_web_dj.rs, which checks that a native node
// follows it. Prints one JSON line per timeline anchor it sets:
//   {"action":"play"|"seek","position":P,"timestamp":T,"track":"<id>"}
// and {"done":true} at the end. Env: JAMZ_URL, JAMZ_TOKEN, JAMZ_SESSION, JAMZ_USER_ID.
import { connect } from './helpers.mjs';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const [url, token, sessionId, userId] = ['JAMZ_URL', 'JAMZ_TOKEN', 'JAMZ_SESSION', 'JAMZ_USER_ID'].map(env);
const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

const s = connect(url, token);
await s.next('connect');
s.emit('join-audio-session', { sessionId, userId: Number(userId), display_name: 'Web DJ' });
const state = await s.next('music-session-state');
const track = state.playlist[0];
if (!track) throw new Error('the session has no track to play');
s.emit('music-take-control', { sessionId, userId: Number(userId) });
await s.next('music-controller-changed', (c) => c.userId === Number(userId));

// The web app's position-sync: where its player is, every so often.
let anchor = null;
const positionNow = () => anchor.position + (Date.now() - anchor.timestamp) / 1000;
const control = (action, position) => {
  anchor = { position, timestamp: Date.now() };
  s.emit('music-control', { sessionId, action, position, track, timestamp: anchor.timestamp });
  say({ action, position, timestamp: anchor.timestamp, track: track.id });
};
const sync = setInterval(() => {
  if (anchor) s.emit('music-position-sync', { sessionId, position: positionNow(), timestamp: Date.now() });
}, 1000);

// Each phase ends when the web DJ's own timeline reaches a position, measured on its
// clock: no fixed sleeps, and the native node has seconds of audio to be measured.
const until = (position) => new Promise((resolve) => {
  const t = setInterval(() => { if (positionNow() >= position) { clearInterval(t); resolve(); } }, 20);
});
control('play', 0);
await until(4.0);
control('seek', 6.0);
await until(10.0);
clearInterval(sync);
say({ done: true });
s.close();
process.exit(0);
