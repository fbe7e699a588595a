-- A position is visible only in the group it was shared with: its session's
-- group, kept on the row so that reads scoped to a group need no join.
ALTER TABLE locations ADD COLUMN group_id TEXT;
UPDATE locations SET group_id = (SELECT s.group_id FROM sessions s WHERE s.id = locations.session_id)
    WHERE session_id IS NOT NULL;
CREATE INDEX locations_by_user_group ON locations(user_id, group_id, id);
