//! MPRIS 2.2 (<https://specifications.freedesktop.org/mpris-spec/latest/>) on the session
//! bus, through zbus (the D-Bus crate the keyring already builds): the root interface
//! and `org.mpris.MediaPlayer2.Player` at `/org/mpris/MediaPlayer2`. No track list, no
//! `OpenUri`: the playlist is the group's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};
use zbus::{fdo, interface};

use super::{IDENTITY, Key, NowPlaying};
use crate::clock::LocalClock;
use crate::control::NodeEvent;
use crate::runtime::Commander;

const PATH: &str = "/org/mpris/MediaPlayer2";
/// MPRIS's "no track" id.
const NO_TRACK: &str = "/org/mpris/MediaPlayer2/TrackList/NoTrack";

type Shared = Arc<Mutex<NowPlaying>>;

fn lock(state: &Shared) -> MutexGuard<'_, NowPlaying> {
    // A panic while holding the lock cannot leave the state half-written in a way that
    // matters for a display: go on with it.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The player on the bus, and the task that signals its changes.
#[derive(Debug)]
pub(super) struct Mpris {
    events: mpsc::UnboundedSender<NodeEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Mpris {
    fn drop(&mut self) {
        // The task owns the connection: ending it releases the name.
        self.task.abort();
    }
}

impl Mpris {
    pub(super) async fn start(
        now: NowPlaying,
        commander: Commander,
        clock: LocalClock,
        cache_dir: std::path::PathBuf,
    ) -> Result<Mpris, zbus::Error> {
        let state = Arc::new(Mutex::new(now));
        let name = format!(
            "org.mpris.MediaPlayer2.trafficjamz.instance{}",
            std::process::id()
        );
        let connection = zbus::connection::Builder::session()?
            .name(name.as_str())?
            .serve_at(PATH, Root)?
            .serve_at(
                PATH,
                Player {
                    state: Arc::clone(&state),
                    commander,
                    clock,
                },
            )?
            .build()
            .await?;
        tracing::info!(%name, "media session on the session bus (MPRIS)");
        let player = connection
            .object_server()
            .interface::<_, Player>(PATH)
            .await?;
        let (events, mut rx) = mpsc::unbounded_channel::<NodeEvent>();
        let task = tokio::spawn(async move {
            let mut awake = KeepAwake::default();
            while let Some(event) = rx.recv().await {
                let mut changed = lock(&state).apply(&event);
                changed.metadata |= look_for_cover(&state, &cache_dir).await;
                if !changed.any() {
                    continue;
                }
                if changed.status {
                    let playing = lock(&state).status() == super::Status::Playing;
                    awake.playing(&connection, playing).await;
                }
                let emitter = player.signal_emitter();
                let iface = player.get().await;
                let r = async {
                    if changed.metadata {
                        iface.metadata_changed(emitter).await?;
                    }
                    if changed.status {
                        iface.playback_status_changed(emitter).await?;
                    }
                    if changed.controls || changed.metadata {
                        iface.can_play_changed(emitter).await?;
                        iface.can_pause_changed(emitter).await?;
                        iface.can_go_next_changed(emitter).await?;
                        iface.can_go_previous_changed(emitter).await?;
                        iface.can_seek_changed(emitter).await?;
                    }
                    if changed.seeked {
                        let position = iface.position_us();
                        Player::seeked(emitter, position).await?;
                    }
                    Ok::<(), zbus::Error>(())
                }
                .await;
                if let Err(e) = r {
                    tracing::debug!("MPRIS signal: {e}");
                }
            }
        });
        Ok(Mpris { events, task })
    }

    pub(super) fn event(&self, event: &NodeEvent) {
        if matches!(event, NodeEvent::Session(_)) {
            // The task ends only with `self`.
            let _ = self.events.send(event.clone());
        }
    }
}

/// Looks for the current track's cover in the cache once its file is there (reading a
/// file's tags blocks); true when the picture shown changed.
async fn look_for_cover(state: &Shared, cache_dir: &std::path::Path) -> bool {
    let Some(sha) = lock(state).cover_wanted().map(str::to_owned) else {
        return false;
    };
    let dir = cache_dir.to_owned();
    let key = sha.clone();
    let found = tokio::task::spawn_blocking(move || crate::covers::cover_file(&dir, &key)).await;
    let file = match found {
        Ok(Ok(crate::covers::Cover::NotCached)) => return false,
        Ok(Ok(crate::covers::Cover::Picture(path))) => Some(path),
        Ok(Ok(crate::covers::Cover::Nothing)) => None,
        Ok(Err(e)) => {
            tracing::debug!(%sha, "no cover for the media session: {e}");
            None
        }
        Err(e) => {
            tracing::debug!(%sha, "no cover for the media session: {e}");
            None
        }
    };
    lock(state).found_cover(&sha, file.as_deref())
}

/// Keep-awake while the session plays: the desktop's screen saver and idle sleep held
/// off through `org.freedesktop.ScreenSaver.Inhibit` on the session bus (GNOME, KDE,
/// Xfce and others answer it), released on pause. The inhibition ends with the
/// connection too, so a node that stops or dies never leaves the screen awake.
#[derive(Default)]
struct KeepAwake {
    cookie: Option<u32>,
    /// Said once: a desktop without the service.
    warned: bool,
}

const SCREEN_SAVER: &str = "org.freedesktop.ScreenSaver";

impl KeepAwake {
    async fn playing(&mut self, connection: &zbus::Connection, playing: bool) {
        let result = match (playing, self.cookie) {
            (true, None) => {
                let body = (IDENTITY, "a session is playing");
                match screen_saver(connection, "Inhibit", &body).await {
                    Ok(reply) => reply.body().deserialize::<u32>().map(|cookie| {
                        tracing::info!(cookie, "keeping the screen awake while playing");
                        self.cookie = Some(cookie);
                    }),
                    Err(e) => Err(e),
                }
            }
            (false, Some(cookie)) => {
                self.cookie = None;
                tracing::info!(cookie, "paused: the screen may sleep again");
                screen_saver(connection, "UnInhibit", &(cookie,))
                    .await
                    .map(drop)
            }
            _ => Ok(()),
        };
        if let Err(e) = result
            && !std::mem::replace(&mut self.warned, true)
        {
            tracing::warn!("cannot keep the screen awake while playing: {e}");
        }
    }
}

/// One call to the desktop's screen saver service, bounded (a service that never
/// answers must not hold up the player's signals).
async fn screen_saver<B>(
    connection: &zbus::Connection,
    method: &str,
    body: &B,
) -> Result<zbus::message::Message, zbus::Error>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
{
    tokio::time::timeout(
        std::time::Duration::from_secs(2),
        connection.call_method(
            Some(SCREEN_SAVER),
            "/org/freedesktop/ScreenSaver",
            Some(SCREEN_SAVER),
            method,
            body,
        ),
    )
    .await
    .map_err(|_| zbus::Error::Failure(format!("{SCREEN_SAVER} did not answer")))?
}

/// `org.mpris.MediaPlayer2`: who the player is.
struct Root;

#[interface(name = "org.mpris.MediaPlayer2")]
impl Root {
    /// The app's window is the face's to raise (`CanRaise` is false).
    fn raise(&self) {}

    /// Leaving is the face's to do (`CanQuit` is false).
    fn quit(&self) {}

    #[zbus(property)]
    fn can_quit(&self) -> bool {
        false
    }

    #[zbus(property)]
    fn can_raise(&self) -> bool {
        false
    }

    #[zbus(property)]
    fn has_track_list(&self) -> bool {
        false
    }

    #[zbus(property)]
    fn identity(&self) -> &str {
        IDENTITY
    }

    #[zbus(property)]
    fn desktop_entry(&self) -> &str {
        "trafficjamz"
    }

    #[zbus(property)]
    fn supported_uri_schemes(&self) -> Vec<String> {
        Vec::new()
    }

    #[zbus(property)]
    fn supported_mime_types(&self) -> Vec<String> {
        Vec::new()
    }
}

/// `org.mpris.MediaPlayer2.Player`: now playing, and the keys as node commands.
struct Player {
    state: Shared,
    commander: Commander,
    clock: LocalClock,
}

impl Player {
    fn key(&self, key: Key) -> fdo::Result<()> {
        let cmd = lock(&self.state).command(key, self.clock.now_ms());
        tracing::debug!(cmd = cmd.name(), "media key");
        self.commander
            .send(cmd)
            .map_err(|e| fdo::Error::Failed(e.to_string()))
    }

    fn position_us(&self) -> i64 {
        seconds_to_us(lock(&self.state).position_at(self.clock.now_ms()))
    }
}

fn seconds_to_us(s: f64) -> i64 {
    // Saturating cast: a position is finite and far below i64::MAX µs.
    (s * 1e6) as i64
}

/// The MPRIS track id of a track id: an object path (ids may hold any character).
fn track_path(id: &str) -> OwnedObjectPath {
    let hex: String = id.bytes().map(|b| format!("{b:02x}")).collect();
    ObjectPath::try_from(format!("/app/trafficjamz/track/t{hex}"))
        .map(OwnedObjectPath::from)
        .unwrap_or_else(|_| no_track())
}

fn no_track() -> OwnedObjectPath {
    OwnedObjectPath::from(ObjectPath::from_static_str_unchecked(NO_TRACK))
}

fn owned(v: Value<'_>) -> Option<OwnedValue> {
    OwnedValue::try_from(v).ok()
}

#[interface(name = "org.mpris.MediaPlayer2.Player")]
impl Player {
    fn next(&self) -> fdo::Result<()> {
        self.key(Key::Next)
    }

    fn previous(&self) -> fdo::Result<()> {
        self.key(Key::Previous)
    }

    fn pause(&self) -> fdo::Result<()> {
        self.key(Key::Pause)
    }

    fn play_pause(&self) -> fdo::Result<()> {
        self.key(Key::PlayPause)
    }

    fn stop(&self) -> fdo::Result<()> {
        self.key(Key::Stop)
    }

    fn play(&self) -> fdo::Result<()> {
        self.key(Key::Play)
    }

    /// `offset`: µs from the position now.
    fn seek(&self, offset: i64) -> fdo::Result<()> {
        self.key(Key::SeekBy(offset as f64 / 1e6))
    }

    /// Ignored unless `track_id` is the track now playing (as MPRIS asks).
    fn set_position(&self, track_id: ObjectPath<'_>, position: i64) -> fdo::Result<()> {
        let current = lock(&self.state).track_id().map(track_path);
        if current.as_ref().map(|p| p.as_str()) != Some(track_id.as_str()) || position < 0 {
            return Ok(());
        }
        self.key(Key::SeekTo(position as f64 / 1e6))
    }

    fn open_uri(&self, _uri: &str) -> fdo::Result<()> {
        Err(fdo::Error::NotSupported(
            "add tracks from the app or `jamz node`".into(),
        ))
    }

    #[zbus(signal)]
    async fn seeked(emitter: &SignalEmitter<'_>, position: i64) -> zbus::Result<()>;

    #[zbus(property)]
    fn playback_status(&self) -> &'static str {
        lock(&self.state).status().as_str()
    }

    #[zbus(property)]
    fn rate(&self) -> f64 {
        1.0
    }

    /// Only 1.0: the group's timeline runs at one speed.
    #[zbus(property)]
    fn set_rate(&self, _rate: f64) {}

    #[zbus(property)]
    fn minimum_rate(&self) -> f64 {
        1.0
    }

    #[zbus(property)]
    fn maximum_rate(&self) -> f64 {
        1.0
    }

    #[zbus(property)]
    fn metadata(&self) -> HashMap<String, OwnedValue> {
        let state = lock(&self.state);
        let mut m = HashMap::new();
        let Some(id) = state.track_id() else {
            if let Some(v) = owned(Value::from(no_track())) {
                m.insert("mpris:trackid".to_owned(), v);
            }
            return m;
        };
        let mut put = |key: &str, v: Value<'_>| {
            if let Some(v) = owned(v) {
                m.insert(key.to_owned(), v);
            }
        };
        put("mpris:trackid", Value::from(track_path(id)));
        if let Some(t) = state.current() {
            put("xesam:title", Value::from(t.title.clone()));
            if !t.artist.is_empty() {
                put("xesam:artist", Value::from(vec![t.artist.clone()]));
            }
            if let Some(d) = t.duration.filter(|d| d.is_finite() && *d > 0.0) {
                put("mpris:length", Value::from(seconds_to_us(d)));
            }
            if let Some(art) = state.art_url() {
                put("mpris:artUrl", Value::from(art.to_owned()));
            }
            if !t.url.is_empty() {
                put("xesam:url", Value::from(t.url.clone()));
            }
        }
        m
    }

    #[zbus(property)]
    fn volume(&self) -> f64 {
        lock(&self.state).volume()
    }

    /// This device's volume (the node's `volume`), not the group's.
    #[zbus(property)]
    fn set_volume(&self, level: f64) -> zbus::Result<()> {
        let cmd = lock(&self.state).set_volume(level);
        self.commander
            .send(cmd)
            .map_err(|e| zbus::Error::Failure(e.to_string()))
    }

    /// µs into the track now (asked for, never signalled, as MPRIS says).
    #[zbus(property(emits_changed_signal = "false"))]
    fn position(&self) -> i64 {
        self.position_us()
    }

    // Next, previous and seek are enabled for the DJ only (the engine refuses the others);
    // `CanControl` stays true so that the OS still shows them (greyed out) and the volume
    // works. `CanPlay`/`CanPause` mean "there is a track" (MPRIS: clients such as playerctl
    // and desktop widgets hide a player's now playing without them), so a rider's play key
    // reaches the engine, which refuses it with its `error` event.
    #[zbus(property)]
    fn can_go_next(&self) -> bool {
        let s = lock(&self.state);
        s.is_dj() && s.has_tracks()
    }

    #[zbus(property)]
    fn can_go_previous(&self) -> bool {
        let s = lock(&self.state);
        s.is_dj() && s.has_tracks()
    }

    #[zbus(property)]
    fn can_play(&self) -> bool {
        lock(&self.state).has_tracks()
    }

    #[zbus(property)]
    fn can_pause(&self) -> bool {
        lock(&self.state).has_tracks()
    }

    #[zbus(property)]
    fn can_seek(&self) -> bool {
        let s = lock(&self.state);
        s.is_dj() && s.current().is_some()
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn can_control(&self) -> bool {
        true
    }
}
