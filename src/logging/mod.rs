//! Logging for `archgate serve`: tracing events as JSON (or text) lines, written in batches by a
//! thread of their own so a request never waits on stdout.

pub mod json;
pub mod sink;

use sink::{FlushGuard, LogSink};

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
        LogFormat::Json => builder.event_format(json::JsonLines).try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
    Ok(guard)
}
