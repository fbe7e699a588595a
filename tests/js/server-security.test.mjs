// Attacks by a curious group member or an outsider on loopback, against a real
// jamz-server process: each test is one finding of the security review and
// failed before its fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import WebSocket from 'ws';
import { startServer, rest, connect, within, wav } from './helpers.mjs';

async function register(server, name) {
  const r = await rest(server.url, 'POST', '/api/auth/register', { json: { username: name, email: `${name}@e.test`, password: `pw-${name}` } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

/** Ann's group with Bob in it, and its session id. */
async function world(server) {
  const ann = await register(server, 'ann');
  const bob = await register(server, 'bob');
  const group = (await rest(server.url, 'POST', '/api/groups', { token: ann.token, json: { name: 'G' } })).body.group;
  await rest(server.url, 'POST', `/api/groups/${group.id}/members`, { token: ann.token, json: { username: 'bob' } });
  const session = (await rest(server.url, 'GET', `/api/audio/sessions/group/${group.id}`, { token: ann.token })).body.session;
  return { ann, bob, group, sessionId: session.id };
}

async function join(s, sessionId, who, name) {
  await s.next('connect');
  s.emit('join-audio-session', { sessionId, userId: who.user.id, display_name: name });
  await s.next('music-session-state');
}

/** Raw Engine.IO long-polling POST of one packet into session `sid`. */
async function pollPost(url, sid, packet) {
  const res = await fetch(`${url}/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`, {
    method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8' }, body: packet,
  });
  await res.arrayBuffer();
  return res.status;
}

test('a member who learns another socket id cannot take over its connection', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const { ann, bob, group, sessionId } = await world(server);
  // The victim stays on long-polling: its Engine.IO session is reachable by sid alone.
  const victim = connect(server.url, bob.token, { transports: ['polling'] });
  const attacker = connect(server.url, ann.token, { transports: ['websocket'] });
  t.after(() => { victim.close(); attacker.close(); });
  await join(attacker, sessionId, ann, 'Ann');
  await join(victim, sessionId, bob, 'Bob');
  const joined = await attacker.next('participant-joined');
  const publicId = joined.socketId;
  assert.equal(typeof publicId, 'string');
  assert.ok(publicId.length >= 16, `an unguessable id: ${publicId}`);
  assert.notEqual(publicId, victim.id, 'the id shown to others is not the socket.io id');
  assert.notEqual(publicId, victim.io.engine.id, 'the id shown to others is not the Engine.IO session id');
  // The same public id everywhere the protocol shows one.
  victim.emit('music-take-control', { sessionId });
  const changed = await attacker.next('music-controller-changed');
  assert.equal(changed.controllerId, publicId);
  const doc = (await rest(server.url, 'GET', `/api/audio/sessions/group/${group.id}`, { token: ann.token })).body.session;
  assert.ok(doc.participants.some((p) => p.user_id === bob.user.id && p.socket_id === publicId), JSON.stringify(doc.participants));
  assert.ok(!JSON.stringify(doc).includes(victim.io.engine.id), 'the session document never shows an Engine.IO id');

  // 1. Posting packets into the victim's polling session.
  const forged = `42${JSON.stringify(['location-update', { sessionId, latitude: 1, longitude: 2, timestamp: 1 }])}`;
  const postStatus = await pollPost(server.url, publicId, forged);
  assert.notEqual(postStatus, 200, 'a packet posted with the public id is refused');
  // 2. Upgrading the victim's session to a websocket of the attacker's.
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket&sid=${encodeURIComponent(publicId)}`);
  const upgrade = await within(new Promise((resolve) => {
    ws.on('open', () => ws.send('2probe'));
    ws.on('message', (m) => resolve(`message ${m}`));
    ws.on('error', () => resolve('refused'));
    ws.on('close', () => resolve('closed'));
  }), 'the upgrade attempt to end');
  ws.terminate();
  assert.ok(!upgrade.includes('3probe'), `the upgrade was answered: ${upgrade}`);
  // 3. Closing the victim's session.
  assert.notEqual(await pollPost(server.url, publicId, '1'), 200, 'a close posted with the public id is refused');

  // The victim is still connected and nothing was stored under its name.
  const reply = await victim.timeout(5000).emitWithAck('time-sync', { t0: Date.now() });
  assert.ok(reply.t1 > 0);
  assert.ok(victim.connected);
  const latest = await rest(server.url, 'GET', `/api/groups/${group.id}/locations/latest`, { token: ann.token });
  assert.deepEqual(latest.body.locations, [], 'no location stored under the victim');
  assert.ok(!attacker.seen.some((s) => s.event === 'location-update'), 'no forged location relayed');
  assert.ok(!server.panicked());
});

test('a stranger who adds the victim to their own group reads no position of the victim', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const { ann, bob, group, sessionId } = await world(server);
  const eve = await register(server, 'eve');
  // Bob shares his position with Ann's group, by socket and by REST.
  const b = connect(server.url, bob.token, { transports: ['websocket'] });
  t.after(() => b.close());
  await join(b, sessionId, bob, 'Bob');
  b.emit('location-update', { sessionId, latitude: 45.5, longitude: -122.6, timestamp: 1 });
  const friendsView = async () => (await rest(server.url, 'GET', `/api/groups/${group.id}/locations/latest`, { token: ann.token })).body.locations;
  for (let i = 0; i < 200 && (await friendsView()).length === 0; i++);
  assert.deepEqual((await friendsView()).map((l) => [l.user_id, l.latitude]), [[bob.user.id, 45.5]]);
  let r = await rest(server.url, 'POST', '/api/locations', { token: bob.token, json: { session_id: sessionId, latitude: 46, longitude: -122, timestamp: 2 } });
  assert.equal(r.status, 201);
  // A fix that names no session is his own history, shared with nobody.
  r = await rest(server.url, 'POST', '/api/locations', { token: bob.token, json: { latitude: 10, longitude: 10, timestamp: 3 } });
  assert.equal(r.status, 201);
  assert.deepEqual((await friendsView()).map((l) => [l.user_id, l.latitude]), [[bob.user.id, 46]]);

  // Eve adds Bob to her group (no consent needed) and asks where he is.
  const evesGroup = (await rest(server.url, 'POST', '/api/groups', { token: eve.token, json: { name: 'Totally friends' } })).body.group;
  r = await rest(server.url, 'POST', `/api/groups/${evesGroup.id}/members`, { token: eve.token, json: { username: 'bob' } });
  assert.equal(r.status, 200);
  r = await rest(server.url, 'GET', `/api/groups/${evesGroup.id}/locations/latest`, { token: eve.token });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.locations, [], 'no position of Bob in a group he never shared with');

  // Bob sees the group and leaves it; Eve's group no longer has him.
  const bobsGroups = (await rest(server.url, 'GET', '/api/groups', { token: bob.token })).body.groups.map((g) => g.id);
  assert.deepEqual(bobsGroups.sort(), [group.id, evesGroup.id].sort());
  r = await rest(server.url, 'DELETE', `/api/groups/${evesGroup.id}/members/me`, { token: bob.token });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  r = await rest(server.url, 'GET', '/api/groups', { token: eve.token });
  assert.deepEqual(r.body.groups.find((g) => g.id === evesGroup.id).members, [eve.user.id]);
  r = await rest(server.url, 'DELETE', `/api/groups/${evesGroup.id}/members/me`, { token: bob.token });
  assert.equal(r.status, 403, 'leaving twice: no longer a member');

  // Leaving Ann's group takes him out of its session and hides his positions there.
  r = await rest(server.url, 'DELETE', `/api/groups/${group.id}/members/me`, { token: bob.token });
  assert.equal(r.status, 200);
  assert.deepEqual(await friendsView(), []);
  b.emit('location-update', { sessionId, latitude: 1, longitude: 1, timestamp: 4 });
  assert.ok((await b.next('music-error')).error, 'a former member cannot share into the session');
  assert.ok(!server.panicked());
});

/** kB figures of /proc/PID/status (Linux). */
function memoryOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => Number(status.match(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm'))[1]);
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

test('128 concurrent wrong logins: memory stays bounded, the excess is told to retry', { skip: process.platform !== 'linux' }, async (t) => {
  const workers = 2;
  const server = await startServer({ extraArgs: ['--hash-workers', String(workers), '--hash-queue', '8', '--login-attempts-per-account', '100000', '--login-attempts-per-address', '100000'] });
  t.after(() => server.stop());
  await register(server, 'ann');
  // A first wrong login warms one hashing thread, so the baseline includes what
  // a single check keeps.
  assert.equal((await rest(server.url, 'POST', '/api/auth/login', { json: { username: 'ann', password: 'x' } })).status, 401);
  const before = memoryOf(server.child.pid);
  const answers = await Promise.all(Array.from({ length: 128 }, (_, i) => rest(server.url, 'POST', '/api/auth/login', { json: { username: i % 2 ? 'ann' : `nobody${i}`, password: `guess${i}` } })));
  const after = memoryOf(server.child.pid);
  const statuses = answers.map((a) => a.status);
  const busy = answers.filter((a) => a.status === 503);
  assert.ok(busy.length > 0, `some are told to retry: ${statuses}`);
  for (const a of busy) assert.ok(Number(a.headers.get('retry-after')) >= 1, 'a 503 carries Retry-After');
  assert.ok(statuses.every((s) => s === 401 || s === 503), `${statuses}`);
  // argon2's default m_cost is 19 MiB per check, at most `workers` at once; 64 MiB
  // more is room for 128 connections, their buffers and the allocator's slack.
  // Unbounded, the same load took gigabytes.
  const boundKb = (workers * 19 + 64) * 1024;
  assert.ok(after.hwm - before.rss < boundKb, `peak grew by ${after.hwm - before.rss} kB (bound ${boundKb} kB); before ${JSON.stringify(before)} after ${JSON.stringify(after)}`);
  // Still serving: a correct login after the burst.
  const ok = await rest(server.url, 'POST', '/api/auth/login', { json: { username: 'ann', password: 'pw-ann' } });
  assert.equal(ok.status, 200);
  assert.ok(!server.panicked());
});

test('password guessing is throttled per account and per address', async (t) => {
  const server = await startServer({ extraArgs: ['--login-attempts-per-account', '5', '--login-attempts-per-address', '12', '--login-window-secs', '600'] });
  t.after(() => server.stop());
  const { ann } = await world(server);
  const login = (username, password) => rest(server.url, 'POST', '/api/auth/login', { json: { username, password } });
  const statuses = [];
  for (let i = 0; i < 8; i++) statuses.push((await login('ann', `guess${i}`)).status);
  assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
  const r = await login('ann', 'pw-ann');
  assert.equal(r.status, 429, 'while throttled even the right password waits');
  assert.ok(Number(r.headers.get('retry-after')) >= 1, `Retry-After: ${r.headers.get('retry-after')}`);
  assert.ok(r.body.error);
  // An unknown name is throttled the same way (no hint that it does not exist).
  const unknown = [];
  for (let i = 0; i < 6; i++) unknown.push((await login('nobody', `guess${i}`)).status);
  assert.deepEqual(unknown, [401, 401, 401, 401, 401, 429]);
  // The address has spent 11 of its 12 (one member lookup in world(), 5 + 5
  // guesses; refused attempts take nothing): guessing across many names stops too.
  const spread = [];
  for (let i = 0; i < 4; i++) spread.push((await login(`name${i}`, 'x')).status);
  assert.deepEqual(spread, [401, 429, 429, 429]);
  // Username lookups through "add a member" count like logins.
  const group = (await rest(server.url, 'POST', '/api/groups', { token: ann.token, json: { name: 'Probe' } })).body.group;
  const probe = await rest(server.url, 'POST', `/api/groups/${group.id}/members`, { token: ann.token, json: { username: 'bob' } });
  assert.equal(probe.status, 429);
  assert.ok(Number(probe.headers.get('retry-after')) >= 1);
  assert.ok(!server.panicked());
});

test('silent connections are closed or refused while a fresh login still succeeds', async (t) => {
  // A small device: 256 descriptors. Before, a few hundred silent connections
  // took them all and nobody else was served.
  const server = await startServer({ fdLimit: 256, extraArgs: ['--header-read-timeout-secs', '2', '--max-connections-per-address', '64', '--max-connections', '200'] });
  t.after(() => server.stop());
  await register(server, 'ann');
  const { port } = new URL(server.url);
  // Another device on the same network: another loopback source address.
  const silent = [];
  for (let i = 0; i < 300; i++) {
    const sock = net.connect({ host: '127.0.0.1', port: Number(port), localAddress: '127.0.0.2' });
    sock.on('error', () => {});
    silent.push(new Promise((resolve) => sock.on('close', resolve)));
  }
  const login = await within(rest(server.url, 'POST', '/api/auth/login', { json: { username: 'ann', password: 'pw-ann' } }), 'a fresh login', 30_000);
  assert.equal(login.status, 200, 'a fresh login succeeds while they are open');
  // Every silent one ends: past the cap at once, the others at the header timeout.
  await within(Promise.all(silent), 'the silent connections to be closed', 30_000);
  const again = await rest(server.url, 'POST', '/api/auth/login', { json: { username: 'ann', password: 'pw-ann' } });
  assert.equal(again.status, 200);
  assert.ok(!server.panicked());
});

test('text fields have length limits, URLs are web URLs, identities come from the token', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const { ann, bob, group, sessionId } = await world(server);
  const route = `/api/audio/sessions/${sessionId}/music/playlist`;
  const add = (track, token = bob.token) => rest(server.url, 'POST', route, { token, json: { track } });
  const long = 'x'.repeat(301);
  for (const [what, track] of [
    ['title', { title: long, url: 'http://x/1.mp3' }],
    ['artist', { title: 'a', artist: long, url: 'http://x/2.mp3' }],
    ['url length', { title: 'b', url: `http://x/${'y'.repeat(3000)}` }],
    ['javascript: url', { title: 'c', url: 'javascript:alert(1)' }],
    ['data: url', { title: 'd', url: 'data:text/html,<script>alert(1)</script>' }],
    ['javascript: album art', { title: 'e', url: 'http://x/e.mp3', albumArt: 'javascript:alert(1)' }],
    ['id', { id: 'i'.repeat(200), title: 'f', url: 'http://x/f.mp3' }],
  ]) {
    const r = await add(track);
    assert.equal(r.status, 422, `${what}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
  }
  // uploaded_by is whoever added it, whatever the client claims.
  const r = await add({ title: 'Mine', url: 'https://x/m.mp3', uploaded_by: ann.user.id });
  assert.equal(r.status, 200);
  assert.equal(r.body.playlist.find((x) => x.title === 'Mine').uploaded_by, bob.user.id);
  // Group names and descriptions.
  assert.equal((await rest(server.url, 'POST', '/api/groups', { token: ann.token, json: { name: 'n'.repeat(101) } })).status, 422);
  assert.equal((await rest(server.url, 'POST', '/api/groups', { token: ann.token, json: { name: 'ok', description: 'd'.repeat(1001) } })).status, 422);
  // Display names and tracks over the socket.
  const b = connect(server.url, bob.token, { transports: ['websocket'] });
  t.after(() => b.close());
  await b.next('connect');
  b.emit('join-audio-session', { sessionId, display_name: 'B'.repeat(1024 * 1024) });
  assert.match((await b.next('music-error')).error, /display_name/);
  b.emit('join-audio-session', { sessionId, display_name: 'Bob' });
  await b.next('music-session-state');
  b.emit('playlist-update', { sessionId, playlist: [...r.body.playlist, { title: long, url: 'http://x/3.mp3' }] });
  assert.match((await b.next('music-error')).error, /title/);
  b.emit('music-take-control', { sessionId });
  await b.next('music-controller-changed');
  b.emit('music-control', { sessionId, action: 'play', position: 0, track: { title: 't', url: 'javascript:alert(1)' }, timestamp: Date.now() });
  assert.match((await b.next('music-error')).error, /url/);
  const doc = (await rest(server.url, 'GET', `/api/audio/sessions/group/${group.id}`, { token: ann.token })).body.session;
  assert.deepEqual(doc.music.playlist.map((x) => x.title), ['Mine']);
  assert.ok(!server.panicked());
});

test('uploads: 413 over the limit, audio only, a long file name cut, nosniff and the probed type on download', async (t) => {
  const server = await startServer({ extraArgs: ['--max-upload-mib', '1'] });
  t.after(() => server.stop());
  const { ann } = await world(server);
  const upload = (bytes, name, type = 'audio/wav', fields = {}) => {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    form.append('file', new Blob([bytes], { type }), name);
    return rest(server.url, 'POST', '/api/music/upload', { token: ann.token, body: form });
  };
  const samples = Buffer.alloc(32 * 1024);
  for (let i = 0; i < samples.length; i += 2) samples.writeInt16LE(Math.round(8000 * Math.sin(i / 20)), i);
  const good = wav(samples);
  // Over the limit: 413 (was 400).
  const big = await upload(Buffer.concat([good, Buffer.alloc(1536 * 1024)]), 'big.wav');
  assert.equal(big.status, 413, JSON.stringify(big.body));
  // Not audio, whatever its name and declared type: refused, nothing stored.
  const html = Buffer.from('<html><script>alert(document.cookie)</script></html>'.repeat(100));
  const fake = await upload(html, 'song.mp3', 'audio/mpeg');
  assert.equal(fake.status, 415, JSON.stringify(fake.body));
  assert.equal((await rest(server.url, 'GET', `/api/music/files/${createHash('sha256').update(html).digest('hex')}`, {})).status, 404);
  // A 100,000-character file name is cut to the title limit.
  const ok = await upload(good, `${'n'.repeat(100_000)}.wav`, 'application/octet-stream');
  assert.equal(ok.status, 201, JSON.stringify(ok.body).slice(0, 300));
  assert.equal(ok.body.track.title.length, 300);
  assert.equal((await upload(good, 'x.wav', 'audio/wav', { title: 't'.repeat(301) })).status, 422);
  // Served with the type the probe found (declared octet-stream) and nosniff.
  const dl = await rest(server.url, 'GET', new URL(ok.body.track.url).pathname, {});
  assert.equal(dl.status, 200);
  assert.equal(dl.headers.get('content-type'), 'audio/wav');
  assert.equal(dl.headers.get('x-content-type-options'), 'nosniff');
  const cached = await rest(server.url, 'GET', new URL(ok.body.track.url).pathname, { headers: { 'if-none-match': `"${ok.body.track.sha256}"` } });
  assert.equal(cached.status, 304);
  assert.equal(cached.headers.get('x-content-type-options'), 'nosniff');
  assert.ok(!server.panicked());
});

test('database, its WAL files, the secret and uploads are private to the server user', { skip: process.platform === 'win32' }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'jamz-modes-'));
  // A database from before, created world-readable.
  mkdirSync(path.join(dir, 'db'), { mode: 0o755 });
  writeFileSync(path.join(dir, 'db', 'jamz.db'), '', { mode: 0o644 });
  const server = await startServer({ dir, db: path.join(dir, 'db', 'jamz.db') });
  t.after(() => server.stop());
  const { ann } = await world(server);
  const form = new FormData();
  form.append('file', new Blob([wav(Buffer.alloc(4000))], { type: 'audio/wav' }), 'quiet.wav');
  const up = await rest(server.url, 'POST', '/api/music/upload', { token: ann.token, body: form });
  assert.equal(up.status, 201, JSON.stringify(up.body));
  const mode = (p) => (statSync(p).mode & 0o777).toString(8);
  for (const f of ['db/jamz.db', 'db/jamz.db-wal', 'db/jamz.db-shm', 'data/jwt-secret', `data/files/${up.body.track.sha256.slice(0, 2)}/${up.body.track.sha256}`]) {
    assert.equal(mode(path.join(dir, f)), '600', f);
  }
  for (const d of ['data', 'data/files', `data/files/${up.body.track.sha256.slice(0, 2)}`]) {
    assert.equal(mode(path.join(dir, d)), '700', d);
  }
  // A database directory the server creates is 0700 too.
  const fresh = mkdtempSync(path.join(tmpdir(), 'jamz-modes-'));
  const other = await startServer({ dir: fresh, db: path.join(fresh, 'new', 'deeper', 'jamz.db') });
  t.after(() => other.stop());
  for (const d of ['new', 'new/deeper']) assert.equal(mode(path.join(fresh, d)), '700', d);
  assert.equal(mode(path.join(fresh, 'new', 'deeper', 'jamz.db')), '600');
});

test('logout and a password change revoke earlier tokens', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const { ann, bob } = await world(server);
  const login = async (username, password) => (await rest(server.url, 'POST', '/api/auth/login', { json: { username, password } })).body.token;
  const phone = await login('ann', 'pw-ann');
  const laptop = ann.token;
  const s = connect(server.url, phone, { transports: ['websocket'] });
  t.after(() => s.close());
  await s.next('connect');
  const gone = new Promise((resolve) => s.on('disconnect', resolve));
  // Logout: every token issued so far stops working, on REST and on sockets.
  let r = await rest(server.url, 'POST', '/api/auth/logout', { token: laptop });
  assert.equal(r.status, 200);
  await within(gone, 'the logged-out socket to be closed');
  for (const token of [phone, laptop]) {
    assert.equal((await rest(server.url, 'GET', '/api/groups', { token })).status, 401);
    const x = connect(server.url, token, { transports: ['websocket'] });
    assert.equal((await x.next('connect_error')).message, 'Authentication failed');
    x.close();
  }
  const fresh = await login('ann', 'pw-ann');
  assert.equal((await rest(server.url, 'GET', '/api/groups', { token: fresh })).status, 200);
  // A password change: the old password and the old tokens stop, the answer carries a new token.
  r = await rest(server.url, 'POST', '/api/auth/password', { token: bob.token, json: { current_password: 'nope', new_password: 'new-bob' } });
  assert.equal(r.status, 403);
  r = await rest(server.url, 'POST', '/api/auth/password', { token: bob.token, json: { current_password: 'pw-bob', new_password: 'new-bob' } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal((await rest(server.url, 'GET', '/api/groups', { token: bob.token })).status, 401);
  assert.equal((await rest(server.url, 'GET', '/api/groups', { token: r.body.token })).status, 200);
  assert.equal((await rest(server.url, 'POST', '/api/auth/login', { json: { username: 'bob', password: 'pw-bob' } })).status, 401);
  assert.ok(await login('bob', 'new-bob'));
});
