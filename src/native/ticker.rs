//! Ticks for configurations. Envoy gives HTTP filter modules no timer; it gives each
//! configuration a scheduler that runs `config_scheduled` on the main thread when
//! committed, from any thread. One thread of ours commits each configuration's event every
//! `flush_interval_ms`: the core then flushes, adopts what other streams learned and
//! publishes quantiles, as the Wasm build does on `proxy_on_tick`.

use std::cell::{Cell, RefCell};
use std::sync::{Condvar, Mutex, Once, PoisonError};
use std::time::{Duration, Instant};

use super::abi::{self, ConfigEnvoy};

struct Ticker {
    root: u32,
    scheduler: usize,
    period: Duration,
    due: Instant,
}

static TICKERS: Mutex<Vec<Ticker>> = Mutex::new(Vec::new());
/// Wakes the thread when a configuration starts ticking; otherwise it sleeps until the next
/// tick is due (no idle wake-ups: they would be counted against requests in the bench).
static CHANGED: Condvar = Condvar::new();
static THREAD: Once = Once::new();

thread_local! {
    /// Set on the tick thread while it commits (with `TICKERS` held). A commit can drop
    /// Envoy's last reference to a configuration, whose destruction then runs here and
    /// stops its ticker: that stop is queued, not locked for (the lock is ours already).
    static IN_COMMIT: Cell<bool> = const { Cell::new(false) };
    static STOPPED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// Ticks `root` every `period_ms` from now on.
pub fn start(root: u32, envoy: ConfigEnvoy, period_ms: u64) {
    // SAFETY: the configuration Envoy is making, in `config_new`.
    let scheduler = unsafe { abi::envoy_dynamic_module_callback_http_filter_config_scheduler_new(envoy) };
    if scheduler.is_null() {
        log::error!("no scheduler: counts cannot reach Envoy's stats");
        return;
    }
    let period = Duration::from_millis(period_ms.max(1));
    let ticker = Ticker { root, scheduler: scheduler as usize, period, due: Instant::now() + period };
    TICKERS.lock().unwrap_or_else(PoisonError::into_inner).push(ticker);
    CHANGED.notify_all();
    THREAD.call_once(|| {
        let spawned = std::thread::Builder::new().name("routemeter-tick".into()).spawn(run);
        if let Err(e) = spawned {
            log::error!("no tick thread ({e}): counts cannot reach Envoy's stats");
        }
    });
}

/// Stops ticking `root` (its configuration is going away); no commit for it follows.
pub fn stop(root: u32) {
    if IN_COMMIT.with(Cell::get) {
        STOPPED.with(|s| s.borrow_mut().push(root));
        return;
    }
    let mut tickers = TICKERS.lock().unwrap_or_else(PoisonError::into_inner);
    remove(&mut tickers, root);
}

/// Deletes `root`'s scheduler and forgets it (`TICKERS` held).
fn remove(tickers: &mut Vec<Ticker>, root: u32) {
    tickers.retain(|t| {
        if t.root == root {
            // SAFETY: ours, from `scheduler_new`, deleted once, under the lock commits take.
            unsafe { abi::envoy_dynamic_module_callback_http_filter_config_scheduler_delete(t.scheduler as _) };
        }
        t.root != root
    });
}

fn run() {
    let mut tickers = TICKERS.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let now = Instant::now();
        for t in tickers.iter_mut().filter(|t| t.due <= now) {
            IN_COMMIT.with(|c| c.set(true));
            // SAFETY: a live scheduler (`stop` deletes it under this lock, or after the
            // commits when the stop came from inside one).
            unsafe { abi::envoy_dynamic_module_callback_http_filter_config_scheduler_commit(t.scheduler as _, 0) };
            IN_COMMIT.with(|c| c.set(false));
            // Late ticks are not caught up: one commit per period at most.
            t.due = (t.due + t.period).max(now);
        }
        for root in STOPPED.with(|s| std::mem::take(&mut *s.borrow_mut())) {
            remove(&mut tickers, root);
        }
        // Until the next tick is due, or a configuration starts ticking (an hour if none).
        let next = tickers.iter().map(|t| t.due).min();
        let wait = next.map_or(Duration::from_secs(3600), |due| due.saturating_duration_since(Instant::now()));
        tickers = match CHANGED.wait_timeout(tickers, wait.max(Duration::from_millis(1))) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
}
