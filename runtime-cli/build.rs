//! Embeds the git commit in `husk --version` (HUSK_COMMIT), "unknown" without git.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=HUSK_COMMIT");
    let commit = std::env::var("HUSK_COMMIT")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| git(&["rev-parse", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=HUSK_COMMIT={commit}");
    // Rebuild when HEAD moves: HEAD itself, the branch it names, packed refs.
    // (Only files that exist: a missing one would rerun this script on every build.)
    let watch = |path: String| {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    };
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        watch(format!("{git_dir}/HEAD"));
        if let Some(common) = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]) {
            if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
                watch(format!("{common}/{branch}"));
            }
            watch(format!("{common}/packed-refs"));
        }
    }
    // scripts/build links with hot.order (--symbol-ordering-file): relink when it changes.
    println!("cargo:rerun-if-changed=hot.order");
    println!("cargo:rerun-if-changed=build.rs");
}
