//! One JSON object per log line, written straight into the line buffer.
//!
//! The same shape as tracing-subscriber's JSON format with flattened events (timestamp, level,
//! the event's fields in order, target), so log pipelines see no change; but without building a
//! serde map or formatting each value into a temporary string first, which made tracing's
//! formatter a twentieth of the admission path's CPU.

use std::cell::RefCell;
use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter for `--log-format json`.
pub struct JsonLines;

thread_local! {
    /// The line being put together, kept from one event to the next on each thread.
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(512));
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // The line is put together in a String and handed over whole: the writer is a
        // `dyn Write`, and a line is a hundred small writes. An event logged while a field is
        // formatted (a Debug impl that logs) finds the buffer taken and gets one of its own.
        LINE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut line) => write_line(&mut line, event, &mut writer),
            Err(_) => write_line(&mut String::with_capacity(512), event, &mut writer),
        })
    }
}

/// Puts the event's line together in `line` (emptied first) and hands it to `writer` whole.
fn write_line(line: &mut String, event: &Event<'_>, writer: &mut Writer<'_>) -> fmt::Result {
    line.clear();
    let meta = event.metadata();
    line.push_str("{\"timestamp\":\"");
    write_timestamp(line, SystemTime::now());
    line.push_str("\",\"level\":\"");
    line.push_str(meta.level().as_str());
    line.push('"');
    event.record(&mut Fields { out: line });
    line.push_str(",\"target\":");
    push_str(line, meta.target());
    line.push_str("}\n");
    writer.write_str(line)
}

/// Writes each field as `,"name":value`. Writing into a String cannot fail, so nothing here
/// carries a `fmt::Result`.
struct Fields<'w> {
    out: &'w mut String,
}

impl Fields<'_> {
    fn name(&mut self, field: &Field) {
        self.out.push(',');
        push_str(self.out, field.name());
        self.out.push(':');
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.name(field);
        push_str(self.out, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.name(field);
        self.out.push_str(if value { "true" } else { "false" });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.name(field);
        push_digits(self.out, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.name(field);
        if value < 0 {
            self.out.push('-');
        }
        push_digits(self.out, value.unsigned_abs());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.name(field);
        // JSON has no NaN or infinity; tracing's formatter writes null for them too.
        if value.is_finite() {
            let _ = write!(self.out, "{value}");
        } else {
            self.out.push_str("null");
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.name(field);
        self.out.push('"');
        let _ = write!(Escaped(self.out), "{value:?}");
        self.out.push('"');
    }
}

/// A JSON string literal.
fn push_str(out: &mut String, s: &str) {
    out.push('"');
    // Writing into a String cannot fail.
    let _ = Escaped(out).write_str(s);
    out.push('"');
}

/// An unsigned integer in decimal, without `fmt`'s padding and flags machinery.
fn push_digits(out: &mut String, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    for &digit in &digits[at..] {
        out.push(char::from(digit));
    }
}

/// Escapes what it is given for the inside of a JSON string, copying runs that need no escape whole.
struct Escaped<'w>(&'w mut String);

impl Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.push_str(&s[start..i]);
            if escape.is_empty() {
                let _ = write!(self.0, "\\u{b:04x}");
            } else {
                self.0.push_str(escape);
            }
            start = i + 1;
        }
        self.0.push_str(&s[start..]);
        Ok(())
    }
}

/// RFC 3339 in UTC with microseconds, as tracing-subscriber writes it: `2026-11-22T19:31:46.598949Z`.
/// Digits are placed by hand: `write!` with width specifiers cost more than the rest of the line.
fn write_timestamp(out: &mut String, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let of_day = secs % 86_400;
    if !(0..=9999).contains(&year) {
        // More than four digits: no real clock gets here, but the line stays correct.
        let _ = write!(
            out,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
            of_day / 3600,
            of_day / 60 % 60,
            of_day % 60,
            since.subsec_micros()
        );
        return;
    }
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut value: u64| {
        for i in (at..at + width).rev() {
            text[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year as u64);
    put(5, 2, month.into());
    put(8, 2, day.into());
    put(11, 2, of_day / 3600);
    put(14, 2, of_day / 60 % 60);
    put(17, 2, of_day % 60);
    put(20, 6, since.subsec_micros().into());
    // Only ASCII digits and separators were written.
    out.push_str(std::str::from_utf8(&text).unwrap_or_default());
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

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

    /// The lines `log` produces through the JSON formatter, as text.
    fn capture(log: impl FnOnce()) -> String {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLines)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        text
    }

    #[test]
    fn every_field_type_is_valid_json_in_order() {
        let text = capture(|| {
            let err = std::io::Error::other("disk \"full\"");
            tracing::warn!(
                uid = %"a\"b\\c\nd\u{1}é",
                n = 42u64,
                neg = -7i64,
                zero = 0u64,
                max = u64::MAX,
                min = i64::MIN,
                ratio = 0.5f64,
                nan = f64::NAN,
                ok = true,
                list = ?vec!["x", "y"],
                error = &err as &dyn std::error::Error,
                "review {} done",
                "x\ty"
            );
        });
        assert_eq!(text.lines().count(), 1);
        let line: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "review x\ty done");
        assert_eq!(line["uid"], "a\"b\\c\nd\u{1}é");
        assert_eq!(line["n"], 42);
        assert_eq!(line["neg"], -7);
        assert_eq!(line["zero"], 0);
        assert_eq!(line["max"], u64::MAX);
        assert_eq!(line["min"], i64::MIN);
        assert_eq!(line["ratio"], 0.5);
        assert!(line["nan"].is_null());
        assert_eq!(line["ok"], true);
        assert_eq!(line["list"], "[\"x\", \"y\"]");
        assert_eq!(line["error"], "disk \"full\"");
        assert_eq!(line["target"], module_path!());
        // The order tracing-subscriber writes: timestamp, level, message, fields, target.
        assert!(text.starts_with("{\"timestamp\":\""), "{text}");
        let order: Vec<_> = [
            "\"level\"",
            "\"message\"",
            "\"uid\"",
            "\"error\"",
            "\"target\"",
        ]
        .iter()
        .map(|k| text.find(k).unwrap())
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(text.ends_with("}\n"));
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let at = |secs: u64, micros: u64| {
            let mut s = String::new();
            let t = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros);
            write_timestamp(&mut s, t);
            s
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 1), "2000-02-29T00:00:00.000001Z");
        assert_eq!(at(1_795_375_906, 598_949), "2026-11-22T19:31:46.598949Z");
        assert_eq!(at(4_107_542_399, 999_999), "2100-02-28T23:59:59.999999Z");
        assert_eq!(at(253_402_300_800, 7), "10000-01-01T00:00:00.000007Z");
    }
}
