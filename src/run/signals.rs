//! Ctrl-C and SIGTERM during `dvload run`: the first stops taking new rows (the batches in flight
//! finish and are recorded, then the run exits 4); a second one exits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Watches for Ctrl-C / SIGTERM; on the first, sets `stop` and the returned flag. Needs a tokio runtime.
pub fn watch(stop: Arc<AtomicBool>) -> Arc<AtomicBool> {
    watch_for(stop, "taking no new rows", resume_command())
}

/// [`watch`] for any command: `taking` says what stops at the first signal, `again` is the
/// command that finishes the work (printed when a second signal exits at once).
pub fn watch_for(stop: Arc<AtomicBool>, taking: &'static str, again: String) -> Arc<AtomicBool> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("cannot watch SIGTERM: {e}");
                    return;
                }
            };
        for n in 0.. {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if n > 0 {
                eprintln!(
                    "interrupted again: exiting now; what is recorded so far is safe, continue with:\n  {again}"
                );
                std::process::exit(i32::from(crate::exit::Exit::Stopped.code()));
            }
            eprintln!(
                "interrupted: {taking}, waiting for the batches in flight (interrupt again to exit now)"
            );
            flag.store(true, Ordering::Relaxed);
            stop.store(true, Ordering::Relaxed);
        }
    });
    interrupted
}

/// This process's command line with `--resume` (added when missing).
pub fn resume_command() -> String {
    let mut args: Vec<String> = std::env::args().collect();
    if let Some(first) = args.first_mut() {
        if first.ends_with("/dvload") || first.ends_with("\\dvload.exe") {
            *first = "dvload".into();
        }
    }
    if !args.iter().any(|a| a == "--resume") {
        args.push("--resume".into());
    }
    args.iter()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
