// Bad input and crashes: every malformed request gets a clear error, the
// server keeps serving everyone else, and what was persisted survives kill -9.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, rest, connect, within } from './helpers.mjs';

async function world(server) {
  const reg = async (name) => (await rest(server.url, 'POST', '/api/auth/register', { json: { username: name, email: `${name}@e.test`, password: 'pw' } })).body;
  const ann = await reg('ann');
  const bob = await reg('bob');
  const group = (await rest(server.url, 'POST', '/api/groups', { token: ann.token, json: { name: 'G' } })).body.group;
  await rest(server.url, 'POST', `/api/groups/${group.id}/members`, { token: ann.token, json: { username: 'bob' } });
  const session = (await rest(server.url, 'GET', `/api/audio/sessions/group/${group.id}`, { token: ann.token })).body.session;
  return { ann, bob, group, sessionId: session.id };
}

async function joined(server, who, sessionId, name) {
  const s = connect(server.url, who.token, { transports: ['websocket'] });
  await s.next('connect');
  s.emit('join-audio-session', { sessionId, userId: who.user.id, display_name: name });
  await s.next('music-session-state');
  return s;
}

test('malformed REST requests get clear errors', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const { ann, group, sessionId } = await world(server);
  const post = (route, body, headers = { 'content-type': 'application/json' }) => rest(server.url, 'POST', route, { token: ann.token, body, headers });

  let r = await post('/api/groups', '{"name": "x"');
  assert.equal(r.status, 400);
  assert.match(r.body.error, /malformed JSON/);
  r = await post('/api/groups', '{"name": 42}');
  assert.equal(r.status, 422);
  assert.match(r.body.error, /`name`/);
  r = await post(`/api/audio/sessions/${sessionId}/music/playlist`, JSON.stringify({ track: { title: 'x', duration: 'long' } }));
  assert.equal(r.status, 422);
  assert.match(r.body.error, /track\.duration/);
  r = await post('/api/groups', 'name=x', { 'content-type': 'application/x-www-form-urlencoded' });
  assert.equal(r.status, 415);
  assert.ok(r.body.error);
  r = await post('/api/groups', JSON.stringify({ name: 'x'.repeat(9 * 1024 * 1024) }));
  assert.equal(r.status, 413);
  assert.ok(r.body.error);

  for (const [method, route] of [
    ['GET', '/api/audio/sessions/group/000000000000000000000000'],
    ['POST', '/api/groups/000000000000000000000000/members'],
    ['DELETE', `/api/audio/sessions/${sessionId}/music/playlist/nope`],
    ['DELETE', '/api/audio/sessions/not-a-session/music/playlist/nope'],
    ['GET', '/api/music/files/' + 'a'.repeat(64)],
    ['GET', '/api/music/files/..%2F..%2Fetc%2Fpasswd'],
    ['GET', '/api/nothing/here'],
  ]) {
    const res = await rest(server.url, method, route, { token: ann.token, json: method === 'POST' ? { username: 'bob' } : undefined });
    assert.ok([403, 404].includes(res.status), `${method} ${route}: ${res.status}`);
    assert.ok(res.body.error, `${method} ${route} has an error body`);
  }
  r = await rest(server.url, 'GET', '/api/groups', {});
  assert.equal(r.status, 401);
  r = await rest(server.url, 'GET', '/api/groups', { token: 'not.a.jwt' });
  assert.equal(r.status, 401);
  r = await rest(server.url, 'POST', '/api/auth/register', { json: { username: 'ann', email: 'other@e.test', password: 'pw' } });
  assert.equal(r.status, 409);
  r = await rest(server.url, 'GET', `/api/groups/${group.id}/locations/latest`, { token: ann.token });
  assert.equal(r.status, 200, 'still serving');
  assert.ok(!server.panicked(), 'the server never panicked');
});

test('malformed socket events and garbage frames leave everyone else served', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const { ann, bob, sessionId } = await world(server);
  const a = await joined(server, ann, sessionId, 'Ann');
  const b = await joined(server, bob, sessionId, 'Bob');
  t.after(() => { a.close(); b.close(); });
  a.emit('music-take-control', { sessionId });
  await b.next('music-controller-changed');

  a.emit('music-control', { sessionId, action: 'dance', position: 1, timestamp: 1 });
  assert.match((await a.next('music-error')).error, /action/);
  a.emit('music-control', { sessionId, action: 'play', position: -3, timestamp: 1 });
  assert.match((await a.next('music-error')).error, /position/);
  a.emit('music-control', { sessionId, action: 'play', position: 'x', timestamp: 1 });
  assert.match((await a.next('music-error')).error, /position/);
  a.emit('music-control', 'just a string');
  assert.ok((await a.next('music-error')).error);
  a.emit('music-control', { sessionId: 'another-session', action: 'play', position: 1, timestamp: 1 });
  assert.match((await a.next('music-error')).error, /not joined/);
  a.emit('some-future-event', { anything: true }); // ignored, never an error

  // Raw Engine.IO connections sending garbage: each frame gets its own definite answer.
  // Frames that are no Engine.IO/Socket.IO packet close the connection; a CONNECT whose
  // JSON is cut short is refused (CONNECT_ERROR) and the connection stays usable: a
  // good CONNECT on it then succeeds. Silence, or an answer only to a later frame, fails.
  const closes = ['garbage', '4', '42[', '42["music-control",', '9{}', '', '42' + '['.repeat(10000), Buffer.from([0xff, 0x00, 0x13, 0x37])];
  const url = server.url.replace('http', 'ws') + '/socket.io/?EIO=4&transport=websocket';
  const rawSocket = async () => {
    const ws = new WebSocket(url);
    const frames = [];
    let wake = () => {};
    ws.on('message', (m) => { frames.push(String(m)); wake(); });
    const closed = new Promise((resolve) => ws.on('close', resolve));
    await within(new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); }), 'websocket open');
    // The next frame (pings skipped) that `pred` accepts.
    const next = (pred, what) => within(new Promise((resolve) => {
      const look = () => {
        const i = frames.findIndex((f) => f !== '2' && pred(f));
        if (i >= 0) { const [f] = frames.splice(i, 1); resolve(f); } else wake = look;
      };
      look();
    }), what);
    await next((f) => f.startsWith('0{'), 'the Engine.IO open packet');
    return { ws, closed, next };
  };
  for (const frame of closes) {
    const { ws, closed } = await rawSocket();
    ws.send(frame);
    await within(closed, `the server closing the connection after ${JSON.stringify(String(frame).slice(0, 20))}`);
  }
  {
    const { ws, next } = await rawSocket();
    ws.send('40{"token":');
    assert.match(await next((f) => f.startsWith('4'), 'an answer to a cut-short CONNECT'), /^44/);
    ws.send(`40{"token":"${ann.token}"}`);
    assert.match(await next((f) => f.startsWith('4'), 'an answer to a good CONNECT'), /^40\{"sid"/);
    ws.terminate();
  }
  // An event over the size limit closes only the offender's connection.
  const big = connect(server.url, ann.token, { transports: ['websocket'] });
  await big.next('connect');
  const gone = new Promise((resolve) => big.on('disconnect', resolve));
  big.emit('playlist-update', { sessionId, playlist: [{ title: 'x'.repeat(9 * 1024 * 1024) }] });
  await within(gone, 'the oversized event closing its connection');
  big.close();

  // Everyone else is still served.
  a.emit('music-control', { sessionId, action: 'play', position: 3, timestamp: Date.now() });
  assert.equal((await b.next('music-play')).position, 3);
  assert.equal((await rest(server.url, 'GET', '/health', {})).status, 200);
  assert.ok(!server.panicked(), 'the server never panicked');
});

test('users, groups, sessions, playlists, history, controller and locations survive kill -9', async (t) => {
  let server = await startServer();
  const dir = server.dir;
  t.after(() => server.stop());
  const { ann, bob, group, sessionId } = await world(server);
  const a = await joined(server, ann, sessionId, 'Ann');
  a.emit('music-take-control', { sessionId });
  await a.next('music-controller-changed');
  const track = { title: 'Kept', artist: 'K', url: 'http://x/kept.mp3' };
  await rest(server.url, 'POST', `/api/audio/sessions/${sessionId}/music/playlist`, { token: bob.token, json: { track } });
  a.emit('location-update', { sessionId, latitude: 10, longitude: 20, timestamp: 1234 });
  // The location is persisted before it is relayed; wait for it through REST.
  for (let i = 0; i < 100; i++) {
    const l = await rest(server.url, 'GET', `/api/groups/${group.id}/locations/latest`, { token: bob.token });
    if (l.body.locations.length) break;
  }
  const bind = new URL(server.url).host;
  const exit = await server.kill9();
  assert.equal(exit.signal, 'SIGKILL');
  a.close();

  server = await startServer({ dir, bind });
  const login = await rest(server.url, 'POST', '/api/auth/login', { json: { username: 'bob', password: 'pw' } });
  assert.equal(login.status, 200);
  const groups = await rest(server.url, 'GET', '/api/groups', { token: bob.token });
  assert.equal(groups.status, 200, 'tokens issued before the crash are still valid');
  assert.deepEqual(groups.body.groups.map((g) => g.id), [group.id]);
  const session = (await rest(server.url, 'GET', `/api/audio/sessions/group/${group.id}`, { token: bob.token })).body.session;
  assert.equal(session.id, sessionId);
  assert.deepEqual(session.music.playlist.map((x) => x.title), ['Kept']);
  assert.equal(session.music.controller_id, ann.user.id);
  assert.equal(session.participants.length, 1);
  assert.equal(session.participants[0].user_id, ann.user.id);
  assert.ok(session.participants[0].left_at, 'the crashed participation is closed on restart');
  const latest = await rest(server.url, 'GET', `/api/groups/${group.id}/locations/latest`, { token: bob.token });
  assert.deepEqual(latest.body.locations.map((l) => [l.user_id, l.latitude, l.longitude, l.timestamp]), [[ann.user.id, 10, 20, 1234]]);
});
