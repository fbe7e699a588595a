//! The location sources this device has, for the app to offer as a list rather than
//! a field to type a spec into: positions by hand always; the desktop's location service
//! on Linux, macOS and Windows; gpsd when one answers on this machine; each serial port a
//! GPS receiver is usually on.

use serde::{Deserialize, Serialize};

use super::App;

/// One location source the app can offer.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationSourceView {
    /// The node's `location` spec (`manual`, `desktop`, `gpsd:HOST:PORT`, `nmea:DEVICE`).
    pub spec: String,
    /// What to show a person.
    pub name: String,
}

/// The name of the `desktop` source (the UI's settings form shows the same while the list loads).
const DESKTOP_SOURCE_NAME: &str = "This computer's location service (GeoClue, Location Services)";

/// Where USB and on-board GPS receivers show up (Linux).
const SERIAL_PREFIXES: [&str; 2] = ["ttyUSB", "ttyACM"];

impl App {
    /// The sources found now, the always-available `manual` first.
    pub async fn location_sources(&self) -> Vec<LocationSourceView> {
        let mut out = vec![LocationSourceView {
            spec: "manual".into(),
            name: "Entered by hand".into(),
        }];
        // Listed whether or not it answers now: asking would show the permission prompt
        // before the user chose it. If it cannot give a position, the node says why.
        if cfg!(any(
            target_os = "linux",
            target_os = "macos",
            target_os = "windows"
        )) {
            out.push(LocationSourceView {
                spec: "desktop".into(),
                name: DESKTOP_SOURCE_NAME.into(),
            });
        }
        if let jamz_geo::LocationSpec::Gpsd { host, port } =
            jamz_geo::LocationSpec::Auto.resolve().await
        {
            out.push(LocationSourceView {
                spec: format!("gpsd:{host}:{port}"),
                name: "GPS receiver through gpsd on this computer".into(),
            });
        }
        out.extend(serial_ports().into_iter().map(|device| LocationSourceView {
            name: format!("GPS receiver on {device} (NMEA)"),
            spec: format!("nmea:{device}"),
        }));
        out
    }
}

/// The serial ports present, sorted.
fn serial_ports() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/dev") else {
        return Vec::new();
    };
    let mut ports: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| SERIAL_PREFIXES.iter().any(|p| n.starts_with(p)))
        .map(|n| format!("/dev/{n}"))
        .collect();
    ports.sort();
    ports
}
