//! Tests that check what reaches the logs: runs a closure and returns every line it logged
//! on this thread, at every level.
//!
//! One global subscriber, installed once, writes to whichever capture the current thread
//! has open. Per-test scoped subscribers (`with_default`) are not enough when tests run in
//! parallel: callsite interest is cached process-wide, so a line first hit on a thread with
//! no subscriber can stay disabled for the test that captures it.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, Once};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

type Buffer = Arc<Mutex<Vec<u8>>>;

thread_local! {
    static CAPTURE: RefCell<Option<Buffer>> = const { RefCell::new(None) };
}

fn capturing() -> bool {
    CAPTURE.with(|c| c.borrow().is_some())
}

/// Writes to this thread's open capture, if any.
struct ThreadWriter;

impl Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(b) = c.borrow().as_ref() {
                b.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(|| ThreadWriter)
            .with_ansi(false)
            .with_filter(tracing_subscriber::filter::dynamic_filter_fn(|_, _| {
                capturing()
            }));
        let subscriber = tracing_subscriber::registry().with(layer);
        // Another global subscriber already set would make captures come back empty; the
        // tests that use this say so by failing.
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// `f`'s result and the log text it produced on this thread.
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, String) {
    install();
    let buffer = Buffer::default();
    CAPTURE.with(|c| *c.borrow_mut() = Some(buffer.clone()));
    let r = f();
    CAPTURE.with(|c| *c.borrow_mut() = None);
    let text = String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned();
    (r, text)
}
