//! Playlist changes and uploads while the server is away: kept in the outbox
//! (on disk) and sent in order when the link is back.

use super::*;

/// Uploads a file with its tags (`progress` events per 10 %) and caches it here:
/// this device never downloads its own upload back.
pub(super) async fn upload_and_cache(
    rest: &RestClient,
    cache: &Cache,
    path: &std::path::Path,
    jobs: &mpsc::UnboundedSender<Job>,
) -> Result<Track, NodeError> {
    let what = format!("upload {}", path.display());
    let j = jobs.clone();
    let last = Arc::new(std::sync::Mutex::new(u64::MAX));
    let progress: jamz_link::Progress = Arc::new(move |done, total| {
        // One event per 10 % (and the last), not one per 64 KiB chunk.
        let step = (done * 10).checked_div(total).unwrap_or(10);
        let mut l = last.lock().unwrap_or_else(|e| e.into_inner());
        if *l != step {
            *l = step;
            let _ = j.send(Job::Event(NodeEvent::Progress {
                what: what.clone(),
                done,
                total,
            }));
        }
    });
    let track = upload_file(rest, path, Some(progress)).await?;
    if let Err(e) = cache.import_file(&cache_track(&track), path).await {
        tracing::warn!(track = %track.id, error = %e, "cannot cache the uploaded file");
    }
    Ok(track)
}

/// How long the outbox waits before trying again when a send found no server while the
/// socket was up.
const OUTBOX_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// Why the outbox's oldest change did not go through.
pub(super) enum OutboxFailure {
    /// Still no server: try again on the next connection.
    Unreachable(String),
    /// The server (or the file) refused it: it will not go through.
    Refused(String),
}

impl OutboxFailure {
    fn of(e: NodeError) -> Self {
        match &e {
            NodeError::Link(l) if l.is_unreachable() => OutboxFailure::Unreachable(e.to_string()),
            _ => OutboxFailure::Refused(e.to_string()),
        }
    }
}

/// Sends one waiting change; the playlist after it. An upload is appended at
/// once (not queued behind later changes), so the order stays the user's.
pub(super) async fn send_pending(
    rest: &RestClient,
    cache: &Cache,
    session_id: &str,
    pending: &Pending,
    jobs: &mpsc::UnboundedSender<Job>,
) -> Result<Vec<Track>, OutboxFailure> {
    match pending {
        Pending::Rest(call) => send_rest(rest, call)
            .await
            .map_err(|e| OutboxFailure::of(e.into())),
        Pending::Upload { path } => {
            let track = upload_and_cache(rest, cache, path, jobs)
                .await
                .map_err(|e| match OutboxFailure::of(e) {
                    OutboxFailure::Refused(m) => OutboxFailure::Refused(cannot_add(path, &m)),
                    u => u,
                })?;
            rest.append_track(session_id, &track)
                .await
                .map_err(|e| OutboxFailure::of(e.into()))
        }
    }
}

/// One playlist change over REST; the playlist after it.
pub(super) async fn send_rest(
    rest: &RestClient,
    call: &RestCall,
) -> Result<Vec<Track>, jamz_link::LinkError> {
    match call {
        RestCall::AppendTrack { session_id, track } => rest.append_track(session_id, track).await,
        RestCall::DeleteTrack {
            session_id,
            track_id,
        } => rest.delete_track(session_id, track_id).await,
        RestCall::Reorder { session_id, order } => rest.reorder_playlist(session_id, order).await,
    }
}

impl Runtime {
    pub(super) fn rest_call(&mut self, call: RestCall) {
        // Behind calls already waiting, or with no server: wait with them, in order.
        if !self.connected || !self.outbox.is_empty() {
            self.keep_for_later(Pending::Rest(call));
            return;
        }
        self.rest_in_flight += 1;
        let rest = self.rest.clone();
        let jobs = self.jobs.clone();
        tokio::spawn(async move {
            let job = match send_rest(&rest, &call).await {
                Ok(playlist) => Job::RestDone(Input::PlaylistLoaded(playlist)),
                Err(e) if e.is_unreachable() => Job::Unreachable(Pending::Rest(call)),
                Err(e) => Job::RestDone(Input::RestFailed {
                    call,
                    message: e.to_string(),
                }),
            };
            let _ = jobs.send(job);
        });
    }

    /// Puts a playlist change in the outbox (on disk) until the server is back.
    pub(super) fn keep_for_later(&mut self, call: Pending) {
        if let Err(e) = self.outbox.push(call) {
            self.emit(NodeEvent::error(
                format!("a change made offline cannot be kept for later: {e}"),
                None,
            ));
        }
        self.emit_outbox();
    }

    pub(super) fn emit_outbox(&self) {
        self.emit(NodeEvent::Outbox {
            pending: self.outbox.views(),
        });
    }

    /// Sends the oldest waiting change; each answer sends the next one.
    pub(super) fn flush_outbox(&mut self) {
        if self.outbox_sending || !self.connected {
            return;
        }
        let Some(call) = self.outbox.front().cloned() else {
            return;
        };
        self.outbox_sending = true;
        let rest = self.rest.clone();
        let cache = self.cache.clone();
        let session_id = self.session_id.clone();
        let jobs = self.jobs.clone();
        tokio::spawn(async move {
            let r = send_pending(&rest, &cache, &session_id, &call, &jobs).await;
            let _ = jobs.send(Job::OutboxSent(r));
        });
    }

    pub(super) fn outbox_sent(&mut self, r: Result<Vec<Track>, OutboxFailure>) {
        self.outbox_sending = false;
        match r {
            Err(OutboxFailure::Unreachable(e)) => {
                if self.connected {
                    // The socket is up but this call found no server (a restart behind a
                    // proxy, a REST hiccup): try again soon rather than at the next
                    // connection, which may be hours away.
                    tracing::info!(error = %e, "offline changes: no answer, trying again");
                    let jobs = self.jobs.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(OUTBOX_RETRY).await;
                        let _ = jobs.send(Job::RetryOutbox);
                    });
                } else {
                    tracing::info!(error = %e, "offline changes wait for the next connection");
                }
                return;
            }
            Err(OutboxFailure::Refused(e)) => self.emit(NodeEvent::error(
                format!("a change made offline did not go through: {e}"),
                None,
            )),
            Ok(playlist) => self.feed(Input::PlaylistLoaded(playlist)),
        }
        if let Err(e) = self.outbox.pop_front() {
            self.emit(NodeEvent::error(
                format!("the offline changes file: {e}"),
                None,
            ));
        }
        self.emit_outbox();
        self.flush_outbox();
    }

    pub(super) fn upload(&mut self, path: PathBuf) {
        // Without a server (or behind changes waiting for one): upload later, in order.
        if !self.connected || !self.outbox.is_empty() {
            self.keep_for_later(Pending::Upload { path });
            return;
        }
        let rest = self.rest.clone();
        let cache = self.cache.clone();
        let jobs = self.jobs.clone();
        tokio::spawn(async move {
            match upload_and_cache(&rest, &cache, &path, &jobs).await {
                Ok(track) => {
                    let _ = jobs.send(Job::Input(Input::Command(Command::Add(Box::new(track)))));
                }
                Err(NodeError::Link(e)) if e.is_unreachable() => {
                    let _ = jobs.send(Job::Unreachable(Pending::Upload { path }));
                }
                Err(e) => {
                    let _ = jobs.send(Job::Event(NodeEvent::error(
                        cannot_add(&path, &e.to_string()),
                        Some("add"),
                    )));
                }
            }
        });
    }
}

/// "cannot add PATH: why", naming the file once: most reasons already start with its path.
fn cannot_add(path: &std::path::Path, why: &str) -> String {
    let shown = path.display().to_string();
    let why = why.strip_prefix(&format!("{shown}: ")).unwrap_or(why);
    format!("cannot add {shown}: {why}")
}

#[cfg(test)]
mod cannot_add_tests {
    use super::cannot_add;

    #[test]
    fn the_file_is_named_once() {
        let p = std::path::Path::new("/music/x.mp3");
        assert_eq!(
            cannot_add(p, "/music/x.mp3: No such file or directory (os error 2)"),
            "cannot add /music/x.mp3: No such file or directory (os error 2)"
        );
        assert_eq!(
            cannot_add(p, "not audio"),
            "cannot add /music/x.mp3: not audio"
        );
    }
}
