//! Group commit inside one component instance: requests that need the same kind of call at about
//! the same time share one call.
//!
//! The first request to [`GroupCommit::submit`] leads a batch of every item queued at that moment
//! (its own first); items submitted while a batch is in flight queue for the next one, which the
//! first of them leads when the current one ends. A waiting request sleeps on a
//! [`signal`](crate::signal) until its result, or the lead, is handed to it.
//!
//! Nothing here is shared beyond the instance, and nothing is truth: it only decides who sends
//! what together. If a leader's request is dropped mid-batch, every other item of its batch gets
//! the `abandoned` result, and the lead passes on; a request dropped while queued leaves the
//! queue (passing on a lead it was given).

use crate::signal;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;

pub struct GroupCommit<T, R> {
    max_batch: usize,
    state: RefCell<State<T, R>>,
}

struct State<T, R> {
    queue: VecDeque<Rc<Slot<T, R>>>,
    leading: bool,
}

struct Slot<T, R> {
    item: RefCell<Option<T>>,
    turn: RefCell<Turn<R>>,
    wake: RefCell<Option<signal::Sender>>,
}

enum Turn<R> {
    Waiting,
    Lead,
    Done(R),
}

impl<T, R> Slot<T, R> {
    fn set(&self, turn: Turn<R>) {
        *self.turn.borrow_mut() = turn;
        if let Some(sender) = self.wake.borrow_mut().take() {
            sender.send();
        }
    }
}

impl<T, R> GroupCommit<T, R> {
    /// Batches of at most `max_batch` items (at least one).
    pub fn new(max_batch: usize) -> Self {
        GroupCommit {
            max_batch: max_batch.max(1),
            state: RefCell::new(State { queue: VecDeque::new(), leading: false }),
        }
    }

    /// `item`'s result. The leader calls `run` with its batch's items in order; it returns one
    /// result per item (an item it gave none gets `abandoned()`).
    pub async fn submit<F, Fut>(&self, item: T, run: F, abandoned: fn() -> R) -> R
    where
        F: FnOnce(Vec<T>) -> Fut,
        Fut: Future<Output = Vec<R>>,
    {
        let (sender, mut receiver) = signal::pair();
        let slot = Rc::new(Slot {
            item: RefCell::new(Some(item)),
            turn: RefCell::new(Turn::Waiting),
            wake: RefCell::new(Some(sender)),
        });
        let lead_now = {
            let mut s = self.state.borrow_mut();
            s.queue.push_back(slot.clone());
            !std::mem::replace(&mut s.leading, true)
        };
        if lead_now {
            *slot.turn.borrow_mut() = Turn::Lead;
        }
        let mut queued = Queued { group: self, slot: &slot, armed: true };
        loop {
            let turn = std::mem::replace(&mut *slot.turn.borrow_mut(), Turn::Waiting);
            match turn {
                Turn::Done(result) => {
                    queued.armed = false;
                    return result;
                }
                Turn::Lead => break,
                Turn::Waiting => receiver.recv().await,
            }
        }
        queued.armed = false;

        let batch: Vec<Rc<Slot<T, R>>> = {
            let mut s = self.state.borrow_mut();
            let n = s.queue.len().min(self.max_batch);
            s.queue.drain(..n).collect()
        };
        let mut leading = Leading { group: self, batch: &batch, me: &slot, finished: false, abandoned };
        let items = batch.iter().filter_map(|s| s.item.borrow_mut().take()).collect();
        let mut results = run(items).await.into_iter();
        let mut own = None;
        for s in &batch {
            let result = results.next().unwrap_or_else(abandoned);
            if Rc::ptr_eq(s, &slot) {
                own = Some(result);
            } else {
                s.set(Turn::Done(result));
            }
        }
        leading.finished = true;
        drop(leading);
        own.unwrap_or_else(abandoned)
    }

    /// Passes the lead to the first queued item, or ends the leading.
    fn hand_over(&self) {
        let next = {
            let mut s = self.state.borrow_mut();
            match s.queue.front() {
                Some(next) => Some(next.clone()),
                None => {
                    s.leading = false;
                    None
                }
            }
        };
        if let Some(next) = next {
            next.set(Turn::Lead);
        }
    }

    #[cfg(test)]
    fn queued(&self) -> usize {
        self.state.borrow().queue.len()
    }
}

/// An item waiting in the queue: if its request is dropped there, it leaves the queue, and a lead
/// it was given but never took passes on.
struct Queued<'a, T, R> {
    group: &'a GroupCommit<T, R>,
    slot: &'a Rc<Slot<T, R>>,
    armed: bool,
}

impl<T, R> Drop for Queued<'_, T, R> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.group.state.borrow_mut().queue.retain(|s| !Rc::ptr_eq(s, self.slot));
        if matches!(*self.slot.turn.borrow(), Turn::Lead) {
            self.group.hand_over();
        }
    }
}

/// The leader of a batch: however it ends, every other item of the batch gets a result and the
/// lead passes on.
struct Leading<'a, T, R> {
    group: &'a GroupCommit<T, R>,
    batch: &'a [Rc<Slot<T, R>>],
    me: &'a Rc<Slot<T, R>>,
    finished: bool,
    abandoned: fn() -> R,
}

impl<T, R> Drop for Leading<'_, T, R> {
    fn drop(&mut self) {
        if !self.finished {
            for s in self.batch.iter().filter(|s| !Rc::ptr_eq(s, self.me)) {
                s.set(Turn::Done((self.abandoned)()));
            }
        }
        self.group.hand_over();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    type Fut<'a> = Pin<Box<dyn Future<Output = String> + 'a>>;

    fn poll(f: &mut Fut<'_>) -> Poll<String> {
        f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    }

    /// A group whose batch runs record their items and wait until `open` is set.
    struct Harness {
        group: GroupCommit<String, String>,
        batches: RefCell<Vec<Vec<String>>>,
        open: Cell<bool>,
    }

    impl Harness {
        fn new(max_batch: usize) -> Self {
            Harness { group: GroupCommit::new(max_batch), batches: RefCell::default(), open: Cell::new(false) }
        }

        fn submit(&self, item: &str) -> Fut<'_> {
            let (batches, open) = (&self.batches, &self.open);
            Box::pin(self.group.submit(
                item.to_string(),
                move |items: Vec<String>| async move {
                    batches.borrow_mut().push(items.clone());
                    std::future::poll_fn(|_| if open.get() { Poll::Ready(()) } else { Poll::Pending }).await;
                    items.into_iter().map(|i| format!("{i}!")).collect()
                },
                || "abandoned".to_string(),
            ))
        }

        /// `a` leading a batch in flight, and `rest` queued behind it.
        fn queue_behind_a_leader<'h>(&'h self, rest: &[&str]) -> (Fut<'h>, Vec<Fut<'h>>) {
            let mut a = self.submit("a");
            assert!(poll(&mut a).is_pending(), "a leads a batch of one, in flight");
            let mut queued: Vec<Fut<'h>> = rest.iter().map(|i| self.submit(i)).collect();
            for f in &mut queued {
                assert!(poll(f).is_pending());
            }
            (a, queued)
        }
    }

    #[test]
    fn items_arriving_during_a_batch_share_the_next_one_led_by_the_first_of_them() {
        let h = Harness::new(8);
        let (mut a, mut rest) = h.queue_behind_a_leader(&["b", "c"]);
        assert_eq!(h.group.queued(), 2);
        h.open.set(true);
        assert_eq!(poll(&mut a), Poll::Ready("a!".into()));
        assert!(poll(&mut rest[1]).is_pending(), "c waits for b's batch");
        assert_eq!(poll(&mut rest[0]), Poll::Ready("b!".into()), "b leads b and c");
        assert_eq!(poll(&mut rest[1]), Poll::Ready("c!".into()));
        assert_eq!(*h.batches.borrow(), [vec!["a".to_string()], vec!["b".into(), "c".into()]]);
        assert_eq!(poll(&mut h.submit("d")), Poll::Ready("d!".into()), "the lead was given back: d leads at once");
    }

    #[test]
    fn batches_are_bounded() {
        let h = Harness::new(2);
        let (mut a, mut rest) = h.queue_behind_a_leader(&["b", "c", "d"]);
        h.open.set(true);
        assert_eq!(poll(&mut a), Poll::Ready("a!".into()));
        for (f, want) in rest.iter_mut().zip(["b!", "c!", "d!"]) {
            assert_eq!(poll(f), Poll::Ready(want.into()));
        }
        assert_eq!(h.batches.borrow().iter().map(Vec::len).collect::<Vec<_>>(), [1, 2, 1]);
    }

    #[test]
    fn a_leader_dropped_mid_batch_abandons_its_batch_and_passes_the_lead_on() {
        let h = Harness::new(8);
        let (a, mut rest) = h.queue_behind_a_leader(&["b", "c"]);
        drop(a);
        assert!(poll(&mut rest[1]).is_pending());
        assert!(poll(&mut rest[0]).is_pending(), "b took the lead: its batch of b and c is in flight");
        drop(rest.remove(0));
        assert_eq!(poll(&mut rest[0]), Poll::Ready("abandoned".into()));
        h.open.set(true);
        assert_eq!(poll(&mut h.submit("d")), Poll::Ready("d!".into()), "nobody is left leading");
    }

    #[test]
    fn a_waiter_dropped_in_the_queue_leaves_it_and_passes_on_a_lead_it_was_given() {
        let h = Harness::new(8);
        let (mut a, mut rest) = h.queue_behind_a_leader(&["b", "c", "d"]);
        drop(rest.remove(1));
        assert_eq!(h.group.queued(), 2, "c left the queue");
        h.open.set(true);
        assert_eq!(poll(&mut a), Poll::Ready("a!".into()));
        drop(rest.remove(0));
        assert_eq!(poll(&mut rest[0]), Poll::Ready("d!".into()), "b's lead passed to d");
        assert_eq!(h.batches.borrow().last().unwrap(), &vec!["d".to_string()]);
    }
}
