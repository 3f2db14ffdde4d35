//! Warnings and lifecycle events, delivered to a handler each [`Runtime`](crate::Runtime)
//! owns (`Runtime::with_handler`): two runtimes in one process never see each other's.
//! Warnings are what the runtime-spec says to warn about rather than fail on (a resource the
//! kernel ignores, a failed poststop hook); without a handler they go to stderr.

use std::sync::Arc;

/// Something a runtime reports besides the results of its calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice<'a> {
    /// A warning about container `id`.
    Warning {
        /// The container.
        id: &'a str,
        /// The warning, one line.
        msg: &'a str,
    },
    /// Container `id` was created; its init (`pid`) waits for `start`.
    Created {
        /// The container.
        id: &'a str,
        /// Its init.
        pid: i32,
    },
    /// Container `id` was started.
    Started {
        /// The container.
        id: &'a str,
        /// Its init.
        pid: i32,
    },
    /// A process was executed in container `id`.
    Exec {
        /// The container.
        id: &'a str,
        /// The new process.
        pid: i32,
    },
    /// A signal was sent to container `id` (`all`: to every process of it).
    Signaled {
        /// The container.
        id: &'a str,
        /// The signal.
        signal: i32,
        /// To every process, not only the init.
        all: bool,
    },
    /// Container `id` was deleted.
    Deleted {
        /// The container.
        id: &'a str,
    },
}

/// The function a runtime calls for each notice.
pub(crate) type HandlerFn = dyn Fn(&Notice<'_>) + Send + Sync;

/// A runtime's handler; the default writes warnings to stderr and drops events.
#[derive(Clone, Default)]
pub(crate) struct Handler(Option<Arc<HandlerFn>>);

impl Handler {
    pub(crate) fn new(f: Arc<HandlerFn>) -> Handler {
        Handler(Some(f))
    }

    pub(crate) fn emit(&self, n: Notice<'_>) {
        match (&self.0, n) {
            (Some(f), n) => f(&n),
            (None, Notice::Warning { msg, .. }) => eprintln!("warning: {msg}"),
            (None, _) => {}
        }
    }

    pub(crate) fn warn(&self, id: &str, msg: &str) {
        self.emit(Notice::Warning { id, msg });
    }
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Handler(caller's)"
        } else {
            "Handler(stderr)"
        })
    }
}
