//! Fixes a user or an app gives by hand (a map tap, the phone plugin's positions).

use tokio::sync::mpsc;

use crate::filter::SkipCounts;
use crate::fix::Fix;
use crate::source::{EventFuture, Gate, GeoError, LocationSource, SourceEvent};

/// Where manual fixes are put in.
#[derive(Debug, Clone)]
pub struct ManualFixes(mpsc::UnboundedSender<Fix>);

impl ManualFixes {
    /// Gives a fix to the source; false once the source is dropped.
    pub fn push(&self, fix: Fix) -> bool {
        self.0.send(fix).is_ok()
    }
}

/// The fixes given through its [`ManualFixes`], filtered like any other source's;
/// it ends when every handle is dropped.
pub struct ManualSource {
    rx: mpsc::UnboundedReceiver<Fix>,
    gate: Gate,
}

impl ManualSource {
    pub fn new() -> (ManualFixes, ManualSource) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            ManualFixes(tx),
            ManualSource {
                rx,
                gate: Gate::default(),
            },
        )
    }
}

impl LocationSource for ManualSource {
    fn next_event(&mut self) -> EventFuture<'_> {
        Box::pin(async move {
            Ok::<_, GeoError>(match self.rx.recv().await {
                Some(fix) => self.gate.pass(fix),
                None => SourceEvent::Ended,
            })
        })
    }

    fn counts(&self) -> SkipCounts {
        self.gate.counts
    }

    fn describe(&self) -> String {
        "manual".into()
    }
}
