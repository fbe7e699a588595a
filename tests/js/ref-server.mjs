// A small TrafficJamz backend on the official Node `socket.io` package, written
// from the wire protocol (the seeds' backend), in memory. It exists to prove that
// jamz-link speaks real Socket.IO and not only our server's dialect, and that the
// clients follow the seeds' flow: a REST playlist change is stored and answered,
// never broadcast; the client that made it tells the room with `playlist-update`,
// which this server only relays (it does not store it either).
//
// Usage: node tests/js/ref-server.mjs [--port N] [--ping-interval-ms N] [--ping-timeout-ms N]
// (or env PORT, PING_INTERVAL_MS, PING_TIMEOUT_MS). Port 0 (default) = a free port.
// Prints `ref-server listening on http://127.0.0.1:PORT` once listening.

import http from 'node:http';
import crypto from 'node:crypto';
import { Server } from 'socket.io';

function arg(name, envName, dflt) {
  const i = process.argv.indexOf(name);
  if (i >= 0 && i + 1 < process.argv.length) return Number(process.argv[i + 1]);
  if (process.env[envName] !== undefined) return Number(process.env[envName]);
  return dflt;
}
const PORT = arg('--port', 'PORT', 0);
const PING_INTERVAL = arg('--ping-interval-ms', 'PING_INTERVAL_MS', 25000);
const PING_TIMEOUT = arg('--ping-timeout-ms', 'PING_TIMEOUT_MS', 20000);

// ---------------------------------------------------------------- state
const users = new Map(); // id -> {id, username, email, password}
const tokens = new Map(); // token -> user id
const groups = new Map(); // id -> {id, name, description, creator_id, members: [userId], created_at}
const sessions = new Map(); // id -> session (docs/protocol.md Session)
const sessionByGroup = new Map(); // group id -> session id
const files = new Map(); // key -> {data: Buffer, type, etag}
const locations = new Map(); // user id -> latest location
let nextUserId = 1;

const now = () => Date.now();
const iso = () => new Date().toISOString();
const hex24 = () => crypto.randomBytes(12).toString('hex');

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function publicUser(u) {
  return { id: u.id, username: u.username, email: u.email };
}

function isMember(group, userId) {
  return group.creator_id === userId || group.members.includes(userId);
}

function groupOfSession(session) {
  return groups.get(session.group_id);
}

function newSession(groupId, creatorId) {
  const s = {
    id: crypto.randomUUID(),
    group_id: groupId,
    creator_id: creatorId,
    active_participants: [],
    participants: [],
    music: { playlist: [], currently_playing: null, controller_id: null, is_playing: false },
    controller_socket_id: null,
    created_at: iso(),
    last_activity: iso(),
  };
  sessions.set(s.id, s);
  sessionByGroup.set(groupId, s.id);
  return s;
}

const norm = (s) => String(s ?? '').trim().toLowerCase();
function trackUrl(t) {
  return t.url ?? t.fileUrl ?? t.file_url ?? null;
}
function isDuplicate(a, b) {
  const ua = trackUrl(a);
  const ub = trackUrl(b);
  if (ua && ub && ua === ub) return true;
  return norm(a.title) === norm(b.title) && norm(a.artist) === norm(b.artist);
}

function appendTrack(session, track, userId) {
  if (!track || typeof track !== 'object' || !track.title || typeof track.title !== 'string') {
    throw new HttpError(400, 'a track needs a title');
  }
  const t = { ...track };
  if (t.url === undefined && trackUrl(t)) t.url = trackUrl(t);
  if (!t.id) t.id = crypto.randomUUID();
  t.id = String(t.id);
  if (!t.source) t.source = 'upload';
  if (t.uploaded_by === undefined) t.uploaded_by = userId;
  if (!t.created_at) t.created_at = iso();
  if (!session.music.playlist.some((p) => isDuplicate(p, t))) session.music.playlist.push(t);
  session.last_activity = iso();
}

function sessionState(session) {
  const cp = session.music.currently_playing;
  return {
    playlist: session.music.playlist,
    currently_playing: cp ? { track: cp.track, position: currentPosition(session), started_at: cp.started_at } : null,
    controller_id: session.music.controller_id,
    controller_socket_id: session.controller_socket_id,
    is_playing: session.music.is_playing,
    server_time: now(),
  };
}

function currentPosition(session) {
  const cp = session.music.currently_playing;
  if (!cp) return 0;
  if (!session.music.is_playing) return cp.position;
  return cp.position + (now() - cp.at) / 1000;
}

// ---------------------------------------------------------------- HTTP
function send(res, status, body, headers = {}) {
  const data = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(data);
}

async function readBody(req, limit = 50 * 1024 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > limit) throw new HttpError(413, 'body too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

async function readJson(req) {
  const buf = await readBody(req);
  if (buf.length === 0) return {};
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
}

function authUser(req) {
  const h = req.headers.authorization ?? '';
  const m = /^Bearer (.+)$/.exec(h);
  const id = m ? tokens.get(m[1]) : undefined;
  if (id === undefined) throw new HttpError(401, 'Authentication failed');
  return users.get(id);
}

function issueToken(user) {
  const t = crypto.randomBytes(24).toString('hex');
  tokens.set(t, user.id);
  return t;
}

function parseMultipart(buf, contentType) {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType ?? '');
  if (!m) throw new HttpError(415, 'multipart/form-data expected');
  const boundary = Buffer.from('--' + (m[1] ?? m[2]).trim());
  const parts = {};
  let pos = buf.indexOf(boundary);
  while (pos >= 0) {
    pos += boundary.length;
    if (buf.slice(pos, pos + 2).toString() === '--') break;
    pos += 2; // CRLF
    const headEnd = buf.indexOf('\r\n\r\n', pos);
    if (headEnd < 0) break;
    const head = buf.slice(pos, headEnd).toString('utf8');
    const next = buf.indexOf(boundary, headEnd + 4);
    if (next < 0) break;
    const body = buf.slice(headEnd + 4, next - 2); // strip CRLF before boundary
    const name = /name="([^"]*)"/i.exec(head)?.[1];
    const filename = /filename="([^"]*)"/i.exec(head)?.[1];
    const type = /content-type:\s*([^\r\n]+)/i.exec(head)?.[1];
    if (name) parts[name] = { body, filename, type };
    pos = next;
  }
  return parts;
}

function validLocation(b) {
  const num = (v) => typeof v === 'number' && Number.isFinite(v);
  if (!num(b.latitude) || b.latitude < -90 || b.latitude > 90) throw new HttpError(400, 'latitude out of range');
  if (!num(b.longitude) || b.longitude < -180 || b.longitude > 180) throw new HttpError(400, 'longitude out of range');
}

function storeLocation(userId, b) {
  validLocation(b);
  locations.set(userId, {
    user_id: userId,
    latitude: b.latitude,
    longitude: b.longitude,
    accuracy: b.accuracy ?? null,
    speed: b.speed ?? null,
    heading: b.heading ?? null,
    timestamp: b.timestamp ?? now(),
  });
}

function sessionForUser(sessionId, user) {
  const s = sessions.get(sessionId);
  if (!s) throw new HttpError(404, 'session not found');
  const g = groupOfSession(s);
  if (!g || !isMember(g, user.id)) throw new HttpError(403, 'not a member of this group');
  return s;
}

async function route(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const p = url.pathname;
  const method = req.method;
  let m;
  if (method === 'POST' && p === '/api/auth/register') {
    const b = await readJson(req);
    if (!b.username || !b.password) throw new HttpError(400, 'username and password are required');
    for (const u of users.values()) if (u.username === b.username) throw new HttpError(409, 'username taken');
    const u = { id: nextUserId++, username: b.username, email: b.email ?? '', password: b.password };
    users.set(u.id, u);
    return send(res, 201, { token: issueToken(u), user: publicUser(u) });
  }
  if (method === 'POST' && p === '/api/auth/login') {
    const b = await readJson(req);
    const u = [...users.values()].find((x) => x.username === b.username && x.password === b.password);
    if (!u) throw new HttpError(401, 'invalid credentials');
    return send(res, 200, { token: issueToken(u), user: publicUser(u) });
  }
  if (method === 'GET' && (m = /^\/api\/music\/files\/([^/]+)$/.exec(p))) {
    authUser(req);
    const f = files.get(decodeURIComponent(m[1]));
    if (!f) throw new HttpError(404, 'file not found');
    const total = f.data.length;
    const range = req.headers.range;
    const base = { 'content-type': f.type, etag: f.etag, 'accept-ranges': 'bytes' };
    if (range) {
      const r = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      let start;
      let end;
      if (r && r[1] !== '') {
        start = Number(r[1]);
        end = r[2] !== '' ? Math.min(Number(r[2]), total - 1) : total - 1;
      } else if (r && r[2] !== '') {
        start = Math.max(0, total - Number(r[2]));
        end = total - 1;
      }
      if (start === undefined || start > end || start >= total) {
        res.writeHead(416, { 'content-range': `bytes */${total}` });
        return res.end();
      }
      res.writeHead(206, { ...base, 'content-range': `bytes ${start}-${end}/${total}`, 'content-length': end - start + 1 });
      return res.end(f.data.subarray(start, end + 1));
    }
    res.writeHead(200, { ...base, 'content-length': total });
    return res.end(f.data);
  }
  const user = authUser(req);
  if (method === 'GET' && p === '/api/groups') {
    return send(res, 200, { groups: [...groups.values()].filter((g) => isMember(g, user.id)) });
  }
  if (method === 'POST' && p === '/api/groups') {
    const b = await readJson(req);
    if (!b.name) throw new HttpError(400, 'a group needs a name');
    const g = { id: hex24(), name: b.name, description: b.description ?? '', creator_id: user.id, members: [user.id], created_at: iso() };
    groups.set(g.id, g);
    return send(res, 201, { group: g });
  }
  if (method === 'POST' && (m = /^\/api\/groups\/([^/]+)\/members$/.exec(p))) {
    const g = groups.get(m[1]);
    if (!g) throw new HttpError(404, 'group not found');
    if (g.creator_id !== user.id) throw new HttpError(403, 'only the creator adds members');
    const b = await readJson(req);
    const u = [...users.values()].find((x) => x.username === b.username);
    if (!u) throw new HttpError(404, 'user not found');
    if (!g.members.includes(u.id)) g.members.push(u.id);
    return send(res, 200, { group: g });
  }
  if (method === 'GET' && (m = /^\/api\/audio\/sessions\/group\/([^/]+)$/.exec(p))) {
    const g = groups.get(m[1]);
    if (!g) throw new HttpError(404, 'group not found');
    if (!isMember(g, user.id)) throw new HttpError(403, 'not a member of this group');
    const sid = sessionByGroup.get(g.id);
    const s = sid ? sessions.get(sid) : newSession(g.id, user.id);
    return send(res, 200, { session: s });
  }
  if ((m = /^\/api\/audio\/sessions\/([^/]+)\/music\/playlist(?:\/([^/]+))?$/.exec(p))) {
    const s = sessionForUser(m[1], user);
    const isDj = s.music.controller_id === user.id;
    if (method === 'POST' && !m[2]) {
      const b = await readJson(req);
      appendTrack(s, b.track, user.id);
      return send(res, 200, { success: true, playlist: s.music.playlist });
    }
    if (method === 'DELETE' && m[2]) {
      if (!isDj) throw new HttpError(403, 'only the DJ may delete');
      const id = decodeURIComponent(m[2]);
      const before = s.music.playlist.length;
      s.music.playlist = s.music.playlist.filter((t) => t.id !== id);
      if (s.music.playlist.length === before) throw new HttpError(404, 'track not found');
      return send(res, 200, { success: true, playlist: s.music.playlist });
    }
    if (method === 'PUT' && !m[2]) {
      if (!isDj) throw new HttpError(403, 'only the DJ may reorder');
      const b = await readJson(req);
      const order = Array.isArray(b.order) ? b.order.map(String) : null;
      const ids = s.music.playlist.map((t) => t.id);
      if (!order || order.length !== ids.length || !ids.every((id) => order.includes(id))) {
        throw new HttpError(422, 'order must list every track id once');
      }
      s.music.playlist = order.map((id) => s.music.playlist.find((t) => t.id === id));
      return send(res, 200, { success: true, playlist: s.music.playlist });
    }
  }
  if (method === 'POST' && p === '/api/music/upload') {
    const parts = parseMultipart(await readBody(req), req.headers['content-type']);
    if (!parts.file) throw new HttpError(400, 'file field is required');
    const key = crypto.randomBytes(16).toString('hex');
    const sha256 = crypto.createHash('sha256').update(parts.file.body).digest('hex');
    files.set(key, { data: parts.file.body, type: parts.file.type ?? 'application/octet-stream', etag: `"${sha256}"` });
    const field = (n) => parts[n]?.body.toString('utf8');
    const host = req.headers.host;
    const track = {
      id: crypto.randomUUID(),
      title: field('title') ?? parts.file.filename ?? key,
      artist: field('artist') ?? '',
      source: 'upload',
      url: `http://${host}/api/music/files/${key}`,
      duration: Number(field('duration') ?? 0),
      size: parts.file.body.length,
      sha256,
      uploaded_by: user.id,
      created_at: iso(),
    };
    return send(res, 201, { track });
  }
  if (method === 'POST' && p === '/api/locations') {
    const b = await readJson(req);
    storeLocation(user.id, b);
    return send(res, 201, { success: true });
  }
  if (method === 'GET' && (m = /^\/api\/groups\/([^/]+)\/locations\/latest$/.exec(p))) {
    const g = groups.get(m[1]);
    if (!g) throw new HttpError(404, 'group not found');
    if (!isMember(g, user.id)) throw new HttpError(403, 'not a member of this group');
    const out = [...new Set([g.creator_id, ...g.members])].map((id) => locations.get(id)).filter(Boolean);
    return send(res, 200, { locations: out });
  }
  throw new HttpError(404, `no route ${method} ${p}`);
}

const server = http.createServer((req, res) => {
  route(req, res).catch((e) => {
    const status = e instanceof HttpError ? e.status : 500;
    if (!(e instanceof HttpError)) console.error(e);
    if (!res.headersSent) send(res, status, { error: e.message });
    else res.end();
  });
});

// ---------------------------------------------------------------- Socket.IO
const io = new Server(server, { pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT });

io.use((socket, next) => {
  const id = tokens.get(socket.handshake.auth?.token);
  if (id === undefined) return next(new Error('Authentication failed'));
  socket.data.user = users.get(id);
  next();
});

const room = (sessionId) => `audio-${sessionId}`;

io.on('connection', (socket) => {
  const user = socket.data.user;
  const err = (error) => socket.emit('music-error', { error });
  // The session this socket joined (null until join-audio-session).
  const joined = () => (socket.data.sessionId ? sessions.get(socket.data.sessionId) : null);
  const inSession = (payload) => {
    const s = joined();
    if (!s || (payload?.sessionId && payload.sessionId !== s.id)) {
      err('not in this session');
      return null;
    }
    return s;
  };

  socket.on('join-audio-session', (p) => {
    const s = sessions.get(p?.sessionId);
    const g = s && groupOfSession(s);
    if (!s || !g || !isMember(g, user.id)) return err('not a member of this session');
    socket.data.sessionId = s.id;
    socket.data.displayName = p.display_name ?? p.displayName ?? user.username;
    socket.join(room(s.id));
    s.participants.push({ user_id: user.id, socket_id: socket.id, display_name: socket.data.displayName, joined_at: iso(), left_at: null });
    if (!s.active_participants.includes(user.id)) s.active_participants.push(user.id);
    if (s.music.controller_id === user.id) s.controller_socket_id = socket.id;
    socket.emit('music-session-state', sessionState(s));
    const participants = [...(io.sockets.adapter.rooms.get(room(s.id)) ?? [])]
      .map((id) => io.sockets.sockets.get(id))
      .filter(Boolean)
      .map((x) => ({ socketId: x.id, userId: x.data.user.id, display_name: x.data.displayName }));
    socket.emit('current-participants', { participants });
    socket.to(room(s.id)).emit('participant-joined', { socketId: socket.id, userId: user.id, display_name: socket.data.displayName });
  });

  const leave = () => {
    const s = joined();
    if (!s) return;
    for (const part of s.participants) if (part.socket_id === socket.id && !part.left_at) part.left_at = iso();
    s.active_participants = s.active_participants.filter((id) => id !== user.id);
    socket.to(room(s.id)).emit('participant-left', { socketId: socket.id, userId: user.id });
    socket.leave(room(s.id));
    socket.data.sessionId = null;
  };
  socket.on('leave-audio-session', leave);
  socket.on('disconnect', leave);

  socket.on('music-take-control', (p) => {
    const s = inSession(p);
    if (!s) return;
    s.music.controller_id = user.id;
    s.controller_socket_id = socket.id;
    io.to(room(s.id)).emit('music-controller-changed', { controllerId: socket.id, userId: user.id, timestamp: now() });
  });

  socket.on('music-control', (p) => {
    const s = inSession(p);
    if (!s) return;
    if (s.music.controller_id !== user.id) return err('only the DJ controls playback');
    const actions = { play: 'music-play', pause: 'music-pause', seek: 'music-seek', 'track-change': 'music-track-change' };
    const ev = actions[p.action];
    if (!ev) return err(`unknown action ${p.action}`);
    if (typeof p.position !== 'number' || p.position < 0) return err('position must be >= 0');
    const track = p.track ?? s.music.currently_playing?.track ?? null;
    s.music.currently_playing = { track, position: p.position, started_at: iso(), controlled_by: user.id, at: now() };
    if (p.action === 'play' || p.action === 'track-change') s.music.is_playing = true;
    if (p.action === 'pause') s.music.is_playing = false;
    socket.to(room(s.id)).emit(ev, { position: p.position, track, timestamp: p.timestamp, controllerId: socket.id, userId: user.id });
  });

  socket.on('music-position-sync', (p) => {
    const s = inSession(p);
    if (!s) return;
    socket.to(room(s.id)).emit('music-position-sync', { position: p.position, timestamp: p.timestamp, userId: user.id });
  });

  socket.on('playlist-update', (p) => {
    const s = inSession(p);
    if (!s) return;
    socket.to(room(s.id)).emit('playlist-update', { playlist: p.playlist });
  });

  socket.on('webrtc-signal', (p) => {
    const s = inSession(p);
    if (!s) return;
    for (const id of io.sockets.adapter.rooms.get(room(s.id)) ?? []) {
      const x = io.sockets.sockets.get(id);
      if (x && x.data.user.id === Number(p.to)) x.emit('webrtc-signal', p);
    }
  });

  socket.on('location-update', (p) => {
    const s = inSession(p);
    if (!s) return;
    try {
      storeLocation(user.id, p);
    } catch (e) {
      return err(e.message);
    }
    const { sessionId: _ignored, ...rest } = p;
    socket.to(room(s.id)).emit('location-update', { userId: user.id, ...rest });
  });

  socket.on('time-sync', (p, ack) => {
    const t1 = performance.timeOrigin + performance.now();
    if (typeof ack !== 'function') return;
    ack({ t0: p?.t0, t1, t2: performance.timeOrigin + performance.now() });
  });
});

server.listen(PORT, '127.0.0.1', () => {
  console.log(`ref-server listening on http://127.0.0.1:${server.address().port}`);
});
