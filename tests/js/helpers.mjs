// Helpers for the JavaScript end-to-end tests: start a real jamz-server
// process, talk REST with fetch, and record Socket.IO events so that a test
// can wait for one with a bounded timeout (never a fixed sleep).
import { spawn } from 'node:child_process';
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
 * Starts jamz-server on a free loopback port with a fresh database; or, for a
 * restart, on `bind` over the database and files in `dir`.
 */
export async function startServer({ extraArgs = [], dir = mkdtempSync(path.join(tmpdir(), 'jamz-js-')), bind = '127.0.0.1:0', fdLimit, db = path.join(dir, 'jamz.db') } = {}) {
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
