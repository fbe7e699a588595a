-- Users, groups and their members; the accounts side of the seeds' PostgreSQL.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_login    INTEGER
);

CREATE TABLE groups (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    creator_id  INTEGER NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES users(id),
    added_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_by_user ON group_members(user_id);

-- One active audio session per group. The playlist is one JSON array so that
-- every change is a single-row write: order and de-duplication stay atomic.
CREATE TABLE sessions (
    id                   TEXT PRIMARY KEY,
    group_id             TEXT NOT NULL UNIQUE REFERENCES groups(id) ON DELETE CASCADE,
    creator_id           INTEGER NOT NULL REFERENCES users(id),
    playlist_json        TEXT NOT NULL DEFAULT '[]',
    controller_id        INTEGER REFERENCES users(id),
    controller_socket_id TEXT,
    created_at           INTEGER NOT NULL,
    last_activity        INTEGER NOT NULL
);

-- Participant history: one row per join, closed by left_at.
CREATE TABLE participants (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id   TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    socket_id    TEXT NOT NULL,
    display_name TEXT,
    joined_at    INTEGER NOT NULL,
    left_at      INTEGER
);
CREATE INDEX participants_by_session ON participants(session_id);
CREATE INDEX participants_by_socket ON participants(socket_id);

CREATE TABLE locations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    session_id  TEXT,
    latitude    REAL NOT NULL,
    longitude   REAL NOT NULL,
    accuracy    REAL,
    speed       REAL,
    heading     REAL,
    timestamp   REAL NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX locations_by_user ON locations(user_id, id);

-- Uploaded files, content-addressed: key = sha256 of the bytes.
CREATE TABLE files (
    key         TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    mime        TEXT NOT NULL,
    uploaded_by INTEGER NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL
);

-- Tracks created by uploads, kept so that a track id always resolves.
CREATE TABLE tracks (
    id         TEXT PRIMARY KEY,
    file_key   TEXT REFERENCES files(key),
    track_json TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
