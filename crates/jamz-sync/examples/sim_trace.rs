//! Diagnostic: one profile's per-device clock error and audible offset over time.
//! `cargo run -p jamz-sync --example sim_trace -- lte [seed]`
use jamz_sync::sim::{Profile, Scenario, Simulation};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let profile = match args.first().map(String::as_str) {
        Some("lte") => Profile::lte(),
        Some("starlink") => Profile::starlink(),
        Some("asym") => Profile::asymmetric(),
        _ => Profile::lan(),
    };
    let seed = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x7A4F_2026);
    let sc = Scenario::new(profile, seed);
    let mut sim = Simulation::new(&sc);
    let from: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let to: f64 = args
        .get(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(sc.duration_ms / 1000.0);
    let step: f64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let mut t = from * 1000.0;
    sim.run_until(t);
    while t < to * 1000.0 {
        t += step * 1000.0;
        sim.run_until(t);
        let dj = sim.heard(0);
        let mut line = format!("{:>6.1}s", t / 1000.0);
        for i in 0..5 {
            let ce = sim.clock_error_ms(i).unwrap_or(f64::NAN);
            let off = match (&dj, sim.heard(i)) {
                (Some(a), Some(b)) if a.track == b.track => (b.position - a.position) * 1000.0,
                _ => f64::NAN,
            };
            let st = sim.engine(i).map(|e| e.stats()).unwrap_or_default();
            line += &format!(
                " | d{i} clk {ce:>6.2} dr {:>5.0} aud {off:>7.2} trim {:>5.0} hr {}",
                sim.engine(i)
                    .map(|e| e.clock_estimate(0.0).drift_ppm)
                    .unwrap_or(0.0),
                st.rate_trim_ppm,
                st.hard_resyncs
            );
        }
        println!("{line}");
    }
    let r = sim.report();
    println!("{r}");
    for e in r.errors.iter().take(10) {
        println!("{e:?}");
    }
}
