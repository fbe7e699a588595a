//! The app's commands: each forwards to `jamz-node` and maps errors to [`AppError`].

use std::path::PathBuf;

use jamz_node::account::{self, CredentialStore, Credentials};
use jamz_node::host::{DEFAULT_HOST_PORT, HostedServer};
use jamz_node::{
    Commander, LocationSource, Node, NodeAuth, NodeCommand, NodeConfig, NodeError, NodeEvent,
    OutputView,
};
use jamz_proto::{Group, UserId};
use serde::{Deserialize, Serialize};
use tauri::async_runtime::JoinHandle;
use tauri::ipc::Channel;
use tauri::{AppHandle, Emitter, Manager, State};
use tokio::sync::{Mutex, MutexGuard};

use crate::error::{AppError, AppResult};
use crate::{NODE_EVENT, SESSION_ENDED_EVENT};

/// Overrides the port of a hosted session (tests; a port already in use).
const HOST_PORT_ENV: &str = "JAMZ_HOST_PORT";

/// What the app keeps between commands.
pub struct AppState {
    store: CredentialStore,
    cache_dir: PathBuf,
    host_dir: PathBuf,
    /// Where a hosted session listens (`JAMZ_HOST_PORT`, default 5050).
    host_port: u16,
    session: Mutex<Option<OpenSession>>,
    hosted: Mutex<Option<HostedServer>>,
}

struct OpenSession {
    commander: Commander,
    group_id: String,
    task: JoinHandle<()>,
}

impl AppState {
    /// Directories: `JAMZ_CONFIG_DIR` / `JAMZ_CACHE_DIR` when set (tests, kiosks),
    /// else the platform's per-app directories.
    pub fn new(app: &AppHandle) -> Result<Self, AppError> {
        let paths = app.path();
        let config_dir = match std::env::var_os(account::CONFIG_DIR_ENV) {
            Some(d) => PathBuf::from(d),
            None => paths.app_config_dir()?,
        };
        let cache_dir = match std::env::var_os(jamz_node::tracks::CACHE_DIR_ENV) {
            Some(d) => PathBuf::from(d),
            None => paths.app_cache_dir()?.join("tracks"),
        };
        let host_port = match std::env::var(HOST_PORT_ENV) {
            Ok(p) => p
                .parse()
                .map_err(|_| AppError::Invalid(format!("{HOST_PORT_ENV}={p} is not a port")))?,
            Err(_) => DEFAULT_HOST_PORT,
        };
        Ok(Self {
            host_port,
            store: CredentialStore::at(&config_dir),
            cache_dir,
            host_dir: config_dir.join("hosted-session"),
            session: Mutex::new(None),
            hosted: Mutex::new(None),
        })
    }
}

/// The signed-in account as the UI sees it (never the token).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    server: String,
    username: String,
    user_id: UserId,
}

impl From<Credentials> for AccountView {
    fn from(c: Credentials) -> Self {
        Self {
            server: c.server,
            username: c.username,
            user_id: c.user_id,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    version: String,
    mobile: bool,
    hosting: Option<HostedView>,
    session_group: Option<String>,
}

#[tauri::command]
pub async fn app_info(app: AppHandle, state: State<'_, AppState>) -> AppResult<AppInfo> {
    let hosting = state.hosted.lock().await.as_ref().map(HostedView::from);
    let session_group = state
        .session
        .lock()
        .await
        .as_ref()
        .filter(|s| !s.task.inner().is_finished())
        .map(|s| s.group_id.clone());
    Ok(AppInfo {
        version: app.package_info().version.to_string(),
        mobile: cfg!(mobile),
        hosting,
        session_group,
    })
}

/// The UI calls this once its first screen is painted. With `JAMZ_REPORT_STARTUP`
/// set, prints `first-paint-ms N` (since the app's `run()`) on stdout for
/// `scripts/app-startup.sh`.
#[tauri::command]
pub fn first_paint() {
    if std::env::var_os("JAMZ_REPORT_STARTUP").is_some() {
        let ms = crate::STARTED
            .get()
            .map_or(0.0, |t| t.elapsed().as_secs_f64() * 1000.0);
        println!("first-paint-ms {ms:.0}");
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostedView {
    /// The URL this device uses.
    url: String,
    port: u16,
    /// What the other cars type in: this device's address on each of its networks.
    lan_urls: Vec<String>,
}

impl From<&HostedServer> for HostedView {
    fn from(h: &HostedServer) -> Self {
        Self {
            url: h.local_url(),
            port: h.port(),
            lan_urls: h.lan_urls(),
        }
    }
}

/// Runs the reference server in this process, listening on every interface so
/// other cars on this device's hotspot can join (`port` 0 picks a free one).
#[tauri::command]
pub async fn host_session(state: State<'_, AppState>, port: Option<u16>) -> AppResult<HostedView> {
    let mut hosted = state.hosted.lock().await;
    if let Some(h) = hosted.as_ref() {
        return Err(AppError::AlreadyHosting(h.local_url()));
    }
    let server = HostedServer::start(&state.host_dir, port.unwrap_or(state.host_port)).await?;
    let view = HostedView::from(&server);
    *hosted = Some(server);
    Ok(view)
}

#[tauri::command]
pub async fn stop_hosting(state: State<'_, AppState>) -> AppResult<()> {
    let server = state.hosted.lock().await.take();
    match server {
        Some(s) => Ok(s.stop().await?),
        None => Ok(()),
    }
}

#[derive(Debug, Deserialize)]
pub struct RegisterArgs {
    server: String,
    username: String,
    email: String,
    password: String,
}

#[tauri::command]
pub async fn register(state: State<'_, AppState>, args: RegisterArgs) -> AppResult<AccountView> {
    let creds = account::register(
        &state.store,
        args.server.trim(),
        &args.username,
        &args.email,
        &args.password,
    )
    .await?;
    Ok(creds.into())
}

#[derive(Debug, Deserialize)]
pub struct LoginArgs {
    server: String,
    username: String,
    password: String,
}

#[tauri::command]
pub async fn login(state: State<'_, AppState>, args: LoginArgs) -> AppResult<AccountView> {
    let creds = account::login(
        &state.store,
        args.server.trim(),
        &args.username,
        &args.password,
    )
    .await?;
    Ok(creds.into())
}

#[tauri::command]
pub async fn current_account(state: State<'_, AppState>) -> AppResult<Option<AccountView>> {
    Ok(state.store.load()?.map(AccountView::from))
}

#[tauri::command]
pub async fn logout(state: State<'_, AppState>) -> AppResult<()> {
    Ok(state.store.clear()?)
}

#[tauri::command]
pub async fn list_groups(state: State<'_, AppState>) -> AppResult<Vec<Group>> {
    let (rest, _) = account::saved_client(&state.store, None)?;
    Ok(rest.groups().await?)
}

#[tauri::command]
pub async fn create_group(
    state: State<'_, AppState>,
    name: String,
    description: Option<String>,
) -> AppResult<Group> {
    let (rest, _) = account::saved_client(&state.store, None)?;
    Ok(rest.create_group(&name, description.as_deref()).await?)
}

#[tauri::command]
pub async fn add_member(
    state: State<'_, AppState>,
    group_id: String,
    username: String,
) -> AppResult<Group> {
    let (rest, _) = account::saved_client(&state.store, None)?;
    Ok(rest.add_member(&group_id, username.trim()).await?)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenArgs {
    group_id: String,
    display_name: Option<String>,
    /// `default`, `null` or `wav:PATH` (jamz-audio's output spec).
    output: Option<String>,
    /// `none`, `replay:FILE`, `gpsd:HOST:PORT` (manual and mobile fixes arrive as commands).
    location: Option<String>,
    /// Extra output latency, 0-2000 ms.
    latency_offset_ms: Option<f64>,
    /// Cache size limit, MiB.
    cache_max_mib: Option<u64>,
    /// Cache the playlist in the background while online.
    auto_preload: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    group_id: String,
    user_id: UserId,
    session_id: String,
}

/// Starts the node for a group. Events arrive as `node-event`; `progress` events
/// (uploads, preload) go to `on_progress`; `session-ended` follows the last event.
#[tauri::command]
pub async fn open_session(
    app: AppHandle,
    state: State<'_, AppState>,
    args: OpenArgs,
    on_progress: Channel<NodeEvent>,
) -> AppResult<SessionView> {
    let mut slot = state.session.lock().await;
    if slot.as_ref().is_some_and(|s| !s.task.inner().is_finished()) {
        return Err(AppError::SessionOpen);
    }
    let creds = state
        .store
        .load()?
        .ok_or_else(|| jamz_node::NodeError::NotLoggedIn {
            server: "any server".into(),
        })?;
    let output = args
        .output
        .as_deref()
        .unwrap_or("default")
        .parse()
        .map_err(jamz_node::NodeError::from)?;
    let location: LocationSource = args
        .location
        .as_deref()
        .unwrap_or("none")
        .parse()
        .map_err(AppError::Invalid)?;
    let mut config = NodeConfig::new(
        creds.server.clone(),
        NodeAuth::Token {
            token: creds.token.clone(),
            user_id: creds.user_id,
            username: creds.username.clone(),
        },
        args.group_id.clone(),
    );
    config.display_name = args.display_name.filter(|n| !n.trim().is_empty());
    config.output = output;
    config.cache_dir = Some(state.cache_dir.clone());
    config.location = location;
    config.latency_offset_ms = args.latency_offset_ms.unwrap_or(0.0);
    config.cache_max_bytes = args.cache_max_mib.map(|m| m.saturating_mul(1024 * 1024));
    config.auto_preload = args.auto_preload.unwrap_or(true);
    let mut node = Node::start(config).await?;
    let view = SessionView {
        group_id: args.group_id.clone(),
        user_id: node.user_id(),
        session_id: node.session_id().to_owned(),
    };
    let commander = node.commander();
    let task = tauri::async_runtime::spawn(async move {
        while let Some(ev) = node.next_event().await {
            let sent = match ev {
                NodeEvent::Progress { .. } => on_progress.send(ev),
                other => app.emit(NODE_EVENT, &other),
            };
            if let Err(e) = sent {
                tracing::warn!("cannot forward a node event to the UI: {e}");
            }
        }
        let reason = node.join().await.err().map(|e| e.to_string());
        let _ = app.emit(SESSION_ENDED_EVENT, serde_json::json!({ "reason": reason }));
    });
    *slot = Some(OpenSession {
        commander,
        group_id: args.group_id,
        task,
    });
    Ok(view)
}

/// Leaves the session (the node's `quit`) and waits for the node to stop.
#[tauri::command]
pub async fn leave_session(state: State<'_, AppState>) -> AppResult<()> {
    let Some(session) = state.session.lock().await.take() else {
        return Ok(());
    };
    // A node that already stopped has nothing to leave.
    let _ = session.commander.send(NodeCommand::Quit);
    let _ = session.task.await;
    Ok(())
}

/// Forwards one command (`NODE_CONTROL.md`) to the running node.
#[tauri::command]
pub async fn node_command(state: State<'_, AppState>, command: NodeCommand) -> AppResult<()> {
    command.validate().map_err(AppError::Invalid)?;
    let slot = state.session.lock().await;
    let session = slot.as_ref().ok_or(AppError::NoSession)?;
    Ok(session.commander.send(command)?)
}

/// The native file picker for audio files; the node reads their tags on `add`.
#[tauri::command]
pub async fn pick_audio_files(app: AppHandle) -> AppResult<Vec<String>> {
    use tauri_plugin_dialog::DialogExt;
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog()
        .file()
        .set_title("Add tracks")
        .add_filter(
            "Audio",
            &["mp3", "m4a", "aac", "mp4", "flac", "ogg", "oga", "wav"],
        )
        .pick_files(move |files| {
            let _ = tx.send(files);
        });
    let files = rx.await.ok().flatten().unwrap_or_default();
    Ok(files
        .into_iter()
        .filter_map(|f| f.into_path().ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect())
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheInfo {
    dir: String,
    tracks: u64,
    bytes: u64,
}

impl CacheInfo {
    async fn of(state: &AppState, cache: &jamz_cache::Cache) -> AppResult<Self> {
        let stats = cache.stats().await?;
        Ok(CacheInfo {
            dir: state.cache_dir.to_string_lossy().into_owned(),
            tracks: stats.tracks,
            bytes: stats.bytes,
        })
    }
}

/// The track cache on disk (while no session holds it; in a session the node's
/// `status` events carry the same figures).
#[tauri::command]
pub async fn cache_info(state: State<'_, AppState>) -> AppResult<CacheInfo> {
    let _guard = no_session(&state).await?;
    let cache = jamz_node::tracks::open_cache(Some(&state.cache_dir)).await?;
    CacheInfo::of(&state, &cache).await
}

/// The output devices of this machine (`id` is what `open_session`'s `output`
/// and the node's `output` command take).
#[tauri::command]
pub async fn list_outputs() -> AppResult<Vec<OutputView>> {
    let devices = tauri::async_runtime::spawn_blocking(jamz_node::output_devices)
        .await
        .map_err(|e| AppError::Invalid(format!("listing outputs: {e}")))?
        .map_err(NodeError::from)?;
    Ok(devices.into_iter().map(OutputView::from).collect())
}

/// Empties the track cache while no session holds it (in a session, the node's
/// `cache-clear` command does it).
#[tauri::command]
pub async fn cache_clear(state: State<'_, AppState>) -> AppResult<CacheInfo> {
    let _guard = no_session(&state).await?;
    let cache = jamz_node::tracks::open_cache(Some(&state.cache_dir)).await?;
    cache.clear().await?;
    CacheInfo::of(&state, &cache).await
}

/// The cache is one process's (and one node's) at a time: refuse while a session runs.
async fn no_session<'a>(
    state: &'a State<'_, AppState>,
) -> AppResult<MutexGuard<'a, Option<OpenSession>>> {
    let guard = state.session.lock().await;
    if guard
        .as_ref()
        .is_some_and(|s| !s.task.inner().is_finished())
    {
        return Err(AppError::SessionOpen);
    }
    Ok(guard)
}
