//! Wall-clock timestamps for the journal (RFC 3339, UTC, microseconds).

use std::time::SystemTime;

use time::OffsetDateTime;
use time::macros::format_description;

/// `2026-11-24T21:36:04.123456Z` for a system time.
pub fn rfc3339(t: SystemTime) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    OffsetDateTime::from(t).format(format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_988_164_250);
        assert_eq!(rfc3339(t), "2026-11-29T21:36:04.250000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000000Z");
    }
}
