//! The app's commands: each forwards to [`jamz_node::app::App`].

use jamz_node::app::{
    AccountView, App, AppInfo, CacheInfo, ChangePasswordArgs, EventSink, HostedView, JoinLinkView,
    LocationSourceView, LoginArgs, LogoutOutcome, MapTilesInfo, OpenArgs, RegisterArgs,
    SessionEnded, SessionView, ShellFacts,
};
use jamz_node::{NodeCommand, NodeEvent, OutputView};
use jamz_proto::Group;
use tauri::ipc::Channel;
use tauri::{AppHandle, Emitter, Runtime, State};

use crate::error::AppResult;
use crate::{NODE_EVENT, SESSION_ENDED_EVENT};

#[tauri::command]
pub async fn app_info<R: Runtime>(app: AppHandle<R>, state: State<'_, App>) -> AppResult<AppInfo> {
    let version = app.package_info().version.to_string();
    Ok(state.info(version, cfg!(mobile)).await)
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

#[tauri::command]
pub async fn host_session(state: State<'_, App>, port: Option<u16>) -> AppResult<HostedView> {
    Ok(state.host(port).await?)
}

#[tauri::command]
pub async fn stop_hosting(state: State<'_, App>) -> AppResult<()> {
    Ok(state.stop_hosting().await?)
}

#[tauri::command]
pub async fn register(state: State<'_, App>, args: RegisterArgs) -> AppResult<AccountView> {
    Ok(state.register(args).await?)
}

#[tauri::command]
pub async fn login(state: State<'_, App>, args: LoginArgs) -> AppResult<AccountView> {
    Ok(state.login(args).await?)
}

#[tauri::command]
pub async fn current_account(state: State<'_, App>) -> AppResult<Option<AccountView>> {
    Ok(state.current_account()?)
}

#[tauri::command]
pub async fn logout(state: State<'_, App>) -> AppResult<LogoutOutcome> {
    Ok(state.logout().await?)
}

#[tauri::command]
pub async fn change_password(
    state: State<'_, App>,
    args: ChangePasswordArgs,
) -> AppResult<AccountView> {
    Ok(state.change_password(args).await?)
}

#[tauri::command]
pub async fn leave_group(state: State<'_, App>, group_id: String) -> AppResult<()> {
    Ok(state.leave_group(&group_id).await?)
}

#[tauri::command]
pub async fn list_groups(state: State<'_, App>) -> AppResult<Vec<Group>> {
    Ok(state.groups().await?)
}

#[tauri::command]
pub async fn create_group(
    state: State<'_, App>,
    name: String,
    description: Option<String>,
) -> AppResult<Group> {
    Ok(state.create_group(&name, description.as_deref()).await?)
}

#[tauri::command]
pub async fn add_member(
    state: State<'_, App>,
    group_id: String,
    username: String,
) -> AppResult<Group> {
    Ok(state.add_member(&group_id, &username).await?)
}

/// Node events to the UI: `progress` (uploads, preload) through the channel the
/// UI passed, every other event as `node-event`, then `session-ended`.
struct UiSink<R: Runtime> {
    app: AppHandle<R>,
    progress: Channel<NodeEvent>,
}

impl<R: Runtime> EventSink for UiSink<R> {
    fn event(&mut self, event: NodeEvent) {
        let sent = match event {
            NodeEvent::Progress { .. } => self.progress.send(event),
            other => self.app.emit(NODE_EVENT, &other),
        };
        if let Err(e) = sent {
            tracing::warn!("cannot forward a node event to the UI: {e}");
        }
    }

    fn ended(&mut self, ended: SessionEnded) {
        if let Err(e) = self.app.emit(SESSION_ENDED_EVENT, &ended) {
            tracing::warn!("cannot tell the UI the session ended: {e}");
        }
    }
}

#[tauri::command]
pub async fn open_session<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, App>,
    args: OpenArgs,
    on_progress: Channel<NodeEvent>,
) -> AppResult<SessionView> {
    let sink = UiSink {
        app,
        progress: on_progress,
    };
    Ok(state.open_session(args, sink).await?)
}

#[tauri::command]
pub async fn leave_session(state: State<'_, App>) -> AppResult<()> {
    Ok(state.leave_session().await?)
}

#[tauri::command]
pub async fn node_command(state: State<'_, App>, command: NodeCommand) -> AppResult<()> {
    Ok(state.command(command).await?)
}

/// Set to a file listing paths, one a line: the picker returns them (read at each
/// pick; the first only where the dialog picks one file) without showing a dialog.
/// For the app's E2E, which cannot drive a native dialog; only whoever starts the
/// process can set it, never the web view.
pub const TEST_PICKED_FILES_ENV: &str = "JAMZ_TEST_PICKED_FILES";

/// The native file picker for audio files. What it returns is the only way a
/// file enters the node from the web view (`jamz_node::app::web_view`).
#[tauri::command]
pub async fn pick_audio_files<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, App>,
) -> AppResult<Vec<String>> {
    let audio: &[&str] = &["mp3", "m4a", "aac", "mp4", "flac", "ogg", "oga", "wav"];
    let picked = pick(&app, "Add tracks", ("Audio", audio), true).await?;
    Ok(grant(&state, picked))
}

/// The native file picker for a recorded drive to replay (`replay:` location source):
/// the one file, or none when the person cancelled.
#[tauri::command]
pub async fn pick_replay_file<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, App>,
) -> AppResult<Option<String>> {
    let drives: &[&str] = &["nmea", "nmea0183", "txt", "log", "gpx"];
    let picked = pick(
        &app,
        "Replay a recorded drive",
        ("NMEA or GPX", drives),
        false,
    )
    .await?;
    Ok(grant(&state, picked).into_iter().next())
}

/// Shows the native picker (or reads [`TEST_PICKED_FILES_ENV`]'s list).
async fn pick<R: Runtime>(
    app: &AppHandle<R>,
    title: &str,
    (kind, extensions): (&str, &[&str]),
    many: bool,
) -> AppResult<Vec<std::path::PathBuf>> {
    if let Some(list) = std::env::var_os(TEST_PICKED_FILES_ENV) {
        // As the dialog: one file at most when picking one.
        return Ok(std::fs::read_to_string(&list)
            .map_err(|e| jamz_node::NodeError::Invalid(format!("{TEST_PICKED_FILES_ENV}: {e}")))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(if many { usize::MAX } else { 1 })
            .map(std::path::PathBuf::from)
            .collect());
    }
    use tauri_plugin_dialog::DialogExt;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let dialog = app
        .dialog()
        .file()
        .set_title(title)
        .add_filter(kind, extensions);
    if many {
        dialog.pick_files(move |files| {
            let _ = tx.send(files.unwrap_or_default());
        });
    } else {
        dialog.pick_file(move |file| {
            let _ = tx.send(file.into_iter().collect());
        });
    }
    let files = rx.await.unwrap_or_default();
    Ok(files
        .into_iter()
        .filter_map(|f| f.into_path().ok())
        .collect())
}

/// What the picker returned, granted to the web view (`jamz_node::app::web_view`).
fn grant(state: &App, picked: Vec<std::path::PathBuf>) -> Vec<String> {
    state
        .grant_picked_files(picked)
        .into_iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

#[tauri::command]
pub async fn cache_info(state: State<'_, App>) -> AppResult<CacheInfo> {
    Ok(state.cache_info().await?)
}

/// The location sources found on this device.
#[tauri::command]
pub async fn location_sources(state: State<'_, App>) -> AppResult<Vec<LocationSourceView>> {
    Ok(state.location_sources().await)
}

/// The cover art of a cached track (by content hash), as a `data:` URL.
#[tauri::command]
pub async fn cover_art(state: State<'_, App>, sha256: String) -> AppResult<Option<String>> {
    Ok(state.cover_art(&sha256).await?)
}

#[tauri::command]
pub async fn cache_clear(state: State<'_, App>) -> AppResult<CacheInfo> {
    Ok(state.cache_clear().await?)
}

#[tauri::command]
pub async fn list_outputs(state: State<'_, App>) -> AppResult<Vec<OutputView>> {
    Ok(state.outputs().await?)
}

/// "Calibrate this car's speakers" before a session: the offset for `output`.
#[tauri::command]
pub async fn calibrate_output(
    state: State<'_, App>,
    output: String,
    latency_offset_ms: f64,
) -> AppResult<jamz_node::Calibrated> {
    Ok(state.calibrate_output(output, latency_offset_ms).await?)
}

/// "Copy diagnostics": the app's state and the end of its log, as text.
#[tauri::command]
pub async fn diagnostics<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, App>,
    log_dir: State<'_, crate::LogDir>,
) -> AppResult<String> {
    let facts = ShellFacts {
        version: app.package_info().version.to_string(),
        mobile: cfg!(mobile),
        log_file: log_dir.0.as_deref().and_then(crate::logs::newest_file),
    };
    Ok(state.diagnostics(facts).await)
}

/// Reads a join link (pasted, or one the system opened the app with).
#[tauri::command]
pub fn read_join_link(link: String) -> AppResult<JoinLinkView> {
    Ok(jamz_node::app::read_join_link(&link)?)
}

/// The join link (and its QR code) to a group on a server, for a hosting device to show.
#[tauri::command]
pub fn make_join_link(
    server: String,
    group: Option<String>,
    name: Option<String>,
) -> AppResult<JoinLinkView> {
    Ok(jamz_node::app::make_join_link(
        &server,
        group.as_deref(),
        name.as_deref(),
    )?)
}

/// The `trafficjamz://` link this instance was started with (once; later links
/// come as `join-link` events).
#[tauri::command]
pub fn launch_link(link: State<'_, crate::launch::LaunchLink>) -> Option<String> {
    link.take()
}

/// The map's tile server from now on (a URL template with `{z}`, `{x}`, `{y}`), or
/// none; the `maptile:` protocol then serves its tiles through the tile cache.
#[tauri::command]
pub async fn set_map_tiles(
    state: State<'_, App>,
    template: Option<String>,
) -> AppResult<MapTilesInfo> {
    Ok(state.set_map_tiles(template.as_deref()).await?)
}

/// The tile cache's figures (tiles on disk, shown from it, fetched, failed).
#[tauri::command]
pub async fn map_tiles_info(state: State<'_, App>) -> AppResult<MapTilesInfo> {
    Ok(state.map_tiles_info().await?)
}
