//! A batching log sink: request threads append whole lines to a shared buffer, and one thread
//! writes the buffer out every [`FLUSH_INTERVAL`] or as soon as it holds [`HIGH_WATER`] bytes.
//!
//! Every admission review logs a line, so the sink is on the hot path. A channel with a line per
//! message (tracing-appender) costs a thread wake-up per line and a `write` per wake-up: at
//! 30,000 reviews/s that was a fifth of the process's CPU. Here a line costs one uncontended
//! lock and a copy; the writer wakes at most once per interval.
//!
//! Logging never holds up an admission: when the output is slower than the producers (a log
//! reader that stalls) and the buffer reaches [`MAX_BUFFER`], new lines are dropped and counted
//! ([`dropped_lines`], exported as `archgate_log_lines_dropped_total`), and shutdown waits for
//! the writer at most [`SHUTDOWN_FLUSH`].

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a line may wait for company before it is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(20);
/// Buffered bytes that trigger a write without waiting for the interval. Each time the buffer
/// crosses it costs a producer a wake-up of the writer (a system call, and often a context
/// switch on the producer's CPU): at 60,000 reviews/s 64 KiB was crossed 400 times a second.
pub const HIGH_WATER: usize = 256 * 1024;
/// Buffered bytes beyond which new lines are dropped until the writer catches up.
pub const MAX_BUFFER: usize = 4 * 1024 * 1024;
/// How long shutdown waits for the buffered lines to be written.
pub const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);

/// Lines dropped because the output could not keep up, since the process started (one stdout
/// per process, so one count).
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Log lines dropped so far because the output was not read fast enough.
pub fn dropped_lines() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

#[derive(Default)]
struct State {
    lines: Vec<u8>,
    closed: bool,
    /// The writer returned: everything it could write is written.
    finished: bool,
    /// The writer is waiting for lines, not writing: only then is a wake-up worth its system call.
    writer_waiting: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// The writer waits here for lines.
    has_lines: Condvar,
    /// Shutdown waits here for the writer to finish.
    finished: Condvar,
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
        if state.lines.len() >= MAX_BUFFER {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
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

fn write_loop(shared: &Shared, out: impl Write) {
    write_batches(shared, out);
    shared.lock().finished = true;
    shared.finished.notify_all();
}

fn write_batches(shared: &Shared, mut out: impl Write) {
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
        let mut state = self.shared.lock();
        state.closed = true;
        self.shared.has_lines.notify_one();
        // A stalled output would hold the writer in `write` for ever: the process still exits.
        let (state, _) = self
            .shared
            .finished
            .wait_timeout_while(state, SHUTDOWN_FLUSH, |s| !s.finished)
            .unwrap_or_else(PoisonError::into_inner);
        let finished = state.finished;
        drop(state);
        if let Some(writer) = self.writer.take().filter(|_| finished) {
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

    /// An output that never returns from `write` until released: a log reader that stalls.
    #[derive(Clone, Default)]
    struct Stalled(Arc<(Mutex<bool>, Condvar)>);

    impl Write for Stalled {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            let (released, cv) = &*self.0;
            let mut r = released.lock().unwrap();
            while !*r {
                r = cv.wait(r).unwrap();
            }
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_output_drops_and_counts_lines_and_never_blocks_a_producer_or_shutdown() {
        let out = Stalled::default();
        let (sink, guard) = LogSink::spawn(out.clone()).unwrap();
        let before = dropped_lines();
        let line = vec![b'x'; 1023];
        let started = Instant::now();
        // 3 x MAX_BUFFER of lines into a writer stuck in its first write.
        for _ in 0..(3 * MAX_BUFFER / 1024) {
            (&sink).write_all(&line).unwrap();
            (&sink).write_all(b"\n").unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let dropped = dropped_lines() - before;
        assert!(dropped >= (MAX_BUFFER / 1024) as u64, "{dropped}");
        let started = Instant::now();
        drop(guard);
        let took = started.elapsed();
        assert!(
            took >= SHUTDOWN_FLUSH && took < SHUTDOWN_FLUSH + Duration::from_secs(2),
            "{took:?}"
        );
        let (released, cv) = &*out.0;
        *released.lock().unwrap() = true;
        cv.notify_all();
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
