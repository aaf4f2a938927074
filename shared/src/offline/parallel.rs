//! Order-preserving parallel map over a slice on scoped threads (batch commands: `tierwise
//! eval`, `features`, `train`), with a progress bar on stderr when stderr is a terminal (and
//! nothing otherwise: logs and CI stay clean). Not used on the serving path, where one request
//! is one thread.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar of `len` steps on stderr when it is a terminal, else one that draws nothing.
pub fn progress(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta} left)")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// A counter with no known end (records of an export, rows of a table), drawn the same way.
pub fn counter(what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{msg} {pos} ({per_sec})") {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

/// Applies `f` to every item on up to `threads` threads (contiguous chunks), keeping the order;
/// the first error (in item order) is returned. A panic in a worker is propagated.
pub fn try_map<T, R, E, F>(items: &[T], threads: usize, f: F) -> Result<Vec<R>, E>
where
    T: Sync,
    R: Send,
    E: Send,
    F: Fn(&T) -> Result<R, E> + Sync,
{
    let chunk = items.len().div_ceil(threads.max(1)).max(1);
    let bar = progress(items.len() as u64, "items");
    let f = &|item: &T| {
        let r = f(item);
        bar.inc(1);
        r
    };
    let parts: Vec<Result<Vec<R>, E>> = std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(f).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    bar.finish_and_clear();
    let mut out = Vec::with_capacity(items.len());
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_draws_only_on_a_terminal() {
        let terminal = std::io::stderr().is_terminal();
        assert_eq!(progress(10, "rows").is_hidden(), !terminal);
        assert_eq!(counter("records").is_hidden(), !terminal);
    }

    #[test]
    fn keeps_order_and_reports_first_error() {
        let items: Vec<u32> = (0..101).collect();
        let doubled = try_map(&items, 3, |x| Ok::<_, String>(x * 2)).unwrap();
        assert_eq!(doubled, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        let err = try_map(&items, 4, |x| if *x >= 40 { Err(*x) } else { Ok(*x) }).unwrap_err();
        assert_eq!(err, 40);
        assert!(
            try_map(&[] as &[u32], 2, |x| Ok::<_, ()>(*x))
                .unwrap()
                .is_empty()
        );
    }
}
