//! The desktop's own location service, through `robius-location`: the XDG desktop portal
//! or GeoClue over D-Bus on Linux (the portal first; GeoClue directly when the session bus
//! has no portal), CoreLocation on macOS, `Windows.Devices.Geolocation` on Windows.
//!
//! `robius-location`'s calls block on the service (a permission prompt, a D-Bus round trip),
//! so the manager lives on a thread of its own and its callbacks come over a channel.
//! On macOS and Windows the crate wants its calls on the main thread: a node started
//! elsewhere gets [`DesktopError::NotMainThread`] in words.

use std::sync::mpsc as std_mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use robius_location::{Access, Accuracy, Handler, Location, Manager};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

use crate::filter::SkipCounts;
use crate::fix::Fix;
use crate::source::{
    Backoff, EventFuture, Gate, GeoError, LocationSource, SourceEvent, SourceStatus,
};

/// The ID the service knows the app by (GeoClue's `DesktopId`, what its agent shows and
/// its configuration allows): the app's identifier (src-tauri/tauri.conf.json).
pub const DESKTOP_ID: &str = "app.trafficjamz.client";

/// How long `desktop` waits for a first position before it says so (an `error` event
/// through the node) and waits on: a Wi-Fi or network position takes seconds, a GPS cold
/// start under a roof can take minutes.
pub const FIRST_FIX_WAIT: Duration = Duration::from_secs(60);

/// After the service went away (GeoClue restarted), the first wait before asking again.
pub const RESTART_MIN: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
pub const RESTART_MAX: Duration = Duration::from_secs(30);

/// Why the desktop's location service gives no position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DesktopError {
    #[error(
        "no location service on this computer (Linux: GeoClue or the XDG desktop portal over D-Bus, Debian package geoclue-2.0)"
    )]
    NoService,
    #[error(
        "permission denied: the location service (its agent, a portal prompt or the privacy settings) refused `{DESKTOP_ID}`"
    )]
    Denied,
    #[error("the location service gave no position within {} s", .0.as_secs())]
    NoFix(Duration),
    /// Linux, outside a desktop session (a system service, ssh): robius-location 0.3.1 needs
    /// the session bus to decide between the portal and GeoClue, and with zbus 5.12 and
    /// later it does not see a missing one as missing (it answers `Unknown`).
    #[error(
        "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS, $XDG_RUNTIME_DIR/bus): the desktop location service is reached from a desktop session"
    )]
    NoSessionBus,
    #[error("the location service does not answer (temporarily unavailable)")]
    Unavailable,
    #[error("the location service needs the network, which is unreachable")]
    Network,
    #[error("the location service must be started from the app's main thread on this system")]
    NotMainThread,
    #[error("the location service failed (an error it does not name)")]
    Failed,
}

impl From<robius_location::Error> for DesktopError {
    fn from(e: robius_location::Error) -> Self {
        use robius_location::Error as E;
        match e {
            E::AuthorizationDenied => DesktopError::Denied,
            E::PermanentlyUnavailable => DesktopError::NoService,
            E::TemporarilyUnavailable => DesktopError::Unavailable,
            E::Network => DesktopError::Network,
            E::NotMainThread => DesktopError::NotMainThread,
            E::AndroidEnvironment | E::Unknown => DesktopError::Failed,
        }
    }
}

/// What the manager's thread and callbacks report.
#[derive(Debug)]
enum Msg {
    Fix(Fix),
    Error(DesktopError),
}

/// The manager's callbacks: every position and error onto the channel.
struct Forward(mpsc::UnboundedSender<Msg>);

impl Handler for Forward {
    fn handle(&self, location: Location<'_>) {
        let msg = match fix_of(&location) {
            Some(fix) => Msg::Fix(fix),
            None => Msg::Error(DesktopError::Failed),
        };
        let _ = self.0.send(msg);
    }

    fn error(&self, error: robius_location::Error) {
        let _ = self.0.send(Msg::Error(error.into()));
    }
}

/// A position as a [`Fix`]; `None` without coordinates. Unknown speed and heading (GeoClue
/// says -1) are `None`; a position without a time gets the time it arrived.
fn fix_of(location: &Location<'_>) -> Option<Fix> {
    let c = location.coordinates().ok()?;
    let known = |v: Option<f64>| v.filter(|x| x.is_finite() && *x >= 0.0);
    let at = location.time().unwrap_or_else(|_| SystemTime::now());
    let timestamp = at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0);
    Some(Fix {
        latitude: c.latitude,
        longitude: c.longitude,
        accuracy: None,
        speed: known(location.speed().ok()),
        heading: known(location.bearing().ok()).filter(|h| *h < 360.0),
        altitude: location.altitude().ok().filter(|a| a.is_finite()),
        timestamp,
    })
}

/// Whether this process has no D-Bus session bus to reach (Linux): no address and no
/// `$XDG_RUNTIME_DIR/bus`, or a `unix:path=` address whose socket is not there.
fn no_session_bus() -> bool {
    if !cfg!(target_os = "linux") {
        return false;
    }
    match std::env::var("DBUS_SESSION_BUS_ADDRESS") {
        Ok(a) if !a.is_empty() => a.split(';').all(|one| {
            one.strip_prefix("unix:path=")
                .map(|rest| rest.split(',').next().unwrap_or(rest))
                .is_some_and(|path| !std::path::Path::new(path).exists())
        }),
        _ => std::env::var_os("XDG_RUNTIME_DIR")
            .is_none_or(|d| !std::path::Path::new(&d).join("bus").exists()),
    }
}

/// What the source asks of the manager's thread.
enum Ask {
    /// Start the updates again (after the service went away and came back).
    Restart,
}

/// Runs the manager on its own thread until the source is dropped.
fn spawn_manager(tx: mpsc::UnboundedSender<Msg>) -> std_mpsc::Sender<Ask> {
    let (ask_tx, ask_rx) = std_mpsc::channel::<Ask>();
    let errors = tx.clone();
    let run = move || {
        let start = |m: &mut Manager| -> Result<(), robius_location::Error> {
            // CoreLocation and Windows want the request before the updates. On Linux the
            // request (for precise positions: GeoClue's EXACT level, the one its GPS and
            // NMEA sources give) comes after: made first, it starts GeoClue's client and
            // stops it again, and GeoClue 2.6's NMEA source can lose its socket in that
            // stop (its fixes then never come); made after, it replaces the running
            // client with a precise one, which stays started.
            if cfg!(target_os = "linux") {
                m.start_updates()?;
                m.request_authorization(Access::Foreground, Accuracy::Precise)
            } else {
                m.request_authorization(Access::Foreground, Accuracy::Precise)?;
                m.start_updates()
            }
        };
        let mut manager = match Manager::new_with_desktop_id(Forward(tx), DESKTOP_ID) {
            Ok(m) => m,
            Err(e) => {
                let e = match DesktopError::from(e) {
                    DesktopError::Failed if no_session_bus() => DesktopError::NoSessionBus,
                    e => e,
                };
                let _ = errors.send(Msg::Error(e));
                return;
            }
        };
        if let Err(e) = start(&mut manager) {
            let _ = errors.send(Msg::Error(e.into()));
            return;
        }
        // Until the source is dropped (its sender with it).
        while let Ok(Ask::Restart) = ask_rx.recv() {
            if let Err(e) = start(&mut manager) {
                let _ = errors.send(Msg::Error(e.into()));
            }
        }
        let _ = manager.stop_updates();
    };
    // A thread that cannot start drops the channel's sender with it: the source then
    // ends with `DesktopError::Failed`.
    if let Err(e) = std::thread::Builder::new()
        .name("desktop-location".into())
        .spawn(run)
    {
        tracing::warn!(error = %e, "cannot start the desktop location thread");
    }
    ask_tx
}

/// Positions from the desktop's location service.
///
/// Before the first position, an error from the service ends the source
/// ([`GeoError::Desktop`]); no position within the first-fix wait is reported as
/// [`SourceStatus::Disconnected`] and the source waits on. After it, the service going
/// away is a [`SourceStatus::Disconnected`] and the source asks again with capped backoff;
/// a refusal (the user revoked the permission) ends it.
pub struct DesktopSource {
    rx: mpsc::UnboundedReceiver<Msg>,
    ask: std_mpsc::Sender<Ask>,
    first_fix_wait: Duration,
    deadline: Option<Instant>,
    had_fix: bool,
    pending: Option<Fix>,
    retry_at: Option<Instant>,
    backoff: Backoff,
    gate: Gate,
}

impl DesktopSource {
    /// Starts asking the service (a permission prompt may show on the desktop).
    pub fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let ask = spawn_manager(tx);
        DesktopSource {
            rx,
            ask,
            first_fix_wait: FIRST_FIX_WAIT,
            deadline: None,
            had_fix: false,
            pending: None,
            retry_at: None,
            backoff: Backoff::new(RESTART_MIN, RESTART_MAX),
            gate: Gate::default(),
        }
    }

    /// How long to wait for a first position before saying so (default [`FIRST_FIX_WAIT`]).
    pub fn with_first_fix_wait(mut self, wait: Duration) -> Self {
        self.first_fix_wait = wait;
        self
    }

    /// Starts the service and waits up to `wait` for its first position: the source with
    /// that position as its first event, or why there is none. `auto` probes with this.
    pub async fn probe(wait: Duration) -> Result<DesktopSource, DesktopError> {
        let mut source = DesktopSource::start();
        let deadline = Instant::now() + wait;
        match timeout_at(deadline, source.rx.recv()).await {
            Err(_) => Err(DesktopError::NoFix(wait)),
            Ok(None) => Err(DesktopError::Failed),
            Ok(Some(Msg::Error(e))) => Err(e),
            Ok(Some(Msg::Fix(fix))) => {
                source.pending = Some(fix);
                Ok(source)
            }
        }
    }

    async fn next(&mut self) -> Result<SourceEvent, GeoError> {
        if let Some(fix) = self.pending.take() {
            self.had_fix = true;
            return Ok(self.gate.pass(fix));
        }
        if let Some(at) = self.retry_at.take() {
            tokio::time::sleep_until(at).await;
            if self.ask.send(Ask::Restart).is_err() {
                return Err(DesktopError::Failed.into());
            }
        }
        let deadline = if self.had_fix {
            None
        } else {
            Some(
                *self
                    .deadline
                    .get_or_insert_with(|| Instant::now() + self.first_fix_wait),
            )
        };
        let msg = match deadline {
            Some(d) => match timeout_at(d, self.rx.recv()).await {
                Ok(m) => m,
                Err(_) => {
                    self.deadline = Some(Instant::now() + self.first_fix_wait);
                    let reason = DesktopError::NoFix(self.first_fix_wait).to_string();
                    return Ok(SourceEvent::Status(SourceStatus::Disconnected {
                        reason,
                        retry_in: self.first_fix_wait,
                    }));
                }
            },
            None => self.rx.recv().await,
        };
        match msg {
            Some(Msg::Fix(fix)) => {
                self.backoff.reset();
                self.had_fix = true;
                Ok(self.gate.pass(fix))
            }
            // The service went away after it had answered: ask again later.
            Some(Msg::Error(e @ (DesktopError::Unavailable | DesktopError::Network)))
                if self.had_fix =>
            {
                let retry_in = self.backoff.step();
                self.retry_at = Some(Instant::now() + retry_in);
                Ok(SourceEvent::Status(SourceStatus::Disconnected {
                    reason: e.to_string(),
                    retry_in,
                }))
            }
            Some(Msg::Error(e)) => Err(e.into()),
            None => Err(DesktopError::Failed.into()),
        }
    }
}

impl LocationSource for DesktopSource {
    fn next_event(&mut self) -> EventFuture<'_> {
        Box::pin(self.next())
    }

    fn counts(&self) -> SkipCounts {
        self.gate.counts
    }

    fn describe(&self) -> String {
        "desktop".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_error_has_words() {
        use robius_location::Error as E;
        for (e, words) in [
            (E::AuthorizationDenied, "permission denied"),
            (E::PermanentlyUnavailable, "no location service"),
            (E::TemporarilyUnavailable, "does not answer"),
            (E::Network, "network"),
            (E::NotMainThread, "main thread"),
            (E::Unknown, "failed"),
        ] {
            let msg = GeoError::from(DesktopError::from(e)).to_string();
            assert!(msg.contains(words), "{e:?}: {msg}");
            assert!(msg.starts_with("desktop location service: "), "{msg}");
        }
        assert_eq!(
            DesktopError::NoFix(Duration::from_secs(60)).to_string(),
            "the location service gave no position within 60 s"
        );
    }
}
