//! The node's commands (docs/node-control.md and our additions) and its `status`.

use super::*;
use jamz_sync::{CalibrationAction, CalibrationInput};

/// Probes of a `calibrate-peer` that does not say how many (docs/node-control.md).
const PEER_CALIBRATION_PROBES: usize = 5;
use jamz_sync::convoy::Position;
use jamz_sync::location::LocationInput;

impl Runtime {
    /// Carries out one command. Nothing here waits for I/O: slow work (the cache,
    /// listing devices) is spawned and its result comes back as a [`Job`], so
    /// controls, ticks and link events never queue behind it.
    pub(super) fn command(&mut self, cmd: NodeCommand) {
        let input = match cmd {
            NodeCommand::Status => {
                self.request_status();
                return;
            }
            NodeCommand::Add {
                track: Some(track), ..
            } => Command::Add(track),
            NodeCommand::Add {
                youtube: Some(video),
                duration,
                ..
            } => {
                self.add_youtube(&video, duration);
                return;
            }
            NodeCommand::Add {
                path: Some(path), ..
            } => {
                self.upload(path);
                return;
            }
            NodeCommand::Add { .. } => {
                self.emit(NodeEvent::error(
                    "add needs exactly one of `path`, `track` and `youtube`",
                    Some("add"),
                ));
                return;
            }
            NodeCommand::Volume { level } => {
                self.audio.send(AudioJob::Volume {
                    level: level as f32,
                });
                return;
            }
            NodeCommand::Preload => {
                self.preload(true);
                return;
            }
            NodeCommand::AutoPreload { enabled } => {
                self.auto_preload = enabled;
                if enabled {
                    self.auto_preload();
                } else if !self.preload_manual
                    && let Some(c) = self.preload.take()
                {
                    c.cancel();
                }
                return;
            }
            NodeCommand::Location {
                latitude,
                longitude,
                speed,
                heading,
            } => {
                let fix = Position {
                    latitude,
                    longitude,
                    speed,
                    heading,
                };
                self.feed(Input::Location(LocationInput::Fix(fix)));
                return;
            }
            NodeCommand::ShareLocation {
                enabled,
                duration_s,
            } => {
                let for_ms = duration_s.map(|s| s * 1000.0);
                self.feed(Input::Location(LocationInput::Share { enabled, for_ms }));
                return;
            }
            NodeCommand::Regroup {
                latitude,
                longitude,
            } => {
                self.feed(Input::Location(LocationInput::SetRegroup {
                    latitude,
                    longitude,
                }));
                return;
            }
            NodeCommand::RegroupClear => {
                self.feed(Input::Location(LocationInput::ClearRegroup));
                return;
            }
            NodeCommand::Quit => return,
            NodeCommand::LatencyOffset { ms } => {
                self.latency_offset_ms = ms;
                self.audio.send(AudioJob::LatencyOffset {
                    offset: Duration::from_secs_f64(ms / 1000.0),
                });
                self.tell_calibration_state();
                return;
            }
            NodeCommand::CacheLimit { bytes, tracks } => {
                let (max_tracks, _) = self.cache.limits();
                let cache = self.cache.clone();
                self.spawn_cache_change("cache-limit", async move {
                    cache.set_limits(tracks.unwrap_or(max_tracks), bytes).await
                });
                return;
            }
            NodeCommand::CacheClear => {
                if let Some(c) = self.preload.take() {
                    c.cancel();
                }
                let cache = self.cache.clone();
                self.spawn_cache_change("cache-clear", async move { cache.clear().await });
                return;
            }
            NodeCommand::Output { spec } => {
                match spec.parse() {
                    Ok(spec) => self.audio.send(AudioJob::SwitchOutput { spec }),
                    Err(e) => self.emit(NodeEvent::error(format!("{e}"), Some("output"))),
                }
                return;
            }
            NodeCommand::Outputs => {
                let jobs = self.jobs.clone();
                tokio::spawn(async move {
                    let ev = match tokio::task::spawn_blocking(jamz_audio::output_devices).await {
                        Ok(Ok(devices)) => NodeEvent::Outputs {
                            outputs: devices.into_iter().map(OutputView::from).collect(),
                        },
                        Ok(Err(e)) => {
                            NodeEvent::error(format!("listing outputs: {e}"), Some("outputs"))
                        }
                        Err(e) => {
                            NodeEvent::error(format!("listing outputs: {e}"), Some("outputs"))
                        }
                    };
                    let _ = jobs.send(Job::Event(ev));
                });
                return;
            }
            NodeCommand::YoutubeReading {
                video,
                position,
                state,
                duration,
            } => {
                // An unknown state code is not a reading to judge by.
                let Some(state) = jamz_sync::external::PlayerState::from_code(state) else {
                    return;
                };
                let reading = jamz_sync::external::Reading {
                    at: self.clock.now_ms(),
                    position_s: position,
                    state,
                    duration_s: duration,
                };
                self.feed(Input::External(ExternalReport::Reading { video, reading }));
                return;
            }
            NodeCommand::YoutubeError { video, code } => {
                self.feed(Input::External(ExternalReport::Error { video, code }));
                return;
            }
            NodeCommand::Calibrate { probes } => {
                self.calibrate(probes);
                return;
            }
            NodeCommand::CalibratePeer { user, probes } => {
                self.feed(Input::Calibration(CalibrationInput::Start {
                    user,
                    probes: probes.unwrap_or(PEER_CALIBRATION_PROBES),
                }));
                return;
            }
            NodeCommand::Session(command) => command,
        };
        self.feed(Input::Command(input));
    }

    /// Measures the output's latency with the microphone on a blocking thread (it plays and
    /// records for several seconds); the result comes back as [`Job::Calibrated`].
    fn calibrate(&mut self, probes: Option<usize>) {
        let refuse = |why: &str| NodeEvent::error(why, Some("calibrate"));
        if self.calibrating || self.engine.peer_calibration_running() {
            self.emit(refuse("a calibration is already running"));
            return;
        }
        if self.playing {
            self.emit(refuse(
                "pause the music first: the calibration's probes play through the same output",
            ));
            return;
        }
        if matches!(
            self.output.parse::<OutputSpec>(),
            Ok(OutputSpec::Null | OutputSpec::Wav(_))
        ) {
            self.emit(refuse(&format!(
                "output {} plays to no speaker: switch to a device first",
                self.output
            )));
            return;
        }
        self.calibrating = true;
        self.tell_calibration_state();
        let player = self.audio.player();
        let mut opts = jamz_audio::CalibrationOptions::default();
        if let Some(n) = probes {
            opts.probes = n;
        }
        let jobs = self.jobs.clone();
        tokio::spawn(async move {
            let result = tokio::task::spawn_blocking(move || jamz_audio::calibrate(&player, &opts))
                .await
                .map_err(|e| format!("the calibration stopped: {e}"))
                .and_then(|r| r.map_err(|e| e.to_string()));
            let _ = jobs.send(Job::Calibrated(result));
        });
    }

    /// Applies a calibration's result (the engine's rule decides whether and how) and
    /// answers `calibrate`.
    pub(super) fn calibrated(&mut self, result: Result<jamz_audio::CalibrationResult, String>) {
        self.calibrating = false;
        self.tell_calibration_state();
        let r = match result {
            Ok(r) => r,
            Err(e) => {
                self.emit(NodeEvent::error(
                    format!("calibration: {e}"),
                    Some("calibrate"),
                ));
                return;
            }
        };
        match jamz_sync::calibration::offset_after_calibration(
            self.latency_offset_ms,
            r.delay_ms,
            r.confidence,
        ) {
            Ok(ms) => {
                self.command(NodeCommand::LatencyOffset { ms });
                self.emit(NodeEvent::Calibration {
                    delay_ms: r.delay_ms,
                    spread_ms: r.spread_ms,
                    confidence: r.confidence,
                    probes: r.probes,
                    agreeing: r.agreeing,
                    latency_offset_ms: ms,
                    from: None,
                });
            }
            Err(why) => self.emit(NodeEvent::error(
                format!(
                    "calibration: heard {:+.1} ms from the expected, not applied: {why}",
                    r.delay_ms
                ),
                Some("calibrate"),
            )),
        }
    }

    /// Tells the engine what the relative calibration needs of the output: whether it
    /// reaches a speaker, its latency offset, whether its own calibration runs.
    pub(super) fn tell_calibration_state(&mut self) {
        let audible = !matches!(
            self.output.parse::<OutputSpec>(),
            Ok(OutputSpec::Null | OutputSpec::Wav(_))
        );
        self.feed(Input::Calibration(CalibrationInput::Output {
            audible,
            offset_ms: self.latency_offset_ms,
            calibrating: self.calibrating,
        }));
    }

    /// The node's part of a relative calibration: recording and playing run on blocking
    /// threads (seconds each); what they found comes back as engine inputs.
    pub(super) fn calibration_action(&mut self, action: CalibrationAction) {
        match action {
            CalibrationAction::Record { run_id, at, until } => {
                let clock = self.clock;
                let jobs = self.jobs.clone();
                let instants: Vec<_> = at.iter().map(|t| clock.instant_at(*t)).collect();
                let until = clock.instant_at(until);
                tokio::spawn(async move {
                    let found = tokio::task::spawn_blocking(move || {
                        jamz_audio::listen_for_probes(
                            &instants,
                            until,
                            &jamz_audio::CalibrationOptions::default(),
                        )
                    })
                    .await
                    .map_err(|e| format!("the recording stopped: {e}"))
                    .and_then(|r| r.map_err(|e| e.to_string()));
                    let input = match found {
                        Ok(found) => CalibrationInput::Heard {
                            run_id,
                            heard: found
                                .into_iter()
                                .map(|h| {
                                    h.map(|h| jamz_sync::HeardProbe {
                                        at: clock.ms_at(h.at),
                                        confidence: h.confidence,
                                    })
                                })
                                .collect(),
                            // The input's stamps are its buffers' arrivals less their
                            // frames, as in the own calibration: nothing more to take off.
                            input_latency_ms: 0.0,
                        },
                        Err(message) => CalibrationInput::Failed { run_id, message },
                    };
                    let _ = jobs.send(Job::Input(Input::Calibration(input)));
                });
            }
            CalibrationAction::PlayProbes { run_id, at } => {
                let clock = self.clock;
                let jobs = self.jobs.clone();
                let player = self.audio.player();
                let instants: Vec<_> = at.iter().map(|t| clock.instant_at(*t)).collect();
                let playing = Arc::clone(&self.probes_playing);
                tokio::spawn(async move {
                    let played = tokio::task::spawn_blocking(move || {
                        let _one_run_at_a_time = playing
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        jamz_audio::play_probes(&player, &instants)
                    })
                    .await
                    .map_err(|e| format!("the probes stopped: {e}"))
                    .and_then(|r| r.map_err(|e| e.to_string()));
                    if let Err(message) = played {
                        let input = CalibrationInput::Failed { run_id, message };
                        let _ = jobs.send(Job::Input(Input::Calibration(input)));
                    }
                });
            }
            CalibrationAction::SetOffset(r) => {
                self.command(NodeCommand::LatencyOffset {
                    ms: r.latency_offset_ms,
                });
                self.emit(NodeEvent::Calibration {
                    delay_ms: r.delay_ms,
                    spread_ms: r.spread_ms,
                    confidence: r.confidence,
                    probes: r.probes,
                    agreeing: r.agreeing,
                    latency_offset_ms: r.latency_offset_ms,
                    from: Some(r.user),
                });
            }
        }
    }

    /// Runs a cache change off the loop; its answer (an error, or a `status` with
    /// the cache's new figures) comes back as [`Job::CacheChanged`].
    fn spawn_cache_change(
        &self,
        cmd: &'static str,
        change: impl std::future::Future<Output = Result<(), jamz_cache::CacheError>> + Send + 'static,
    ) {
        let jobs = self.jobs.clone();
        tokio::spawn(async move {
            let result = change.await;
            let _ = jobs.send(Job::CacheChanged { result, cmd });
        });
    }

    /// Answers a cache change with the error, or with a `status`.
    pub(super) fn after_cache_change(
        &mut self,
        r: Result<(), jamz_cache::CacheError>,
        cmd: &'static str,
    ) {
        match r {
            Ok(()) => self.request_status(),
            Err(e) => self.emit(NodeEvent::error(format!("track cache: {e}"), Some(cmd))),
        }
    }

    /// A `status` event: the cache's figures are read off the loop, the rest when
    /// they are in ([`Job::Status`]).
    pub(super) fn request_status(&mut self) {
        self.status_in_flight += 1;
        let cache = self.cache.clone();
        let jobs = self.jobs.clone();
        tokio::spawn(async move {
            let stats = cache.stats().await;
            let _ = jobs.send(Job::Status(stats));
        });
    }

    pub(super) fn status(
        &self,
        stats: Result<jamz_cache::CacheStats, jamz_cache::CacheError>,
    ) -> NodeEvent {
        let heard = self.audio.player().audible_position(Instant::now());
        let (max_tracks, max_bytes) = self.cache.limits();
        let cache = match stats {
            Ok(s) => CacheSummary {
                tracks: s.tracks,
                bytes: s.bytes,
                hits: s.hits,
                misses: s.misses,
                max_bytes,
                max_tracks: max_tracks as u64,
            },
            Err(e) => {
                tracing::warn!(error = %e, "cache stats");
                CacheSummary::default()
            }
        };
        let stats = self.engine.stats();
        let now = self.now();
        // What is audible; when nothing is (paused, not started), where the
        // group's timeline stands. Never past the track's end.
        let (track, position) = match heard {
            Some(h) => {
                let end = self
                    .engine
                    .timeline()
                    .filter(|t| t.track.id == h.track)
                    .and_then(|t| t.track.duration)
                    .filter(|d| d.is_finite() && *d > 0.0)
                    .unwrap_or(f64::INFINITY);
                (Some(h.track), Some(h.seconds.min(end)))
            }
            None => match self.engine.group_position(now) {
                Some((track, position)) => (Some(track), Some(position)),
                None => (self.current.clone(), None),
            },
        };
        let clock = self.engine.clock_estimate(now);
        let player = self.audio.player();
        let callbacks = player.callback_stats();
        let underrun_ms =
            callbacks.underrun_frames as f64 * 1000.0 / f64::from(player.sample_rate().max(1));
        NodeEvent::Status(StatusView {
            tier: self.tier,
            playing: self.playing,
            track,
            position,
            clock_offset_ms: Some(clock.offset_ms),
            drift_ms: stats.last_error_ms,
            sync_offset_ms: self.engine.sync_reading(now).map(|r| r.offset_ms),
            peers: self.mesh_peers(),
            cache,
            queued: self.queued + self.rest_in_flight + self.outbox.len() as u64,
            output: self.output.clone(),
            latency_offset_ms: self.latency_offset_ms,
            token_store: self.token_store,
            underruns: callbacks.underruns,
            underrun_ms,
            buffering: self.engine.buffering().map(str::to_owned),
            mesh: Box::new(crate::control::MeshCounters {
                signed: stats.mesh_signed,
                relayed_in: stats.mesh_relayed_in,
                relayed: stats.mesh_relayed,
                refused: stats.mesh_refused,
                duplicates: stats.mesh_duplicates,
                signals_sent: stats.mesh_signals_sent,
                signals_relayed: stats.mesh_signals_relayed,
                signals_in: stats.mesh_signals_in,
                rejoins_sent: stats.mesh_rejoins_sent,
                rejoins_in: stats.mesh_rejoins_in,
                direct_in: stats.mesh_direct_in,
            }),
            server: self.server.clone(),
        })
    }
}
