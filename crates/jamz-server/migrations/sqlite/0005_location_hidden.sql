-- A member who turned location sharing off (`convoy-update` location-off) is left out of
-- the group's latest positions until their socket shares a position again. The history
-- stays; a batch of fixes kept while offline does not bring the marker back.
CREATE TABLE location_hidden (
    group_id TEXT NOT NULL,
    user_id  INTEGER NOT NULL REFERENCES users(id),
    since    INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
