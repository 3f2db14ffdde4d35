//! Task events forwarded to containerd over its ttrpc socket (`TTRPC_ADDRESS`), in order, from
//! one thread. A containerd that is restarting is retried until it is back (for up to
//! [`RETRY_FOR`]), so an exit while it was down still reaches it.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant, SystemTime};

use containerd_shim_protos::events::task as ev;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::MessageDyn;
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::topics;
use containerd_shim_protos::{Client, EventsClient};

const RETRY_FOR: Duration = Duration::from_secs(120);

/// One event, ready to send.
pub struct Event {
    topic: &'static str,
    any: Any,
    at: SystemTime,
}

/// A message as an Any whose type URL is the message's full name, as Go's typeurl registers
/// containerd's types (events, cgroup metrics).
pub fn any_of(m: &dyn MessageDyn) -> Any {
    let mut any = Any::new();
    any.type_url = m.descriptor_dyn().full_name().to_string();
    any.value = m.write_to_bytes_dyn().unwrap_or_default();
    any
}

fn pack(topic: &'static str, m: &dyn MessageDyn) -> Event {
    Event {
        topic,
        any: any_of(m),
        at: SystemTime::now(),
    }
}

pub fn create(e: ev::TaskCreate) -> Event {
    pack(topics::TASK_CREATE_EVENT_TOPIC, &e)
}
pub fn start(e: ev::TaskStart) -> Event {
    pack(topics::TASK_START_EVENT_TOPIC, &e)
}
pub fn exit(e: ev::TaskExit) -> Event {
    pack(topics::TASK_EXIT_EVENT_TOPIC, &e)
}
pub fn oom(e: ev::TaskOOM) -> Event {
    pack(topics::TASK_OOM_EVENT_TOPIC, &e)
}
pub fn delete(e: ev::TaskDelete) -> Event {
    pack(topics::TASK_DELETE_EVENT_TOPIC, &e)
}
pub fn exec_added(e: ev::TaskExecAdded) -> Event {
    pack(topics::TASK_EXEC_ADDED_EVENT_TOPIC, &e)
}
pub fn exec_started(e: ev::TaskExecStarted) -> Event {
    pack(topics::TASK_EXEC_STARTED_EVENT_TOPIC, &e)
}
pub fn paused(e: ev::TaskPaused) -> Event {
    pack(topics::TASK_PAUSED_EVENT_TOPIC, &e)
}
pub fn resumed(e: ev::TaskResumed) -> Event {
    pack(topics::TASK_RESUMED_EVENT_TOPIC, &e)
}
pub fn checkpointed(e: ev::TaskCheckpointed) -> Event {
    pack(topics::TASK_CHECKPOINTED_EVENT_TOPIC, &e)
}

/// Sends events to containerd from its own thread.
#[derive(Clone)]
pub struct Publisher {
    tx: Sender<Event>,
}

impl Publisher {
    /// A publisher to `ttrpc_address` (empty: events are dropped, for a shim run by hand).
    pub fn new(ttrpc_address: String, namespace: String) -> Publisher {
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("events".into())
            .spawn(move || forward_all(rx, &ttrpc_address, &namespace))
            .expect("starting the events thread");
        Publisher { tx }
    }

    pub fn publish(&self, e: Event) {
        let _ = self.tx.send(e);
    }
}

fn connect(addr: &str) -> Option<EventsClient> {
    let a = if addr.starts_with("unix://") {
        addr.to_string()
    } else {
        format!("unix://{addr}")
    };
    Client::connect(&a).ok().map(EventsClient::new)
}

fn forward_all(rx: Receiver<Event>, addr: &str, ns: &str) {
    let mut client: Option<EventsClient> = None;
    for e in rx {
        if addr.is_empty() {
            continue;
        }
        let mut req = ForwardRequest::new();
        let mut env = Envelope::new();
        env.timestamp = Some(crate::procs::timestamp(e.at)).into();
        env.namespace = ns.to_string();
        env.topic = e.topic.to_string();
        env.event = Some(e.any).into();
        req.envelope = Some(env).into();
        let deadline = Instant::now() + RETRY_FOR;
        let mut wait = Duration::from_millis(50);
        loop {
            if client.is_none() {
                client = connect(addr);
            }
            if let Some(c) = &client {
                let mut ctx = ttrpc_context();
                ctx.add("containerd-namespace-ttrpc".into(), ns.into());
                match c.forward(ctx, &req) {
                    Ok(_) => break,
                    Err(err) => {
                        eprintln!("forwarding {}: {err}", req.envelope.topic);
                        client = None;
                    }
                }
            }
            if Instant::now() >= deadline {
                eprintln!(
                    "dropping event {}: containerd unreachable",
                    req.envelope.topic
                );
                break;
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_secs(2));
        }
    }
}

fn ttrpc_context() -> containerd_shim_protos::ttrpc::context::Context {
    containerd_shim_protos::ttrpc::context::with_timeout(Duration::from_secs(5).as_nanos() as i64)
}
