//! The app's commands: each forwards to `jamz-node` (or, for "this device hosts the
//! session", to `jamz-server`) and maps errors to [`AppError`].

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use jamz_node::account::{self, CredentialStore, Credentials};
use jamz_node::{Commander, LocationSource, Node, NodeAuth, NodeCommand, NodeConfig, NodeEvent};
use jamz_proto::{Group, UserId};
use serde::{Deserialize, Serialize};
use tauri::async_runtime::JoinHandle;
use tauri::ipc::Channel;
use tauri::{AppHandle, Emitter, Manager, State};
use tokio::sync::{Mutex, MutexGuard};

use crate::error::{AppError, AppResult};
use crate::{NODE_EVENT, SESSION_ENDED_EVENT};

/// Default port of a session hosted on this device (the reference server's default).
const DEFAULT_HOST_PORT: u16 = 5050;

/// What the app keeps between commands.
pub struct AppState {
    store: CredentialStore,
    cache_dir: PathBuf,
    host_dir: PathBuf,
    session: Mutex<Option<OpenSession>>,
    hosted: Mutex<Option<Hosted>>,
}

struct OpenSession {
    commander: Commander,
    group_id: String,
    task: JoinHandle<()>,
}

struct Hosted {
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
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
        Ok(Self {
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
    hosting: Option<String>,
    session_group: Option<String>,
}

#[tauri::command]
pub async fn app_info(app: AppHandle, state: State<'_, AppState>) -> AppResult<AppInfo> {
    let hosting = state.hosted.lock().await.as_ref().map(|h| h.url.clone());
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
    /// The URL this device uses; other cars use this host's address on the shared network.
    url: String,
    port: u16,
}

/// Runs the reference server in this process, listening on every interface so
/// other cars on this device's hotspot can join (`port` 0 picks a free one).
#[tauri::command]
pub async fn host_session(state: State<'_, AppState>, port: Option<u16>) -> AppResult<HostedView> {
    let mut hosted = state.hosted.lock().await;
    if let Some(h) = hosted.as_ref() {
        return Err(AppError::AlreadyHosting(h.url.clone()));
    }
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port.unwrap_or(DEFAULT_HOST_PORT)));
    let config = jamz_server::ServerConfig::new(
        addr,
        state.host_dir.join("jamz.db"),
        state.host_dir.clone(),
    );
    let bound = jamz_server::bind(config).await?;
    let port = bound.local_addr().port();
    let url = format!("http://127.0.0.1:{port}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tauri::async_runtime::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = bound.run(shutdown).await {
            tracing::error!("hosted session server stopped: {e}");
        }
    });
    *hosted = Some(Hosted {
        url: url.clone(),
        stop,
    });
    Ok(HostedView { url, port })
}

#[tauri::command]
pub async fn stop_hosting(state: State<'_, AppState>) -> AppResult<()> {
    if let Some(h) = state.hosted.lock().await.take() {
        let _ = h.stop.send(());
    }
    Ok(())
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
    let mut node = Node::start(NodeConfig {
        server: creds.server.clone(),
        auth: NodeAuth::Token {
            token: creds.token.clone(),
            user_id: creds.user_id,
        },
        store: None,
        group_id: args.group_id.clone(),
        // Default: the username (a node started with a token knows only the user id).
        display_name: args
            .display_name
            .filter(|n| !n.trim().is_empty())
            .or_else(|| Some(creds.username.clone())),
        output,
        cache_dir: Some(state.cache_dir.clone()),
        location,
    })
    .await?;
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

/// The track cache on disk (while no session holds it; in a session the node's
/// `status` events carry the same figures).
#[tauri::command]
pub async fn cache_info(state: State<'_, AppState>) -> AppResult<CacheInfo> {
    let _guard = no_session(&state).await?;
    let cache = jamz_node::tracks::open_cache(Some(&state.cache_dir)).await?;
    let stats = cache.stats().await?;
    Ok(CacheInfo {
        dir: state.cache_dir.to_string_lossy().into_owned(),
        tracks: stats.tracks,
        bytes: stats.bytes,
    })
}

/// Empties the track cache (while no session holds it).
#[tauri::command]
pub async fn cache_clear(state: State<'_, AppState>) -> AppResult<CacheInfo> {
    let _guard = no_session(&state).await?;
    let cache = jamz_node::tracks::open_cache(Some(&state.cache_dir)).await?;
    cache.clear().await?;
    let stats = cache.stats().await?;
    Ok(CacheInfo {
        dir: state.cache_dir.to_string_lossy().into_owned(),
        tracks: stats.tracks,
        bytes: stats.bytes,
    })
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
