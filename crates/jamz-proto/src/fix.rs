//! A position fix: the six fields five payloads carry (`location-update` both ways, the REST
//! report and the stored location, the mesh's `location`), written once here. The payloads
//! keep their own structs (each adds its own fields, and [`crate::decode`] must name a bad
//! field by its path, which `#[serde(flatten)]` would lose): [`with_fix_fields!`] writes the
//! six fields into each, and [`CarriesFix`] reads them back as one [`PositionFix`].

use crate::model::validate_coordinates;

/// Where a device was, as the protocol carries it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositionFix {
    pub latitude: f64,
    pub longitude: f64,
    /// Metres.
    pub accuracy: Option<f64>,
    /// Metres per second.
    pub speed: Option<f64>,
    /// Degrees from north.
    pub heading: Option<f64>,
    /// Milliseconds since the Unix epoch, on the reporting device's clock.
    pub timestamp: f64,
}

impl PositionFix {
    /// The protocol's rules for a fix: coordinates in range, every measurement a finite
    /// number (a store would keep NaN as NULL or garbage without a word).
    pub fn validate(&self) -> Result<(), String> {
        validate_coordinates(self.latitude, self.longitude)?;
        for (name, v) in [
            ("accuracy", self.accuracy),
            ("speed", self.speed),
            ("heading", self.heading),
            ("timestamp", Some(self.timestamp)),
        ] {
            if v.is_some_and(|x| !x.is_finite()) {
                return Err(format!("{name} must be a finite number"));
            }
        }
        Ok(())
    }
}

/// A payload that carries a fix (see [`with_fix_fields!`]).
pub trait CarriesFix {
    fn fix(&self) -> PositionFix;
}

/// Declares a payload struct with its own fields followed by the six fields of a fix,
/// spelled and defaulted alike everywhere, and implements [`CarriesFix`] for it.
macro_rules! with_fix_fields {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                pub $field:ident : $ty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $(
                $(#[$field_meta])*
                pub $field: $ty,
            )*
            pub latitude: f64,
            pub longitude: f64,
            /// Metres.
            #[serde(default)]
            pub accuracy: Option<f64>,
            /// Metres per second.
            #[serde(default)]
            pub speed: Option<f64>,
            /// Degrees from north.
            #[serde(default)]
            pub heading: Option<f64>,
            /// Milliseconds since the Unix epoch, on the reporting device's clock.
            pub timestamp: f64,
        }

        impl $crate::fix::CarriesFix for $name {
            fn fix(&self) -> $crate::fix::PositionFix {
                $crate::fix::PositionFix {
                    latitude: self.latitude,
                    longitude: self.longitude,
                    accuracy: self.accuracy,
                    speed: self.speed,
                    heading: self.heading,
                    timestamp: self.timestamp,
                }
            }
        }
    };
}
pub(crate) use with_fix_fields;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fix_is_checked_field_by_field() {
        let ok = PositionFix {
            latitude: 48.1,
            longitude: 11.5,
            accuracy: Some(5.0),
            speed: None,
            heading: Some(90.0),
            timestamp: 1.0,
        };
        assert_eq!(ok.validate(), Ok(()));
        let bad = |f: PositionFix, says: &str| {
            let e = f.validate().unwrap_err();
            assert!(e.contains(says), "{e}");
        };
        bad(
            PositionFix {
                latitude: 91.0,
                ..ok
            },
            "latitude",
        );
        bad(
            PositionFix {
                longitude: f64::NAN,
                ..ok
            },
            "longitude",
        );
        bad(
            PositionFix {
                accuracy: Some(f64::INFINITY),
                ..ok
            },
            "accuracy",
        );
        bad(
            PositionFix {
                speed: Some(f64::NAN),
                ..ok
            },
            "speed",
        );
        bad(
            PositionFix {
                heading: Some(f64::NEG_INFINITY),
                ..ok
            },
            "heading",
        );
        bad(
            PositionFix {
                timestamp: f64::NAN,
                ..ok
            },
            "timestamp",
        );
    }

    #[test]
    fn the_five_payloads_read_the_same_fix_alike_and_name_a_bad_field() {
        let json = serde_json::json!({
            "sessionId": "s", "userId": 7, "latitude": 48.1, "longitude": 11.5,
            "speed": 20.0, "timestamp": 1000.0
        });
        let want = PositionFix {
            latitude: 48.1,
            longitude: 11.5,
            accuracy: None,
            speed: Some(20.0),
            heading: None,
            timestamp: 1000.0,
        };
        let fixes = [
            crate::decode::<crate::events::LocationUpdate>(json.clone()).map(|p| p.fix()),
            crate::decode::<crate::events::LocationRelay>(json.clone()).map(|p| p.fix()),
            crate::decode::<crate::rest::LocationReport>(json.clone()).map(|p| p.fix()),
            crate::decode::<crate::model::Location>(json.clone()).map(|p| p.fix()),
            crate::decode::<crate::mesh::MeshLocation>(json.clone()).map(|p| p.fix()),
        ];
        for f in fixes {
            assert_eq!(f.unwrap(), want);
        }
        let mut bad = json;
        bad["speed"] = serde_json::json!("fast");
        let e = crate::decode::<crate::rest::LocationReport>(bad).unwrap_err();
        assert!(e.to_string().contains("speed"), "{e}");
    }
}
