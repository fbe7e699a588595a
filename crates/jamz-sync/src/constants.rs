//! Every threshold of the engine, with where its value comes from (the figures and their
//! sources are given at each constant).

// ------------------------------------------------------------------ DJ timeline

/// How far in the future the DJ's play/seek/track-change starts (ms). A relay DJ -> server ->
/// follower takes two one-way trips: ~2-4 ms on a LAN, up to 2 x (50 + 30) = 160 ms on LTE
/// and 2 x (40 + 20) = 120 ms on Starlink at the 95th percentile, so 300 ms lets nearly every
/// device schedule the same sample ahead of time; a late one still starts in step (the player
/// starts late messages at the right later position). It stays under the ~0.5 s at which a
/// press of "play" starts to feel sluggish.
pub const CONTROL_LEAD_MS: f64 = 300.0;

/// A control whose timestamp is this far ahead of our estimate of the server's "now" is
/// refused (ms). Our own leads are 0.3 s; devices on the seeds' rule can disagree by a few
/// seconds (phones' clocks are off by hundreds of ms, the simulation uses +-2 s). 10 s is
/// beyond all of that and catches unit mistakes (seconds for ms, microseconds) and bad clocks.
pub const MAX_FUTURE_TIMESTAMP_MS: f64 = 10_000.0;

/// A control whose timestamp is older than this (ms) is refused: no track plays for a day, so
/// such a timestamp is a clock or unit error (0, seconds for ms), not a late message.
pub const MAX_PAST_TIMESTAMP_MS: f64 = 86_400_000.0;

/// Positions beyond this (s) are refused even for tracks of unknown duration (24 h).
pub const MAX_TRACK_LENGTH_S: f64 = 86_400.0;

/// The DJ's `music-position-sync` period (ms): docs/protocol.md (playback timing), "Position Sync (Every
/// 5 seconds)".
pub const POSITION_SYNC_PERIOD_MS: f64 = 5_000.0;

/// The same on high-latency links (ms): docs/protocol.md (playback timing), "Satellite Network
/// Optimization": `isSatelliteNetwork() ? 3000 : 5000`.
pub const HIGH_LATENCY_POSITION_SYNC_PERIOD_MS: f64 = 3_000.0;

/// A link whose best round trip to the server is at least this (ms) is "high latency": a
/// Starlink median RTT is 25-50 ms (starlink.com 2025, IMC 2022), LTE 40-100 ms, a LAN or
/// fibre under 20 ms.
pub const HIGH_LATENCY_RTT_MS: f64 = 60.0;

/// A DJ's position sync that differs from our timeline by less than this (ms) is noise from a
/// DJ that reports its audible position (the web client: `audio.currentTime` against
/// `Date.now()`, tens of ms of jitter); our own DJ's syncs lie exactly on the timeline.
/// Beyond it, we re-anchor (soft sync absorbs what is left). The seeds only correct past 2 s.
pub const POSITION_SYNC_TOLERANCE_MS: f64 = 30.0;

/// A re-joiner keeps its own timeline when `music-session-state` differs by less than this
/// (ms): the server's memory is only as exact as its receive times (the DJ's lead and one-way
/// delays, hundreds of ms), ours is the DJ's exact anchor.
pub const SESSION_STATE_TOLERANCE_MS: f64 = 1_000.0;

/// A position this far past a track's known duration (s) is an error. Durations come from
/// tags and may be rounded to the second.
pub const TRACK_END_TOLERANCE_S: f64 = 1.0;

/// Largest playlist accepted (entries): 2000 tracks are over 100 hours of music, more than a
/// road trip; larger ones are refused rather than blowing up every relay and UI list.
pub const MAX_PLAYLIST_LEN: usize = 2_000;

// ------------------------------------------------------------------ clock sync

/// `time-sync` exchanges in the burst on connect: Sendspin recommends 8 back-to-back,
/// Snapcast sends 50 pipelined. 80 take 160 ms on a LAN and, pipelined, about 2 s on LTE or
/// Starlink: a joiner starts after [`CLOCK_READY_SAMPLES`] and the rest of the burst sharpens
/// its one-way delay floors while it settles (simulated: 17-18 of 20 joins on LTE/Starlink
/// within 5 ms in 2 s, against 15-16 with 40).
pub const TIME_SYNC_BURST: u32 = 80;

/// During the burst a probe goes out when the previous one is answered or this long (ms)
/// after it: 40 per second on a slow link, back to back on a fast one.
pub const TIME_SYNC_BURST_SPACING_MS: f64 = 25.0;

/// At most this many probes await an ack at once (a round trip's worth at the burst spacing
/// on a 100 ms link, with room for a stall).
pub const MAX_OUTSTANDING_PROBES: usize = 16;

/// Period of `time-sync` after the burst (ms): twice Snapcast's one per second. Snapcast
/// lives on LANs; on LTE or satellite links (+-20..30 ms jitter) the offset error comes from
/// how close the fastest exchanges in the window get to the path's minimum, and that
/// improves with the number of samples. Two small messages a second per device is cheap.
pub const TIME_SYNC_INTERVAL_MS: f64 = 500.0;

/// A `time-sync` with no ack after this long (ms) counts as lost (a late ack is still used).
pub const TIME_SYNC_TIMEOUT_MS: f64 = 2_000.0;

/// This many failures in a row with no ack ever means the server lacks the extension: the
/// engine falls back to the seeds' rule (docs/protocol.md, "Time sync").
pub const TIME_SYNC_GIVE_UP_AFTER: u32 = 3;

/// After falling back, probe again this often (ms), in case the server gains the extension.
pub const TIME_SYNC_RETRY_MS: f64 = 30_000.0;

/// Samples older than this (ms) leave the clock filter. Snapcast uses the median of the last
/// 200 samples at one per second and forgets after 60 s without sync; we fit the drift, so a
/// 120 s window keeps enough low-RTT samples on jittery links without going stale.
pub const CLOCK_WINDOW_MS: f64 = 120_000.0;

/// At most this many samples are kept (Snapcast: 200): the whole window at two per second.
pub const CLOCK_MAX_SAMPLES: usize = 256;

/// The drift is fitted (from the slopes of the one-way delay envelopes) once the window
/// spans this long (ms) ...
pub const CLOCK_DRIFT_MIN_SPAN_MS: f64 = 3_000.0;

/// ... and the slope's estimated error is below this (ppm); before, the offset comes from
/// the one-way minima carried with the last drift. 20 ppm moves the offset 0.2 ms in the
/// 10 s it takes the playout loop to follow.
pub const MAX_DRIFT_STDERR_PPM: f64 = 20.0;

/// Without a trusted drift, only the one-way minima of this recent a window count (ms): an
/// unknown 100 ppm drift moves the offset by 1 ms across it, and 20 exchanges at two per
/// second still find a floor within a few ms on LTE.
pub const CLOCK_FLAT_WINDOW_MS: f64 = 10_000.0;

/// Fitted drifts beyond this (ppm) are rejected as noise: quartz is within +-100 ppm
/// (phones measured at 2-11 ppm, docs/architecture.md ("timing figures")).
pub const MAX_DRIFT_PPM: f64 = 500.0;

/// Samples needed before a joiner trusts the time-sync estimate enough to start (most of
/// the burst: about 1 s on a 40-50 ms link, well within [`JOIN_SETTLE_MAX_MS`]).
pub const CLOCK_READY_SAMPLES: u64 = 12;

/// A connected link whose server has answered `time-sync` before counts as offline after
/// this many probes in a row got no ack. Engine.IO's own heartbeat takes up to 45 s (the
/// seeds' 25 s ping interval + 20 s timeout) to declare a dead link; probes go out twice a
/// second with a [`TIME_SYNC_TIMEOUT_MS`] timeout, so 4 misses mean about 4 s with no answer,
/// far beyond the ~1 s jitter spikes of LTE and Starlink links, which therefore stay `socket`.
pub const TIER_OFFLINE_MISSED_REPLIES: u32 = 4;

// ------------------------------------------------------------------ playout

/// How often the engine asks the player for its audible position (ms): within the 100-250 ms
/// the player's clock is refreshed at and cheap to query.
pub const AUDIO_CLOCK_INTERVAL_MS: f64 = 200.0;

/// While playing, the engine repeats the `playback` notification this often (ms), so a face
/// shows a moving position without polling: once a second is what a clock display moves at.
pub const PLAYBACK_REPORT_PERIOD_MS: f64 = 1_000.0;

/// Errors below this (ms) get no proportional correction: Snapcast's 100 us soft-sync band.
pub const SOFT_SYNC_DEADBAND_MS: f64 = 0.1;

/// Proportional rate trim per ms of error (ppm/ms): 1 ms off -> 200 ppm, i.e. the error
/// shrinks by 20 % per second. Snapcast uses 500 ppm/ms with frame drops; ours goes through
/// a resampler, where a slower loop is smoother and the clock noise matters less.
pub const RATE_TRIM_GAIN_PPM_PER_MS: f64 = 200.0;

/// Integral gain (ppm per ms of error per second): absorbs a steady rate mismatch between the
/// audio device and the system clock that the drift estimate cannot see.
pub const RATE_TRIM_INTEGRAL_PPM_PER_MS_S: f64 = 10.0;

/// Cap of the integral term (ppm): a sound card within +-200 ppm of its system clock.
pub const MAX_INTEGRAL_PPM: f64 = 200.0;

/// Cap of the error correction (ppm), on top of the drift feed-forward: Snapcast caps its
/// soft sync at +-500 ppm (0.05 %), and jamz-audio's trim must stay within +-1000 ppm.
pub const MAX_CORRECTION_PPM: f64 = 500.0;

/// jamz-audio's `MAX_RATE_TRIM_PPM`: the player refuses more.
pub const MAX_RATE_TRIM_PPM: f64 = 1_000.0;

/// Trim changes smaller than this (ppm) are not sent to the player.
pub const RATE_TRIM_STEP_PPM: f64 = 1.0;

/// Reports in the short window: 1 s at 200 ms (Snapcast's 20-sample median).
pub const SHORT_WINDOW: usize = 5;

/// Reports in the long window: 5 s at 200 ms (Snapcast's 100-sample median).
pub const LONG_WINDOW: usize = 25;

/// Hard re-sync at once when one report is this far off (ms): Snapcast's 500 ms.
pub const HARD_SYNC_IMMEDIATE_MS: f64 = 500.0;

/// Hard re-sync when the short median is this far off (ms): Snapcast's 50 ms on 20 samples.
pub const HARD_SYNC_SHORT_MS: f64 = 50.0;

/// Hard re-sync when the long median is this far off (ms). Snapcast uses 5 ms on 100 samples
/// with a 500 ppm trim; at our 500 ppm correction an error of 15 ms that 5 s of soft sync did
/// not reduce would take 30 s more, so it is cheaper to restart.
pub const HARD_SYNC_LONG_MS: f64 = 15.0;

/// How far ahead the engine restarts the player after the output reported trouble (a stall,
/// a restored device, a switched output), ms. Right after such an event the device's latency
/// figures are not to be trusted, and a start scheduled ahead on the group's timeline is what
/// lands exactly (as a seek does), while a late start is placed with those figures. The start
/// also has to reach the player first: fetched from the cache, the file opened and seeked on
/// a blocking thread (tens of ms on a phone), and a sound server that has just (re)opened a
/// stream may hold 100-200 ms of buffer. The DJ's lead ([`CONTROL_LEAD_MS`]) covers all of
/// that and lands on time on every output measured (ALSA, PulseAudio, the null output), so
/// the restart uses the same figure; a 0.3 s gap after a device came back is not noticed.
/// A restart for drift does not wait: the output is sound, only the position is off.
pub const RESTART_LEAD_MS: f64 = CONTROL_LEAD_MS;

/// After a hard re-sync or a start that did not show up, wait this long (ms) before the
/// next forced restart (a track still downloading must not be restarted in a loop).
pub const HARD_SYNC_COOLDOWN_MS: f64 = 3_000.0;

/// A late joiner waits at most this long (ms) for a clock estimate and the DJ's exact
/// anchor (the DJ sends a position sync when it sees the join) before starting from the
/// server's approximate state. Part of the "in sync within 2 s after a join" budget.
pub const JOIN_SETTLE_MAX_MS: f64 = 1_500.0;

/// After a late joiner starts, for this long (ms) ...
pub const JOIN_PHASE_MS: f64 = 5_000.0;

/// ... it restarts when its short median is off by more than this (ms), at most once per
/// [`JOIN_RESYNC_COOLDOWN_MS`]: its clock estimate is still improving fast, soft sync would
/// take seconds per ms, and a skip in the first seconds of its playback disturbs nobody.
pub const JOIN_HARD_SYNC_MS: f64 = 3.0;

/// Cooldown between restarts in the join phase (ms): one short window of reports.
pub const JOIN_RESYNC_COOLDOWN_MS: f64 = 1_000.0;

/// A refused mesh message is reported at most once per link and reason this often (ms):
/// a lying or broken peer cannot flood the user with events (all are counted).
pub const MESH_REFUSAL_REPORT_MS: f64 = 5_000.0;

/// How many relays a DJ's signed mesh message may take (its `ttl`, docs/protocol.md,
/// "Relaying"): a peer reaches the DJ over at most this many peers in between. Each peer
/// relays a message once at most (the first copy it admits), so this bounds a path's
/// length, not the copies, which are at most one per peer and link. Four covers a convoy
/// strung out along a road (DJ - A - B - C - D - E).
pub const MESH_RELAY_TTL: u8 = 4;

// ------------------------------------------------------------------ external player (YouTube)

/// How often the web view reads YouTube's IFrame player and reports (ms). The IFrame API
/// answers `getCurrentTime()` from the last state message the player posted to the page,
/// and it posts those a few times a second while playing, so reading faster than 4 Hz
/// only repeats the same figure.
pub const EXTERNAL_REPORT_INTERVAL_MS: f64 = 250.0;

/// The soft bound (ms): a player whose median error over [`EXTERNAL_WINDOW`] readings is
/// beyond it is moved. A reading is up to one post interval stale (100-250 ms) plus the
/// web view's hop to the engine, so single readings scatter by about +-150 ms around the
/// truth; the median of two seconds of them is good to a few tens of ms, and 150 ms is
/// where two cars' sound starts to be heard as an echo. Below it nothing is done: the
/// IFrame API has no fine rate trim (`setPlaybackRate` moves in audible 0.25 steps), so
/// there is no gentle correction to make, only a seek, and a seek costs a rebuffer.
pub const EXTERNAL_SOFT_SYNC_MS: f64 = 150.0;

/// Readings in the soft bound's median: two seconds at [`EXTERNAL_REPORT_INTERVAL_MS`].
pub const EXTERNAL_WINDOW: usize = 8;

/// The hard bound (ms): one reading this far off is moved at once (a stall, a skipped ad
/// break, a user who dragged YouTube's own bar). No reading jitters by a second.
pub const EXTERNAL_HARD_SYNC_MS: f64 = 1_000.0;

/// A start or seek is told to play this far ahead (ms): the player is paused at the
/// target and has this long to buffer it (YouTube's seeks refill from the network:
/// typically 200-600 ms on LTE), so the music resumes on the group's timeline instead of
/// late by however long buffering took. The DJ's own lead ([`CONTROL_LEAD_MS`]) is shorter:
/// a cache-backed native start needs no network.
pub const EXTERNAL_PLAY_LEAD_MS: f64 = 800.0;

/// After a start or seek, readings are not judged for this long (ms): the player buffers,
/// then plays from the instant, and its first state messages still carry the old time.
pub const EXTERNAL_SEEK_COOLDOWN_MS: f64 = 3_000.0;

/// **(ext)** How often a node started from a kept session with the server gone asks for
/// links (`mesh-rejoin`), ms: straight to one kept peer address per round while it has
/// no link, over the mesh to every member it has no link with once it has one
/// (docs/protocol.md, "Rejoining without the server").
pub const REJOIN_EVERY_MS: f64 = 4_000.0;
