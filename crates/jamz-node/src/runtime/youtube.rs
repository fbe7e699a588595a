//! `add` with `youtube`: a video named by a link or id joins the playlist, titled from
//! YouTube's oEmbed (the origin is `NodeConfig::youtube_origin`).

use super::*;
use crate::control::VideoDirective;
use jamz_proto::youtube::parse_video_ref;
use jamz_sync::external::Directive;

/// The engine's directive as the app's player takes it: the instant as a delay from `now`.
pub(super) fn directive_event(directive: Directive, now: f64) -> VideoDirective {
    match directive {
        Directive::Play {
            video,
            position,
            at,
        } => VideoDirective::Play {
            video,
            position,
            in_ms: at - now,
        },
        Directive::Pause { video, position } => VideoDirective::Pause { video, position },
        Directive::Stop => VideoDirective::Stop,
    }
}

impl Runtime {
    /// Parses the reference (a malformed one is the user's `error`), asks oEmbed for the
    /// title off the loop, then appends the track like any other `add`. A video oEmbed
    /// says is missing or not embeddable is refused with its reason (no device could
    /// play it); no answer at all (offline, a slow network) still adds it, with a plain
    /// title: the players say later whether it plays.
    pub(super) fn add_youtube(&mut self, video: &str, duration: Option<f64>) {
        let id = match parse_video_ref(video) {
            Ok(id) => id,
            Err(e) => {
                self.emit(NodeEvent::error(e.to_string(), Some("add")));
                return;
            }
        };
        let oembed = self.oembed.clone();
        let jobs = self.jobs.clone();
        tokio::spawn(async move {
            let metadata = match &oembed {
                Some(client) => match client.video(&id).await {
                    Ok(m) => Some(m),
                    Err(e) if e.is_about_the_video() => {
                        let _ = jobs.send(Job::Event(NodeEvent::error(e.to_string(), Some("add"))));
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(video = %id, error = %e, "no title for the video");
                        None
                    }
                },
                None => None,
            };
            let track = jamz_sync::sources::youtube_track(&id, metadata.as_ref(), duration);
            let _ = jobs.send(Job::Input(Input::Command(Command::Add(Box::new(track)))));
        });
    }
}
