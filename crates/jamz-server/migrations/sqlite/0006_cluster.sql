-- Several server processes on one database (deploy/scale-out.md): the process a live
-- participation is on (its Socket.IO server id), and the playback anchor every process
-- answers from (docs/architecture.md, "Storage").
ALTER TABLE participants ADD COLUMN server_id TEXT;
ALTER TABLE sessions ADD COLUMN playback_json TEXT;
