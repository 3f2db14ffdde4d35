//! The differential oracle (docs/oracle.md): the committed corpus of what runc 1.5.1 did,
//! replayed against husk. Every case must match runc or be listed, with its reason, under
//! "Kept differences" in docs/oracle.md; a listed case that matches again fails too, so the
//! list stays true.
//!
//! `scripts/oracle record RUNC` re-records (ORACLE_RECORD=1 with runc as HUSK_BIN);
//! `ORACLE_REPORT=FILE` writes every difference found to FILE.

use integration::oracle::*;
use integration::*;

/// The first line of `HUSK_BIN --version`.
fn runc_version() -> String {
    let out = std::process::Command::new(husk_bin())
        .arg("--version")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn threads() -> usize {
    std::env::var("ORACLE_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2)
}

fn recorded() -> Vec<Recorded> {
    load_corpus()
        .into_iter()
        .flat_map(|(c, file)| {
            assert!(
                c.recorded_with.starts_with("runc version 1.5."),
                "{file}.json: recorded with {}",
                c.recorded_with
            );
            assert_eq!(c.seed, SEED, "{file}.json");
            for r in &c.cases {
                assert_eq!(
                    group(&r.case.name),
                    file,
                    "{} is in {file}.json",
                    r.case.name
                );
            }
            c.cases
        })
        .collect()
}

#[test]
fn corpus_is_current() {
    let corpus = recorded();
    let generated = cases(SEED);
    let recorded: Vec<&Case> = corpus.iter().map(|r| &r.case).collect();
    let stale: Vec<&str> = generated
        .iter()
        .filter(|c| !recorded.contains(c))
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        stale.is_empty() && generated.len() == recorded.len(),
        "the corpus was recorded from other cases than the generator makes now \
         ({} generated, {} recorded; new or changed: {stale:?}): re-record with \
         `scripts/oracle record RUNC`",
        generated.len(),
        recorded.len()
    );
}

#[test]
fn replay_matches_runc() {
    if std::env::var_os("ORACLE_RECORD").is_some() {
        return;
    }
    if is_runc() && !runc_version().starts_with("runc version 1.5.") {
        eprintln!(
            "SKIPPED for {}: the corpus is runc 1.5's behaviour",
            runc_version()
        );
        return;
    }
    fixed_rlimits();
    let corpus = recorded();
    let kept = kept_differences();
    let only = std::env::var("ORACLE_ONLY").ok();
    let todo: Vec<&Recorded> = corpus
        .iter()
        .filter(|r| {
            only.as_ref()
                .is_none_or(|o| r.case.name.contains(o.as_str()))
        })
        .collect();
    let results = par_map(&todo, threads(), |r| {
        let husk = run_case(&r.case);
        compare(&r.case, &r.runc, &husk)
    });
    let mut report = String::new();
    let mut unexplained = Vec::new();
    let mut differing = 0;
    for (r, diffs) in todo.iter().zip(&results) {
        let is_kept = kept.iter().any(|(k, _)| *k == r.case.name);
        if diffs.is_empty() {
            if is_kept && !is_runc() {
                unexplained.push(format!(
                    "{}: listed as a kept difference but now matches runc: take it out of \
                     docs/oracle.md",
                    r.case.name
                ));
            }
            continue;
        }
        differing += 1;
        report += &format!("## {}\n{}\n\n", r.case.name, diffs.join("\n"));
        if !is_kept {
            unexplained.push(format!("{}:\n{}", r.case.name, diffs.join("\n")));
        }
    }
    if let Ok(path) = std::env::var("ORACLE_REPORT") {
        std::fs::write(path, &report).unwrap();
    }
    eprintln!(
        "oracle: {} cases replayed, {} match runc, {differing} differ ({} kept on purpose)",
        todo.len(),
        todo.len() - differing,
        differing
            - unexplained
                .iter()
                .filter(|u| !u.contains("now matches"))
                .count()
    );
    assert!(
        unexplained.is_empty(),
        "{} unexplained difference(s) from runc 1.5.1:\n\n{}",
        unexplained.len(),
        unexplained.join("\n\n")
    );
}

/// Records what runc does: every case whose name contains ORACLE_ONLY (all without it), and
/// every case without a current recording; the other recordings are kept.
#[test]
fn record() {
    if std::env::var_os("ORACLE_RECORD").is_none() {
        return;
    }
    assert!(is_runc(), "recording needs runc 1.5 as HUSK_BIN");
    fixed_rlimits();
    let version = runc_version();
    let only = std::env::var("ORACLE_ONLY").ok();
    let old = if corpus_dir().exists() {
        recorded()
    } else {
        Vec::new()
    };
    let all = cases(SEED);
    let todo: Vec<&Case> = all
        .iter()
        .filter(|c| {
            only.as_ref().is_none_or(|o| c.name.contains(o.as_str()))
                || !old.iter().any(|r| r.case == **c)
        })
        .collect();
    let seen = par_map(&todo, threads(), |c| run_case(c));
    let mut bad = Vec::new();
    let mut fresh = todo.iter().zip(seen);
    let mut cases = Vec::new();
    for c in &all {
        let runc = if todo.iter().any(|t| std::ptr::eq(*t, c)) {
            let (_, runc) = fresh.next().unwrap();
            if let Err(e) = check_recording(c, &runc) {
                bad.push(e);
            }
            runc
        } else {
            old.iter().find(|r| r.case == *c).unwrap().runc.clone()
        };
        cases.push(Recorded {
            case: c.clone(),
            runc,
        });
    }
    assert!(
        bad.is_empty(),
        "cases that do not fit runc:\n{}",
        bad.join("\n")
    );
    save_corpus(&version, cases);
    eprintln!(
        "oracle: recorded {} of {} cases into {}",
        todo.len(),
        all.len(),
        corpus_dir().display()
    );
}
