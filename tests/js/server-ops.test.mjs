// What an operator sees of a real jamz-server process: /healthz, /readyz and the
// Prometheus figures at /metrics follow the sockets and events it handles.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, rest, connect, within } from './helpers.mjs';

let server;
before(async () => { server = await startServer(); });
after(() => server?.stop());

async function metrics() {
  const r = await fetch(`${server.url}/metrics`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const values = {};
  for (const line of (await r.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    values[line.slice(0, at)] = Number(line.slice(at + 1));
  }
  return values;
}

async function metricsUntil(what, pred) {
  return within((async () => {
    for (;;) {
      const m = await metrics();
      if (pred(m)) return m;
      await new Promise((r) => setTimeout(r, 50));
    }
  })(), what);
}

test('health, readiness and metrics follow the sockets and events', async () => {
  const health = await fetch(`${server.url}/healthz`);
  assert.equal(health.status, 200);
  assert.equal(await health.text(), 'ok');
  const ready = await fetch(`${server.url}/readyz`);
  assert.equal(ready.status, 200);

  const before = await metrics();
  assert.equal(before.jamz_sockets, 0);
  assert.equal(before.jamz_socket_events_total, 0);
  assert.ok(before.jamz_db_connections >= 1, JSON.stringify(before));

  const reg = async (name) => (await rest(server.url, 'POST', '/api/auth/register', { json: { username: name, email: `${name}@example.test`, password: `pw-${name}` } })).body;
  const ann = await reg('ann');
  const bob = await reg('bob');
  const group = (await rest(server.url, 'POST', '/api/groups', { token: ann.token, json: { name: 'Ops' } })).body.group;
  await rest(server.url, 'POST', `/api/groups/${group.id}/members`, { token: ann.token, json: { username: 'bob' } });
  const sessionId = (await rest(server.url, 'GET', `/api/audio/sessions/group/${group.id}`, { token: ann.token })).body.session.id;

  const a = connect(server.url, ann.token, { transports: ['websocket'] });
  const b = connect(server.url, bob.token, { transports: ['websocket'] });
  try {
    await Promise.all([a.next('connect'), b.next('connect')]);
    a.emit('join-audio-session', { sessionId, userId: ann.user.id });
    await a.next('music-session-state');
    b.emit('join-audio-session', { sessionId, userId: bob.user.id });
    await b.next('music-session-state');
    for (let i = 0; i < 5; i++) {
      a.emit('location-update', { sessionId, latitude: 45 + i / 1000, longitude: -122, timestamp: Date.now() });
      await b.next('location-update');
    }
    b.emit('music-control', { sessionId, action: 'pause', position: 0, timestamp: Date.now() });
    await b.next('music-error');

    // 2 joins + 5 locations + 1 refused control.
    const m = await metricsUntil('8 events counted', (x) => x.jamz_socket_events_total >= 8);
    assert.equal(m.jamz_sockets, 2);
    assert.equal(m.jamz_live_sessions, 1);
    assert.equal(m.jamz_socket_events_total, 8);
    assert.equal(m.jamz_socket_events_refused_total, 1);
    assert.equal(m['jamz_socket_event_seconds_count'], 8);
    assert.equal(m['jamz_socket_event_seconds_bucket{le="+Inf"}'], 8);
    assert.ok(m['jamz_socket_event_seconds_sum'] > 0);
    console.log(`  handled 8 events in ${(m.jamz_socket_event_seconds_sum * 1000).toFixed(2)} ms in all`);
  } finally {
    b.close();
  }
  await metricsUntil('one socket left', (x) => x.jamz_sockets === 1);
  a.close();
  await metricsUntil('no socket left', (x) => x.jamz_sockets === 0);
});
