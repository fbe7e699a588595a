//! The `--location` spec: which source, and how to open it.
//!
//! `none` | `manual` | `gpsd` | `gpsd:HOST[:PORT]` | `nmea:DEVICE[@BAUD]` |
//! `replay:FILE.nmea[@SPEED]` | `replay:FILE.gpx[@SPEED]` | `desktop` | `auto`

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::desktop::DesktopSource;
use crate::gpsd::{DEFAULT_PORT, GpsdSource, gpsd_answers};
use crate::replay::{ReplayFormat, ReplaySource, ReplaySpeed};
use crate::serial::{BAUD_RATES, SerialNmeaSource};
use crate::source::{GeoError, LocationSource};

/// The host `gpsd` and `auto` look for gpsd on.
pub const DEFAULT_HOST: &str = "localhost";

/// How long `auto` waits for a local gpsd's greeting: it answers in milliseconds when it
/// runs, and the node should not wait long at start when it does not.
pub const AUTO_PROBE: Duration = Duration::from_millis(1500);

/// How long `auto` waits for the desktop's location service to give a first position
/// (when no gpsd answers): a Wi-Fi or network position takes a few seconds, and a
/// permission prompt the user has to answer.
pub const AUTO_DESKTOP_PROBE: Duration = Duration::from_secs(20);

/// A parsed `--location` value.
#[derive(Debug, Clone, PartialEq)]
pub enum LocationSpec {
    /// No position is shared.
    None,
    /// Fixes come by hand (the `location` command, the phone plugin).
    Manual,
    Gpsd {
        host: String,
        port: u16,
    },
    Nmea {
        device: PathBuf,
        baud: Option<u32>,
    },
    Replay {
        file: PathBuf,
        format: ReplayFormat,
        speed: ReplaySpeed,
    },
    /// The desktop's own location service (the portal or GeoClue, CoreLocation, Windows).
    Desktop,
    /// The best that answers: gpsd on this machine, else the desktop's location service
    /// if it gives a position, else none.
    Auto,
}

impl FromStr for LocationSpec {
    type Err = GeoError;

    fn from_str(s: &str) -> Result<Self, GeoError> {
        let bad = |reason: String| GeoError::Spec {
            spec: s.to_owned(),
            reason,
        };
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s, None),
        };
        match (kind, arg) {
            ("none", None) => Ok(LocationSpec::None),
            ("manual", None) => Ok(LocationSpec::Manual),
            ("auto", None) => Ok(LocationSpec::Auto),
            ("desktop", None) => Ok(LocationSpec::Desktop),
            ("gpsd", None) => parse_gpsd("").map_err(bad),
            // `gpsd:` with nothing after it is more likely a forgotten host than a wish
            // for the default: say so.
            ("gpsd", Some("")) => Err(bad(
                "expected gpsd:HOST[:PORT] (or `gpsd` alone for localhost:2947)".into(),
            )),
            ("gpsd", Some(arg)) => parse_gpsd(arg).map_err(bad),
            ("nmea", Some(arg)) => {
                let (device, baud) = split_suffix(arg);
                if device.is_empty() {
                    return Err(bad("expected nmea:DEVICE[@BAUD], e.g. nmea:/dev/ttyUSB0@9600".into()));
                }
                let baud = match baud {
                    None => None,
                    Some(b) => match b.parse::<u32>() {
                        Ok(b) if BAUD_RATES.contains(&b) => Some(b),
                        _ => {
                            return Err(bad(format!(
                                "baud rate `{b}`: expected one of {BAUD_RATES:?}"
                            )));
                        }
                    },
                };
                Ok(LocationSpec::Nmea {
                    device: device.into(),
                    baud,
                })
            }
            ("replay", Some(arg)) => {
                let (file, speed) = split_suffix(arg);
                if file.is_empty() {
                    return Err(bad(
                        "expected replay:FILE.nmea[@SPEED] or replay:FILE.gpx[@SPEED]".into(),
                    ));
                }
                let file = PathBuf::from(file);
                let format = ReplayFormat::of(&file).ok_or_else(|| {
                    bad("the file's type is unknown: name it .nmea (or .nma, .log, .txt) or .gpx".into())
                })?;
                let speed = match speed {
                    None => ReplaySpeed::Scaled(1.0),
                    Some("max") => ReplaySpeed::Max,
                    Some(x) => match x.parse::<f64>() {
                        Ok(f) if f.is_finite() && f > 0.0 && f <= 10_000.0 => {
                            ReplaySpeed::Scaled(f)
                        }
                        _ => {
                            return Err(bad(format!(
                                "speed `{x}`: expected a factor in (0, 10000] (2 = twice as fast) or `max`"
                            )));
                        }
                    },
                };
                Ok(LocationSpec::Replay {
                    file,
                    format,
                    speed,
                })
            }
            _ => Err(bad(
                "expected none, manual, auto, desktop, gpsd[:HOST[:PORT]], nmea:DEVICE[@BAUD], replay:FILE.nmea[@SPEED] or replay:FILE.gpx[@SPEED]"
                    .into(),
            )),
        }
    }
}

/// `FILE@X` into (`FILE`, `X`) when X looks like a number or `max`: a path may hold `@`.
fn split_suffix(arg: &str) -> (&str, Option<&str>) {
    match arg.rsplit_once('@') {
        Some((head, tail))
            if tail == "max"
                || (!tail.is_empty()
                    && tail
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '.' || c == '-')) =>
        {
            (head, Some(tail))
        }
        _ => (arg, None),
    }
}

fn parse_gpsd(arg: &str) -> Result<LocationSpec, String> {
    let (host, port) = if let Some(v6) = arg.strip_prefix('[') {
        let (host, rest) = v6
            .split_once(']')
            .ok_or_else(|| "an IPv6 address needs its closing `]`".to_owned())?;
        match rest {
            "" => (host, None),
            r => (
                host,
                Some(
                    r.strip_prefix(':')
                        .ok_or_else(|| format!("expected `:PORT` after `]`, found `{r}`"))?,
                ),
            ),
        }
    } else {
        match arg.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (arg, None),
        }
    };
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(format!("port `{p}`: expected 1..=65535")),
        },
    };
    if host.contains(|c: char| c.is_whitespace() || c == '/' || c == '@') {
        return Err(format!("host `{host}` is not a host name or address"));
    }
    let host = if host.is_empty() { DEFAULT_HOST } else { host };
    Ok(LocationSpec::Gpsd {
        host: host.to_owned(),
        port,
    })
}

impl fmt::Display for LocationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocationSpec::None => f.write_str("none"),
            LocationSpec::Manual => f.write_str("manual"),
            LocationSpec::Auto => f.write_str("auto"),
            LocationSpec::Desktop => f.write_str("desktop"),
            LocationSpec::Gpsd { host, port } if host.contains(':') => {
                write!(f, "gpsd:[{host}]:{port}")
            }
            LocationSpec::Gpsd { host, port } => write!(f, "gpsd:{host}:{port}"),
            LocationSpec::Nmea { device, baud } => {
                write!(f, "nmea:{}", device.display())?;
                match baud {
                    Some(b) => write!(f, "@{b}"),
                    None => Ok(()),
                }
            }
            LocationSpec::Replay { file, speed, .. } => {
                write!(f, "replay:{}@{speed}", file.display())
            }
        }
    }
}

impl LocationSpec {
    /// `auto`'s first choice made concrete: gpsd on this machine if it answers, else `none`
    /// (the desktop's service is only known to answer once it gives a position: [`Self::open`]
    /// tries it). Other specs come back as they are.
    pub async fn resolve(self) -> LocationSpec {
        match self {
            LocationSpec::Auto => {
                if gpsd_answers(DEFAULT_HOST, DEFAULT_PORT, AUTO_PROBE).await {
                    LocationSpec::Gpsd {
                        host: DEFAULT_HOST.into(),
                        port: DEFAULT_PORT,
                    }
                } else {
                    LocationSpec::None
                }
            }
            other => other,
        }
    }

    /// Opens the source. `None` for `none` and `manual` (manual fixes come through the
    /// caller's own path, e.g. [`crate::ManualSource`]). `auto` takes gpsd on this machine
    /// if it answers within [`AUTO_PROBE`], else the desktop's location service if it gives
    /// a position within [`AUTO_DESKTOP_PROBE`], else nothing (`None`); why each was passed
    /// over is logged.
    pub async fn open(&self) -> Result<Option<Box<dyn LocationSource>>, GeoError> {
        self.open_with(AUTO_DESKTOP_PROBE).await
    }

    /// [`Self::open`] with `auto` waiting `desktop_probe` for the desktop's first position.
    pub async fn open_with(
        &self,
        desktop_probe: Duration,
    ) -> Result<Option<Box<dyn LocationSource>>, GeoError> {
        let spec = match self.clone().resolve().await {
            // No gpsd answered: the desktop's service, if it gives a position.
            LocationSpec::None if *self == LocationSpec::Auto => {
                return Ok(match DesktopSource::probe(desktop_probe).await {
                    Ok(source) => Some(Box::new(source)),
                    Err(e) => {
                        tracing::info!(reason = %e, "auto: no gpsd on this machine, and the desktop location service gives no position");
                        None
                    }
                });
            }
            spec => spec,
        };
        Ok(match spec {
            LocationSpec::None | LocationSpec::Manual | LocationSpec::Auto => None,
            LocationSpec::Desktop => Some(Box::new(DesktopSource::start())),
            LocationSpec::Gpsd { host, port } => Some(Box::new(GpsdSource::new(host, port))),
            LocationSpec::Nmea { device, baud } => {
                Some(Box::new(SerialNmeaSource::new(device, baud)))
            }
            LocationSpec::Replay {
                file,
                format,
                speed,
            } => Some(Box::new(ReplaySource::open(&file, format, speed).await?)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> LocationSpec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn every_kind_parses() {
        assert_eq!(ok("none"), LocationSpec::None);
        assert_eq!(ok("manual"), LocationSpec::Manual);
        assert_eq!(ok("auto"), LocationSpec::Auto);
        assert_eq!(ok("desktop"), LocationSpec::Desktop);
        let gpsd = |h: &str, p| LocationSpec::Gpsd {
            host: h.into(),
            port: p,
        };
        assert_eq!(ok("gpsd"), gpsd("localhost", 2947));
        assert_eq!(ok("gpsd:car.local"), gpsd("car.local", 2947));
        assert_eq!(ok("gpsd:10.0.0.2:3000"), gpsd("10.0.0.2", 3000));
        assert_eq!(ok("gpsd:[::1]:3000"), gpsd("::1", 3000));
        assert_eq!(ok("gpsd::3000"), gpsd("localhost", 3000));
        assert_eq!(
            ok("nmea:/dev/ttyUSB0@9600"),
            LocationSpec::Nmea {
                device: "/dev/ttyUSB0".into(),
                baud: Some(9600)
            }
        );
        assert_eq!(
            ok("nmea:/dev/ttyACM0"),
            LocationSpec::Nmea {
                device: "/dev/ttyACM0".into(),
                baud: None
            }
        );
        assert_eq!(
            ok("replay:drive.nmea"),
            LocationSpec::Replay {
                file: "drive.nmea".into(),
                format: ReplayFormat::Nmea,
                speed: ReplaySpeed::Scaled(1.0)
            }
        );
        assert_eq!(
            ok("replay:/a@b/drive.GPX@2.5"),
            LocationSpec::Replay {
                file: "/a@b/drive.GPX".into(),
                format: ReplayFormat::Gpx,
                speed: ReplaySpeed::Scaled(2.5)
            }
        );
        assert_eq!(
            ok("replay:d.nmea@max"),
            LocationSpec::Replay {
                file: "d.nmea".into(),
                format: ReplayFormat::Nmea,
                speed: ReplaySpeed::Max
            }
        );
    }

    #[test]
    fn display_parses_back() {
        for s in [
            "none",
            "manual",
            "auto",
            "desktop",
            "gpsd:localhost:2947",
            "gpsd:[::1]:3000",
            "nmea:/dev/ttyUSB0@4800",
            "replay:x.gpx@0.5",
        ] {
            assert_eq!(ok(s).to_string(), s);
            assert_eq!(ok(&ok(s).to_string()), ok(s));
        }
    }

    #[test]
    fn bad_specs_say_why() {
        for (bad, why) in [
            ("", "expected none"),
            ("gps", "expected none"),
            ("none:x", "expected none"),
            ("desktop:x", "expected none"),
            ("gpsd:", "gpsd:HOST"),
            ("gpsd:host:0", "port `0`"),
            ("gpsd:host:99999", "port `99999`"),
            ("gpsd:[::1", "closing `]`"),
            ("nmea:", "nmea:DEVICE"),
            ("nmea:/dev/ttyUSB0@1234", "baud rate `1234`"),
            ("replay:", "replay:FILE"),
            ("replay:drive.kml", "file's type is unknown"),
            ("replay:drive.nmea@0", "speed `0`"),
            ("replay:drive.nmea@-2", "speed `-2`"),
        ] {
            let err = bad.parse::<LocationSpec>().expect_err(bad).to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.contains(&format!("`{bad}`")), "{bad}: {err}");
        }
    }
}
