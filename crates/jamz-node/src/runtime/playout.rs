//! The audio side of the loop: playout commands to the player, and its clock
//! reports and events back to the engine (which decides every restart).

use super::*;
impl Runtime {
    pub(super) fn audio_command(&mut self, cmd: AudioCommand) {
        match cmd {
            AudioCommand::Start { .. }
            | AudioCommand::Pause
            | AudioCommand::Stop
            | AudioCommand::SetRateTrim { .. } => self.audio.send(AudioJob::Playout(cmd)),
            AudioCommand::Preload(track) => {
                let cache = self.cache.clone();
                tokio::spawn(async move {
                    if let Err(e) = cache.fetch_to_path(&cache_track(&track)).await {
                        tracing::info!(track = %track.id, error = %e, "preloading the next track failed");
                    }
                });
            }
            AudioCommand::QueryClock => {
                let input = self.clock_input();
                self.pending.push_back(input);
            }
        }
    }

    pub(super) fn clock_input(&self) -> Input {
        let now = Instant::now();
        let heard = self.audio.player().audible_position(now).map(|p| Heard {
            track: p.track,
            position: p.seconds,
        });
        Input::AudioClock {
            at: self.clock.ms_at(now),
            heard,
        }
    }

    pub(super) fn audio_report(&mut self, report: AudioReport) {
        match report {
            AudioReport::Failed { track, message } => self.emit(audio_error(track, &message)),
            AudioReport::Ended { track } => self.feed(Input::TrackEnded { track }),
            AudioReport::Buffering { track, buffering } => {
                tracing::info!(%track, buffering, "waiting for the track's bytes");
                self.feed(Input::Buffering { track, buffering });
            }
            AudioReport::OutputSwitched { spec } => {
                self.output = spec;
                self.feed(Input::OutputSwitched);
                self.tell_calibration_state();
                self.request_status();
            }
            AudioReport::Player(ev) => match ev {
                jamz_audio::PlayerEvent::Error { track, message } => {
                    self.emit(audio_error(track, &message));
                }
                jamz_audio::PlayerEvent::Stalled { gap } => {
                    tracing::info!(?gap, "the output stalled");
                    self.feed(Input::OutputStalled {
                        gap_ms: gap.as_secs_f64() * 1000.0,
                    });
                }
                jamz_audio::PlayerEvent::DeviceLost { message } => {
                    tracing::info!(%message, "the output device is lost");
                    self.feed(Input::OutputLost);
                }
                other @ jamz_audio::PlayerEvent::DeviceRestored { .. } => {
                    tracing::info!(event = ?other, "player");
                    self.feed(Input::OutputRestored);
                }
                other => tracing::info!(event = ?other, "player"),
            },
        }
    }
}

/// A failure of the audio side as an `error` event.
fn audio_error(track: Option<String>, message: &str) -> NodeEvent {
    let message = match track {
        Some(t) => format!("audio: track {t}: {message}"),
        None => format!("audio: {message}"),
    };
    NodeEvent::error(message, None)
}
