//! How the app is launched: the `trafficjamz://` link it was started with, and a
//! second launch while it runs (the single-instance plugin calls [`second_launch`]
//! in the first instance with the second one's arguments; the second then exits).

use std::sync::Mutex;

use tauri::{AppHandle, Emitter, Manager, Runtime};

/// The app's link scheme (`trafficjamz://join?...`).
pub const LINK_SCHEME: &str = "trafficjamz://";
/// Emitted with a second launch's arguments (`{args}`).
pub const SECOND_LAUNCH_EVENT: &str = "second-launch";
/// Emitted with the `trafficjamz://` link a second launch carried.
pub const JOIN_LINK_EVENT: &str = "join-link";

/// The first `trafficjamz://` link among a launch's arguments.
pub fn link_in<S: AsRef<str>>(args: impl IntoIterator<Item = S>) -> Option<String> {
    args.into_iter()
        .skip(1)
        .map(|a| a.as_ref().trim().to_owned())
        .find(|a| a.starts_with(LINK_SCHEME))
}

/// The link this instance was started with, until the UI takes it.
pub struct LaunchLink(Mutex<Option<String>>);

impl LaunchLink {
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Self {
        LaunchLink(Mutex::new(link_in(args)))
    }

    pub fn take(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

#[derive(Clone, serde::Serialize)]
struct SecondLaunch {
    args: Vec<String>,
}

/// In the running instance: bring its window forward and pass on what the
/// second launch was given.
pub fn second_launch<R: Runtime>(app: &AppHandle<R>, args: Vec<String>, _cwd: String) {
    let link = link_in(&args);
    tracing::info!("a second launch handed over its arguments {args:?} (link: {link:?})");
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        if let Err(e) = window.set_focus() {
            tracing::warn!("cannot focus the window: {e}");
        }
    }
    if let Err(e) = app.emit(SECOND_LAUNCH_EVENT, SecondLaunch { args }) {
        tracing::warn!("cannot tell the UI about a second launch: {e}");
    }
    if let Some(link) = link
        && let Err(e) = app.emit(JOIN_LINK_EVENT, link)
    {
        tracing::warn!("cannot pass the join link to the UI: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_is_found_among_the_arguments_but_never_the_program() {
        let link = "trafficjamz://join?server=http%3A%2F%2F10.42.0.1%3A5050&group=g1";
        assert_eq!(
            link_in(["/usr/bin/trafficjamz", "--x", link]),
            Some(link.into())
        );
        assert_eq!(link_in(["trafficjamz://not-an-argument"]), None);
        assert_eq!(link_in(["app", "http://example.org"]), None);
    }
}
