//! Logging for `archgate serve`: tracing events as JSON (or text) lines, written in batches by a
//! thread of their own so a request never waits on stdout.

pub mod sink;

use sink::{FlushGuard, LogSink};
use tracing_subscriber::fmt::format::{Format, Json};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (the default outside `--dev`).
    Json,
    /// Human-readable lines.
    Text,
}

/// Installs the process's log subscriber (filtered by `ARCHGATE_LOG`, default `info`) writing to
/// stdout. Keep the guard until the process ends: dropping it writes the lines still buffered.
pub fn init(format: LogFormat) -> std::io::Result<FlushGuard> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ARCHGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (sink, guard) = LogSink::spawn(std::io::stdout())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sink);
    // A second call (tests in one process) keeps the first subscriber; nothing to report.
    let _ = match format {
        LogFormat::Json => builder.event_format(json_lines()).try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
    Ok(guard)
}

/// tracing-subscriber's JSON lines, flattened: each event's fields at the top level beside its
/// timestamp (RFC 3339, UTC, microseconds), level and target, as log pipelines index them.
/// archgate opens no spans, so no span lists.
pub fn json_lines() -> Format<Json> {
    tracing_subscriber::fmt::format()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The lines `log` produces through the JSON format, as text.
    fn capture(log: impl FnOnce()) -> String {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(json_lines())
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        text
    }

    #[test]
    fn every_field_is_a_top_level_member_of_one_json_line() {
        let text = capture(|| {
            let err = std::io::Error::other("disk \"full\"");
            tracing::warn!(
                uid = %"a\"b\\c\nd\u{1}é",
                n = 42u64,
                neg = -7i64,
                ratio = 0.5f64,
                ok = true,
                list = ?vec!["x", "y"],
                error = &err as &dyn std::error::Error,
                "review {} done",
                "x\ty"
            );
        });
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.ends_with('\n'));
        let line: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "review x\ty done");
        assert_eq!(line["uid"], "a\"b\\c\nd\u{1}é");
        assert_eq!(line["n"], 42);
        assert_eq!(line["neg"], -7);
        assert_eq!(line["ratio"], 0.5);
        assert_eq!(line["ok"], true);
        assert_eq!(line["list"], "[\"x\", \"y\"]");
        assert_eq!(line["error"], "disk \"full\"");
        assert_eq!(line["target"], module_path!());
        let timestamp = line["timestamp"].as_str().unwrap();
        // RFC 3339 in UTC with microseconds: 2026-12-05T05:10:00.123456Z.
        let shape: String = timestamp
            .chars()
            .map(|c| if c.is_ascii_digit() { 'd' } else { c })
            .collect();
        assert_eq!(shape, "dddd-dd-ddTdd:dd:dd.ddddddZ", "{timestamp}");
        assert!(
            line.get("span").is_none() && line.get("spans").is_none(),
            "{text}"
        );
    }
}
