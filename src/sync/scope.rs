//! `Scope`: the owner that the tasks of a component run under (both builds).
//!
//! Whatever a component starts, it owns: a task spawned through its `Scope`
//! runs under a child of the component's reactive owner and is cancelled
//! when the component is cleaned up (`spawn_local_scoped_with_cancellation`),
//! so no task can touch the component's signals after it is gone. Tasks
//! should still read signals with the `try_` accessors: a task may be
//! between two polls when its component goes away.

use leptos::prelude::Owner;
use std::future::Future;

#[derive(Clone)]
pub struct Scope(Option<Owner>);

impl Scope {
    /// The scope of the component being built.
    pub fn current() -> Self {
        Scope(Owner::current())
    }

    /// Runs `task` until it ends or the scope's component is cleaned up.
    pub fn spawn(&self, task: impl Future<Output = ()> + 'static) {
        match &self.0 {
            Some(owner) => {
                // One child owner per task: its cancellation hook goes away
                // with the task instead of piling up on the component.
                owner
                    .child()
                    .with(|| leptos::task::spawn_local_scoped_with_cancellation(task));
            }
            None => {
                tracing::warn!("a task was started outside any component; it is not cancelled");
                leptos::task::spawn_local(task);
            }
        }
    }
}
