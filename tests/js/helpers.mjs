// Helpers for the JavaScript end-to-end tests: start a real jamz-server
// process, talk REST with fetch, and record Socket.IO events so that a test
// can wait for one with a bounded timeout (never a fixed sleep).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { io } from 'socket.io-client';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const WAIT_MS = 10_000;

export function serverBinary() {
  const candidates = [
    process.env.JAMZ_SERVER_BIN,
    path.join(process.env.CARGO_TARGET_DIR || path.join(repo, 'target'), 'debug', 'jamz-server'),
  ].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`jamz-server binary not found (tried ${candidates.join(', ')}): run cargo build -p jamz-server`);
  return found;
}

/**
 * The server set-up the scenarios run against, from `JAMZ_JS_SERVER` (scripts/test.sh
 * runs them in each mode CI names):
 *   sqlite    (default) one process on a SQLite file
 *   postgres  one process on a fresh database of the PostgreSQL of scripts/env.d/postgres.sh
 *   cluster   two processes on one fresh PostgreSQL database and the Redis of
 *             scripts/env.d/redis.sh; `connect` spreads the sockets over both (one on
 *             each in turn), so the members of a session are on different processes
 * A start that names its own database, address or descriptor limit (the restart and
 * resource tests) is always one SQLite process.
 */
export const SERVER_MODE = process.env.JAMZ_JS_SERVER || 'sqlite';

/** Each cluster's URLs, by the URL `startServer` returned; the next one `connect` uses. */
const clusters = new Map();

function freshPostgresDatabase() {
  const admin = process.env.JAMZ_TEST_POSTGRES_URL;
  if (!admin) throw new Error(`JAMZ_JS_SERVER=${SERVER_MODE} needs JAMZ_TEST_POSTGRES_URL: source scripts/env.d/postgres.sh`);
  const name = `jamz_js_${randomBytes(8).toString('hex')}`;
  execFileSync('psql', [admin, '-q', '-c', `CREATE DATABASE ${name}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  const base = admin.split('?')[0];
  return `${base.slice(0, base.lastIndexOf('/'))}/${name}`;
}

/**
 * Starts jamz-server on a free loopback port with a fresh database (in the set-up of
 * `SERVER_MODE`); or, for a restart, on `bind` over the database and files in `dir`.
 */
export async function startServer(options = {}) {
  const own = options.db !== undefined || options.bind !== undefined || options.fdLimit !== undefined;
  if (SERVER_MODE === 'sqlite' || own) return startOne(options);
  if (SERVER_MODE !== 'postgres' && SERVER_MODE !== 'cluster') throw new Error(`JAMZ_JS_SERVER=${SERVER_MODE}: sqlite, postgres or cluster`);
  const db = freshPostgresDatabase();
  if (SERVER_MODE === 'postgres') return startOne({ ...options, db });
  const redis = process.env.JAMZ_TEST_REDIS_URL;
  if (!redis) throw new Error('JAMZ_JS_SERVER=cluster needs JAMZ_TEST_REDIS_URL: source scripts/env.d/redis.sh');
  const dir = options.dir || mkdtempSync(path.join(tmpdir(), 'jamz-js-'));
  const extraArgs = [...(options.extraArgs || []), '--redis', redis, '--redis-prefix', `jamz-js-${randomBytes(6).toString('hex')}`, '--jwt-secret', randomBytes(32).toString('hex')];
  // One after the other: the second finds the grant key the first made in `dir`.
  const a = await startOne({ ...options, dir, db, extraArgs });
  const b = await startOne({ ...options, dir, db, extraArgs });
  clusters.set(a.url, { urls: [a.url, b.url], next: 0 });
  return {
    ...a,
    urls: [a.url, b.url],
    panicked() { return a.panicked() || b.panicked(); },
    async kill9() { b.child.kill('SIGKILL'); return a.kill9(); },
    stop() { b.child.kill('SIGKILL'); a.stop(); },
  };
}

/** One jamz-server process (see `startServer`). */
async function startOne({ extraArgs = [], dir = mkdtempSync(path.join(tmpdir(), 'jamz-js-')), bind = '127.0.0.1:0', fdLimit, db = path.join(dir, 'jamz.db') } = {}) {
  const args = ['--bind', bind, '--db', db, '--data-dir', path.join(dir, 'data'), ...extraArgs];
  // `fdLimit`: run under `ulimit -n`, as a small device would.
  const [cmd, argv] = fdLimit
    ? ['sh', ['-c', `ulimit -n ${Number(fdLimit)} && exec "$0" "$@"`, serverBinary(), ...args]]
    : [serverBinary(), args];
  const child = spawn(cmd, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; process.stderr.write(chunk); });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('jamz-server did not start in time')), 30_000);
    let buf = '';
    child.stdout.on('data', (chunk) => {
      buf += chunk;
      const m = buf.match(/jamz-server listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`jamz-server exited with ${code}`)); });
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    url,
    dir,
    child,
    exited,
    /** Whether the server's log shows a panic (it must never have one). */
    panicked() { return /panicked/.test(stderr); },
    /** kill -9, keeping the data for a restart. */
    async kill9() { child.kill('SIGKILL'); return exited; },
    stop() { child.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); },
  };
}

/** `promise`, or a rejection naming `what` after `ms`. */
export function within(promise, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A REST call; resolves to {status, body, headers}. */
export async function rest(base, method, route, { token, json, body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  let payload = body;
  if (json !== undefined) { h['content-type'] = 'application/json'; payload = JSON.stringify(json); }
  const res = await fetch(base + route, { method, headers: h, body: payload });
  const type = res.headers.get('content-type') || '';
  const data = type.includes('json') ? await res.json() : Buffer.from(await res.arrayBuffer());
  return { status: res.status, body: data, headers: res.headers };
}

/** A Socket.IO client that records every event it receives. */
export function connect(base, token, opts = {}) {
  const cluster = clusters.get(base);
  if (cluster) base = cluster.urls[cluster.next++ % cluster.urls.length];
  const socket = io(base, { auth: { token }, reconnection: false, forceNew: true, ...opts });
  const seen = [];
  const waiters = [];
  const deliver = (event, data) => {
    seen.push({ event, data });
    for (const w of [...waiters]) {
      if (w.event === event && w.pred(data)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(data); }
    }
  };
  socket.onAny((event, data) => deliver(event, data));
  socket.on('connect_error', (err) => deliver('connect_error', { message: err.message }));
  socket.on('connect', () => deliver('connect', { id: socket.id }));
  /** Resolves with the first event `event` (seen before or after) matching `pred`. */
  socket.next = (event, pred = () => true, ms = WAIT_MS) => {
    const i = seen.findIndex((s) => s.event === event && pred(s.data));
    if (i >= 0) { const [hit] = seen.splice(i, 1); return Promise.resolve(hit.data); }
    return new Promise((resolve, reject) => {
      const w = { event, pred, resolve: (d) => { clearTimeout(w.timer); const j = seen.findIndex((s) => s.data === d); if (j >= 0) seen.splice(j, 1); resolve(d); } };
      w.timer = setTimeout(() => { waiters.splice(waiters.indexOf(w), 1); reject(new Error(`timed out waiting for ${event}; saw ${seen.map((s) => s.event).join(', ')}`)); }, ms);
      waiters.push(w);
    });
  };
  socket.seen = seen;
  return socket;
}

/**
 * A PCM WAV file (16-bit mono, 8 kHz) whose samples are `samples` (a Buffer of
 * little-endian int16 bytes): real audio that the server's probe accepts.
 */
export function wav(samples) {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + samples.length, 4);
  header.write('WAVE', 8);
  header.write('fmt ', 12);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(8000, 24);
  header.writeUInt32LE(16000, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(samples.length, 40);
  return Buffer.concat([header, samples]);
}
