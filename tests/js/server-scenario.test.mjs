// The whole docs/protocol.md scenario against a real jamz-server process, driven by
// the official socket.io-client: proof that the server speaks real Socket.IO
// to the web app's own client library.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startServer, rest, connect, wav } from './helpers.mjs';

let server;
before(async () => { server = await startServer(); });
after(() => server?.stop());

async function register(name) {
  const r = await rest(server.url, 'POST', '/api/auth/register', { json: { username: name, email: `${name}@example.test`, password: `pw-${name}` } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.user.username, name);
  return r.body;
}

test('the docs/protocol.md scenario with socket.io-client', async (t) => {
  const ann = await register('ann');
  const bob = await register('bob');
  const carl = await register('carl'); // never a member
  const dan = await register('dan');

  await t.test('log in', async () => {
    const ok = await rest(server.url, 'POST', '/api/auth/login', { json: { username: 'ann', password: 'pw-ann' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.user.id, ann.user.id);
    const bad = await rest(server.url, 'POST', '/api/auth/login', { json: { username: 'ann', password: 'wrong' } });
    assert.equal(bad.status, 401);
    assert.ok(bad.body.error);
  });

  const created = await rest(server.url, 'POST', '/api/groups', { token: ann.token, json: { name: 'Road trip', description: 'Coast to coast' } });
  assert.equal(created.status, 201);
  const group = created.body.group;
  assert.match(group.id, /^[0-9a-f]{24}$/);

  await t.test('add members (creator only)', async () => {
    const r = await rest(server.url, 'POST', `/api/groups/${group.id}/members`, { token: ann.token, json: { username: 'bob' } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.group.members.sort(), [ann.user.id, bob.user.id].sort());
    const byBob = await rest(server.url, 'POST', `/api/groups/${group.id}/members`, { token: bob.token, json: { username: 'carl' } });
    assert.equal(byBob.status, 403);
    await rest(server.url, 'POST', `/api/groups/${group.id}/members`, { token: ann.token, json: { username: 'dan' } });
    const list = await rest(server.url, 'GET', '/api/groups', { token: bob.token });
    assert.deepEqual(list.body.groups.map((g) => g.id), [group.id]);
  });

  const s1 = await rest(server.url, 'GET', `/api/audio/sessions/group/${group.id}`, { token: ann.token });
  assert.equal(s1.status, 200);
  const sessionId = s1.body.session.id;
  await t.test('one session per group; members only', async () => {
    const s2 = await rest(server.url, 'GET', `/api/audio/sessions/group/${group.id}`, { token: bob.token });
    assert.equal(s2.body.session.id, sessionId);
    const s3 = await rest(server.url, 'GET', `/api/audio/sessions/group/${group.id}`, { token: carl.token });
    assert.equal(s3.status, 403);
  });

  // Ann on the default transports (polling, then upgrade), Bob and Dan on websocket only.
  const a = connect(server.url, ann.token);
  const b = connect(server.url, bob.token, { transports: ['websocket'] });
  const d = connect(server.url, dan.token, { transports: ['websocket'] });
  t.after(() => { a.close(); b.close(); d.close(); });
  await Promise.all([a.next('connect'), b.next('connect'), d.next('connect')]);

  // Others know a socket by its public id, never by its socket.io / Engine.IO id
  // (that one lets whoever knows it act on the connection); a socket sees its own
  // entries under the id it already has.
  let annPublic;
  await t.test('two members join: state, participants, participant-joined', async () => {
    a.emit('join-audio-session', { sessionId, userId: ann.user.id, display_name: 'Ann' });
    const state = await a.next('music-session-state');
    assert.deepEqual(state.playlist, []);
    assert.equal(state.is_playing, false);
    assert.equal(typeof state.server_time, 'number');
    assert.equal(state.restBroadcasts, true, 'jamz-server tells the room of REST changes itself');
    const partsA = await a.next('current-participants');
    assert.deepEqual(partsA.participants.map((p) => p.userId), [ann.user.id]);

    b.emit('join-audio-session', { sessionId, userId: bob.user.id, display_name: 'Bob' });
    await b.next('music-session-state');
    const partsB = await b.next('current-participants');
    assert.deepEqual(partsB.participants.map((p) => p.userId).sort(), [ann.user.id, bob.user.id].sort());
    assert.equal(partsB.participants.find((p) => p.userId === bob.user.id).socketId, b.id, 'bob sees himself by his own id');
    annPublic = partsB.participants.find((p) => p.userId === ann.user.id).socketId;
    assert.ok(annPublic && annPublic !== a.id && annPublic !== a.io.engine.id, `ann's public id ${annPublic}`);
    const joined = await a.next('participant-joined');
    assert.equal(joined.userId, bob.user.id);
    assert.ok(joined.socketId && joined.socketId !== b.id && joined.socketId !== b.io.engine.id, `bob's public id ${joined.socketId}`);
    assert.equal(joined.display_name, 'Bob');

    d.emit('join-audio-session', { sessionId, userId: dan.user.id, display_name: 'Dan' });
    await d.next('music-session-state');
  });

  await t.test('take control: the whole room hears', async () => {
    a.emit('music-take-control', { sessionId, userId: ann.user.id });
    for (const [s, id] of [[a, a.id], [b, annPublic]]) {
      const changed = await s.next('music-controller-changed');
      assert.equal(changed.userId, ann.user.id);
      assert.equal(changed.controllerId, id);
    }
  });

  const track = { title: 'Highway Song', artist: 'The Band', url: 'http://cdn.example/highway.mp3', duration: 200 };
  await t.test('play, pause, seek, track-change are relayed', async () => {
    const now = Date.now();
    a.emit('music-control', { sessionId, action: 'play', position: 1.5, track, timestamp: now });
    const play = await b.next('music-play');
    assert.equal(play.position, 1.5);
    assert.equal(play.track.title, 'Highway Song');
    assert.equal(play.timestamp, now);
    assert.equal(play.userId, ann.user.id);
    assert.equal(play.controllerId, annPublic);
    a.emit('music-control', { sessionId, action: 'pause', position: 3, timestamp: now + 1 });
    assert.equal((await b.next('music-pause')).position, 3);
    a.emit('music-control', { sessionId, action: 'seek', position: 42.5, timestamp: now + 2 });
    assert.equal((await b.next('music-seek')).position, 42.5);
    a.emit('music-control', { sessionId, action: 'track-change', position: 0, track: { ...track, title: 'Next' }, timestamp: now + 3 });
    assert.equal((await b.next('music-track-change')).track.title, 'Next');
    a.emit('music-position-sync', { sessionId, position: 5, timestamp: now + 4 });
    const sync = await b.next('music-position-sync');
    assert.equal(sync.position, 5);
    assert.equal(sync.userId, ann.user.id);
    assert.ok(!a.seen.some((s) => s.event === 'music-play'), 'the DJ does not get its own relay');
  });

  await t.test('control from a non-DJ is refused with music-error', async () => {
    b.emit('music-control', { sessionId, action: 'play', position: 0, timestamp: Date.now() });
    const err = await b.next('music-error');
    assert.match(err.error, /DJ/);
  });

  let playlist;
  await t.test('playlist append with de-duplication', async () => {
    const route = `/api/audio/sessions/${sessionId}/music/playlist`;
    let r = await rest(server.url, 'POST', route, { token: ann.token, json: { track } });
    assert.equal(r.status, 200);
    assert.equal(r.body.success, true);
    assert.equal(r.body.playlist.length, 1);
    const update = await b.next('playlist-update');
    assert.equal(update.playlist.length, 1);
    r = await rest(server.url, 'POST', route, { token: bob.token, json: { track: { title: 'Other', fileUrl: track.url } } });
    assert.equal(r.body.playlist.length, 1, 'same url is a duplicate (legacy fileUrl spelling read)');
    r = await rest(server.url, 'POST', route, { token: bob.token, json: { track: { title: ' highway song ', artist: 'THE BAND', url: 'http://elsewhere/x.mp3' } } });
    assert.equal(r.body.playlist.length, 1, 'same title+artist is a duplicate');
    r = await rest(server.url, 'POST', route, { token: bob.token, json: { track: { title: 'Second', artist: 'B', url: 'http://cdn.example/2.mp3' } } });
    assert.equal(r.body.playlist.length, 2);
    r = await rest(server.url, 'POST', route, { token: carl.token, json: { track: { title: 'Intruder', url: 'http://x/i.mp3' } } });
    assert.equal(r.status, 403);
    r = await rest(server.url, 'POST', route, { token: bob.token, json: { track: { url: 'http://x/no-title.mp3' } } });
    assert.equal(r.status, 422);
    playlist = r.body.playlist ?? (await rest(server.url, 'GET', `/api/audio/sessions/group/${group.id}`, { token: ann.token })).body.session.music.playlist;
    assert.equal(playlist.length, 2);
  });

  await t.test('DJ-only delete and reorder (403 otherwise)', async () => {
    const [first, second] = playlist;
    const route = `/api/audio/sessions/${sessionId}/music/playlist`;
    assert.equal((await rest(server.url, 'DELETE', `${route}/${first.id}`, { token: bob.token })).status, 403);
    assert.equal((await rest(server.url, 'PUT', route, { token: bob.token, json: { order: [second.id, first.id] } })).status, 403);
    const re = await rest(server.url, 'PUT', route, { token: ann.token, json: { order: [second.id, first.id] } });
    assert.equal(re.status, 200);
    assert.deepEqual(re.body.playlist.map((x) => x.id), [second.id, first.id]);
    const bad = await rest(server.url, 'PUT', route, { token: ann.token, json: { order: [second.id] } });
    assert.equal(bad.status, 422);
    const del = await rest(server.url, 'DELETE', `${route}/${first.id}`, { token: ann.token });
    assert.deepEqual(del.body.playlist.map((x) => x.id), [second.id]);
    const missing = await rest(server.url, 'DELETE', `${route}/${first.id}`, { token: ann.token });
    assert.equal(missing.status, 404);
  });

  await t.test('webrtc-signal reaches only the addressed user', async () => {
    const offer = { sessionId, from: ann.user.id, to: bob.user.id, type: 'offer', data: { sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n' } };
    a.emit('webrtc-signal', offer);
    const got = await b.next('webrtc-signal');
    assert.deepEqual(got, offer);
    const toDan = { sessionId, from: ann.user.id, to: dan.user.id, type: 'ice-candidate', data: { candidate: { candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host', sdpMid: '0', sdpMLineIndex: 0 } } };
    a.emit('webrtc-signal', toDan);
    assert.deepEqual(await d.next('webrtc-signal'), toDan);
    assert.equal(d.seen.filter((s) => s.event === 'webrtc-signal').length, 0, 'dan never saw the offer meant for bob');
    b.emit('webrtc-signal', { ...offer, from: ann.user.id, to: dan.user.id });
    assert.match((await b.next('music-error')).error, /from/, 'a spoofed sender is refused');
  });

  await t.test('location relayed and stored', async () => {
    b.emit('location-update', { sessionId, latitude: 45.5, longitude: -122.6, accuracy: 5, speed: 27, heading: 90, timestamp: Date.now() });
    const loc = await a.next('location-update');
    assert.equal(loc.userId, bob.user.id);
    assert.equal(loc.latitude, 45.5);
    const post = await rest(server.url, 'POST', '/api/locations', { token: ann.token, json: { session_id: sessionId, latitude: 45.6, longitude: -122.7, timestamp: Date.now() } });
    assert.equal(post.status, 201);
    const latest = await rest(server.url, 'GET', `/api/groups/${group.id}/locations/latest`, { token: dan.token });
    const byUser = Object.fromEntries(latest.body.locations.map((l) => [l.user_id, l]));
    assert.equal(byUser[bob.user.id].longitude, -122.6);
    assert.equal(byUser[ann.user.id].latitude, 45.6);
    const bad = await rest(server.url, 'POST', '/api/locations', { token: ann.token, json: { latitude: 91, longitude: 0, timestamp: 1 } });
    assert.equal(bad.status, 422);
    b.emit('location-update', { sessionId, latitude: 0, longitude: 200, timestamp: 1 });
    assert.match((await b.next('music-error')).error, /longitude/);
  });

  await t.test('convoy-update (ext) is relayed with the sender and checked', async () => {
    b.emit('convoy-update', { sessionId, kind: 'regroup-set', latitude: 45.7, longitude: -122.5 });
    const set = await a.next('convoy-update', (x) => x.kind === 'regroup-set');
    assert.equal(set.userId, bob.user.id);
    assert.equal(set.latitude, 45.7);
    b.emit('convoy-update', { sessionId, kind: 'location-off' });
    const off = await a.next('convoy-update', (x) => x.kind === 'location-off');
    assert.equal(off.userId, bob.user.id);
    // A car that turned sharing off is no longer on the group's map...
    const latest = async () => {
      const r = await rest(server.url, 'GET', `/api/groups/${group.id}/locations/latest`, { token: dan.token });
      assert.equal(r.status, 200);
      return r.body.locations.map((l) => l.user_id);
    };
    assert.ok(!(await latest()).includes(bob.user.id), 'hidden after location-off');
    assert.ok((await latest()).includes(ann.user.id), 'the others stay');
    // ...not even when its history kept offline arrives later...
    const history = await rest(server.url, 'POST', '/api/locations', { token: bob.token, json: { session_id: sessionId, latitude: 45.4, longitude: -122.6, timestamp: Date.now() - 60_000 } });
    assert.equal(history.status, 201);
    assert.ok(!(await latest()).includes(bob.user.id), 'history does not show it again');
    // ...until it shares live again.
    b.emit('location-update', { sessionId, latitude: 45.8, longitude: -122.4, timestamp: Date.now() });
    await a.next('location-update', (x) => x.latitude === 45.8);
    assert.ok((await latest()).includes(bob.user.id), 'back when sharing again');
    b.emit('convoy-update', { sessionId, kind: 'regroup-set', latitude: 95, longitude: 0 });
    assert.match((await b.next('music-error')).error, /latitude/);
    b.emit('convoy-update', { sessionId, kind: 'regroup-set' });
    assert.match((await b.next('music-error')).error, /needs latitude/);
    b.emit('convoy-update', { sessionId, kind: 'honk' });
    assert.match((await b.next('music-error')).error, /unknown/);
  });

  await t.test('calibration-update (ext) reaches the target member only, with the sender', async () => {
    const request = { sessionId, kind: 'probe-request', target: ann.user.id, runId: 'run-1', at: [1500, 2500, 3500] };
    b.emit('calibration-update', request);
    const got = await a.next('calibration-update', (x) => x.runId === 'run-1');
    assert.equal(got.userId, bob.user.id);
    assert.equal(got.target, ann.user.id);
    assert.deepEqual(got.at, [1500, 2500, 3500]);
    // Dan is in the session too, but not its target: a convoy signal sent after it reaches
    // dan, the calibration message never did.
    b.emit('convoy-update', { sessionId, kind: 'regroup-clear' });
    await d.next('convoy-update', (x) => x.kind === 'regroup-clear' && x.userId === bob.user.id);
    assert.ok(!d.seen.some((s) => s.event === 'calibration-update'), 'not for dan');
    assert.ok(!b.seen.some((s) => s.event === 'calibration-update'), 'not back to its sender');
    b.emit('calibration-update', { ...request, target: carl.user.id });
    assert.match((await b.next('music-error')).error, /not in this session/);
    b.emit('calibration-update', { ...request, target: 'ann' });
    assert.match((await b.next('music-error')).error, /calibration-update/);
    b.emit('calibration-update', { sessionId, kind: 'probe-request', runId: 'run-2' });
    assert.match((await b.next('music-error')).error, /target/);
    b.emit('calibration-update', { ...request, at: Array(21).fill(1) });
    assert.match((await b.next('music-error')).error, /at most 20/);
    b.emit('calibration-update', { ...request, kind: 'probe-answer', ok: false, message: 'x'.repeat(501) });
    assert.match((await b.next('music-error')).error, /message/);
    b.emit('calibration-update', { ...request, kind: 'honk' });
    assert.match((await b.next('music-error')).error, /unknown/);
    b.emit('calibration-update', { ...request, sessionId: 'elsewhere' });
    assert.match((await b.next('music-error')).error, /not joined/);
    assert.ok(!a.seen.some((s) => s.event === 'calibration-update'), 'nothing refused was relayed');
  });

  await t.test('time-sync is acked with server times', async () => {
    const t0 = Date.now();
    const reply = await a.timeout(5000).emitWithAck('time-sync', { t0 });
    assert.equal(reply.t0, t0);
    assert.ok(reply.t1 <= reply.t2, JSON.stringify(reply));
    assert.ok(Math.abs(reply.t1 - t0) < 60_000, 'same machine: clocks agree');
  });

  await t.test('a non-member joining is refused and hears nothing', async () => {
    const c = connect(server.url, carl.token, { transports: ['websocket'] });
    try {
      await c.next('connect');
      c.emit('join-audio-session', { sessionId, userId: carl.user.id });
      assert.match((await c.next('music-error')).error, /member/);
      a.emit('music-control', { sessionId, action: 'seek', position: 7, timestamp: Date.now() });
      await b.next('music-seek', (x) => x.position === 7);
      assert.ok(!c.seen.some((s) => s.event === 'music-seek'));
    } finally { c.close(); }
  });

  await t.test('late joiner gets the playing state', async () => {
    a.emit('music-control', { sessionId, action: 'play', position: 10, track, timestamp: Date.now() });
    await b.next('music-play', (x) => x.position === 10);
    b.emit('leave-audio-session', { sessionId });
    const left = await a.next('participant-left');
    assert.equal(left.userId, bob.user.id);
    b.emit('join-audio-session', { sessionId, userId: bob.user.id, display_name: 'Bob' });
    const state = await b.next('music-session-state', (s) => s.is_playing);
    assert.equal(state.controller_id, ann.user.id);
    assert.equal(state.controller_socket_id, annPublic);
    assert.equal(state.currently_playing.track.title, 'Highway Song');
    assert.ok(state.currently_playing.position >= 10);
  });

  await t.test('a bad token is refused with Authentication failed', async () => {
    for (const token of ['garbage', ann.token.slice(0, -4) + 'AAAA', undefined]) {
      const x = connect(server.url, token, { transports: ['websocket'] });
      try {
        const err = await x.next('connect_error');
        assert.equal(err.message, 'Authentication failed');
      } finally { x.close(); }
    }
  });

  await t.test('upload, then a ranged download with ETag', async () => {
    // Real audio (the server probes uploads): a WAV of random samples.
    const bytes = wav(randomBytes(64 * 1024 - 44));
    const sha = createHash('sha256').update(bytes).digest('hex');
    const form = new FormData();
    form.append('title', 'Uploaded');
    form.append('artist', 'Me');
    form.append('duration', '12.5');
    form.append('file', new Blob([bytes], { type: 'audio/wav' }), 'song.wav');
    const up = await rest(server.url, 'POST', '/api/music/upload', { token: ann.token, body: form });
    assert.equal(up.status, 201, JSON.stringify(up.body));
    assert.equal(up.body.track.sha256, sha);
    assert.equal(up.body.track.size, bytes.length);
    assert.equal(up.body.track.duration, 12.5);
    assert.ok(up.body.track.url.startsWith(server.url), up.body.track.url);
    const route = new URL(up.body.track.url).pathname;
    const part = await rest(server.url, 'GET', route, { headers: { range: 'bytes=100-199' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 100-199/${bytes.length}`);
    assert.equal(part.headers.get('etag'), `"${sha}"`);
    assert.deepEqual(part.body, bytes.subarray(100, 200));
    const whole = await rest(server.url, 'GET', route, {});
    assert.equal(whole.status, 200);
    assert.equal(createHash('sha256').update(whole.body).digest('hex'), sha);
    const cached = await rest(server.url, 'GET', route, { headers: { 'if-none-match': `"${sha}"` } });
    assert.equal(cached.status, 304);
    const beyond = await rest(server.url, 'GET', route, { headers: { range: `bytes=${bytes.length}-` } });
    assert.equal(beyond.status, 416);
    const small = new FormData();
    small.append('file', new Blob([bytes.subarray(0, 10)], { type: 'audio/mpeg' }), 'x.mp3');
    const noAuth = await rest(server.url, 'POST', '/api/music/upload', { body: small });
    assert.equal(noAuth.status, 401);
  });
});
