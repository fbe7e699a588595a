//! The `--location` source: a jamz-geo source whose fixes go into the engine through
//! the same path as the `location` command (the engine's sharing rule decides what is
//! shown and sent); and the fixes the socket could not carry, posted to the server's
//! history (`POST /api/locations`) when the engine asks.

use jamz_geo::{GeoError, LocationSource, LocationSpec, SourceEvent, SourceStatus};
use jamz_proto::rest::LocationReport;
use jamz_sync::api::Input;
use jamz_sync::location::{LocationEvent, LocationInput};
use tokio::sync::mpsc;

use super::{Job, Runtime};
use crate::control::{NodeCommand, NodeEvent};
use crate::positions::KnownPosition;

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
    // Tell about a lost receiver once per outage, not at every retry.
    let mut down = false;
    loop {
        match source.next_event().await {
            Ok(SourceEvent::Fix(fix)) => {
                down = false;
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

impl Runtime {
    /// Keeps everyone's last position for a map with no link (and forgets a car that
    /// stopped sharing).
    pub(super) fn remember_position(&mut self, ev: &LocationEvent) {
        match ev {
            LocationEvent::Location {
                user_id,
                latitude,
                longitude,
                speed,
                heading,
                ..
            } => self.positions.update(KnownPosition {
                user_id: *user_id,
                latitude: *latitude,
                longitude: *longitude,
                speed: *speed,
                heading: *heading,
                at: self.now(),
            }),
            LocationEvent::LocationOff { user_id } => self.positions.remove(*user_id),
            _ => return,
        }
        self.save_positions(false);
    }

    pub(super) fn save_positions(&mut self, force: bool) {
        let now = self.now();
        if let Err(e) = self.positions.save_if_due(now, force) {
            tracing::warn!(error = %e, "cannot keep the last known positions");
        }
    }

    pub(super) fn save_waiting_fixes(&mut self, force: bool) {
        let now = self.now();
        let version = self.engine.location_backlog_version();
        let engine = &self.engine;
        if let Err(e) =
            self.waiting_fixes
                .save_if_due(now, version, || engine.location_backlog(), force)
        {
            tracing::warn!(error = %e, "cannot keep the positions waiting for the server");
        }
    }

    /// Posts the fixes one after another, in order. What an unreachable server did not
    /// take goes back to the engine for the next connection; a fix the server refuses
    /// (out of range, not a member any more) is reported and skipped. The batch is kept
    /// on disk until then (`waiting_fixes`).
    pub(super) fn report_locations(&mut self, reports: Vec<LocationReport>) {
        let batch = self.waiting_fixes.posting(&reports);
        let rest = self.rest.clone();
        let jobs = self.jobs.clone();
        tokio::spawn(async move {
            for (i, report) in reports.iter().enumerate() {
                match rest.post_location(report).await {
                    Ok(()) => {}
                    Err(e) if e.is_unreachable() => {
                        tracing::info!(error = %e, left = reports.len() - i, "location history waits for the server");
                        let rest_of = reports[i..].to_vec();
                        let input =
                            Input::Location(LocationInput::ReportFailed { reports: rest_of });
                        let _ = jobs.send(Job::Input(input));
                        break;
                    }
                    Err(e) => {
                        let _ = jobs.send(Job::Event(NodeEvent::error(
                            format!("the server refused a fix kept while offline: {e}"),
                            Some("location"),
                        )));
                    }
                }
            }
            let _ = jobs.send(Job::LocationsPosted(batch));
        });
    }
}
