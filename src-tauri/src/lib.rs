//! The TrafficJamz app shell: Tauri commands and events between `ui/` and
//! `jamz-node`, and plugin setup. No business logic lives here: every command
//! forwards to one method of [`jamz_node::app::App`], kept as Tauri state.
//!
//! - `open_session` starts a node; its events reach the UI as the `node-event`
//!   event (the node control vocabulary), except `progress`, which streams
//!   through the `ipc::Channel` the UI passed in.
//! - `host_session` runs the reference server in-process (a car with no internet).
//! - One instance (desktop): a second launch hands its arguments to the first
//!   (`second-launch`, and `join-link` for a `trafficjamz://` link) and exits.
//! - Map tiles reach the web view through the `maptile:` protocol (`map_tiles`).
//! - Logs go to stderr and a rotating file in the app's log directory (`logs`).
//! - Linux without a GPU: WebKit paints the page with Skia's CPU raster (`webkit`).

mod commands;
mod error;
mod launch;
mod logs;
mod map_tiles;
#[cfg(target_os = "linux")]
mod webkit;

pub use error::{AppError, AppResult};
pub use launch::LaunchLink;

/// The event carrying every [`jamz_node::NodeEvent`] but `progress`.
pub const NODE_EVENT: &str = "node-event";
/// Emitted once when the node stops, with `{reason}` (`null` on a clean leave).
pub const SESSION_ENDED_EVENT: &str = "session-ended";

/// When [`run`] began: the origin of the start-up figure of `first_paint`.
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// The app's log directory (where `logs` writes), for "copy diagnostics".
pub struct LogDir(pub Option<std::path::PathBuf>);

#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    // First of all: it may run the app again with a variable WebKit reads.
    #[cfg(target_os = "linux")]
    webkit::configure();
    let _ = STARTED.set(std::time::Instant::now());

    // First: a second instance must hand over and exit before anything else starts.
    #[cfg(desktop)]
    let builder =
        tauri::Builder::default().plugin(tauri_plugin_single_instance::init(launch::second_launch));
    #[cfg(mobile)]
    let builder = tauri::Builder::default();
    let builder = builder
        .plugin(tauri_plugin_dialog::init())
        .register_asynchronous_uri_scheme_protocol(map_tiles::SCHEME, map_tiles::handle);
    #[cfg(mobile)]
    let builder = builder.plugin(tauri_plugin_geolocation::init());

    let result = builder
        .setup(|app| {
            use tauri::Manager;
            let log_dir = app.path().app_log_dir().ok();
            if let Err(e) = logs::init(log_dir.as_deref()) {
                tracing::warn!("no log file, logging to stderr only: {e}");
            }
            tracing::info!(
                "TrafficJamz {} started (logs in {})",
                app.package_info().version,
                log_dir
                    .as_ref()
                    .map_or("stderr only".into(), |d| d.display().to_string())
            );
            app.manage(LogDir(log_dir));
            app.manage(launch::LaunchLink::from_args(std::env::args()));
            // The platform's per-app directories unless JAMZ_CONFIG_DIR / JAMZ_CACHE_DIR say.
            let paths = app.path();
            let dirs = jamz_node::directories::Dirs::resolve(
                || paths.app_config_dir().ok(),
                || paths.app_cache_dir().ok().map(|d| d.join("tracks")),
            )?;
            app.manage(jamz_node::app::App::new(dirs)?);
            Ok(())
        })
        .invoke_handler(handler())
        .run(tauri::generate_context!());
    if let Err(e) = result {
        tracing::error!("TrafficJamz stopped: {e}");
        std::process::exit(1);
    }
}

/// Every command the UI may call (`build.rs` lists the same names for their
/// permissions), with the state they need managed by [`run`]: the facade
/// (`jamz_node::app::App`), [`LogDir`] and [`LaunchLink`]. Generic over the runtime
/// so that `tests/ipc.rs` runs them on Tauri's mock runtime exactly as the window
/// calls them.
pub fn handler<R: tauri::Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static
{
    tauri::generate_handler![
        commands::app_info,
        commands::first_paint,
        commands::host_session,
        commands::stop_hosting,
        commands::register,
        commands::login,
        commands::current_account,
        commands::logout,
        commands::change_password,
        commands::leave_group,
        commands::list_groups,
        commands::create_group,
        commands::add_member,
        commands::open_session,
        commands::leave_session,
        commands::node_command,
        commands::pick_audio_files,
        commands::pick_replay_file,
        commands::cache_info,
        commands::cache_clear,
        commands::cover_art,
        commands::location_sources,
        commands::list_outputs,
        commands::calibrate_output,
        commands::set_map_tiles,
        commands::map_tiles_info,
        commands::diagnostics,
        commands::launch_link,
        commands::read_join_link,
        commands::make_join_link,
    ]
}
