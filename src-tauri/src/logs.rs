//! The app's logs: stderr (as before) and a file in the app's log directory that a
//! packaged app keeps, one file a day, the last [`KEPT_FILES`] days.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Log files are `trafficjamz.YYYY-MM-DD.log`.
pub const FILE_PREFIX: &str = "trafficjamz";
pub const FILE_SUFFIX: &str = "log";
/// Days of logs kept; older files are deleted as a new one starts.
pub const KEPT_FILES: usize = 7;

/// Flushes the file writer's last lines when the process exits.
static FILE_GUARD: OnceLock<WorkerGuard> = OnceLock::new();

fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Logs to stderr and, when `dir` can hold it, to a rotating file there. Returns
/// why the file could not be opened (logging goes on to stderr only).
pub fn init(dir: Option<&Path>) -> Result<(), String> {
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter());
    let appender = match dir {
        Some(dir) => open(dir).map(Some),
        None => Err("the platform has no log directory".to_owned()),
    };
    let (file, why) = match appender {
        Ok(Some(appender)) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let _ = FILE_GUARD.set(guard);
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(writer)
                .with_filter(filter());
            (Some(layer), Ok(()))
        }
        Ok(None) => (None, Ok(())),
        Err(e) => (None, Err(e)),
    };
    // Another subscriber set first (a test harness) keeps its place.
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    why
}

fn open(dir: &Path) -> Result<RollingFileAppender, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(FILE_PREFIX)
        .filename_suffix(FILE_SUFFIX)
        .max_log_files(KEPT_FILES)
        .build(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// The newest log file in `dir`, if any.
pub fn newest_file(dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(FILE_PREFIX) && n.ends_with(FILE_SUFFIX))
        })
        // The date in the name sorts as text.
        .max()
}
