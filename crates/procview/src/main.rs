//! `husk-procview`: the resource view's FUSE server (see the crate docs).

fn main() {
    eprintln!("husk-procview: not built yet");
    std::process::exit(1);
}
