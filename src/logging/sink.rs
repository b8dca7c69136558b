//! A batching log sink: request threads append whole lines to a shared buffer, and one thread
//! writes the buffer out every [`FLUSH_INTERVAL`] or as soon as it holds [`HIGH_WATER`] bytes.
//!
//! Every admission review logs a line, so the sink is on the hot path. A channel with a line per
//! message (tracing-appender) costs a thread wake-up per line and a `write` per wake-up: at
//! 30,000 reviews/s that was a fifth of the process's CPU. Here a line costs one uncontended
//! lock and a copy; the writer wakes at most once per interval. Nothing is dropped: when the
//! output is slower than the producers and the buffer reaches [`MAX_BUFFER`], requests wait for
//! it to drain, as a full pipe would make them wait.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a line may wait for company before it is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(20);
/// Buffered bytes that trigger a write without waiting for the interval. Each time the buffer
/// crosses it costs a producer a wake-up of the writer (a system call, and often a context
/// switch on the producer's CPU): at 60,000 reviews/s 64 KiB was crossed 400 times a second.
pub const HIGH_WATER: usize = 256 * 1024;
/// Buffered bytes beyond which producers wait for the writer.
pub const MAX_BUFFER: usize = 4 * 1024 * 1024;

#[derive(Default)]
struct State {
    lines: Vec<u8>,
    closed: bool,
    /// Producers waiting for room; notifying nobody would still cost a system call.
    waiting: usize,
    /// The writer is waiting for lines, not writing: only then is a wake-up worth its system call.
    writer_waiting: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// The writer waits here for lines.
    has_lines: Condvar,
    /// Producers wait here for room.
    has_room: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves only a byte buffer behind: still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The producer side: cheap to clone, `Write` takes whole lines.
#[derive(Clone)]
pub struct LogSink {
    shared: Arc<Shared>,
}

/// Owns the writer thread; dropping it writes every line still buffered and stops the thread.
pub struct FlushGuard {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

impl LogSink {
    /// A sink writing to `out` from a thread of its own.
    pub fn spawn(out: impl Write + Send + 'static) -> std::io::Result<(LogSink, FlushGuard)> {
        let shared = Arc::new(Shared::default());
        let writer = std::thread::Builder::new()
            .name("archgate-log".into())
            .spawn({
                let shared = shared.clone();
                move || write_loop(&shared, out)
            })?;
        Ok((
            LogSink {
                shared: shared.clone(),
            },
            FlushGuard {
                shared,
                writer: Some(writer),
            },
        ))
    }

    fn push(&self, line: &[u8]) {
        let mut state = self.shared.lock();
        while state.lines.len() >= MAX_BUFFER && !state.closed {
            state.waiting += 1;
            state = self
                .shared
                .has_room
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.waiting -= 1;
        }
        let before = state.lines.len();
        state.lines.extend_from_slice(line);
        // Wake the writer when the first line arrives (it sleeps without a timeout when idle) and
        // when the buffer crosses the high-water mark (it is waiting out the interval); otherwise
        // it is awake already or will be soon. While it is writing a batch out it looks at the
        // buffer again before it sleeps, so a wake-up then would be a system call for nothing.
        let after = state.lines.len();
        if state.writer_waiting && (before == 0 || (before < HIGH_WATER && after >= HIGH_WATER)) {
            self.shared.has_lines.notify_one();
        }
    }
}

impl Write for &LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// Borrowed, not cloned: a clone per line would bump the Arc's count, one cache line every
// request thread writes to.
impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = &'a LogSink;

    fn make_writer(&'a self) -> &'a LogSink {
        self
    }
}

fn write_loop(shared: &Shared, mut out: impl Write) {
    let mut batch = Vec::with_capacity(HIGH_WATER);
    loop {
        let mut state = shared.lock();
        state.writer_waiting = true;
        while state.lines.is_empty() && !state.closed {
            state = shared
                .has_lines
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.lines.is_empty() {
            return; // closed and drained
        }
        if !state.closed && state.lines.len() < HIGH_WATER {
            state = shared
                .has_lines
                .wait_timeout(state, FLUSH_INTERVAL)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.writer_waiting = false;
        std::mem::swap(&mut state.lines, &mut batch);
        if state.waiting > 0 {
            shared.has_room.notify_all();
        }
        drop(state);
        // Nowhere to report a failing stdout; the lines are lost either way, the service is not.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        // A burst can grow the buffer to MAX_BUFFER; do not keep that much around when idle.
        if batch.capacity() > 4 * HIGH_WATER {
            batch = Vec::with_capacity(HIGH_WATER);
        }
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.has_lines.notify_one();
        self.shared.has_room.notify_all();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Instant;

    /// An output that can be read back while the writer owns it, optionally slow.
    #[derive(Clone, Default)]
    struct Capture {
        bytes: Arc<Mutex<Vec<u8>>>,
        writes: Arc<Mutex<usize>>,
        delay: Duration,
    }

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            std::thread::sleep(self.delay);
            self.bytes.lock().unwrap().extend_from_slice(buf);
            *self.writes.lock().unwrap() += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Capture {
        fn text(&self) -> String {
            String::from_utf8(self.bytes.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn a_lone_line_is_written_within_the_interval() {
        let out = Capture::default();
        let (sink, _guard) = LogSink::spawn(out.clone()).unwrap();
        (&sink).write_all(b"one\n").unwrap();
        let started = Instant::now();
        while out.text().is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "line never written"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(out.text(), "one\n");
    }

    #[test]
    fn lines_from_many_threads_arrive_whole_and_in_few_writes() {
        let out = Capture::default();
        let (sink, guard) = LogSink::spawn(out.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for i in 0..5000 {
                        (&sink)
                            .write_all(format!("thread {t} line {i}\n").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let text = out.text();
        assert_eq!(text.lines().count(), 20_000);
        for t in 0..4 {
            let mine: Vec<_> = text
                .lines()
                .filter(|l| l.starts_with(&format!("thread {t} ")))
                .collect();
            let expected: Vec<_> = (0..5000).map(|i| format!("thread {t} line {i}")).collect();
            assert_eq!(
                mine, expected,
                "thread {t}'s lines are out of order or torn"
            );
        }
        let writes = *out.writes.lock().unwrap();
        assert!(writes < 2000, "{writes} writes for 20,000 lines");
    }

    #[test]
    fn a_slow_output_makes_producers_wait_instead_of_dropping_lines() {
        let out = Capture {
            delay: Duration::from_millis(30),
            ..Capture::default()
        };
        let (sink, guard) = LogSink::spawn(out.clone()).unwrap();
        let line = vec![b'x'; 1023];
        // 3 x MAX_BUFFER of lines through a writer that takes 30 ms per write.
        for _ in 0..(3 * MAX_BUFFER / 1024) {
            (&sink).write_all(&line).unwrap();
            (&sink).write_all(b"\n").unwrap();
        }
        drop(guard);
        assert_eq!(out.text().len(), 3 * MAX_BUFFER);
    }

    #[test]
    fn dropping_the_guard_writes_what_is_buffered() {
        let out = Capture::default();
        let (sink, guard) = LogSink::spawn(out.clone()).unwrap();
        for i in 0..10 {
            writeln!(&sink, "line {i}").unwrap();
        }
        drop(guard);
        assert_eq!(out.text().lines().count(), 10);
        // After the guard is gone the sink still accepts lines (a late log call must not block).
        writeln!(&sink, "late").unwrap();
    }
}
