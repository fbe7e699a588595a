//! Plays a file on an output and prints the player's events and positions:
//! `cargo run -p jamz-audio --example play -- default|null|wav:PATH FILE [START_SECONDS]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use jamz_audio::{OutputSpec, Player, PlayerEvent, Source, read_tags};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(spec), Some(file)) = (args.next(), args.next()) else {
        eprintln!("usage: play default|null|wav:PATH FILE [START_SECONDS]");
        std::process::exit(2);
    };
    let start: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0.0);
    let tags = read_tags(file.as_ref())?;
    println!("{tags:?}");
    let player = Player::new(&spec.parse::<OutputSpec>()?)?;
    let events = player.events();
    let at = Instant::now() + Duration::from_millis(200);
    player.start(Source::new("track", &file), start, at)?;
    loop {
        match events.recv_timeout(Duration::from_secs(1)) {
            Ok(PlayerEvent::TrackEnded { .. }) => break,
            Ok(ev) => println!("{ev:?}"),
            Err(_) => {}
        }
        if let Some(p) = player.audible_position(Instant::now()) {
            println!(
                "at {:.3} s (device latency {:?})",
                p.seconds,
                player.device_latency()
            );
        }
    }
    Ok(())
}
