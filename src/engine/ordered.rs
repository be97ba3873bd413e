//! Work on many threads, results in order: every thread takes the next job as soon as it is free
//! (no thread waits for another at a batch's end), and the consumer receives results in job order,
//! so what is written never depends on which thread finished first. At most `window` jobs run or
//! wait ahead of the consumer, which bounds the memory their results hold.
use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Runs `work` on every job on `threads` threads and hands each result to `consume` in job order.
/// `consume` returns `false` to stop early: no further job is started and results not yet
/// consumed are dropped. A panic in `work` stops the run and is raised again here.
pub fn for_each_in_order<J, R, W, C>(
    jobs: &[J],
    threads: usize,
    window: usize,
    work: W,
    mut consume: C,
) where
    J: Sync,
    R: Send,
    W: Fn(&J) -> R + Sync,
    C: FnMut(usize, R) -> bool,
{
    let queue = Reorder::new(jobs.len(), window.max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                // a panicking job stops the consumer's wait; the scope then raises the panic
                let _stop_if_panicking = StopOnDrop::when_panicking(&queue);
                while let Some(i) = queue.claim() {
                    queue.put(i, work(&jobs[i]));
                }
            });
        }
        // stops the threads however consuming ends, before the scope waits for them
        let _stop = StopOnDrop::always(&queue);
        for i in 0..jobs.len() {
            let go_on = queue.take(i).is_some_and(|result| consume(i, result));
            if !go_on {
                break;
            }
        }
    });
}

/// Results that came back out of order, waiting for the consumer.
struct Reorder<R> {
    state: Mutex<State<R>>,
    changed: Condvar,
    jobs: usize,
    window: usize,
}

struct State<R> {
    /// The next job a thread may claim.
    next: usize,
    /// Jobs the consumer has taken; jobs up to `taken + window` may be claimed.
    taken: usize,
    ready: BTreeMap<usize, R>,
    stopped: bool,
}

impl<R> Reorder<R> {
    fn new(jobs: usize, window: usize) -> Self {
        Reorder {
            state: Mutex::new(State {
                next: 0,
                taken: 0,
                ready: BTreeMap::new(),
                stopped: false,
            }),
            changed: Condvar::new(),
            jobs,
            window,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<R>> {
        // a poisoned lock only means a job panicked, which the scope raises anyway
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State<R>>) -> MutexGuard<'a, State<R>> {
        self.changed.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    /// The next job to run, once the window has room; `None` when all are claimed or stopped.
    fn claim(&self) -> Option<usize> {
        let mut s = self.lock();
        loop {
            if s.stopped || s.next >= self.jobs {
                return None;
            }
            if s.next < s.taken + self.window {
                s.next += 1;
                return Some(s.next - 1);
            }
            s = self.wait(s);
        }
    }

    fn put(&self, i: usize, result: R) {
        let mut s = self.lock();
        if !s.stopped {
            s.ready.insert(i, result);
        }
        drop(s);
        self.changed.notify_all();
    }

    /// Waits for job `i`'s result; `None` when the run stopped first.
    fn take(&self, i: usize) -> Option<R> {
        let mut s = self.lock();
        loop {
            if let Some(result) = s.ready.remove(&i) {
                s.taken = i + 1;
                drop(s);
                self.changed.notify_all();
                return Some(result);
            }
            if s.stopped {
                return None;
            }
            s = self.wait(s);
        }
    }

    fn stop(&self) {
        let dropped = {
            let mut s = self.lock();
            s.stopped = true;
            std::mem::take(&mut s.ready)
        };
        self.changed.notify_all();
        // results are freed outside the lock
        drop(dropped);
    }
}

struct StopOnDrop<'a, R> {
    queue: &'a Reorder<R>,
    only_when_panicking: bool,
}

impl<'a, R> StopOnDrop<'a, R> {
    fn always(queue: &'a Reorder<R>) -> Self {
        StopOnDrop {
            queue,
            only_when_panicking: false,
        }
    }

    fn when_panicking(queue: &'a Reorder<R>) -> Self {
        StopOnDrop {
            queue,
            only_when_panicking: true,
        }
    }
}

impl<R> Drop for StopOnDrop<'_, R> {
    fn drop(&mut self) {
        if !self.only_when_panicking || std::thread::panicking() {
            self.queue.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Early jobs are the slow ones, so results come back out of order.
    fn slow_early(i: &usize) -> usize {
        std::thread::sleep(Duration::from_millis(((20 - i.min(&20)) / 4) as u64));
        i * 10
    }

    #[test]
    fn results_arrive_in_job_order_whatever_finishes_first() {
        let jobs: Vec<usize> = (0..40).collect();
        for threads in [1, 2, 4] {
            let mut seen = Vec::new();
            for_each_in_order(&jobs, threads, 3, slow_early, |i, r| {
                seen.push((i, r));
                true
            });
            let want: Vec<(usize, usize)> = jobs.iter().map(|&i| (i, i * 10)).collect();
            assert_eq!(seen, want, "{threads} threads");
        }
    }

    #[test]
    fn no_more_than_the_window_runs_ahead_of_the_consumer() {
        let jobs: Vec<usize> = (0..30).collect();
        let started = AtomicUsize::new(0);
        let mut worst = 0;
        for_each_in_order(
            &jobs,
            4,
            5,
            |i| {
                started.fetch_add(1, Ordering::SeqCst);
                slow_early(i)
            },
            |i, _| {
                // the consumer is slow: the threads would run ahead if the window let them
                std::thread::sleep(Duration::from_millis(2));
                worst = worst.max(started.load(Ordering::SeqCst) - (i + 1));
                true
            },
        );
        assert!(worst <= 5, "{worst} jobs started ahead of the consumer");
        assert!(worst >= 2, "the threads did run ahead: {worst}");
    }

    #[test]
    fn stopping_early_starts_no_further_jobs() {
        let jobs: Vec<usize> = (0..1000).collect();
        let started = AtomicUsize::new(0);
        let mut consumed = 0;
        let work = |i: &usize| {
            started.fetch_add(1, Ordering::SeqCst);
            *i
        };
        for_each_in_order(&jobs, 2, 4, work, |i, _| {
            consumed += 1;
            i < 9
        });
        assert_eq!(consumed, 10);
        assert!(started.load(Ordering::SeqCst) <= 10 + 4);
    }

    #[test]
    fn a_panicking_job_is_raised_instead_of_hanging() {
        let jobs: Vec<usize> = (0..50).collect();
        let run = std::panic::catch_unwind(|| {
            for_each_in_order(
                &jobs,
                2,
                4,
                |&i| {
                    assert!(i != 3, "job 3 fails");
                    i
                },
                |_, _| true,
            )
        });
        assert!(run.is_err());
    }
}
