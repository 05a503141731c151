//! Panics as log lines. The default hook prints the panic message to stderr, and a message
//! from a failed slice or parse can hold the bytes a caller sent (a number, a PIN). Here a
//! panic becomes one `error` event with digit runs masked; inside the media worker's guard
//! it is not logged at all but kept for the worker, which logs the fault once with the call
//! it ended.

use std::cell::{Cell, RefCell};

thread_local! {
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replaces the process's panic hook (once, at start).
pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if GUARDED.with(Cell::get) {
            LAST.with(|l| *l.borrow_mut() = Some(location));
            return;
        }
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let thread = std::thread::current();
        tracing::error!(
            target: "panic",
            thread = thread.name().unwrap_or("?"),
            %location,
            "panic: {}",
            mask_digits(&msg)
        );
    }));
}

/// Runs `f` with panics recorded instead of logged (the caller catches and reports them).
pub fn quietly<R>(f: impl FnOnce() -> R) -> R {
    let was = GUARDED.with(|g| g.replace(true));
    let r = f();
    GUARDED.with(|g| g.set(was));
    r
}

/// Where the last quiet panic on this thread happened.
pub fn take_location() -> Option<String> {
    LAST.with(|l| l.borrow_mut().take())
}

/// Runs of three or more digits become `***`: enough to keep numbers and PINs out, while
/// byte offsets and line numbers in a message stay readable.
pub fn mask_digits(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            run.push(c);
            continue;
        }
        flush(&mut out, &mut run);
        out.push(c);
    }
    flush(&mut out, &mut run);
    out
}

fn flush(out: &mut String, run: &mut String) {
    if run.len() >= 3 {
        out.push_str("***");
    } else {
        out.push_str(run);
    }
    run.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_panic_messages_are_masked() {
        assert_eq!(
            mask_digits("byte index 12 is inside `13800138000` pin 123456"),
            "byte index 12 is inside `***` pin ***"
        );
    }
}
