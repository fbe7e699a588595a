//! The database: every query the server runs, on SQLite or PostgreSQL through sqlx
//! ([`backend`]: which engine, opening it, its migrations). Each query is written once,
//! in SQL both engines accept, and decoded into plain tuples so that one text serves both.
mod backend;

pub use backend::{DbLocation, is_unavailable};

use jamz_proto::{Group, Location, Participant, Track, UserId};

use crate::clock::{iso, now_ms};
use crate::error::{ApiError, ApiResult};
use backend::Pool;

/// Runs `$body` with `$pool` bound to the open engine's pool: the same query and
/// decoding on either engine, type-checked for each.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match &$db.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

/// The columns of [`SessionRow`], in its tuple's order.
macro_rules! session_columns {
    () => {
        "id, group_id, creator_id, playlist_json, controller_id, controller_socket_id, created_at, last_activity, controller_epoch, controller_device_key, playback_json"
    };
}

type UserTuple = (i64, String, String, String, i64);
type SessionTuple = (
    String,
    String,
    i64,
    String,
    Option<i64>,
    Option<String>,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
);
type GroupTuple = (String, String, String, i64, i64);
type ParticipantTuple = (i64, String, Option<String>, i64, Option<i64>);
type LocationTuple = (i64, f64, f64, Option<f64>, Option<f64>, Option<f64>, f64);

#[derive(Clone)]
pub struct Db {
    pool: Pool,
}

pub struct UserRow {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub token_version: i64,
}

#[derive(Debug)]
pub struct SessionRow {
    pub id: String,
    pub group_id: String,
    pub creator_id: UserId,
    pub playlist: Vec<Track>,
    pub controller_id: Option<UserId>,
    pub controller_socket_id: Option<String>,
    /// The change of control the DJ came with (0: never changed).
    pub controller_epoch: u64,
    /// The DJ device's public key (hex), if its client presented one.
    pub controller_device_key: Option<String>,
    pub created_at: i64,
    pub last_activity: i64,
    /// The playback anchor (`None`: nothing played yet), shared by every process.
    pub playback: crate::live::Playback,
}

/// `open_participants`' row: user, socket, name, process, joined (Unix ms).
type OpenParticipantTuple = (i64, String, Option<String>, Option<String>, i64);

/// An open participation: who is in a session on which process.
pub struct OpenParticipant {
    pub user_id: UserId,
    pub socket_id: String,
    pub display_name: Option<String>,
    /// The Socket.IO server id of the process the socket is on.
    pub server_id: Option<String>,
    /// When it began (Unix ms).
    pub joined_at_ms: i64,
}

impl Db {
    /// Opens (creating a SQLite file if missing) and migrates the database.
    pub async fn open(location: &DbLocation) -> Result<Self, sqlx::Error> {
        Ok(Self {
            pool: Pool::open(location).await?,
        })
    }

    // ------------------------------------------------------------------ users

    pub async fn create_user(&self, username: &str, email: &str, hash: &str) -> ApiResult<UserId> {
        let sql = self.pool.sql(
            "INSERT INTO users (username, email, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id",
        );
        let res: Result<i64, _> = with_pool!(self, p => sqlx::query_scalar(sql)
            .bind(username)
            .bind(email)
            .bind(hash)
            .bind(now_ms())
            .fetch_one(p)
            .await);
        match res {
            Ok(id) => Ok(id),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(ApiError::Conflict(
                "that username or email is already registered".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn user_by_login(&self, login: &str) -> ApiResult<Option<UserRow>> {
        // SQLite's columns are COLLATE NOCASE; PostgreSQL's unique indexes are on lower().
        let sql = self.pool.sql_for(
            "SELECT id, username, email, password_hash, token_version FROM users WHERE username = ? OR email = ?",
            "SELECT id, username, email, password_hash, token_version FROM users WHERE lower(username) = lower(?) OR lower(email) = lower(?)",
        );
        let row: Option<UserTuple> = with_pool!(self, p => sqlx::query_as(sql)
            .bind(login)
            .bind(login)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(Self::user_row))
    }

    pub async fn touch_login(&self, id: UserId) -> ApiResult<()> {
        let sql = self
            .pool
            .sql("UPDATE users SET last_login = ? WHERE id = ?");
        with_pool!(self, p => sqlx::query(sql)
            .bind(now_ms())
            .bind(id)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// The user's current token version; `None` if there is no such user.
    pub async fn token_version(&self, id: UserId) -> ApiResult<Option<i64>> {
        let sql = self
            .pool
            .sql("SELECT token_version FROM users WHERE id = ?");
        Ok(with_pool!(self, p => sqlx::query_scalar(sql)
            .bind(id)
            .fetch_optional(p)
            .await)?)
    }

    /// Revokes every token issued so far; returns the new version.
    pub async fn bump_token_version(&self, id: UserId) -> ApiResult<i64> {
        let sql = self.pool.sql(
            "UPDATE users SET token_version = token_version + 1 WHERE id = ? RETURNING token_version",
        );
        Ok(with_pool!(self, p => sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(p)
            .await)?)
    }

    /// A new password hash; every token issued so far is revoked. Returns the new version.
    pub async fn set_password(&self, id: UserId, hash: &str) -> ApiResult<i64> {
        let sql = self.pool.sql(
            "UPDATE users SET password_hash = ?, token_version = token_version + 1 WHERE id = ? RETURNING token_version",
        );
        Ok(with_pool!(self, p => sqlx::query_scalar(sql)
            .bind(hash)
            .bind(id)
            .fetch_one(p)
            .await)?)
    }

    pub async fn user_by_id(&self, id: UserId) -> ApiResult<Option<UserRow>> {
        let sql = self.pool.sql(
            "SELECT id, username, email, password_hash, token_version FROM users WHERE id = ?",
        );
        let row: Option<UserTuple> = with_pool!(self, p => sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(Self::user_row))
    }

    fn user_row((id, username, email, password_hash, token_version): UserTuple) -> UserRow {
        UserRow {
            id,
            username,
            email,
            password_hash,
            token_version,
        }
    }

    pub async fn user_id_by_username(&self, username: &str) -> ApiResult<Option<UserId>> {
        let sql = self.pool.sql_for(
            "SELECT id FROM users WHERE username = ?",
            "SELECT id FROM users WHERE lower(username) = lower(?)",
        );
        Ok(with_pool!(self, p => sqlx::query_scalar(sql)
            .bind(username)
            .fetch_optional(p)
            .await)?)
    }

    // ----------------------------------------------------------------- groups

    pub async fn create_group(
        &self,
        id: &str,
        name: &str,
        description: &str,
        creator: UserId,
    ) -> ApiResult<()> {
        let now = now_ms();
        let group = self.pool.sql(
            "INSERT INTO groups (id, name, description, creator_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        );
        let member = self
            .pool
            .sql("INSERT INTO group_members (group_id, user_id, added_at) VALUES (?, ?, ?)");
        with_pool!(self, p => {
            let mut tx = p.begin().await?;
            sqlx::query(group)
                .bind(id)
                .bind(name)
                .bind(description)
                .bind(creator)
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(member)
                .bind(id)
                .bind(creator)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })?;
        Ok(())
    }

    pub async fn group(&self, id: &str) -> ApiResult<Option<Group>> {
        let sql = self
            .pool
            .sql("SELECT id, name, description, creator_id, created_at FROM groups WHERE id = ?");
        let row: Option<GroupTuple> = with_pool!(self, p => sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        let Some((id, name, description, creator_id, created_at)) = row else {
            return Ok(None);
        };
        let sql = self
            .pool
            .sql("SELECT user_id FROM group_members WHERE group_id = ? ORDER BY added_at, user_id");
        let members: Vec<UserId> = with_pool!(self, p => sqlx::query_scalar(sql)
            .bind(&id)
            .fetch_all(p)
            .await)?;
        Ok(Some(Group {
            id,
            name,
            description,
            creator_id,
            members,
            created_at: Some(iso(created_at)),
        }))
    }

    pub async fn groups_of(&self, user: UserId) -> ApiResult<Vec<Group>> {
        let sql = self.pool.sql(
            "SELECT g.id FROM groups g JOIN group_members m ON m.group_id = g.id
             WHERE m.user_id = ? ORDER BY g.created_at, g.id",
        );
        let ids: Vec<String> = with_pool!(self, p => sqlx::query_scalar(sql)
            .bind(user)
            .fetch_all(p)
            .await)?;
        let mut groups = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(g) = self.group(&id).await? {
                groups.push(g);
            }
        }
        Ok(groups)
    }

    pub async fn is_member(&self, group: &str, user: UserId) -> ApiResult<bool> {
        let sql = self
            .pool
            .sql("SELECT COUNT(*) FROM group_members WHERE group_id = ? AND user_id = ?");
        let n: i64 = with_pool!(self, p => sqlx::query_scalar(sql)
            .bind(group)
            .bind(user)
            .fetch_one(p)
            .await)?;
        Ok(n > 0)
    }

    pub async fn add_member(&self, group: &str, user: UserId) -> ApiResult<()> {
        let now = now_ms();
        let sql = self.pool.sql(
            "INSERT INTO group_members (group_id, user_id, added_at) VALUES (?, ?, ?)
             ON CONFLICT DO NOTHING",
        );
        with_pool!(self, p => sqlx::query(sql)
            .bind(group)
            .bind(user)
            .bind(now)
            .execute(p)
            .await
            .map(|_| ()))?;
        self.touch_group(group, now).await
    }

    async fn touch_group(&self, group: &str, now: i64) -> ApiResult<()> {
        let sql = self
            .pool
            .sql("UPDATE groups SET updated_at = ? WHERE id = ?");
        with_pool!(self, p => sqlx::query(sql)
            .bind(now)
            .bind(group)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Removes `user` from the group. Returns whether they were a member.
    pub async fn remove_member(&self, group: &str, user: UserId) -> ApiResult<bool> {
        let sql = self
            .pool
            .sql("DELETE FROM group_members WHERE group_id = ? AND user_id = ?");
        let removed = with_pool!(self, p => sqlx::query(sql)
            .bind(group)
            .bind(user)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if removed > 0 {
            self.touch_group(group, now_ms()).await?;
        }
        Ok(removed > 0)
    }

    /// The group's session id, if it has one.
    pub async fn session_id_of_group(&self, group: &str) -> ApiResult<Option<String>> {
        let sql = self.pool.sql("SELECT id FROM sessions WHERE group_id = ?");
        Ok(with_pool!(self, p => sqlx::query_scalar(sql)
            .bind(group)
            .fetch_optional(p)
            .await)?)
    }

    // --------------------------------------------------------------- sessions

    fn session_row(r: SessionTuple) -> ApiResult<SessionRow> {
        let (
            id,
            group_id,
            creator_id,
            playlist_json,
            controller_id,
            controller_socket_id,
            created_at,
            last_activity,
            controller_epoch,
            controller_device_key,
            playback_json,
        ) = r;
        // A stored anchor that does not decode (written by a newer version) is no
        // playback, not a failed session.
        let playback = playback_json
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default();
        let playlist = jamz_proto::decode_str(&playlist_json)
            .map_err(|e| ApiError::Internal(format!("stored playlist of session {id}: {e}")))?;
        Ok(SessionRow {
            id,
            group_id,
            creator_id,
            playlist,
            controller_id,
            controller_socket_id,
            created_at,
            last_activity,
            // Written only by `set_controller`, which counts up from 0.
            controller_epoch: u64::try_from(controller_epoch).unwrap_or(0),
            controller_device_key,
            playback,
        })
    }

    pub async fn session(&self, id: &str) -> ApiResult<Option<SessionRow>> {
        let sql = self.pool.sql(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE id = ?"
        ));
        let row: Option<SessionTuple> = with_pool!(self, p => sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        row.map(Self::session_row).transpose()
    }

    /// The group's session, created on first call (docs/protocol.md: GET
    /// /api/audio/sessions/group/:groupId).
    pub async fn session_for_group(&self, group: &str, creator: UserId) -> ApiResult<SessionRow> {
        let now = now_ms();
        let sql = self.pool.sql(
            "INSERT INTO sessions (id, group_id, creator_id, created_at, last_activity)
             VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        );
        with_pool!(self, p => sqlx::query(sql)
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(group)
            .bind(creator)
            .bind(now)
            .bind(now)
            .execute(p)
            .await
            .map(|_| ()))?;
        let sql = self.pool.sql(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE group_id = ?"
        ));
        let row: SessionTuple = with_pool!(self, p => sqlx::query_as(sql)
            .bind(group)
            .fetch_one(p)
            .await)?;
        Self::session_row(row)
    }

    /// Replaces the playlist whatever it was (tests set sessions up with it).
    #[cfg(test)]
    pub async fn save_playlist(&self, session: &str, playlist: &[Track]) -> ApiResult<()> {
        let seen = self.test_row(session).await?.playlist;
        if self.save_playlist_if(session, &seen, playlist).await? {
            Ok(())
        } else {
            Err(ApiError::Internal(
                "the playlist moved during a test's write".into(),
            ))
        }
    }

    /// Makes `user` (on `socket_id`, with `device_key`) the DJ: a change of control,
    /// so the session's epoch grows by one. Returns the new epoch.
    #[cfg(test)]
    pub async fn set_controller(
        &self,
        session: &str,
        user: UserId,
        socket_id: &str,
        device_key: Option<&str>,
    ) -> ApiResult<u64> {
        let seen = self.test_row(session).await?.controller_epoch;
        self.set_controller_if(session, seen, user, socket_id, device_key)
            .await?
            .ok_or_else(|| ApiError::Internal("the epoch moved during a test's take".into()))
    }

    #[cfg(test)]
    async fn test_row(&self, session: &str) -> ApiResult<SessionRow> {
        self.session(session)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no session {session}")))
    }

    /// Makes `user` (on `socket_id`, with `device_key`) the DJ if the session's epoch is
    /// still `seen` (the one the caller read), so the epoch grows by one: `None` when
    /// another change of control came first. One conditional `UPDATE`, its own transaction: of two processes racing from the same epoch, PostgreSQL makes
    /// the second wait for the first's row lock and then finds the epoch moved on (READ
    /// COMMITTED re-checks the `WHERE` on the new row), SQLite has one writer at a time;
    /// either way exactly one wins (docs/architecture.md, "Storage").
    pub async fn set_controller_if(
        &self,
        session: &str,
        seen: u64,
        user: UserId,
        socket_id: &str,
        device_key: Option<&str>,
    ) -> ApiResult<Option<u64>> {
        let sql = self.pool.sql(
            "UPDATE sessions SET controller_id = ?, controller_socket_id = ?, controller_device_key = ?,
                 controller_epoch = controller_epoch + 1, last_activity = ?
             WHERE id = ? AND controller_epoch = ? RETURNING controller_epoch",
        );
        let epoch: Option<i64> = with_pool!(self, p => sqlx::query_scalar(sql)
            .bind(user)
            .bind(socket_id)
            .bind(device_key)
            .bind(now_ms())
            .bind(session)
            .bind(i64::try_from(seen).unwrap_or(i64::MAX))
            .fetch_optional(p)
            .await)?;
        Ok(epoch.map(|e| u64::try_from(e).unwrap_or(0)))
    }

    /// Stores the session's playback anchor (every process answers joiners from it).
    pub async fn save_playback(
        &self,
        session: &str,
        playback: &crate::live::Playback,
    ) -> ApiResult<()> {
        let json = serde_json::to_string(playback)
            .map_err(|e| ApiError::Internal(format!("encode playback: {e}")))?;
        let sql = self
            .pool
            .sql("UPDATE sessions SET playback_json = ?, last_activity = ? WHERE id = ?");
        with_pool!(self, p => sqlx::query(sql)
            .bind(json)
            .bind(now_ms())
            .bind(session)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Replaces the playlist if it is still `seen` (as the caller read it): whether it
    /// was replaced. Two processes changing one playlist at once: one of them reads again.
    pub async fn save_playlist_if(
        &self,
        session: &str,
        seen: &[Track],
        playlist: &[Track],
    ) -> ApiResult<bool> {
        let encode = |list: &[Track]| {
            serde_json::to_string(list)
                .map_err(|e| ApiError::Internal(format!("encode playlist: {e}")))
        };
        let (seen, json) = (encode(seen)?, encode(playlist)?);
        let sql = self.pool.sql(
            "UPDATE sessions SET playlist_json = ?, last_activity = ? WHERE id = ? AND playlist_json = ?",
        );
        let n = with_pool!(self, p => sqlx::query(sql)
            .bind(json)
            .bind(now_ms())
            .bind(session)
            .bind(seen)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    pub async fn touch_session(&self, session: &str) -> ApiResult<()> {
        let sql = self
            .pool
            .sql("UPDATE sessions SET last_activity = ? WHERE id = ?");
        with_pool!(self, p => sqlx::query(sql)
            .bind(now_ms())
            .bind(session)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    // ----------------------------------------------------------- participants

    #[cfg(test)]
    pub async fn participant_joined(
        &self,
        session: &str,
        user: UserId,
        socket_id: &str,
        display_name: Option<&str>,
    ) -> ApiResult<()> {
        self.participant_joined_on(session, user, socket_id, display_name, None)
            .await
    }

    /// A participation on the process with Socket.IO server id `server_id`.
    pub async fn participant_joined_on(
        &self,
        session: &str,
        user: UserId,
        socket_id: &str,
        display_name: Option<&str>,
        server_id: Option<&str>,
    ) -> ApiResult<()> {
        let sql = self.pool.sql(
            "INSERT INTO participants (session_id, user_id, socket_id, display_name, joined_at, server_id)
             VALUES (?, ?, ?, ?, ?, ?)",
        );
        with_pool!(self, p => sqlx::query(sql)
            .bind(session)
            .bind(user)
            .bind(socket_id)
            .bind(display_name)
            .bind(now_ms())
            .bind(server_id)
            .execute(p)
            .await
            .map(|_| ()))?;
        self.touch_session(session).await
    }

    pub async fn participant_left(&self, session: &str, socket_id: &str) -> ApiResult<()> {
        let sql = self.pool.sql(
            "UPDATE participants SET left_at = ? WHERE session_id = ? AND socket_id = ? AND left_at IS NULL",
        );
        with_pool!(self, p => sqlx::query(sql)
            .bind(now_ms())
            .bind(session)
            .bind(socket_id)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Closes every open participation: after a crash nobody is connected.
    pub async fn close_open_participations(&self) -> ApiResult<u64> {
        let sql = self
            .pool
            .sql("UPDATE participants SET left_at = ? WHERE left_at IS NULL");
        Ok(with_pool!(self, p => sqlx::query(sql)
            .bind(now_ms())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?)
    }

    /// The session's open participations, oldest first.
    pub async fn open_participants(&self, session: &str) -> ApiResult<Vec<OpenParticipant>> {
        let sql = self.pool.sql(
            "SELECT user_id, socket_id, display_name, server_id, joined_at FROM participants
             WHERE session_id = ? AND left_at IS NULL ORDER BY id",
        );
        let rows: Vec<OpenParticipantTuple> = with_pool!(self, p => sqlx::query_as(sql)
                .bind(session)
                .fetch_all(p)
                .await)?;
        Ok(rows
            .into_iter()
            .map(
                |(user_id, socket_id, display_name, server_id, joined_at_ms)| OpenParticipant {
                    user_id,
                    socket_id,
                    display_name,
                    server_id,
                    joined_at_ms,
                },
            )
            .collect())
    }

    pub async fn participants(&self, session: &str) -> ApiResult<Vec<Participant>> {
        let sql = self.pool.sql(
            "SELECT user_id, socket_id, display_name, joined_at, left_at FROM participants
             WHERE session_id = ? ORDER BY id",
        );
        let rows: Vec<ParticipantTuple> = with_pool!(self, p => sqlx::query_as(sql)
            .bind(session)
            .fetch_all(p)
            .await)?;
        Ok(rows
            .into_iter()
            .map(
                |(user_id, socket_id, display_name, joined_at, left_at)| Participant {
                    user_id,
                    socket_id: Some(socket_id),
                    display_name,
                    joined_at: Some(iso(joined_at)),
                    left_at: left_at.map(iso),
                },
            )
            .collect())
    }

    // -------------------------------------------------------------- locations

    /// Stores a fix. `shared_with` is the session and its group where the owner
    /// shared it; without one the fix is the owner's history only, shown nowhere.
    pub async fn add_location(
        &self,
        user: UserId,
        shared_with: Option<(&str, &str)>,
        fix: &jamz_proto::PositionFix,
    ) -> ApiResult<()> {
        let sql = self.pool.sql(
            "INSERT INTO locations (user_id, session_id, group_id, latitude, longitude, accuracy, speed, heading, timestamp, received_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        with_pool!(self, p => sqlx::query(sql)
            .bind(user)
            .bind(shared_with.map(|(session, _)| session))
            .bind(shared_with.map(|(_, group)| group))
            .bind(fix.latitude)
            .bind(fix.longitude)
            .bind(fix.accuracy)
            .bind(fix.speed)
            .bind(fix.heading)
            .bind(fix.timestamp)
            .bind(now_ms())
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Every member's last position shared with this group (never one shared
    /// elsewhere: being added to a group is no consent to be tracked in it).
    pub async fn latest_locations(&self, group: &str) -> ApiResult<Vec<Location>> {
        let sql = self.pool.sql(
            "SELECT l.user_id, l.latitude, l.longitude, l.accuracy, l.speed, l.heading, l.timestamp
             FROM group_members m
             JOIN locations l ON l.id = (SELECT MAX(id) FROM locations
                                         WHERE user_id = m.user_id AND group_id = m.group_id)
             WHERE m.group_id = ?
               AND NOT EXISTS (SELECT 1 FROM location_hidden h
                               WHERE h.group_id = m.group_id AND h.user_id = m.user_id)
             ORDER BY l.user_id",
        );
        let rows: Vec<LocationTuple> = with_pool!(self, p => sqlx::query_as(sql)
            .bind(group)
            .fetch_all(p)
            .await)?;
        Ok(rows
            .into_iter()
            .map(
                |(user_id, latitude, longitude, accuracy, speed, heading, timestamp)| Location {
                    user_id,
                    latitude,
                    longitude,
                    accuracy,
                    speed,
                    heading,
                    timestamp,
                },
            )
            .collect())
    }

    /// The member turned sharing off (`true`: left out of the latest positions) or
    /// shares live again (`false`).
    pub async fn set_location_hidden(
        &self,
        group: &str,
        user: UserId,
        hidden: bool,
    ) -> ApiResult<()> {
        if hidden {
            let sql = self.pool.sql(
                "INSERT INTO location_hidden (group_id, user_id, since) VALUES (?, ?, ?)
                 ON CONFLICT (group_id, user_id) DO UPDATE SET since = excluded.since",
            );
            with_pool!(self, p => sqlx::query(sql)
                .bind(group)
                .bind(user)
                .bind(now_ms())
                .execute(p)
                .await
                .map(|_| ()))?;
        } else {
            let sql = self
                .pool
                .sql("DELETE FROM location_hidden WHERE group_id = ? AND user_id = ?");
            with_pool!(self, p => sqlx::query(sql)
                .bind(group)
                .bind(user)
                .execute(p)
                .await
                .map(|_| ()))?;
        }
        Ok(())
    }

    /// Whether the database answers (`/readyz`).
    pub async fn ping(&self) -> ApiResult<()> {
        with_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()))?;
        Ok(())
    }

    /// Connections open and idle in the pool (`/metrics`).
    pub fn pool_figures(&self) -> (u32, usize) {
        self.pool.figures()
    }

    // ------------------------------------------------------------------ files

    pub async fn add_file(&self, key: &str, size: u64, mime: &str, by: UserId) -> ApiResult<()> {
        let sql = self.pool.sql(
            "INSERT INTO files (key, size, mime, uploaded_by, created_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
        );
        with_pool!(self, p => sqlx::query(sql)
            .bind(key)
            .bind(size as i64)
            .bind(mime)
            .bind(by)
            .bind(now_ms())
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    pub async fn file_mime(&self, key: &str) -> ApiResult<Option<String>> {
        let sql = self.pool.sql("SELECT mime FROM files WHERE key = ?");
        Ok(with_pool!(self, p => sqlx::query_scalar(sql)
            .bind(key)
            .fetch_optional(p)
            .await)?)
    }

    pub async fn add_track(&self, track: &Track, file_key: &str) -> ApiResult<()> {
        let json = serde_json::to_string(track)
            .map_err(|e| ApiError::Internal(format!("encode track: {e}")))?;
        let sql = self
            .pool
            .sql("INSERT INTO tracks (id, file_key, track_json, created_at) VALUES (?, ?, ?, ?)");
        with_pool!(self, p => sqlx::query(sql)
            .bind(&track.id)
            .bind(file_key)
            .bind(json)
            .bind(now_ms())
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Every test runs on both engines: `sqlite::NAME` on a file in a temporary
    //! directory, `postgres::NAME` on a fresh database of the test cluster (skipped,
    //! saying so, without one; docs/architecture.md, "Storage").
    use super::*;

    /// `mod sqlite` and `mod postgres`, each with one `#[tokio::test]` per named case.
    macro_rules! on_both_engines {
        ($($case:ident),* $(,)?) => {
            mod sqlite {
                $(
                    #[tokio::test]
                    async fn $case() {
                        let dir = tempfile::tempdir().unwrap();
                        super::$case(dir.path().join("jamz.db").into()).await;
                    }
                )*
            }
            mod postgres {
                $(
                    #[tokio::test]
                    async fn $case() {
                        let test = concat!("db::tests::postgres::", stringify!($case));
                        let Some(admin) = crate::test_postgres::admin_url(test) else {
                            return;
                        };
                        let url = crate::test_postgres::fresh_database(&admin).await;
                        super::$case(crate::db::DbLocation::Postgres(url)).await;
                    }
                )*
            }
        };
    }

    on_both_engines!(
        usernames_and_emails_are_unique_and_either_logs_in,
        membership_decides_which_groups_a_user_sees,
        a_group_has_one_session_whose_playlist_and_controller_persist,
        a_restart_closes_every_open_participation,
        the_latest_positions_are_each_members_newest_one_shared_with_that_group,
        files_tracks_and_hidden_locations_are_idempotent_where_they_must_be,
    );

    fn track(id: &str) -> Track {
        Track {
            id: id.into(),
            title: format!("Title {id}"),
            url: format!("http://cdn.example/{id}.mp3"),
            ..Track::default()
        }
    }

    async fn usernames_and_emails_are_unique_and_either_logs_in(at: DbLocation) {
        let db = Db::open(&at).await.unwrap();
        let kim = db.create_user("kim", "kim@e.test", "h1").await.unwrap();
        // Names and emails are one account whatever their ASCII case.
        for (name, email) in [
            ("kim", "other@e.test"),
            ("other", "kim@e.test"),
            ("KIM", "x@e.test"),
            ("y", "Kim@E.Test"),
        ] {
            let e = db.create_user(name, email, "h2").await.unwrap_err();
            assert!(matches!(e, ApiError::Conflict(_)), "{name} {email}: {e}");
        }
        for login in ["kim", "kim@e.test", "Kim", "KIM@E.TEST"] {
            let u = db.user_by_login(login).await.unwrap().unwrap();
            assert_eq!((u.id, u.password_hash.as_str()), (kim, "h1"), "{login}");
        }
        assert!(db.user_by_login("nobody").await.unwrap().is_none());
        assert_eq!(db.user_id_by_username("kIm").await.unwrap(), Some(kim));
        assert_eq!(db.token_version(kim).await.unwrap(), Some(0));
        assert_eq!(db.bump_token_version(kim).await.unwrap(), 1);
        assert_eq!(db.set_password(kim, "h3").await.unwrap(), 2);
        let u = db.user_by_id(kim).await.unwrap().unwrap();
        assert_eq!((u.password_hash.as_str(), u.token_version), ("h3", 2));
        assert_eq!(db.token_version(kim + 1000).await.unwrap(), None);
    }

    async fn membership_decides_which_groups_a_user_sees(at: DbLocation) {
        let db = Db::open(&at).await.unwrap();
        let ann = db.create_user("ann", "ann@e.test", "x").await.unwrap();
        let bob = db.create_user("bob", "bob@e.test", "x").await.unwrap();
        db.create_group("g1", "Trip", "", ann).await.unwrap();
        assert!(
            db.is_member("g1", ann).await.unwrap(),
            "the creator is a member"
        );
        assert!(!db.is_member("g1", bob).await.unwrap());
        assert!(db.groups_of(bob).await.unwrap().is_empty());
        db.add_member("g1", bob).await.unwrap();
        db.add_member("g1", bob).await.unwrap(); // twice: still one membership
        let seen: Vec<String> = db
            .groups_of(bob)
            .await
            .unwrap()
            .into_iter()
            .map(|g| g.id)
            .collect();
        assert_eq!(seen, ["g1"]);
        assert!(db.remove_member("g1", bob).await.unwrap());
        assert!(
            !db.remove_member("g1", bob).await.unwrap(),
            "no longer a member"
        );
        assert!(db.groups_of(bob).await.unwrap().is_empty());
    }

    async fn a_group_has_one_session_whose_playlist_and_controller_persist(at: DbLocation) {
        let db = Db::open(&at).await.unwrap();
        let ann = db.create_user("ann", "ann@e.test", "x").await.unwrap();
        db.create_group("g1", "Trip", "", ann).await.unwrap();
        let s = db.session_for_group("g1", ann).await.unwrap();
        assert_eq!(db.session_for_group("g1", ann).await.unwrap().id, s.id);
        db.save_playlist(&s.id, &[track("a"), track("b")])
            .await
            .unwrap();
        let e1 = db.set_controller(&s.id, ann, "sock1", None).await.unwrap();
        let e2 = db
            .set_controller(&s.id, ann, "sock2", Some("ab"))
            .await
            .unwrap();
        assert!(
            e2 > e1,
            "each change of control gets a later epoch: {e1} {e2}"
        );
        drop(db);
        // Reopened (as after a restart): everything is still there.
        let db = Db::open(&at).await.unwrap();
        let again = db.session(&s.id).await.unwrap().unwrap();
        let ids: Vec<&str> = again.playlist.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(again.controller_id, Some(ann));
        assert_eq!(again.controller_socket_id.as_deref(), Some("sock2"));
        assert_eq!(again.controller_epoch, e2);
        assert_eq!(again.controller_device_key.as_deref(), Some("ab"));
    }

    async fn a_restart_closes_every_open_participation(at: DbLocation) {
        let db = Db::open(&at).await.unwrap();
        let ann = db.create_user("ann", "ann@e.test", "x").await.unwrap();
        db.create_group("g1", "Trip", "", ann).await.unwrap();
        let s = db.session_for_group("g1", ann).await.unwrap().id;
        db.participant_joined(&s, ann, "one", Some("Ann"))
            .await
            .unwrap();
        db.participant_joined(&s, ann, "two", None).await.unwrap();
        db.participant_left(&s, "one").await.unwrap();
        assert_eq!(db.close_open_participations().await.unwrap(), 1);
        let p = db.participants(&s).await.unwrap();
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|p| p.left_at.is_some()), "{p:?}");
        assert_eq!(p[0].display_name.as_deref(), Some("Ann"));
    }

    fn fix(
        latitude: f64,
        longitude: f64,
        accuracy: Option<f64>,
        timestamp: f64,
    ) -> jamz_proto::PositionFix {
        jamz_proto::PositionFix {
            latitude,
            longitude,
            accuracy,
            speed: None,
            heading: None,
            timestamp,
        }
    }

    async fn the_latest_positions_are_each_members_newest_one_shared_with_that_group(
        at: DbLocation,
    ) {
        let db = Db::open(&at).await.unwrap();
        let ann = db.create_user("ann", "ann@e.test", "x").await.unwrap();
        let bob = db.create_user("bob", "bob@e.test", "x").await.unwrap();
        db.create_group("g1", "Trip", "", ann).await.unwrap();
        db.create_group("g2", "Other", "", ann).await.unwrap();
        db.add_member("g1", bob).await.unwrap();
        let s1 = db.session_for_group("g1", ann).await.unwrap().id;
        let s2 = db.session_for_group("g2", ann).await.unwrap().id;
        db.add_location(ann, Some((s1.as_str(), "g1")), &fix(1.0, 1.0, None, 1.0))
            .await
            .unwrap();
        db.add_location(
            ann,
            Some((s1.as_str(), "g1")),
            &fix(2.0, 2.0, Some(5.0), 2.0),
        )
        .await
        .unwrap();
        // Newer, but shared with another group or with nobody: not shown in g1.
        db.add_location(ann, Some((s2.as_str(), "g2")), &fix(3.0, 3.0, None, 3.0))
            .await
            .unwrap();
        db.add_location(ann, None, &fix(4.0, 4.0, None, 4.0))
            .await
            .unwrap();
        // Bob never shared with g1.
        db.add_location(bob, None, &fix(9.0, 9.0, None, 5.0))
            .await
            .unwrap();
        let latest = db.latest_locations("g1").await.unwrap();
        assert_eq!(latest.len(), 1, "{latest:?}");
        assert_eq!((latest[0].user_id, latest[0].latitude), (ann, 2.0));
        assert_eq!(latest[0].accuracy, Some(5.0));
        // A member removed from the group is no longer on its map.
        assert!(db.remove_member("g1", ann).await.unwrap());
        assert!(db.latest_locations("g1").await.unwrap().is_empty());
    }

    async fn files_tracks_and_hidden_locations_are_idempotent_where_they_must_be(at: DbLocation) {
        let db = Db::open(&at).await.unwrap();
        let ann = db.create_user("ann", "ann@e.test", "x").await.unwrap();
        let key = "ab".repeat(32);
        // The same content uploaded twice: one file.
        db.add_file(&key, 10, "audio/mpeg", ann).await.unwrap();
        db.add_file(&key, 10, "audio/flac", ann).await.unwrap();
        assert_eq!(
            db.file_mime(&key).await.unwrap().as_deref(),
            Some("audio/mpeg")
        );
        assert_eq!(db.file_mime("nothing").await.unwrap(), None);
        db.add_track(&track("t1"), &key).await.unwrap();
        assert!(
            db.add_track(&track("t1"), &key).await.is_err(),
            "a track id is never reused"
        );
        db.create_group("g1", "Trip", "", ann).await.unwrap();
        let s = db.session_for_group("g1", ann).await.unwrap().id;
        db.add_location(ann, Some((s.as_str(), "g1")), &fix(1.0, 2.0, None, 1.0))
            .await
            .unwrap();
        // Hidden twice (the second refreshes the first), then shown again.
        db.set_location_hidden("g1", ann, true).await.unwrap();
        db.set_location_hidden("g1", ann, true).await.unwrap();
        assert!(db.latest_locations("g1").await.unwrap().is_empty());
        db.set_location_hidden("g1", ann, false).await.unwrap();
        assert_eq!(db.latest_locations("g1").await.unwrap().len(), 1);
        assert_eq!(db.session_id_of_group("g1").await.unwrap(), Some(s));
        db.ping().await.unwrap();
    }
}
