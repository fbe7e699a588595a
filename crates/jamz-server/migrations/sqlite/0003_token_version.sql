-- Bumped by logout and by a password change: tokens carry the version they were
-- issued under, and an older one is refused.
ALTER TABLE users ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0;
