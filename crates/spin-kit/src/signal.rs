//! A one-shot wake-up from one request to another inside the same component instance.
//!
//! An instance runs its concurrent requests on one thread, each as its own component-model task.
//! spin-sdk's async runtime cannot wake one task from another with a plain Rust waker (that needs
//! wit-bindgen's `inter-task-wakeup` feature, which in the version spin-sdk 7 uses traps as soon
//! as a task is woken by anything else: wit-bindgen PR #1638 fixed it later). So the waiting
//! task reads a component-model `stream<u8>` of its own, which the runtime can sleep on, and the
//! waking task drops the stream's writing end: the read completes and the waiter runs again.

/// The sending half: [`Sender::send`] (or dropping it) wakes the receiver, once.
pub struct Sender(imp::Sender);

/// The receiving half.
pub struct Receiver(imp::Receiver);

/// A new sender and receiver pair.
pub fn pair() -> (Sender, Receiver) {
    let (tx, rx) = imp::pair();
    (Sender(tx), Receiver(rx))
}

impl Sender {
    pub fn send(self) {
        self.0.send()
    }
}

impl Receiver {
    /// Returns once the sender has sent or was dropped; at once on every later call.
    pub async fn recv(&mut self) {
        self.0.recv().await
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use spin_sdk::wasip3::wit_bindgen::{StreamReader, StreamWriter};

    pub struct Sender(StreamWriter<u8>);
    pub struct Receiver(Option<StreamReader<u8>>);

    pub fn pair() -> (Sender, Receiver) {
        let (writer, reader) = spin_sdk::wasip3::wit_stream::new::<u8>();
        (Sender(writer), Receiver(Some(reader)))
    }

    impl Sender {
        pub fn send(self) {
            drop(self.0);
        }
    }

    impl Receiver {
        pub async fn recv(&mut self) {
            if let Some(mut reader) = self.0.take() {
                let _ = reader.next().await;
            }
        }
    }
}

/// Native builds (unit tests): a shared flag and a Rust waker.
#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::cell::RefCell;
    use std::future::poll_fn;
    use std::rc::Rc;
    use std::task::{Poll, Waker};

    type Shared = Rc<RefCell<(bool, Option<Waker>)>>;
    pub struct Sender(Shared);
    pub struct Receiver(Shared);

    pub fn pair() -> (Sender, Receiver) {
        let shared: Shared = Rc::default();
        (Sender(shared.clone()), Receiver(shared))
    }

    impl Sender {
        pub fn send(self) {}
    }

    impl Drop for Sender {
        fn drop(&mut self) {
            let mut s = self.0.borrow_mut();
            s.0 = true;
            if let Some(w) = s.1.take() {
                w.wake();
            }
        }
    }

    impl Receiver {
        pub async fn recv(&mut self) {
            poll_fn(|cx| {
                let mut s = self.0.borrow_mut();
                if s.0 {
                    Poll::Ready(())
                } else {
                    s.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};

    fn poll<F: Future>(f: std::pin::Pin<&mut F>) -> bool {
        f.poll(&mut Context::from_waker(Waker::noop())).is_ready()
    }

    #[test]
    fn a_receiver_waits_until_its_sender_sends_or_is_dropped() {
        let (tx, mut rx) = pair();
        let mut waiting = pin!(rx.recv());
        assert!(!poll(waiting.as_mut()));
        tx.send();
        assert!(poll(waiting.as_mut()));
        let (tx, mut rx2) = pair();
        drop(tx);
        let mut dropped = pin!(rx2.recv());
        assert!(poll(dropped.as_mut()));
    }
}
