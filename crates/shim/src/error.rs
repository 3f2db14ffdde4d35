//! ttrpc statuses with the cause: containerd turns the code into its errdefs kind (not found,
//! already exists, failed precondition...) and shows the message.

use containerd_shim_protos::ttrpc::{self, Code};

pub fn status(code: Code, msg: impl Into<String>) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, msg.into()))
}

pub fn not_found(what: impl std::fmt::Display) -> ttrpc::Error {
    status(Code::NOT_FOUND, format!("{what}: not found"))
}

pub fn invalid(msg: impl Into<String>) -> ttrpc::Error {
    status(Code::INVALID_ARGUMENT, msg)
}

pub fn precondition(msg: impl Into<String>) -> ttrpc::Error {
    status(Code::FAILED_PRECONDITION, msg)
}

/// A library error as a status of the matching code, with the library's message.
pub fn lib(e: libcontainer::Error) -> ttrpc::Error {
    use libcontainer::Error as E;
    let code = match &e {
        E::NotFound(_) => Code::NOT_FOUND,
        E::AlreadyExists(_) => Code::ALREADY_EXISTS,
        // containerd maps "not running" on kill to "process already finished".
        E::NotRunning => Code::NOT_FOUND,
        E::WrongState { .. } => Code::FAILED_PRECONDITION,
        E::InvalidId { .. }
        | E::InvalidArgument(_)
        | E::Config { .. }
        | E::InvalidConfig { .. } => Code::INVALID_ARGUMENT,
        E::Unsupported { .. } => Code::UNIMPLEMENTED,
        _ => Code::UNKNOWN,
    };
    status(code, e.to_string())
}
