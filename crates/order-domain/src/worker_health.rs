//! Whether the saga worker is doing its job, from two numbers the order service keeps in Redis:
//! how long ago a worker last ran (its heartbeat) and how long the oldest due saga has been due.
//!
//! A worker that is down does not stop checkouts (each checkout drives its own saga); it leaves
//! behind the sagas that need it (their driver died, or a step is being retried). So silence is
//! a fault only while some saga is due: an idle worker that nothing rang for a while is fine, and
//! a worker heard from recently is fine whatever is due (it is working through it).

use serde::Serialize;

/// The saga worker's state, as a readiness check reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WorkerHealth {
    /// Milliseconds since the worker last ran; `None`: no heartbeat on record.
    pub heartbeat_age_ms: Option<u64>,
    /// Milliseconds the oldest due saga has been due; `None`: no saga is due.
    pub oldest_due_saga_age_ms: Option<u64>,
    /// The longest silence allowed while a saga is due.
    pub max_silence_ms: u64,
}

impl WorkerHealth {
    /// Whether the worker has been silent for longer than allowed.
    pub fn silent(&self) -> bool {
        self.heartbeat_age_ms.is_none_or(|age| age > self.max_silence_ms)
    }

    /// Whether the check passes: no saga is due, or the worker ran within the allowed silence.
    pub fn ok(&self) -> bool {
        self.oldest_due_saga_age_ms.is_none() || !self.silent()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(heartbeat: Option<u64>, due: Option<u64>) -> WorkerHealth {
        WorkerHealth { heartbeat_age_ms: heartbeat, oldest_due_saga_age_ms: due, max_silence_ms: 30_000 }
    }

    #[test]
    fn silence_matters_only_while_a_saga_is_due() {
        assert!(health(None, None).ok(), "never ran, nothing due");
        assert!(health(Some(3_600_000), None).ok(), "silent for an hour, nothing due");
        assert!(health(Some(2_000), Some(60_000)).ok(), "ran 2 s ago, working through what is due");
        assert!(health(Some(30_000), Some(1)).ok(), "exactly at the limit");
        assert!(!health(Some(30_001), Some(1)).ok(), "silent past the limit with a saga due");
        assert!(!health(None, Some(0)).ok(), "never ran, a saga due");
    }
}
