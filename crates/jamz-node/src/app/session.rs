//! The session lock: at most one node runs in a face, and the track cache is
//! either that node's or the face's (see [`super::cache_admin`]).

use jamz_proto::UserId;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, MutexGuard};
use tokio::task::JoinHandle;

use super::App;
use crate::control::{NodeCommand, NodeEvent};
use crate::error::NodeError;
use crate::runtime::{Commander, LocationSource, Node, NodeAuth, NodeConfig};

/// What `open_session` takes (the app's session form).
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenArgs {
    pub group_id: String,
    pub display_name: Option<String>,
    /// `default`, `null`, `wav:PATH` or `device:ID` (jamz-audio's output spec).
    // `wav:` is refused from the web view (`web_view::check_output`).
    pub output: Option<String>,
    /// `none`, `replay:FILE`, `gpsd:HOST:PORT` (manual and mobile fixes arrive as commands).
    pub location: Option<String>,
    /// Extra output latency, 0-2000 ms.
    pub latency_offset_ms: Option<f64>,
    /// Cache size limit, MiB.
    pub cache_max_mib: Option<u64>,
    /// Cache the playlist in the background while online (default: on).
    pub auto_preload: Option<bool>,
    /// Share this car's position with the group from the start (default: off).
    pub share_location: Option<bool>,
    /// Where YouTube answers oEmbed, a video's title (default: YouTube's own origin).
    pub youtube_origin: Option<String>,
    /// Further servers of the saved login's backend (processes sharing its database),
    /// tried in turn when the one in use dies (docs/node-control.md, "Several servers").
    pub fallback_servers: Option<Vec<String>>,
    /// ICE servers of the peer mesh (default: none, host addresses only): STUN servers
    /// (`stun:host[:port]`) it asks for this device's address outside its NAT, TURN
    /// servers (`turn:user:credential@host[:port]`) that relay where NATs allow nothing
    /// else.
    pub ice_servers: Option<Vec<String>>,
}

/// The session a node joined.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub group_id: String,
    pub user_id: UserId,
    pub session_id: String,
}

/// Sent once when the node stops, after its last event.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEnded {
    /// Why it stopped; `null` on a clean leave.
    pub reason: Option<String>,
}

/// Where a running node's events go, in order.
pub trait EventSink: Send + 'static {
    fn event(&mut self, event: NodeEvent);
    fn ended(&mut self, ended: SessionEnded);
}

pub(super) struct OpenSession {
    commander: Commander,
    group_id: String,
    task: JoinHandle<()>,
}

impl OpenSession {
    fn running(&self) -> bool {
        !self.task.is_finished()
    }
}

/// The one session of a face.
#[derive(Default)]
pub(super) struct SessionSlot(Mutex<Option<OpenSession>>);

impl SessionSlot {
    pub(super) async fn group(&self) -> Option<String> {
        let slot = self.0.lock().await;
        slot.as_ref()
            .filter(|s| s.running())
            .map(|s| s.group_id.clone())
    }

    /// The slot, held empty: no session starts while the guard lives.
    pub(super) async fn idle(&self) -> Result<MutexGuard<'_, Option<OpenSession>>, NodeError> {
        let slot = self.0.lock().await;
        if slot.as_ref().is_some_and(OpenSession::running) {
            return Err(NodeError::SessionOpen);
        }
        Ok(slot)
    }
}

impl App {
    /// Starts the node for a group with the saved login; its events go to `sink`
    /// until it stops.
    pub async fn open_session(
        &self,
        args: OpenArgs,
        mut sink: impl EventSink,
    ) -> Result<SessionView, NodeError> {
        if let Some(spec) = &args.output {
            super::web_view::check_output(spec)?;
        }
        let mut slot = self.session.idle().await?;
        let creds = self.store.load()?.ok_or_else(|| NodeError::NotLoggedIn {
            server: "any server".into(),
        })?;
        let location: LocationSource = args
            .location
            .as_deref()
            .unwrap_or("none")
            .parse()
            .map_err(NodeError::Invalid)?;
        let location = super::web_view::check_location(&self.picked, location)?;
        // The saved login, read by the node itself: its `status` then says where the
        // token is kept (`token_store`), as for `jamz node` with no password.
        let mut config =
            NodeConfig::new(creds.server.clone(), NodeAuth::Saved, args.group_id.clone());
        config.store = Some(self.store.clone());
        config.display_name = args.display_name.filter(|n| !n.trim().is_empty());
        config.output = args.output.as_deref().unwrap_or("default").parse()?;
        config.cache_dir = Some(self.dirs.cache.clone());
        config.location = location;
        config.latency_offset_ms = args.latency_offset_ms.unwrap_or(0.0);
        config.cache_max_bytes = args.cache_max_mib.map(|m| m.saturating_mul(1024 * 1024));
        config.auto_preload = args.auto_preload.unwrap_or(true);
        config.share_location = args.share_location.unwrap_or(false);
        config.fallback_servers = args
            .fallback_servers
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        config.ice_servers = args
            .ice_servers
            .unwrap_or_default()
            .iter()
            .map(|u| u.trim())
            .filter(|u| !u.is_empty())
            .map(|u| u.parse::<jamz_mesh::IceServer>())
            .collect::<Result<_, _>>()
            .map_err(|e| NodeError::Invalid(e.to_string()))?;
        // The app's web view plays YouTube videos (ui/src/youtube.ts).
        config.external_video_player = true;
        // The OS's "now playing" and media keys (MPRIS on Linux).
        config.media_session = true;
        if let Some(origin) = args.youtube_origin.filter(|o| !o.trim().is_empty()) {
            config.youtube_origin = origin;
        }
        let mut node = Node::start(config).await?;
        let view = SessionView {
            group_id: args.group_id.clone(),
            user_id: node.user_id(),
            session_id: node.session_id().to_owned(),
        };
        let commander = node.commander();
        let task = tokio::spawn(async move {
            while let Some(ev) = node.next_event().await {
                sink.event(ev);
            }
            let reason = node.join().await.err().map(|e| e.to_string());
            sink.ended(SessionEnded { reason });
        });
        *slot = Some(OpenSession {
            commander,
            group_id: args.group_id,
            task,
        });
        Ok(view)
    }

    /// Leaves the session (the node's `quit`) and waits for the node to stop.
    pub async fn leave_session(&self) -> Result<(), NodeError> {
        let Some(session) = self.session.0.lock().await.take() else {
            return Ok(());
        };
        // A node that already stopped has nothing to leave.
        let _ = session.commander.send(NodeCommand::Quit);
        session
            .task
            .await
            .map_err(|e| NodeError::Stopped(format!("the session's task failed: {e}")))
    }

    /// Forwards one command to the running node, as the web view may send it
    /// ([`super::web_view`]: picked files only, no `wav:` output).
    pub async fn command(&self, command: NodeCommand) -> Result<(), NodeError> {
        command.validate().map_err(NodeError::Invalid)?;
        let command = super::web_view::check_command(&self.picked, command)?;
        let slot = self.session.0.lock().await;
        let session = slot.as_ref().ok_or(NodeError::NoSession)?;
        session.commander.send(command)
    }
}
