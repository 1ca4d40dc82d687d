//! The network faults of a lease, checked and listed: a throttled link (`bandwidth`), a
//! cut connection (`reset`), no answer at all (`blackhole`) and a held-back end of the
//! response (`slow_close`), after Toxiproxy's toxics of the same names and Chaos Mesh's
//! NetworkChaos. The caller's sidecar applies them to each HTTP exchange it routes to
//! the target, so they follow routing (subset, header matches) like Istio's faults.

use std::time::Duration;

use mesh_api::defaults::{
    Direction, EffectiveBandwidth, EffectiveBlackhole, EffectiveReset, EffectiveSlowClose,
};
use mesh_api::duration::format_duration;
use mesh_api::wire::{BandwidthFault, BlackholeFault, ResetFault, SlowCloseFault};

use super::{FaultError, invalid, percentage, positive_duration};

/// Longest hold of a slow close: beyond it a caller has long given up.
const MAX_SLOW_CLOSE: Duration = Duration::from_secs(3600);

/// Checks `bandwidth`; the response is throttled unless the request says otherwise.
pub(super) fn bandwidth(b: BandwidthFault) -> Result<EffectiveBandwidth, FaultError> {
    let bytes_per_second = u64::try_from(b.bytes_per_second)
        .ok()
        .filter(|r| *r >= 1)
        .ok_or_else(|| {
            invalid(
                "bandwidth.bytes_per_second",
                format!(
                    "{} is not a rate of at least 1 byte per second",
                    b.bytes_per_second
                ),
            )
        })?;
    Ok(EffectiveBandwidth {
        bytes_per_second,
        direction: b.direction.unwrap_or(Direction::Response),
        percent: percentage("bandwidth.percentage", b.percentage)?,
    })
}

/// Checks `reset`: a cut on the request's way has no body bytes to let through.
pub(super) fn reset(r: ResetFault) -> Result<EffectiveReset, FaultError> {
    let direction = r.direction.unwrap_or(Direction::Response);
    let after_bytes = match r.after_bytes {
        None => 0,
        Some(n) => u64::try_from(n)
            .map_err(|_| invalid("reset.after_bytes", format!("{n} is not a number of bytes")))?,
    };
    if direction == Direction::Request && after_bytes > 0 {
        return Err(invalid(
            "reset.after_bytes",
            "applies to the response direction only: on the request's way the connection is cut before anything is forwarded",
        ));
    }
    Ok(EffectiveReset {
        after_bytes,
        direction,
        percent: percentage("reset.percentage", r.percentage)?,
    })
}

/// Checks `blackhole`; by default the request never reaches the service.
pub(super) fn blackhole(b: BlackholeFault) -> Result<EffectiveBlackhole, FaultError> {
    Ok(EffectiveBlackhole {
        direction: b.direction.unwrap_or(Direction::Request),
        percent: percentage("blackhole.percentage", b.percentage)?,
    })
}

/// Checks `slow_close`.
pub(super) fn slow_close(s: SlowCloseFault) -> Result<EffectiveSlowClose, FaultError> {
    let delay = positive_duration("slow_close.delay", &s.delay)?;
    if delay > MAX_SLOW_CLOSE {
        return Err(invalid("slow_close.delay", "must be at most 1h"));
    }
    Ok(EffectiveSlowClose {
        delay,
        percent: percentage("slow_close.percentage", s.percentage)?,
    })
}

/// `bandwidth` as listed, every default filled in.
pub(super) fn bandwidth_view(b: &EffectiveBandwidth) -> BandwidthFault {
    BandwidthFault {
        bytes_per_second: i64::try_from(b.bytes_per_second).unwrap_or(i64::MAX),
        direction: Some(b.direction),
        percentage: Some(b.percent),
    }
}

/// `reset` as listed.
pub(super) fn reset_view(r: &EffectiveReset) -> ResetFault {
    ResetFault {
        after_bytes: Some(i64::try_from(r.after_bytes).unwrap_or(i64::MAX)),
        direction: Some(r.direction),
        percentage: Some(r.percent),
    }
}

/// `blackhole` as listed.
pub(super) fn blackhole_view(b: &EffectiveBlackhole) -> BlackholeFault {
    BlackholeFault {
        direction: Some(b.direction),
        percentage: Some(b.percent),
    }
}

/// `slow_close` as listed.
pub(super) fn slow_close_view(s: &EffectiveSlowClose) -> SlowCloseFault {
    SlowCloseFault {
        delay: format_duration(s.delay),
        percentage: Some(s.percent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::FaultSpec;
    use mesh_api::wire::FaultRequest;
    use serde_json::json;

    fn spec(extra: serde_json::Value) -> Result<FaultSpec, FaultError> {
        let mut body = json!({"service": "reviews", "ttl_seconds": 30});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        FaultSpec::try_from(serde_json::from_value::<FaultRequest>(body).unwrap())
    }

    #[test]
    fn defaults_follow_where_each_fault_usually_acts() {
        let s = spec(json!({"bandwidth": {"bytes_per_second": 2048}, "reset": {},
            "blackhole": {}, "slow_close": {"delay": "2s"}}))
        .unwrap();
        let f = &s.fault;
        assert_eq!(
            f.bandwidth,
            Some(EffectiveBandwidth {
                bytes_per_second: 2048,
                direction: Direction::Response,
                percent: 100.0
            })
        );
        let reset = f.reset.as_ref().unwrap();
        assert_eq!(
            (reset.after_bytes, reset.direction),
            (0, Direction::Response)
        );
        assert_eq!(f.blackhole.as_ref().unwrap().direction, Direction::Request);
        assert_eq!(f.slow_close.as_ref().unwrap().delay, Duration::from_secs(2));
        // The listing shows what is in force, defaults included, and reads back the same.
        let listed = bandwidth_view(f.bandwidth.as_ref().unwrap());
        assert_eq!(bandwidth(listed).unwrap(), *f.bandwidth.as_ref().unwrap());
        assert_eq!(reset_view(reset).after_bytes, Some(0));
    }

    #[test]
    fn delays_take_a_jitter_and_a_direction() {
        let s = spec(json!({"delay": {"fixed_delay": "1s", "jitter": "200ms",
            "direction": "response"}}))
        .unwrap();
        let d = s.fault.delay.unwrap();
        assert_eq!(d.jitter, Duration::from_millis(200));
        assert_eq!(d.direction, Direction::Response);
        let e = spec(json!({"delay": {"fixed_delay": "1s", "jitter": "2s"}})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "delay.jitter: 2s is more than the delay itself"
        );
    }

    #[test]
    fn bad_network_faults_name_the_field() {
        let cases = [
            (
                json!({"bandwidth": {"bytes_per_second": 0}}),
                "bandwidth.bytes_per_second",
            ),
            (
                json!({"bandwidth": {"bytes_per_second": -5}}),
                "bandwidth.bytes_per_second",
            ),
            (
                json!({"bandwidth": {"bytes_per_second": 10, "percentage": 101}}),
                "bandwidth.percentage",
            ),
            (json!({"reset": {"after_bytes": -1}}), "reset.after_bytes"),
            (
                json!({"reset": {"after_bytes": 10, "direction": "request"}}),
                "reset.after_bytes",
            ),
            (
                json!({"blackhole": {"percentage": -1}}),
                "blackhole.percentage",
            ),
            (json!({"slow_close": {"delay": "0s"}}), "slow_close.delay"),
            (json!({"slow_close": {"delay": "2h"}}), "slow_close.delay"),
            (json!({"slow_close": {"delay": "soon"}}), "slow_close.delay"),
        ];
        for (extra, field) in cases {
            let e = spec(extra.clone()).unwrap_err();
            assert_eq!(e.field, field, "{extra}: {e}");
        }
        // A direction that is neither is refused by the body's own type.
        let body = json!({"service": "reviews", "ttl_seconds": 5,
            "blackhole": {"direction": "sideways"}});
        let e = serde_json::from_value::<FaultRequest>(body).unwrap_err();
        assert!(e.to_string().contains("unknown variant `sideways`"), "{e}");
    }
}
