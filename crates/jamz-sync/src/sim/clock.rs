//! A device's clock: `local = true * (1 + skew) + offset`, in ms.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeviceClock {
    pub offset_ms: f64,
    /// Rate error (1e-6 = 1 ppm).
    pub skew: f64,
}

impl DeviceClock {
    pub fn local(&self, true_ms: f64) -> f64 {
        true_ms * (1.0 + self.skew) + self.offset_ms
    }

    pub fn true_time(&self, local_ms: f64) -> f64 {
        (local_ms - self.offset_ms) / (1.0 + self.skew)
    }
}
