//! "Copy diagnostics": one text a user can paste into a bug report. What the app
//! is, where it keeps its files, what it runs now, and the end of its log file.
//! Never a token or a password (the account shows as server and user name only).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::App;

/// At most this much of the log's end is included.
pub const LOG_TAIL_BYTES: u64 = 64 * 1024;

/// What the shell knows and the facade does not.
#[derive(Debug, Clone, Default)]
pub struct ShellFacts {
    pub version: String,
    pub mobile: bool,
    /// The log file being written, if any.
    pub log_file: Option<PathBuf>,
}

impl App {
    pub async fn diagnostics(&self, shell: ShellFacts) -> String {
        let info = self.info(shell.version.clone(), shell.mobile).await;
        let mut out = String::new();
        let mut line = |k: &str, v: &str| {
            out.push_str(k);
            out.push_str(": ");
            out.push_str(v);
            out.push('\n');
        };
        line("TrafficJamz", &shell.version);
        line(
            "platform",
            &format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        );
        line("mobile", &shell.mobile.to_string());
        line("config dir", &self.dirs.config.display().to_string());
        line("cache dir", &self.dirs.cache.display().to_string());
        match self.current_account() {
            Ok(Some(a)) => line("account", &format!("{} at {}", a.username, a.server)),
            Ok(None) => line("account", "not logged in"),
            Err(e) => line("account", &format!("unreadable: {e}")),
        }
        match &info.hosting {
            Some(h) => line(
                "hosting",
                &format!("{} (LAN: {})", h.url, h.lan_urls.join(", ")),
            ),
            None => line("hosting", "no"),
        }
        line(
            "session",
            info.session_group.as_deref().unwrap_or("none open"),
        );
        match &shell.log_file {
            Some(path) => {
                line("log file", &path.display().to_string());
                out.push_str("--- log (end) ---\n");
                match log_tail(path, LOG_TAIL_BYTES) {
                    Ok(tail) => out.push_str(&tail),
                    Err(e) => out.push_str(&format!("unreadable: {e}\n")),
                }
            }
            None => line("log file", "none"),
        }
        out
    }
}

/// The last `max` bytes of `path`, from the first whole line on.
fn log_tail(path: &Path, max: u64) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(max);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let text = if start > 0 {
        // Cut inside a line: drop its part.
        text.split_once('\n').map_or("", |(_, rest)| rest)
    } else {
        &text
    };
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_tail_starts_at_a_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let lines: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&log, &lines).unwrap();
        let tail = log_tail(&log, 100).unwrap();
        assert!(tail.ends_with("line 999\n"), "{tail}");
        assert!(tail.starts_with("line "), "{tail}");
        assert!(tail.len() <= 100);
        assert_eq!(log_tail(&log, 1 << 20).unwrap(), lines);
    }
}
