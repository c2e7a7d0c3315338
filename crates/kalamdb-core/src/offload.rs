//! A stage of a pipeline that moves to a thread of its own once it gets its
//! second item: a flush reads RocksDB on its thread while the batches of a
//! large scope are built on another and encoded on a third.
//!
//! The first item is handled on the caller's thread, so short work (a
//! scope of one batch, most scopes of a flush of many users) costs no
//! thread. From the second on, items go through a channel of
//! [`QUEUED_ITEMS`], so at most that many wait in memory; a failure on the
//! thread shows at the next item or at [`Offloaded::finish`]. Dropped
//! unfinished, the stage is told to give up (its channel closes without a
//! finish) and its thread is waited for: nothing outlives its owner.

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::thread::JoinHandle;

/// Items that may wait for a stage's thread.
const QUEUED_ITEMS: usize = 2;

/// The work of one stage.
pub trait Stage: Send + 'static {
    type Item: Send + 'static;
    type Output: Send + 'static;
    type Error: Send + 'static;
    /// The thread's name.
    const NAME: &'static str;

    fn add(&mut self, item: Self::Item) -> Result<(), Self::Error>;
    fn finish(self) -> Result<Self::Output, Self::Error>;
    /// The error of a stage that could not go on for `reason` (its thread
    /// failed to start, panicked, or was given up).
    fn stopped(reason: String) -> Self::Error;
}

pub struct Offloaded<S: Stage> {
    state: State<S>,
    /// Whether the stage may move to a thread of its own at all.
    may_move: bool,
}

enum State<S: Stage> {
    /// No item or one so far: run on the caller's thread.
    Here {
        stage: Box<S>,
        items: usize,
    },
    /// On its own thread: an item to add, or `None` to finish. Closed
    /// without `None`: give up.
    Piped {
        items: SyncSender<Option<S::Item>>,
        worker: JoinHandle<Result<S::Output, S::Error>>,
    },
    Gone,
}

impl<S: Stage> Offloaded<S> {
    pub fn new(stage: S) -> Self {
        Self {
            state: State::Here {
                stage: Box::new(stage),
                items: 0,
            },
            may_move: true,
        }
    }

    /// A stage that stays on its caller's thread: for a caller that is a
    /// stage's thread already, where one more thread would only take turns
    /// with the others for the same two cores.
    pub fn here(stage: S) -> Self {
        let mut stage = Self::new(stage);
        stage.may_move = false;
        stage
    }

    pub fn add(&mut self, item: S::Item) -> Result<(), S::Error> {
        let may_move = self.may_move;
        match &mut self.state {
            State::Here { stage, items } if *items == 0 || !may_move => {
                *items = 1;
                stage.add(item)
            }
            State::Here { .. } => {
                self.pipe()?;
                self.add(item)
            }
            State::Piped { items, .. } => {
                if items.send(Some(item)).is_ok() {
                    return Ok(());
                }
                Err(self.thread_stopped())
            }
            State::Gone => Err(S::stopped("it was finished already".into())),
        }
    }

    /// [`Self::add`], except that an item the stage's thread has no room
    /// for comes back (`Ok(Some(item))`) instead of waiting: the caller may
    /// do some of its work meanwhile.
    pub fn try_add(&mut self, item: S::Item) -> Result<Option<S::Item>, S::Error> {
        let State::Piped { items, .. } = &mut self.state else {
            return self.add(item).map(|()| None);
        };
        match items.try_send(Some(item)) {
            Ok(()) => Ok(None),
            // What was sent: `Some(item)`.
            Err(TrySendError::Full(item)) => Ok(item),
            Err(TrySendError::Disconnected(_)) => Err(self.thread_stopped()),
        }
    }

    /// The error of a stage whose thread stopped taking items: its own
    /// error says why.
    fn thread_stopped(&mut self) -> S::Error {
        match self.join() {
            Err(e) => e,
            Ok(_) => S::stopped(format!("the {} thread ended early", S::NAME)),
        }
    }

    /// Moves the stage to a thread of its own.
    fn pipe(&mut self) -> Result<(), S::Error> {
        let State::Here { mut stage, .. } = std::mem::replace(&mut self.state, State::Gone) else {
            unreachable!("only a stage run here is moved")
        };
        let (tx, rx) = sync_channel::<Option<S::Item>>(QUEUED_ITEMS);
        let worker = crate::background::spawn(S::NAME, move || loop {
            match rx.recv() {
                Ok(Some(item)) => stage.add(item)?,
                Ok(None) => return stage.finish(),
                Err(_) => return Err(S::stopped("it was given up".into())),
            }
        })
        .map_err(|e| S::stopped(e.to_string()))?;
        self.state = State::Piped { items: tx, worker };
        Ok(())
    }

    fn join(&mut self) -> Result<S::Output, S::Error> {
        let State::Piped { items, worker } = std::mem::replace(&mut self.state, State::Gone) else {
            return Err(S::stopped("it was finished already".into()));
        };
        drop(items);
        worker
            .join()
            .map_err(|_| S::stopped(format!("the {} thread panicked", S::NAME)))?
    }

    pub fn finish(mut self) -> Result<S::Output, S::Error> {
        match std::mem::replace(&mut self.state, State::Gone) {
            State::Here { stage, .. } => stage.finish(),
            State::Piped { items, worker } => {
                // A closed channel means the thread failed: the join says.
                let _ = items.send(None);
                self.state = State::Piped { items, worker };
                self.join()
            }
            State::Gone => Err(S::stopped("it was finished already".into())),
        }
    }
}

impl<S: Stage> Drop for Offloaded<S> {
    fn drop(&mut self) {
        if matches!(self.state, State::Piped { .. }) {
            let _ = self.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Sums items; fails at `fail_at`; counts the threads it ran on.
    struct Sum {
        total: u64,
        fail_at: Option<u64>,
        threads: Arc<AtomicUsize>,
        last_thread: Option<std::thread::ThreadId>,
    }

    impl Stage for Sum {
        type Item = u64;
        type Output = u64;
        type Error = String;
        const NAME: &'static str = "kalamdb-test-sum";

        fn add(&mut self, item: u64) -> Result<(), String> {
            let me = std::thread::current().id();
            if self.last_thread != Some(me) {
                self.threads.fetch_add(1, Ordering::SeqCst);
                self.last_thread = Some(me);
            }
            if self.fail_at == Some(item) {
                return Err(format!("refused {item}"));
            }
            self.total += item;
            Ok(())
        }

        fn finish(self) -> Result<u64, String> {
            Ok(self.total)
        }

        fn stopped(reason: String) -> String {
            reason
        }
    }

    fn sum(fail_at: Option<u64>) -> (Offloaded<Sum>, Arc<AtomicUsize>) {
        let threads = Arc::new(AtomicUsize::new(0));
        let stage = Sum {
            total: 0,
            fail_at,
            threads: threads.clone(),
            last_thread: None,
        };
        (Offloaded::new(stage), threads)
    }

    #[test]
    fn one_item_stays_here_more_move_to_a_thread() {
        let (mut one, threads) = sum(None);
        one.add(5).unwrap();
        assert_eq!(one.finish().unwrap(), 5);
        assert_eq!(threads.load(Ordering::SeqCst), 1, "only the caller's");

        let (mut many, threads) = sum(None);
        for i in 1..=100 {
            many.add(i).unwrap();
        }
        assert_eq!(many.finish().unwrap(), 5050);
        assert_eq!(
            threads.load(Ordering::SeqCst),
            2,
            "the caller's, then its own"
        );
    }

    #[test]
    fn a_failure_on_the_thread_shows_and_a_dropped_stage_ends_its_thread() {
        let (mut failing, _) = sum(Some(3));
        let mut seen = None;
        for i in 1..=50 {
            if let Err(e) = failing.add(i) {
                seen = Some(e);
                break;
            }
        }
        let err = match seen {
            Some(e) => e,
            None => failing.finish().unwrap_err(),
        };
        assert_eq!(err, "refused 3");

        let (mut dropped, _) = sum(None);
        for i in 1..=10 {
            dropped.add(i).unwrap();
        }
        drop(dropped);
    }

    /// Adds items; on its own thread each waits for a token first.
    struct Gated {
        seen: Vec<u64>,
        tokens: std::sync::mpsc::Receiver<()>,
        caller: std::thread::ThreadId,
    }

    impl Stage for Gated {
        type Item = u64;
        type Output = Vec<u64>;
        type Error = String;
        const NAME: &'static str = "kalamdb-test-gated";

        fn add(&mut self, item: u64) -> Result<(), String> {
            if std::thread::current().id() != self.caller {
                self.tokens.recv().map_err(|e| e.to_string())?;
            }
            self.seen.push(item);
            Ok(())
        }

        fn finish(self) -> Result<Vec<u64>, String> {
            Ok(self.seen)
        }

        fn stopped(reason: String) -> String {
            reason
        }
    }

    fn gated() -> (Gated, std::sync::mpsc::Sender<()>) {
        let (give, tokens) = std::sync::mpsc::channel();
        let stage = Gated {
            seen: Vec::new(),
            tokens,
            caller: std::thread::current().id(),
        };
        (stage, give)
    }

    #[test]
    fn try_add_gives_an_item_back_while_the_thread_is_behind() {
        let (stage, give) = gated();
        let mut gated = Offloaded::new(stage);
        gated.add(1).unwrap();
        // The thread waits on its first item: it holds that one and its
        // queue as many more, then an item comes back.
        let mut next = 2;
        let back = loop {
            match gated.try_add(next).unwrap() {
                None => next += 1,
                Some(item) => break item,
            }
            assert!(next <= 2 + QUEUED_ITEMS as u64 + 1, "the queue is bounded");
        };
        assert_eq!(back, next, "the item that found no room");
        assert!(next > 2, "an item was taken before the queue was full");
        for _ in 0..next {
            give.send(()).unwrap();
        }
        gated.add(back).unwrap();
        assert_eq!(gated.finish().unwrap(), (1..=next).collect::<Vec<_>>());
    }

    #[test]
    fn a_stage_made_here_never_moves() {
        let (stage, _give) = gated();
        let mut here = Offloaded::here(stage);
        for i in 1..=20 {
            assert_eq!(here.try_add(i).unwrap(), None);
        }
        // On a thread of its own every item would wait for a token.
        assert_eq!(here.finish().unwrap(), (1..=20).collect::<Vec<_>>());
    }
}
