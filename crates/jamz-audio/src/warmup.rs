//! When an output is warm: its buffers have reached the device in real time, steadily, for
//! long enough that its start-up is over.
//!
//! A new stream does not play at once everywhere: on ALSA -> PulseAudio its first buffers
//! fill at once, then the server can hold the stream back for 1.4-2 s before audio flows
//! (docs/architecture.md, "A warm output"). A track started in that window loses its start.
//! The output therefore runs (silence) from when the player opens, and the player tells
//! whether it is past that start-up; the caller waits for it before it lets anything start.
//!
//! Sans-IO: the audio callback feeds each buffer's wall-clock instant (when the callback
//! ran) and playback instant (when its first frame reaches the device); both move together
//! at the output rate once the stream runs in real time.

use std::time::{Duration, Instant};

/// How long buffers must keep arriving in real time before the output counts as warm:
/// 300 ms, many device periods (5-25 ms each) and longer than the quick fill of a new
/// stream's first buffers (which all come within a few ms of wall-clock time), so a fill
/// followed by a stall never looks steady.
pub(crate) const WARM_SPAN: Duration = Duration::from_millis(300);

/// How far a buffer's lead (playback instant minus the callback's own instant) may wander
/// in a steady stream: 20 ms, above a PulseAudio stream's timing wobble (a few ms) and a
/// period's scheduling jitter, below the smallest start-up stall seen (hundreds of ms).
const LEAD_TOLERANCE: Duration = Duration::from_millis(20);

/// Longest wall-clock gap between two callbacks of a steady stream: 50 ms, the mixer's
/// stall threshold ([`crate::STALL_GAP`]); device periods are 5-25 ms.
const CALLBACK_GAP: Duration = crate::mixer::STALL_GAP;

/// One steady stretch: when it began (wall clock), the lead at its first buffer, and when
/// its latest callback ran.
#[derive(Debug, Clone, Copy)]
struct Stretch {
    since: Instant,
    lead: Duration,
    last: Instant,
}

/// Watches buffers until the output is warm; then it stays warm until [`Warmup::reset`].
#[derive(Debug, Default)]
pub(crate) struct Warmup {
    stretch: Option<Stretch>,
    warm: bool,
}

impl Warmup {
    /// Starts over (a new stream on another device).
    pub fn reset(&mut self) {
        *self = Warmup::default();
    }

    pub fn is_warm(&self) -> bool {
        self.warm
    }

    /// One buffer: the callback ran at `wall` and its first frame plays at `playback`.
    /// Returns whether the output is warm now.
    pub fn observe(&mut self, wall: Instant, playback: Instant) -> bool {
        if self.warm {
            return true;
        }
        // A buffer "due" before its callback ran says the timestamps are not settled yet
        // (a first callback may report latency 0): a lead of zero, so it starts over below
        // unless the stream keeps it.
        let lead = playback.saturating_duration_since(wall);
        match &mut self.stretch {
            Some(s)
                if lead.abs_diff(s.lead) <= LEAD_TOLERANCE
                    && wall.saturating_duration_since(s.last) <= CALLBACK_GAP =>
            {
                s.last = wall;
                if wall.saturating_duration_since(s.since) >= WARM_SPAN {
                    self.warm = true;
                }
            }
            _ => {
                self.stretch = Some(Stretch {
                    since: wall,
                    lead,
                    last: wall,
                });
            }
        }
        self.warm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A stream with 10 ms periods whose callbacks run `lead` ahead of playback.
    fn steady(w: &mut Warmup, t0: Instant, from_ms: u64, to_ms: u64, lead: Duration) -> bool {
        let mut warm = false;
        for t in (from_ms..to_ms).step_by(10) {
            let wall = t0 + ms(t);
            warm = w.observe(wall, wall + lead);
        }
        warm
    }

    #[test]
    fn a_steady_stream_is_warm_after_the_span_and_stays_warm() {
        let t0 = Instant::now();
        let mut w = Warmup::default();
        assert!(!steady(&mut w, t0, 0, 290, ms(20)));
        assert!(steady(&mut w, t0, 290, 320, ms(20)));
        // A later jump does not make it cold again (stalls while playing are the engine's).
        assert!(w.observe(t0 + ms(2000), t0 + ms(2500)));
        w.reset();
        assert!(!w.is_warm());
    }

    #[test]
    fn a_quick_fill_then_a_stall_is_not_warm_until_the_stream_runs_steadily() {
        let t0 = Instant::now();
        let mut w = Warmup::default();
        // The fill: 40 buffers of 10 ms within 4 ms of wall-clock time (the lead grows).
        for k in 0..40u64 {
            let wall = t0 + Duration::from_micros(100 * k);
            assert!(!w.observe(wall, t0 + ms(10 * k)));
        }
        // Held back 1.5 s, then steady with the lead it now has.
        assert!(!steady(&mut w, t0, 1500, 1790, ms(30)));
        assert!(steady(&mut w, t0, 1790, 1830, ms(30)));
    }

    #[test]
    fn callbacks_that_stop_for_a_while_start_the_stretch_over() {
        let t0 = Instant::now();
        let mut w = Warmup::default();
        // Three quick buffers, held back 690 ms (seen on PulseAudio), then steady with a
        // lead close to the first one's: the hold-up alone must not count as steady.
        assert!(!w.observe(t0, t0));
        assert!(!w.observe(t0 + ms(1), t0 + ms(11)));
        assert!(!w.observe(t0 + ms(690), t0 + ms(705)));
        assert!(!steady(&mut w, t0, 700, 980, ms(15)));
        assert!(steady(&mut w, t0, 980, 1010, ms(15)));
    }

    #[test]
    fn a_lead_that_keeps_moving_is_never_warm() {
        let t0 = Instant::now();
        let mut w = Warmup::default();
        for k in 0..200u64 {
            let wall = t0 + ms(10 * k);
            // Alternating 0 and 50 ms of lead: no steady stretch at all.
            let lead = if k % 2 == 0 { ms(0) } else { ms(50) };
            assert!(!w.observe(wall, wall + lead), "warm at buffer {k}");
        }
    }
}
