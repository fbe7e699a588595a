//! The `--location` source: a jamz-geo source whose fixes go into the node through the
//! same path as the `location` command, thinned by the engine's sharing rule
//! (jamz-sync's `SharePolicy`: every 5 s or 50 m, not while stationary).

use jamz_geo::{GeoError, LocationSource, LocationSpec, SourceEvent, SourceStatus};
use jamz_sync::convoy::{Position, SharePolicy};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::control::{NodeCommand, NodeEvent};

/// The running source task; dropping it stops the source.
pub(super) struct LocationTask(tokio::task::JoinHandle<()>);

impl Drop for LocationTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the source `spec` names, if it names one that runs by itself (`none` and
/// `manual` do not: manual fixes are `location` commands). Problems are `error` events
/// with `cmd: "location"`. The task holds no strong command sender: a node whose every
/// commander is gone still stops.
pub(super) fn spawn(
    spec: LocationSpec,
    commands: &mpsc::UnboundedSender<NodeCommand>,
    events: mpsc::UnboundedSender<NodeEvent>,
) -> Option<LocationTask> {
    if matches!(spec, LocationSpec::None | LocationSpec::Manual) {
        return None;
    }
    let commands = commands.downgrade();
    Some(LocationTask(tokio::spawn(async move {
        match spec.open().await {
            Ok(Some(source)) => forward(source, commands, &events).await,
            Ok(None) => tracing::info!(%spec, "no location source answered"),
            Err(e) => report(&events, &e),
        }
    })))
}

fn report(events: &mpsc::UnboundedSender<NodeEvent>, e: &GeoError) {
    let _ = events.send(NodeEvent::error(e.to_string(), Some("location")));
}

async fn forward(
    mut source: Box<dyn LocationSource>,
    commands: mpsc::WeakUnboundedSender<NodeCommand>,
    events: &mpsc::UnboundedSender<NodeEvent>,
) {
    let name = source.describe();
    let start = Instant::now();
    let mut share = SharePolicy::default();
    // Tell about a lost receiver once per outage, not at every retry.
    let mut down = false;
    loop {
        match source.next_event().await {
            Ok(SourceEvent::Fix(fix)) => {
                down = false;
                let pos = Position {
                    latitude: fix.latitude,
                    longitude: fix.longitude,
                    speed: fix.speed,
                    heading: fix.heading,
                };
                let now = start.elapsed().as_secs_f64() * 1000.0;
                if share.offer(now, &pos).is_none() {
                    continue;
                }
                let Some(tx) = commands.upgrade() else { return };
                let cmd = NodeCommand::Location {
                    latitude: fix.latitude,
                    longitude: fix.longitude,
                    speed: fix.speed,
                    heading: fix.heading,
                };
                if tx.send(cmd).is_err() {
                    return;
                }
            }
            Ok(SourceEvent::Skipped(reason)) => {
                tracing::debug!(source = %name, ?reason, counts = ?source.counts(), "location input skipped");
            }
            Ok(SourceEvent::Status(SourceStatus::Connected { detail })) => {
                tracing::info!(source = %name, %detail, "location source connected");
            }
            Ok(SourceEvent::Status(SourceStatus::Disconnected { reason, retry_in })) => {
                tracing::debug!(source = %name, %reason, ?retry_in, "location source down");
                if !down {
                    let _ = events.send(NodeEvent::error(
                        format!("location source {name}: {reason}; retrying"),
                        Some("location"),
                    ));
                }
                down = true;
            }
            Ok(SourceEvent::Ended) => {
                tracing::info!(source = %name, counts = ?source.counts(), "location source ended");
                return;
            }
            Err(e) => {
                report(events, &e);
                return;
            }
        }
    }
}
