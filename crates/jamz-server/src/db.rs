//! The database: SQLite through sqlx, migrations applied at start-up. Every
//! query the server runs lives here.
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use jamz_proto::{Group, Location, Participant, Track, UserId};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::clock::{iso, now_ms};
use crate::error::{ApiError, ApiResult};

/// How long a writer waits for another one before giving up; SQLite has one
/// writer at a time and a burst of joins must queue, not fail.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections in the pool: SQLite serializes writers anyway; a few readers help.
const MAX_CONNECTIONS: u32 = 4;

#[derive(Clone)]
pub struct Db {
    pool: SqlitePool,
}

pub struct UserRow {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub token_version: i64,
}

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
}

impl Db {
    pub async fn open(path: &Path) -> Result<Self, sqlx::Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::fsperm::create_private_dir(dir).map_err(sqlx::Error::Io)?;
        }
        // Created (or tightened) as 0600 before SQLite opens it: SQLite gives
        // the -wal and -shm files the database file's mode.
        crate::fsperm::private_file()
            .create(true)
            .append(true)
            .open(path)
            .map_err(sqlx::Error::Io)?;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            crate::fsperm::make_private(Path::new(&name)).map_err(sqlx::Error::Io)?;
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed change survives power loss too, not only kill -9.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
        Ok(Self { pool })
    }

    // ------------------------------------------------------------------ users

    pub async fn create_user(&self, username: &str, email: &str, hash: &str) -> ApiResult<UserId> {
        let res = sqlx::query(
            "INSERT INTO users (username, email, password_hash, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(username)
        .bind(email)
        .bind(hash)
        .bind(now_ms())
        .execute(&self.pool)
        .await;
        match res {
            Ok(r) => Ok(r.last_insert_rowid()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(ApiError::Conflict(
                "that username or email is already registered".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn user_by_login(&self, login: &str) -> ApiResult<Option<UserRow>> {
        let row = sqlx::query(
            "SELECT id, username, email, password_hash, token_version FROM users WHERE username = ? OR email = ?",
        )
        .bind(login)
        .bind(login)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Self::user_row))
    }

    pub async fn touch_login(&self, id: UserId) -> ApiResult<()> {
        sqlx::query("UPDATE users SET last_login = ? WHERE id = ?")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The user's current token version; `None` if there is no such user.
    pub async fn token_version(&self, id: UserId) -> ApiResult<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT token_version FROM users WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Revokes every token issued so far; returns the new version.
    pub async fn bump_token_version(&self, id: UserId) -> ApiResult<i64> {
        Ok(sqlx::query_scalar(
            "UPDATE users SET token_version = token_version + 1 WHERE id = ? RETURNING token_version",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// A new password hash; every token issued so far is revoked. Returns the new version.
    pub async fn set_password(&self, id: UserId, hash: &str) -> ApiResult<i64> {
        Ok(sqlx::query_scalar(
            "UPDATE users SET password_hash = ?, token_version = token_version + 1 WHERE id = ? RETURNING token_version",
        )
        .bind(hash)
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn user_by_id(&self, id: UserId) -> ApiResult<Option<UserRow>> {
        let row = sqlx::query(
            "SELECT id, username, email, password_hash, token_version FROM users WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Self::user_row))
    }

    fn user_row(r: sqlx::sqlite::SqliteRow) -> UserRow {
        UserRow {
            id: r.get(0),
            username: r.get(1),
            email: r.get(2),
            password_hash: r.get(3),
            token_version: r.get(4),
        }
    }

    pub async fn user_id_by_username(&self, username: &str) -> ApiResult<Option<UserId>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM users WHERE username = ?")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?,
        )
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
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO groups (id, name, description, creator_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(name)
        .bind(description)
        .bind(creator)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO group_members (group_id, user_id, added_at) VALUES (?, ?, ?)")
            .bind(id)
            .bind(creator)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn group(&self, id: &str) -> ApiResult<Option<Group>> {
        let row = sqlx::query(
            "SELECT id, name, description, creator_id, created_at FROM groups WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let members: Vec<UserId> = sqlx::query_scalar(
            "SELECT user_id FROM group_members WHERE group_id = ? ORDER BY added_at, user_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(Group {
            id: r.get(0),
            name: r.get(1),
            description: r.get(2),
            creator_id: r.get(3),
            members,
            created_at: Some(iso(r.get(4))),
        }))
    }

    pub async fn groups_of(&self, user: UserId) -> ApiResult<Vec<Group>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT g.id FROM groups g JOIN group_members m ON m.group_id = g.id
             WHERE m.user_id = ? ORDER BY g.created_at, g.id",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        let mut groups = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(g) = self.group(&id).await? {
                groups.push(g);
            }
        }
        Ok(groups)
    }

    pub async fn is_member(&self, group: &str, user: UserId) -> ApiResult<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM group_members WHERE group_id = ? AND user_id = ?",
        )
        .bind(group)
        .bind(user)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    pub async fn add_member(&self, group: &str, user: UserId) -> ApiResult<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT OR IGNORE INTO group_members (group_id, user_id, added_at) VALUES (?, ?, ?)",
        )
        .bind(group)
        .bind(user)
        .bind(now)
        .execute(&self.pool)
        .await?;
        sqlx::query("UPDATE groups SET updated_at = ? WHERE id = ?")
            .bind(now)
            .bind(group)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes `user` from the group. Returns whether they were a member.
    pub async fn remove_member(&self, group: &str, user: UserId) -> ApiResult<bool> {
        let r = sqlx::query("DELETE FROM group_members WHERE group_id = ? AND user_id = ?")
            .bind(group)
            .bind(user)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() > 0 {
            sqlx::query("UPDATE groups SET updated_at = ? WHERE id = ?")
                .bind(now_ms())
                .bind(group)
                .execute(&self.pool)
                .await?;
        }
        Ok(r.rows_affected() > 0)
    }

    /// The group's session id, if it has one.
    pub async fn session_id_of_group(&self, group: &str) -> ApiResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM sessions WHERE group_id = ?")
                .bind(group)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    // --------------------------------------------------------------- sessions

    fn session_row(r: sqlx::sqlite::SqliteRow) -> ApiResult<SessionRow> {
        let playlist_json: String = r.get(3);
        let playlist = jamz_proto::decode_str(&playlist_json).map_err(|e| {
            ApiError::Internal(format!(
                "stored playlist of session {}: {e}",
                r.get::<String, _>(0)
            ))
        })?;
        Ok(SessionRow {
            id: r.get(0),
            group_id: r.get(1),
            creator_id: r.get(2),
            playlist,
            controller_id: r.get(4),
            controller_socket_id: r.get(5),
            created_at: r.get(6),
            last_activity: r.get(7),
            // Written only by `set_controller`, which counts up from 0.
            controller_epoch: u64::try_from(r.get::<i64, _>(8)).unwrap_or(0),
            controller_device_key: r.get(9),
        })
    }

    const SESSION_COLUMNS: &'static str = "id, group_id, creator_id, playlist_json, controller_id, controller_socket_id, created_at, last_activity, controller_epoch, controller_device_key";

    pub async fn session(&self, id: &str) -> ApiResult<Option<SessionRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM sessions WHERE id = ?",
            Self::SESSION_COLUMNS
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(Self::session_row).transpose()
    }

    /// The group's session, created on first call (docs/protocol.md: GET
    /// /api/audio/sessions/group/:groupId).
    pub async fn session_for_group(&self, group: &str, creator: UserId) -> ApiResult<SessionRow> {
        let now = now_ms();
        sqlx::query(
            "INSERT OR IGNORE INTO sessions (id, group_id, creator_id, created_at, last_activity)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(group)
        .bind(creator)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM sessions WHERE group_id = ?",
            Self::SESSION_COLUMNS
        )))
        .bind(group)
        .fetch_one(&self.pool)
        .await?;
        Self::session_row(row)
    }

    pub async fn save_playlist(&self, session: &str, playlist: &[Track]) -> ApiResult<()> {
        let json = serde_json::to_string(playlist)
            .map_err(|e| ApiError::Internal(format!("encode playlist: {e}")))?;
        sqlx::query("UPDATE sessions SET playlist_json = ?, last_activity = ? WHERE id = ?")
            .bind(json)
            .bind(now_ms())
            .bind(session)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Makes `user` (on `socket_id`, with `device_key`) the DJ: a change of control,
    /// so the session's epoch grows by one. Returns the new epoch.
    pub async fn set_controller(
        &self,
        session: &str,
        user: UserId,
        socket_id: &str,
        device_key: Option<&str>,
    ) -> ApiResult<u64> {
        let epoch: i64 = sqlx::query_scalar(
            "UPDATE sessions SET controller_id = ?, controller_socket_id = ?, controller_device_key = ?,
                 controller_epoch = controller_epoch + 1, last_activity = ?
             WHERE id = ? RETURNING controller_epoch",
        )
        .bind(user)
        .bind(socket_id)
        .bind(device_key)
        .bind(now_ms())
        .bind(session)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(epoch).unwrap_or(0))
    }

    pub async fn touch_session(&self, session: &str) -> ApiResult<()> {
        sqlx::query("UPDATE sessions SET last_activity = ? WHERE id = ?")
            .bind(now_ms())
            .bind(session)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ----------------------------------------------------------- participants

    pub async fn participant_joined(
        &self,
        session: &str,
        user: UserId,
        socket_id: &str,
        display_name: Option<&str>,
    ) -> ApiResult<()> {
        sqlx::query(
            "INSERT INTO participants (session_id, user_id, socket_id, display_name, joined_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(session)
        .bind(user)
        .bind(socket_id)
        .bind(display_name)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        self.touch_session(session).await
    }

    pub async fn participant_left(&self, session: &str, socket_id: &str) -> ApiResult<()> {
        sqlx::query(
            "UPDATE participants SET left_at = ? WHERE session_id = ? AND socket_id = ? AND left_at IS NULL",
        )
        .bind(now_ms())
        .bind(session)
        .bind(socket_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Closes every open participation: after a crash nobody is connected.
    pub async fn close_open_participations(&self) -> ApiResult<u64> {
        let r = sqlx::query("UPDATE participants SET left_at = ? WHERE left_at IS NULL")
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    pub async fn participants(&self, session: &str) -> ApiResult<Vec<Participant>> {
        let rows = sqlx::query(
            "SELECT user_id, socket_id, display_name, joined_at, left_at FROM participants
             WHERE session_id = ? ORDER BY id",
        )
        .bind(session)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Participant {
                user_id: r.get(0),
                socket_id: Some(r.get(1)),
                display_name: r.get(2),
                joined_at: Some(iso(r.get(3))),
                left_at: r.get::<Option<i64>, _>(4).map(iso),
            })
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
        sqlx::query(
            "INSERT INTO locations (user_id, session_id, group_id, latitude, longitude, accuracy, speed, heading, timestamp, received_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every member's last position shared with this group (never one shared
    /// elsewhere: being added to a group is no consent to be tracked in it).
    pub async fn latest_locations(&self, group: &str) -> ApiResult<Vec<Location>> {
        let rows = sqlx::query(
            "SELECT l.user_id, l.latitude, l.longitude, l.accuracy, l.speed, l.heading, l.timestamp
             FROM group_members m
             JOIN locations l ON l.id = (SELECT MAX(id) FROM locations
                                         WHERE user_id = m.user_id AND group_id = m.group_id)
             WHERE m.group_id = ?
               AND NOT EXISTS (SELECT 1 FROM location_hidden h
                               WHERE h.group_id = m.group_id AND h.user_id = m.user_id)
             ORDER BY l.user_id",
        )
        .bind(group)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Location {
                user_id: r.get(0),
                latitude: r.get(1),
                longitude: r.get(2),
                accuracy: r.get(3),
                speed: r.get(4),
                heading: r.get(5),
                timestamp: r.get(6),
            })
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
        let q = if hidden {
            sqlx::query(
                "INSERT OR REPLACE INTO location_hidden (group_id, user_id, since) VALUES (?, ?, ?)",
            )
            .bind(group)
            .bind(user)
            .bind(now_ms())
        } else {
            sqlx::query("DELETE FROM location_hidden WHERE group_id = ? AND user_id = ?")
                .bind(group)
                .bind(user)
        };
        q.execute(&self.pool).await?;
        Ok(())
    }

    /// Whether the database answers (`/readyz`).
    pub async fn ping(&self) -> ApiResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Connections open and idle in the pool (`/metrics`).
    pub fn pool_figures(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    // ------------------------------------------------------------------ files

    pub async fn add_file(&self, key: &str, size: u64, mime: &str, by: UserId) -> ApiResult<()> {
        sqlx::query(
            "INSERT OR IGNORE INTO files (key, size, mime, uploaded_by, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(key)
        .bind(size as i64)
        .bind(mime)
        .bind(by)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn file_mime(&self, key: &str) -> ApiResult<Option<String>> {
        Ok(sqlx::query_scalar("SELECT mime FROM files WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn add_track(&self, track: &Track, file_key: &str) -> ApiResult<()> {
        let json = serde_json::to_string(track)
            .map_err(|e| ApiError::Internal(format!("encode track: {e}")))?;
        sqlx::query(
            "INSERT INTO tracks (id, file_key, track_json, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&track.id)
        .bind(file_key)
        .bind(json)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("jamz.db")).await.unwrap();
        (dir, db)
    }

    fn track(id: &str) -> Track {
        Track {
            id: id.into(),
            title: format!("Title {id}"),
            url: format!("http://cdn.example/{id}.mp3"),
            ..Track::default()
        }
    }

    #[tokio::test]
    async fn usernames_and_emails_are_unique_and_either_logs_in() {
        let (_dir, db) = db().await;
        let kim = db.create_user("kim", "kim@e.test", "h1").await.unwrap();
        for (name, email) in [("kim", "other@e.test"), ("other", "kim@e.test")] {
            let e = db.create_user(name, email, "h2").await.unwrap_err();
            assert!(matches!(e, ApiError::Conflict(_)), "{name} {email}: {e}");
        }
        for login in ["kim", "kim@e.test"] {
            let u = db.user_by_login(login).await.unwrap().unwrap();
            assert_eq!((u.id, u.password_hash.as_str()), (kim, "h1"), "{login}");
        }
        assert!(db.user_by_login("nobody").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn membership_decides_which_groups_a_user_sees() {
        let (_dir, db) = db().await;
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

    #[tokio::test]
    async fn a_group_has_one_session_whose_playlist_and_controller_persist() {
        let (dir, db) = db().await;
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
        let db = Db::open(&dir.path().join("jamz.db")).await.unwrap();
        let again = db.session(&s.id).await.unwrap().unwrap();
        let ids: Vec<&str> = again.playlist.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(again.controller_id, Some(ann));
        assert_eq!(again.controller_socket_id.as_deref(), Some("sock2"));
        assert_eq!(again.controller_epoch, e2);
        assert_eq!(again.controller_device_key.as_deref(), Some("ab"));
    }

    #[tokio::test]
    async fn a_restart_closes_every_open_participation() {
        let (_dir, db) = db().await;
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

    #[tokio::test]
    async fn the_latest_positions_are_each_members_newest_one_shared_with_that_group() {
        let (_dir, db) = db().await;
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
}
