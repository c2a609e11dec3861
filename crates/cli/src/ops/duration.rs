//! Durations on the command line, one rule for every command: Go's syntax as helm's
//! `--timeout` takes it (`300s`, `5m`, `1h30m`, `500ms`), and a bare number of seconds.

use std::time::Duration;

/// A duration that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration: expected e.g. 90s, 5m, 1h30m or 500ms")]
pub struct DurationError {
    /// What was given.
    pub text: String,
}

/// Parses `text`.
///
/// ```
/// use std::time::Duration;
/// use kantup::ops::duration::parse_duration;
/// assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
/// assert_eq!(parse_duration("60").unwrap(), Duration::from_secs(60));
/// assert!(parse_duration("soon").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    let error = || DurationError {
        text: text.to_string(),
    };
    if trimmed.is_empty() {
        return Err(error());
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return trimmed
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| error());
    }
    // humantime also reads units Go does not know (`d`, `w`, `y`) and spaces; helm would
    // refuse those, so they are refused here too.
    if trimmed.contains(['d', 'w', 'y', ' ']) {
        return Err(error());
    }
    humantime::parse_duration(trimmed).map_err(|_| error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        for (text, expected) in [
            ("60", Some(Duration::from_secs(60))),
            ("90s", Some(Duration::from_secs(90))),
            ("2m", Some(Duration::from_secs(120))),
            ("5m0s", Some(Duration::from_secs(300))),
            ("1h", Some(Duration::from_secs(3600))),
            ("1h30m", Some(Duration::from_secs(5400))),
            ("500ms", Some(Duration::from_millis(500))),
            ("2d", None),
            ("soon", None),
            ("", None),
            ("5x", None),
            ("m", None),
        ] {
            assert_eq!(parse_duration(text).ok(), expected, "{text}");
        }
    }
}
