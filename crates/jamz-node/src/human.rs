//! The node for people (`jamz node` without `--json`): events told in words, one line per
//! meaningful change, a one-line status, and word commands (`play`, `seek 42`, `volume 80`).
//! Pure: the face decides where lines go and when to ask for a status (see
//! docs/node-control.md, "By hand").

use std::collections::HashMap;

use jamz_proto::{Track, UserId};
use jamz_sync::location::LocationEvent;

use crate::control::{Command, NodeCommand, NodeEvent, Notification, PeerState, StatusView, Tier};

/// What `help` prints.
pub const HELP: &str = "\
commands: play [TRACK] | pause | next | previous | seek SECONDS|M:SS | volume 0-100 |
          dj (take control) | add FILE | add YOUTUBE-LINK | youtube LINK|ID | calibrate |
          status | help | quit   (or a JSON command line)";

/// Whether `text` starts like a YouTube link (`https://youtu.be/...`, `youtube.com/...`,
/// `music.youtube.com/...`): `add` then means the video, not a file of that name.
fn looks_like_youtube_link(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let host = lower
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    [
        "youtu.be/",
        "youtube.com/",
        "www.youtube.com/",
        "m.youtube.com/",
        "music.youtube.com/",
    ]
    .iter()
    .any(|prefix| host.starts_with(prefix))
}

/// What the single keys do on a terminal (`help` prints it after [`HELP`] there).
pub const KEYS_HELP: &str = "\
keys:     space play/pause | n next | p previous | s status | q quit | ? help |
          : type a command (Enter runs it, Esc cancels)";

/// What a key pressed on a terminal asks.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyAction {
    /// A typed line, to read as a word command.
    Line(String),
    /// Play when paused, pause when playing.
    TogglePlay,
    /// The command being typed changed (`None`: no longer typing): show it.
    Typing(Option<String>),
    /// Print the help.
    Help,
    /// Nothing to do (an unbound key).
    Nothing,
}

/// Reads a terminal key by key (non-canonical mode): single keys act at once, and `:`
/// opens a command line that Enter submits, as in cmus or vim. Word commands start with
/// the same letters as the keys (`play`, `previous`), so typing needs its own mode.
#[derive(Debug, Default)]
pub struct KeyReader {
    typing: Option<Vec<u8>>,
    /// The rest of an escape sequence (an arrow key) is skipped.
    in_escape: bool,
}

const ESC: u8 = 0x1b;
const CTRL_D: u8 = 0x04;
const CTRL_U: u8 = 0x15;
const BACKSPACE: u8 = 0x7f;
const CTRL_H: u8 = 0x08;

impl KeyReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a command is being typed.
    pub fn typing(&self) -> bool {
        self.typing.is_some()
    }

    /// What one byte from the terminal asks.
    pub fn key(&mut self, byte: u8) -> KeyAction {
        if self.in_escape {
            // CSI sequences end with a byte in 0x40..=0x7e; `ESC [` continues them.
            if byte != b'[' && (0x40..=0x7e).contains(&byte) {
                self.in_escape = false;
            }
            return KeyAction::Nothing;
        }
        let Some(typed) = self.typing.as_mut() else {
            return match byte {
                b' ' => KeyAction::TogglePlay,
                b'n' => KeyAction::Line("next".into()),
                b'p' => KeyAction::Line("previous".into()),
                b's' => KeyAction::Line("status".into()),
                b'q' | CTRL_D => KeyAction::Line("quit".into()),
                b'?' | b'h' => KeyAction::Help,
                b':' | b'/' => {
                    self.typing = Some(Vec::new());
                    KeyAction::Typing(Some(String::new()))
                }
                ESC => {
                    self.in_escape = true;
                    KeyAction::Nothing
                }
                _ => KeyAction::Nothing,
            };
        };
        match byte {
            b'\r' | b'\n' => {
                let line = String::from_utf8_lossy(typed).trim().to_owned();
                self.typing = None;
                if line.is_empty() {
                    KeyAction::Typing(None)
                } else {
                    KeyAction::Line(line)
                }
            }
            ESC => {
                self.typing = None;
                KeyAction::Typing(None)
            }
            BACKSPACE | CTRL_H => {
                // One character, not one byte, of UTF-8.
                while let Some(b) = typed.pop() {
                    if b & 0xc0 != 0x80 {
                        break;
                    }
                }
                self.shown()
            }
            CTRL_U => {
                typed.clear();
                self.shown()
            }
            b if b < 0x20 => KeyAction::Nothing,
            b => {
                if typed.len() < crate::control::MAX_COMMAND_LINE {
                    typed.push(b);
                }
                self.shown()
            }
        }
    }

    fn shown(&self) -> KeyAction {
        KeyAction::Typing(
            self.typing
                .as_ref()
                .map(|t| String::from_utf8_lossy(t).into_owned()),
        )
    }
}

/// What a word line asks.
#[derive(Debug, Clone, PartialEq)]
pub enum WordLine {
    Command(NodeCommand),
    /// Print [`HELP`].
    Help,
}

/// Reads one line typed by a person. A line that starts with `{` is a JSON command
/// (docs/node-control.md), so scripts work in this mode too.
pub fn parse_word_command(line: &str) -> Result<WordLine, String> {
    let line = line.trim();
    if line.starts_with('{') {
        return crate::control::parse_command(line)
            .map(WordLine::Command)
            .map_err(|e| e.message);
    }
    let (word, rest) = match line.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (line, ""),
    };
    let session = |c: Command| Ok(WordLine::Command(NodeCommand::Session(c)));
    let no_argument = |c: Result<WordLine, String>| {
        if rest.is_empty() {
            c
        } else {
            Err(format!("`{word}` takes no argument (type `help`)"))
        }
    };
    match word.to_ascii_lowercase().as_str() {
        "play" => session(Command::Play {
            track: (!rest.is_empty()).then(|| rest.to_owned()),
            position: None,
        }),
        "pause" => no_argument(session(Command::Pause)),
        "next" | "n" => no_argument(session(Command::Next)),
        "previous" | "prev" | "p" => no_argument(session(Command::Previous)),
        "dj" | "take-control" => no_argument(session(Command::TakeControl)),
        "seek" => {
            let position = parse_clock(rest)
                .ok_or_else(|| format!("seek needs seconds or M:SS, got `{rest}`"))?;
            session(Command::Seek { position })
        }
        "volume" | "vol" => {
            let percent: f64 = rest
                .trim_end_matches('%')
                .parse()
                .ok()
                .filter(|p: &f64| p.is_finite() && (0.0..=100.0).contains(p))
                .ok_or_else(|| format!("volume needs 0 to 100, got `{rest}`"))?;
            Ok(WordLine::Command(NodeCommand::Volume {
                level: percent / 100.0,
            }))
        }
        // A YouTube link (not a file name: those do not start with a YouTube host).
        "add" if looks_like_youtube_link(rest) => Ok(WordLine::Command(NodeCommand::Add {
            path: None,
            track: None,
            youtube: Some(rest.into()),
            duration: None,
        })),
        "youtube" | "yt" if !rest.is_empty() => Ok(WordLine::Command(NodeCommand::Add {
            path: None,
            track: None,
            youtube: Some(rest.into()),
            duration: None,
        })),
        "youtube" | "yt" => Err("youtube needs a link or a video id".into()),
        "add" if !rest.is_empty() => Ok(WordLine::Command(NodeCommand::Add {
            path: Some(rest.into()),
            track: None,
            youtube: None,
            duration: None,
        })),
        "add" => Err("add needs a file".into()),
        "calibrate" => no_argument(Ok(WordLine::Command(NodeCommand::Calibrate {
            probes: None,
        }))),
        "status" | "s" => no_argument(Ok(WordLine::Command(NodeCommand::Status))),
        "quit" | "exit" | "q" => no_argument(Ok(WordLine::Command(NodeCommand::Quit))),
        "help" | "h" | "?" => Ok(WordLine::Help),
        "" => Err("empty line".into()),
        other => Err(format!("unknown command `{other}` (type `help`)")),
    }
}

/// `42`, `42.5` or `1:05` as seconds.
fn parse_clock(s: &str) -> Option<f64> {
    let seconds = match s.split_once(':') {
        Some((m, sec)) => {
            let m: u32 = m.parse().ok()?;
            let sec: f64 = sec.parse().ok()?;
            (0.0..60.0)
                .contains(&sec)
                .then(|| f64::from(m) * 60.0 + sec)?
        }
        None => s.parse().ok()?,
    };
    (seconds.is_finite() && seconds >= 0.0).then_some(seconds)
}

/// `m:ss`.
pub fn clock(seconds: f64) -> String {
    let s = if seconds.is_finite() {
        seconds.max(0.0).floor() as u64
    } else {
        0
    };
    format!("{}:{:02}", s / 60, s % 60)
}

/// Follows the events to tell them in words.
#[derive(Debug, Default)]
pub struct HumanView {
    me: Option<UserId>,
    names: HashMap<UserId, String>,
    playlist: Vec<Track>,
    dj: Option<UserId>,
    tier: Option<Tier>,
    outbox: usize,
    /// `ready` came before anyone's name: "Joined" waits for the participants.
    join_untold: bool,
    /// The DJ changed before their name was known: told with the participants.
    dj_untold: bool,
    /// The regroup point told last (it is repeated every few seconds with new ETAs).
    regroup: Option<(UserId, f64, f64)>,
    /// Whether the session plays (for the play/pause key).
    playing: bool,
}

impl HumanView {
    pub fn new() -> Self {
        Self::default()
    }

    fn name(&self, user: UserId) -> String {
        match self.names.get(&user) {
            Some(n) => n.clone(),
            None => format!("user {user}"),
        }
    }

    fn title(&self, track: &str) -> String {
        match self.playlist.iter().find(|t| t.id == track) {
            Some(t) if !t.title.is_empty() => t.title.clone(),
            _ => track.to_owned(),
        }
    }

    fn duration(&self, track: &str) -> Option<f64> {
        self.playlist
            .iter()
            .find(|t| t.id == track)
            .and_then(|t| t.duration)
    }

    /// The lines an event is told in (none for what changed nothing a person cares about).
    pub fn lines(&mut self, ev: &NodeEvent) -> Vec<String> {
        match ev {
            NodeEvent::Session(n) => self.notification(n),
            NodeEvent::Status(_) => Vec::new(),
            // A new round trip or path of an open link is not news.
            NodeEvent::Peer {
                rtt_ms: Some(_), ..
            }
            | NodeEvent::Peer { path: Some(_), .. } => Vec::new(),
            NodeEvent::Peer { user_id, state, .. } => {
                let state = match state {
                    PeerState::Connecting => "connecting",
                    PeerState::Connected => "connected",
                    PeerState::Closed => "closed",
                };
                vec![format!("Peer {}: {state}", self.name(*user_id))]
            }
            // For the app's YouTube player; a node for people has none.
            NodeEvent::LastPositions { .. } | NodeEvent::Youtube(_) => Vec::new(),
            NodeEvent::Progress { what, done, total } => {
                if done == total {
                    vec![format!("{what}: done ({total})")]
                } else {
                    Vec::new()
                }
            }
            NodeEvent::Outputs { outputs } => outputs
                .iter()
                .map(|o| {
                    let mark = if o.is_default { " (default)" } else { "" };
                    format!("Output {}: {}{mark}", o.id, o.name)
                })
                .collect(),
            NodeEvent::Calibration {
                delay_ms,
                confidence,
                agreeing,
                probes,
                latency_offset_ms,
                from,
                ..
            } => vec![format!(
                "Calibrated{}: heard {delay_ms:+.1} ms from the expected ({agreeing} of {probes} probes, confidence {confidence:.2}); latency offset now {latency_offset_ms:.0} ms",
                from.map(|u| format!(" from {}'s microphone", self.name(u)))
                    .unwrap_or_default()
            )],
            // The first connection is not news; a move is.
            NodeEvent::Server { previous: None, .. } => Vec::new(),
            NodeEvent::Server { url, notice, .. } => vec![if *notice {
                format!("The server is shutting down; now on {url}")
            } else {
                format!("Now on server {url}")
            }],
            NodeEvent::Outbox { pending } => {
                let before = std::mem::replace(&mut self.outbox, pending.len());
                match (before, pending.len()) {
                    (b, n) if b == n => Vec::new(),
                    (_, 0) => vec!["Every change reached the server".into()],
                    (_, 1) => vec!["1 change waits for the server".into()],
                    (_, n) => vec![format!("{n} changes wait for the server")],
                }
            }
        }
    }

    fn notification(&mut self, n: &Notification) -> Vec<String> {
        match n {
            Notification::Ready { user_id, .. } => {
                self.me = Some(*user_id);
                if self.names.contains_key(user_id) {
                    vec![format!("Joined the session as {}", self.name(*user_id))]
                } else {
                    self.join_untold = true;
                    Vec::new()
                }
            }
            Notification::Participants { participants } => {
                let before: Vec<UserId> = self.names.keys().copied().collect();
                for p in participants {
                    if let Some(name) = p.display_name.as_ref().filter(|n| !n.is_empty()) {
                        self.names.insert(p.user_id, name.clone());
                    }
                }
                let mut lines = Vec::new();
                if self.join_untold
                    && let Some(me) = self.me
                {
                    self.join_untold = false;
                    lines.push(format!("Joined the session as {}", self.name(me)));
                }
                if self.dj_untold {
                    self.dj_untold = false;
                    lines.extend(self.dj_line());
                }
                let mut here: Vec<String> = participants
                    .iter()
                    .filter(|p| Some(p.user_id) != self.me)
                    .map(|p| self.name(p.user_id))
                    .collect();
                here.sort();
                here.dedup();
                if !(before.is_empty() && here.is_empty()) {
                    lines.push(if here.is_empty() {
                        "Nobody else is here".into()
                    } else {
                        format!("Here: {}", here.join(", "))
                    });
                }
                lines
            }
            Notification::Playlist { playlist } => {
                if *playlist == self.playlist {
                    return Vec::new();
                }
                self.playlist = playlist.clone();
                vec![match playlist.len() {
                    0 => "The playlist is empty".to_owned(),
                    1 => "Playlist: 1 track".to_owned(),
                    n => format!("Playlist: {n} tracks"),
                }]
            }
            Notification::Controller { user_id } => {
                if *user_id == self.dj {
                    return Vec::new();
                }
                self.dj = *user_id;
                let known =
                    user_id.is_none_or(|u| Some(u) == self.me || self.names.contains_key(&u));
                self.dj_untold = !known;
                if known { self.dj_line() } else { Vec::new() }
            }
            Notification::Playback {
                playing,
                track,
                position,
                ..
            } => {
                self.playing = *playing;
                vec![match (playing, track) {
                    (true, Some(t)) => {
                        format!("Playing {} from {}", self.title(t), clock(*position))
                    }
                    (false, Some(t)) => format!("Paused {} at {}", self.title(t), clock(*position)),
                    (_, None) => "Stopped".to_owned(),
                }]
            }
            Notification::Tier { tier, reason } => {
                let first = self.tier.is_none();
                if Some(*tier) == self.tier {
                    return Vec::new();
                }
                self.tier = Some(*tier);
                if first && *tier == Tier::Offline {
                    // Every start is offline until the link comes up: not news.
                    return vec![format!("Not connected yet: {reason}")];
                }
                vec![format!("{}: {reason}", tier_words(*tier))]
            }
            Notification::NotPlayable { track, reason } => {
                vec![format!("Silent for {}: {reason}", self.title(track))]
            }
            Notification::Buffering { track, buffering } => vec![if *buffering {
                format!("Buffering {}: still downloading", self.title(track))
            } else {
                format!("{}: downloaded enough, playing in step", self.title(track))
            }],
            Notification::Error { message, cmd } => vec![match cmd {
                Some(c) => format!("Error ({c}): {message}"),
                None => format!("Error: {message}"),
            }],
            Notification::MeshRefused {
                from,
                via,
                message,
                count,
                ..
            } => {
                let times = if *count > 1 {
                    format!(" ({count} times)")
                } else {
                    String::new()
                };
                let by = if from == via {
                    self.name(*from)
                } else {
                    format!("{} via {}", self.name(*from), self.name(*via))
                };
                vec![format!("Refused from {by} over the mesh{times}: {message}")]
            }
            Notification::PeerCalibration(r) => vec![format!(
                "Calibrated {}'s output from here: heard {:+.1} ms from the expected ({} of {} probes, confidence {:.2}); its latency offset now {:.0} ms",
                self.name(r.user),
                r.delay_ms,
                r.agreeing,
                r.probes,
                r.confidence,
                r.latency_offset_ms
            )],
            Notification::Location(l) => self.location(l),
            Notification::ClockEstimate { .. } | Notification::Resync { .. } => Vec::new(),
        }
    }

    /// Positions change every few seconds: only the convoy's news is told.
    fn location(&mut self, l: &LocationEvent) -> Vec<String> {
        match l {
            LocationEvent::Location { .. } | LocationEvent::Together { .. } => Vec::new(),
            LocationEvent::LocationOff { user_id } => {
                vec![format!(
                    "{} stopped sharing their location",
                    self.name(*user_id)
                )]
            }
            LocationEvent::Sharing {
                enabled, reason, ..
            } => vec![if *enabled {
                format!("Sharing your location: {reason}")
            } else {
                format!("Not sharing your location: {reason}")
            }],
            LocationEvent::Regroup {
                set_by,
                latitude,
                longitude,
                ..
            } => {
                let point = Some((*set_by, *latitude, *longitude));
                if std::mem::replace(&mut self.regroup, point) == point {
                    return Vec::new();
                }
                vec![format!("Regroup point set by {}", self.name(*set_by))]
            }
            LocationEvent::RegroupCleared { user_id } => {
                self.regroup = None;
                vec![format!("Regroup point cleared by {}", self.name(*user_id))]
            }
            LocationEvent::FallingBehind { user_id, behind_m } => vec![format!(
                "{} is falling behind ({:.1} km)",
                self.name(*user_id),
                behind_m / 1000.0
            )],
            LocationEvent::CaughtUp { user_id } => {
                vec![format!("{} caught up", self.name(*user_id))]
            }
        }
    }

    fn dj_line(&self) -> Vec<String> {
        vec![match self.dj {
            Some(u) if Some(u) == self.me => "You are the DJ".to_owned(),
            Some(u) => format!("{} is the DJ", self.name(u)),
            None => "Nobody is the DJ".to_owned(),
        }]
    }

    /// What the play/pause key asks now.
    pub fn toggle_play(&self) -> NodeCommand {
        NodeCommand::Session(if self.playing {
            Command::Pause
        } else {
            Command::Play {
                track: None,
                position: None,
            }
        })
    }

    /// Follows a status report (the play/pause key reads it).
    pub fn note_status(&mut self, s: &StatusView) {
        self.playing = s.playing;
    }

    /// The status in one line: "Playing demo-2 (0:24 / 0:30) · DJ ann · in sync +0.1 ms ·
    /// online".
    pub fn status_line(&self, s: &StatusView) -> String {
        let mut parts = Vec::new();
        parts.push(match (&s.track, s.playing) {
            (Some(t), playing) => {
                let verb = if playing { "Playing" } else { "Paused" };
                let at = clock(s.position.unwrap_or(0.0));
                match self.duration(t) {
                    Some(d) => format!("{verb} {} ({at} / {})", self.title(t), clock(d)),
                    None => format!("{verb} {} ({at})", self.title(t)),
                }
            }
            (None, _) => "Stopped".to_owned(),
        });
        parts.push(match self.dj {
            Some(u) if Some(u) == self.me => "you are the DJ".to_owned(),
            Some(u) => format!("DJ {}", self.name(u)),
            None => "no DJ".to_owned(),
        });
        if s.buffering.is_some() {
            parts.push("buffering".to_owned());
        } else if s.playing
            && let Some(e) = s.sync_offset_ms.filter(|e| e.is_finite())
        {
            parts.push(if jamz_sync::sync_meter::is_in_sync(e) {
                format!("in sync {e:+.1} ms")
            } else {
                format!("off by {e:+.1} ms")
            });
        }
        // Decoding that fell behind the device: heard as gaps, so said.
        if s.underruns > 0 {
            let n = s.underruns;
            let gaps = if n == 1 { "gap" } else { "gaps" };
            parts.push(format!("{n} {gaps} in the sound ({:.0} ms)", s.underrun_ms));
        }
        parts.push(tier_words(s.tier).to_lowercase());
        if s.queued > 0 {
            parts.push(format!("{} waiting", s.queued));
        }
        parts.join(" · ")
    }
}

fn tier_words(tier: Tier) -> &'static str {
    match tier {
        Tier::Socket => "Online",
        Tier::Mesh => "Peer mesh",
        Tier::Offline => "Offline",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{CacheSummary, PendingView};
    use jamz_sync::api::ParticipantView;

    fn track(id: &str, title: &str, duration: f64) -> Track {
        serde_json::from_value(serde_json::json!({
            "id": id, "title": title, "url": format!("http://h/{id}"), "duration": duration
        }))
        .unwrap()
    }

    fn status(track: Option<&str>, playing: bool, position: f64, error_ms: f64) -> StatusView {
        StatusView {
            tier: Tier::Socket,
            playing,
            track: track.map(str::to_owned),
            position: Some(position),
            clock_offset_ms: Some(0.0),
            drift_ms: Some(error_ms),
            sync_offset_ms: Some(error_ms),
            peers: 0,
            cache: CacheSummary::default(),
            queued: 0,
            output: "null".into(),
            latency_offset_ms: 0.0,
            token_store: None,
            underruns: 0,
            underrun_ms: 0.0,
            buffering: None,
            mesh: Box::default(),
            server: None,
        }
    }

    #[test]
    fn a_scripted_session_reads_as_sentences() {
        let s = |n: Notification| NodeEvent::Session(n);
        let who = |user_id, name: &str| ParticipantView {
            user_id,
            display_name: Some(name.into()),
            socket_id: format!("s{user_id}"),
        };
        let script = [
            s(Notification::Tier {
                tier: Tier::Socket,
                reason: "connected to the server".into(),
            }),
            s(Notification::Ready {
                user_id: 2,
                session_id: "sess".into(),
                socket_id: "s2".into(),
            }),
            s(Notification::Participants {
                participants: vec![who(2, "Demo car"), who(1, "ann")],
            }),
            s(Notification::Playlist {
                playlist: vec![track("t1", "demo-1", 30.0), track("t2", "demo-2", 30.0)],
            }),
            // The same playlist again (a re-join): nothing new to say.
            s(Notification::Playlist {
                playlist: vec![track("t1", "demo-1", 30.0), track("t2", "demo-2", 30.0)],
            }),
            s(Notification::Controller { user_id: Some(1) }),
            s(Notification::Playback {
                playing: true,
                track: Some("t2".into()),
                position: 24.4,
                at: 0.0,
                sync_offset_ms: None,
            }),
            NodeEvent::Outbox {
                pending: vec![PendingView {
                    action: "add".into(),
                    label: "x".into(),
                }],
            },
            s(Notification::Tier {
                tier: Tier::Offline,
                reason: "the server stopped answering".into(),
            }),
            NodeEvent::Outbox { pending: vec![] },
            s(Notification::Error {
                message: "only the DJ can do that".into(),
                cmd: Some("seek".into()),
            }),
            s(Notification::Playback {
                playing: false,
                track: Some("t2".into()),
                position: 65.0,
                at: 0.0,
                sync_offset_ms: None,
            }),
            s(Notification::Controller { user_id: Some(2) }),
        ];
        let mut view = HumanView::new();
        let lines: Vec<String> = script.iter().flat_map(|e| view.lines(e)).collect();
        assert_eq!(
            lines,
            [
                "Online: connected to the server",
                "Joined the session as Demo car",
                "Here: ann",
                "Playlist: 2 tracks",
                "ann is the DJ",
                "Playing demo-2 from 0:24",
                "1 change waits for the server",
                "Offline: the server stopped answering",
                "Every change reached the server",
                "Error (seek): only the DJ can do that",
                "Paused demo-2 at 1:05",
                "You are the DJ",
            ]
        );
        assert_eq!(
            view.status_line(&status(Some("t2"), true, 24.4, 0.1)),
            "Playing demo-2 (0:24 / 0:30) · you are the DJ · in sync +0.1 ms · online"
        );
        assert_eq!(
            view.status_line(&status(Some("t2"), true, 24.4, -42.0)),
            "Playing demo-2 (0:24 / 0:30) · you are the DJ · off by -42.0 ms · online"
        );
        assert_eq!(
            view.status_line(&status(None, false, 0.0, 0.0)),
            "Stopped · you are the DJ · online"
        );
        let mut gaps = status(Some("t2"), true, 24.4, 0.1);
        gaps.underruns = 3;
        gaps.underrun_ms = 84.6;
        assert_eq!(
            view.status_line(&gaps),
            "Playing demo-2 (0:24 / 0:30) · you are the DJ · in sync +0.1 ms · 3 gaps in the sound (85 ms) · online"
        );
        gaps.underruns = 1;
        assert!(
            view.status_line(&gaps)
                .contains(" · 1 gap in the sound (85 ms) · ")
        );
        let mut waiting = status(Some("t2"), true, 24.4, 0.1);
        waiting.buffering = Some("t2".into());
        assert_eq!(
            view.status_line(&waiting),
            "Playing demo-2 (0:24 / 0:30) · you are the DJ · buffering · online"
        );
        assert_eq!(
            view.lines(&NodeEvent::Session(Notification::Buffering {
                track: "t2".into(),
                buffering: true
            })),
            ["Buffering demo-2: still downloading"]
        );
    }

    #[test]
    fn names_that_come_late_are_waited_for() {
        let mut view = HumanView::new();
        let mut tell = |n: Notification| view.lines(&NodeEvent::Session(n));
        assert_eq!(
            tell(Notification::Tier {
                tier: Tier::Offline,
                reason: "connecting".into()
            }),
            ["Not connected yet: connecting"]
        );
        assert!(tell(Notification::Controller { user_id: Some(1) }).is_empty());
        assert!(
            tell(Notification::Ready {
                user_id: 2,
                session_id: "s".into(),
                socket_id: "s2".into()
            })
            .is_empty()
        );
        let here = tell(Notification::Participants {
            participants: vec![ParticipantView {
                user_id: 1,
                display_name: Some("ann".into()),
                socket_id: "s1".into(),
            }],
        });
        assert_eq!(
            here,
            ["Joined the session as user 2", "ann is the DJ", "Here: ann"]
        );
    }

    #[test]
    fn word_commands_and_their_errors() {
        let cmd = |l: &str| match parse_word_command(l) {
            Ok(WordLine::Command(c)) => c,
            other => panic!("{l}: {other:?}"),
        };
        let session = NodeCommand::Session;
        assert_eq!(
            cmd("play"),
            session(Command::Play {
                track: None,
                position: None
            })
        );
        assert_eq!(
            cmd("play t2"),
            session(Command::Play {
                track: Some("t2".into()),
                position: None
            })
        );
        assert_eq!(cmd(" PAUSE "), session(Command::Pause));
        assert_eq!(cmd("n"), session(Command::Next));
        assert_eq!(cmd("previous"), session(Command::Previous));
        assert_eq!(cmd("dj"), session(Command::TakeControl));
        assert_eq!(cmd("seek 42"), session(Command::Seek { position: 42.0 }));
        assert_eq!(cmd("seek 1:05"), session(Command::Seek { position: 65.0 }));
        assert_eq!(cmd("volume 80"), NodeCommand::Volume { level: 0.8 });
        assert_eq!(cmd("status"), NodeCommand::Status);
        assert_eq!(cmd("q"), NodeCommand::Quit);
        assert_eq!(
            cmd(r#"{"cmd":"seek","position":3}"#),
            session(Command::Seek { position: 3.0 })
        );
        assert_eq!(
            cmd("add /music/a b.mp3"),
            NodeCommand::Add {
                path: Some("/music/a b.mp3".into()),
                track: None,
                youtube: None,
                duration: None,
            }
        );
        for line in [
            "add https://youtu.be/dQw4w9WgXcQ",
            "add www.youtube.com/watch?v=dQw4w9WgXcQ",
            "youtube dQw4w9WgXcQ",
            "yt https://music.youtube.com/watch?v=dQw4w9WgXcQ",
        ] {
            let (_, link) = line.split_once(' ').unwrap();
            assert_eq!(
                cmd(line),
                NodeCommand::Add {
                    path: None,
                    track: None,
                    youtube: Some(link.into()),
                    duration: None,
                },
                "{line}"
            );
        }
        assert_eq!(parse_word_command("help"), Ok(WordLine::Help));
        for (line, says) in [
            ("youtube", "youtube needs a link or a video id"),
            ("dance", "unknown command `dance`"),
            ("seek", "seek needs seconds or M:SS"),
            ("seek -3", "seek needs seconds or M:SS"),
            ("seek 1:75", "seek needs seconds or M:SS"),
            ("volume 150", "volume needs 0 to 100"),
            ("volume loud", "volume needs 0 to 100"),
            ("pause now", "takes no argument"),
            ("add", "add needs a file"),
            (r#"{"cmd":"seek"}"#, "invalid `seek`"),
        ] {
            let e = parse_word_command(line).unwrap_err();
            assert!(e.contains(says), "{line}: {e}");
        }
    }

    fn press(keys: &mut KeyReader, bytes: &[u8]) -> Vec<KeyAction> {
        bytes
            .iter()
            .map(|&b| keys.key(b))
            .filter(|a| *a != KeyAction::Nothing)
            .collect()
    }

    #[test]
    fn single_keys_act_at_once_and_colon_types_a_command() {
        let mut keys = KeyReader::new();
        let line = |l: &str| KeyAction::Line(l.into());
        assert_eq!(
            press(&mut keys, b" npsq?"),
            vec![
                KeyAction::TogglePlay,
                line("next"),
                line("previous"),
                line("status"),
                line("quit"),
                KeyAction::Help
            ]
        );
        // An arrow key (ESC [ A) does nothing, and the key after it acts again.
        assert_eq!(press(&mut keys, b"\x1b[An"), vec![line("next")]);
        // `:` opens a command line; the letters of the keys are typed, not acted on.
        let typed = press(&mut keys, b":play x\r");
        assert_eq!(typed.first(), Some(&KeyAction::Typing(Some(String::new()))));
        assert_eq!(typed.last(), Some(&line("play x")));
        assert!(!keys.typing());
        // Backspace takes back a whole UTF-8 character; Esc cancels the line.
        let edits = press(&mut keys, ":seek 1é\x7f".as_bytes());
        assert_eq!(
            edits.last(),
            Some(&KeyAction::Typing(Some("seek 1".into())))
        );
        assert_eq!(press(&mut keys, b"\x1b"), vec![KeyAction::Typing(None)]);
        assert_eq!(press(&mut keys, b"q"), vec![line("quit")]);
        // An empty line just closes the prompt.
        assert_eq!(
            press(&mut keys, b":\r"),
            vec![
                KeyAction::Typing(Some(String::new())),
                KeyAction::Typing(None)
            ]
        );
    }

    #[test]
    fn the_play_key_pauses_what_plays_and_plays_what_is_paused() {
        let mut view = HumanView::new();
        let play = NodeCommand::Session(Command::Play {
            track: None,
            position: None,
        });
        assert_eq!(view.toggle_play(), play);
        view.note_status(&status(Some("a"), true, 1.0, 0.0));
        assert_eq!(view.toggle_play(), NodeCommand::Session(Command::Pause));
        view.lines(&NodeEvent::Session(Notification::Playback {
            playing: false,
            track: Some("a".into()),
            position: 2.0,
            at: 0.0,
            sync_offset_ms: None,
        }));
        assert_eq!(view.toggle_play(), play);
    }
}
