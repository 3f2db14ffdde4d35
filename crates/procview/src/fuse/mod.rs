//! husk's own FUSE protocol code, written from the kernel ABI (`include/uapi/linux/fuse.h`).
//!
//! Why not a FUSE crate: the server must be replaced while containers keep their mounts.
//! - A new worker process takes over the `/dev/fuse` descriptor of a connection that was
//!   INIT-ed long ago by another process; common session code refuses requests before it has
//!   seen INIT itself.
//! - A worker killed mid-request leaves requests the kernel counts as read but unanswered; the
//!   new worker writes `FUSE_NOTIFY_RESEND` (kernel 6.9+) so the kernel queues them again
//!   (with `FUSE_UNIQUE_RESEND` set in their unique).
//! - Node ids handed to the kernel must stay valid across the takeover, so the node table is
//!   ours and persisted (see [`crate::nodes`]).
//!
//! Requests are parsed by hand from little-endian bytes ([`abi::Reader`]) and replies are
//! built the same way ([`abi::Writer`]), so this module needs no `unsafe`.

pub mod abi;
pub mod session;
