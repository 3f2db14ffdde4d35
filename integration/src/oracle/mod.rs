//! The differential oracle: cases (a bundle and a few command lines) run under runc 1.5.1 once,
//! recorded with what runc did into `integration/oracle/corpus.json`, then replayed against
//! husk in CI and compared step by step (docs/oracle.md).
//!
//! * [`Case`]: a JSON merge patch over [`default_config`], files for the bundle, and steps.
//! * [`Seen`]: what one step did: exit status, its output normalized (text, JSON, or only the
//!   JSON's shape), the error line's message and the warnings.
//! * [`cases`]: the generator; the corpus holds its output, so the cases replayed are exactly
//!   the cases recorded (`corpus_is_current` in tests/oracle.rs checks they agree).

use super::*;
use serde::{Deserialize, Serialize};

mod cases;
mod cases_config;
mod cases_env;
mod cases_hooks;
mod cases_mounts;
mod cases_ops;
pub use cases::cases;

/// How a step's stdout is compared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Observe {
    /// Only the exit status (and the error phrase, if the step names one).
    #[default]
    Exit,
    /// The normalized text.
    Text,
    /// The normalized JSON value.
    Json,
    /// The JSON's shape: object keys and value types, not the values (stats).
    Keys,
}

/// One command line, or a pseudo-step: `@wait STATUS` (poll `state` until the status, 10 s),
/// `@sleep MS`, `@cat PATH` (a file's text is the output), `@write PATH TEXT`, `@symlink
/// TARGET LINK`, `@chmod OCTAL PATH`, and `@raw
/// ARGS...` (a command line without the `--root` flag).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Arguments after `--root R --log-format json`; `{id}`, `{bundle}`, `{root}` and `{work}`
    /// are replaced.
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub observe: Observe,
    /// A phrase the error message must contain (checked against runc when recording).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phrase: Option<String>,
    /// When set, whether some warning contains this phrase is compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<String>,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A file written into the bundle before the first step (`rootfs/...` for the container's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BundleFile {
    pub path: String,
    pub content: String,
    #[serde(default = "mode_644")]
    pub mode: u32,
}

fn mode_644() -> u32 {
    0o644
}

/// One case: the bundle (a merge patch over the default config, with `{bundle}` replaced in
/// its strings, plus files) and the steps run against it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub name: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub patch: Value,
    /// The whole config.json as raw text instead of the patched default (malformed input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_config: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<BundleFile>,
    pub steps: Vec<Step>,
}

/// What one step did, normalized so runc's and husk's runs compare.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    pub exit: i32,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub out: Value,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A recorded case: the case and what runc did at each step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Recorded {
    #[serde(flatten)]
    pub case: Case,
    pub runc: Vec<Seen>,
}

/// One file of the committed corpus: the cases of one group (the case name's first part).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Corpus {
    /// `runc --version`'s first line at recording.
    pub recorded_with: String,
    pub seed: u64,
    pub cases: Vec<Recorded>,
}

/// The seed CI replays.
pub const SEED: u64 = 1;

/// The corpus directory: one `GROUP.json` per group of cases (`env`, `hooks`, ...).
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oracle")
}

/// A case's group: its name up to the first `/`.
pub fn group(name: &str) -> &str {
    name.split('/').next().unwrap_or(name)
}

/// Every recorded case, from every file of the corpus.
pub fn load_corpus() -> Vec<(Corpus, String)> {
    let mut files: Vec<PathBuf> = fs::read_dir(corpus_dir())
        .expect("read integration/oracle/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = fs::read_to_string(&p).unwrap();
            let c: Corpus = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("parse {}: {e}", p.display()));
            (c, p.file_stem().unwrap().to_string_lossy().to_string())
        })
        .collect()
}

/// Writes the recordings, one file per group.
pub fn save_corpus(recorded_with: &str, cases: Vec<Recorded>) {
    let mut groups: std::collections::BTreeMap<String, Vec<Recorded>> = Default::default();
    for r in cases {
        groups
            .entry(group(&r.case.name).to_string())
            .or_default()
            .push(r);
    }
    fs::create_dir_all(corpus_dir()).unwrap();
    for (g, cases) in groups {
        let corpus = Corpus {
            recorded_with: recorded_with.to_string(),
            seed: SEED,
            cases,
        };
        let mut text = serde_json::to_string_pretty(&corpus).unwrap();
        text.push('\n');
        fs::write(corpus_dir().join(format!("{g}.json")), text).unwrap();
    }
}

/// Sets this process's resource limits to fixed values, so the limits a container inherits
/// (those its config leaves out, printed by probes of /proc/self/limits) are the same on the
/// machine that recorded and on the one that replays, whatever its shell or memory size.
pub fn fixed_rlimits() {
    const INF: u64 = libc::RLIM_INFINITY;
    let limits = [
        (libc::RLIMIT_CPU, INF, INF),
        (libc::RLIMIT_FSIZE, INF, INF),
        (libc::RLIMIT_DATA, INF, INF),
        (libc::RLIMIT_STACK, 8 << 20, INF),
        (libc::RLIMIT_CORE, 0, INF),
        (libc::RLIMIT_RSS, INF, INF),
        (libc::RLIMIT_NPROC, 65536, 65536),
        (libc::RLIMIT_NOFILE, 8192, 8192),
        (libc::RLIMIT_MEMLOCK, 8 << 20, 8 << 20),
        (libc::RLIMIT_AS, INF, INF),
        (libc::RLIMIT_LOCKS, INF, INF),
        (libc::RLIMIT_SIGPENDING, 65536, 65536),
        (libc::RLIMIT_MSGQUEUE, 819200, 819200),
        (libc::RLIMIT_NICE, 0, 0),
        (libc::RLIMIT_RTPRIO, 0, 0),
        (libc::RLIMIT_RTTIME, INF, INF),
    ];
    for (res, soft, hard) in limits {
        let l = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: plain syscall on a valid struct; as root any value may be set.
        let r = unsafe { libc::setrlimit(res, &l) };
        assert_eq!(r, 0, "setrlimit {res}: {}", std::io::Error::last_os_error());
    }
}

/// Merges `patch` into `target` (RFC 7386: null removes a key, objects merge, the rest
/// replaces).
pub fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn substitute(v: &mut Value, from: &str, to: &str) {
    match v {
        Value::String(s) => *s = s.replace(from, to),
        Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, from, to)),
        Value::Object(o) => o.values_mut().for_each(|x| substitute(x, from, to)),
        _ => {}
    }
}

/// Runs a case with the binary under test (its own `--root`, a fresh bundle) and returns what
/// each step did. Whatever it created is deleted when it returns.
pub fn run_case(case: &Case) -> Vec<Seen> {
    let rt = Runtime::new();
    let b = Bundle::new(&["true"]);
    let bundle = b.path_str();
    let id = format!("o{}-{}", std::process::id(), unique());
    rt.track(&id);
    let mut config = b.config.clone();
    merge(&mut config, &case.patch);
    substitute(&mut config, "{bundle}", &bundle);
    let text = match &case.raw_config {
        Some(raw) => raw.clone(),
        None => serde_json::to_string_pretty(&config).unwrap(),
    };
    fs::write(b.path().join("config.json"), text).unwrap();
    for f in &case.files {
        let p = b.path().join(&f.path);
        if let Some(dir) = p.parent() {
            fs::create_dir_all(dir).unwrap();
        }
        let _ = fs::remove_file(&p);
        fs::write(&p, f.content.replace("{bundle}", &bundle)).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(f.mode)).unwrap();
    }
    let names = Names {
        id: id.clone(),
        bundle: bundle.clone(),
        root: rt.root_str(),
        work: rt.work().to_string_lossy().to_string(),
    };
    let mut seen = Vec::new();
    for step in &case.steps {
        let argv: Vec<String> = step
            .argv
            .iter()
            .map(|a| {
                a.replace("{id}", &id)
                    .replace("{bundle}", &bundle)
                    .replace("{root}", &names.root)
                    .replace("{work}", &names.work)
            })
            .collect();
        let json = ["--log-format".to_string(), "json".to_string()];
        seen.push(match argv[0].as_str() {
            "@wait" => pseudo_wait(&rt, &id, &argv[1]),
            "@sleep" => {
                std::thread::sleep(Duration::from_millis(argv[1].parse().unwrap()));
                Seen::exit(0)
            }
            "@cat" => {
                let mut s = Seen::exit(0);
                match fs::read_to_string(&argv[1]) {
                    Ok(t) => s.out = Value::String(names.text(&t)),
                    Err(_) => s.exit = 1,
                }
                s
            }
            "@write" => {
                let ok = fs::write(&argv[1], &argv[2]).is_ok();
                Seen::exit(if ok { 0 } else { 1 })
            }
            "@symlink" => {
                let link = Path::new(&argv[2]);
                let _ = fs::remove_dir(link);
                Seen::exit(if symlink(&argv[1], link).is_ok() {
                    0
                } else {
                    1
                })
            }
            "@chmod" => {
                let mode = u32::from_str_radix(&argv[1], 8).unwrap();
                let ok = fs::set_permissions(&argv[2], fs::Permissions::from_mode(mode)).is_ok();
                Seen::exit(if ok { 0 } else { 1 })
            }
            "@raw" => {
                let full: Vec<&String> = json.iter().chain(&argv[1..]).collect();
                bounded(rt.cmd_noroot(&full), step, &names)
            }
            _ => {
                let full: Vec<&String> = json.iter().chain(&argv).collect();
                bounded(rt.cmd(&full), step, &names)
            }
        });
    }
    rt.cleanup();
    // What a runtime could not delete (runc cannot, when state.json is corrupt) is not left to
    // the next cases: its processes are killed and its cgroups removed.
    for (pid, _) in processes_for(&id) {
        // SAFETY: plain syscall.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let mut dirs = cgroup_dirs_for(&id);
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        for _ in 0..50 {
            if fs::remove_dir(&d).is_ok() || !d.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    seen
}

impl Seen {
    fn exit(code: i32) -> Seen {
        Seen {
            exit: code,
            out: Value::Null,
            error: String::new(),
            warnings: Vec::new(),
        }
    }
}

/// Runs a command for at most 20 s: a hang is an observation (exit -1), not a panic.
fn bounded(cmd: Cmd, step: &Step, names: &Names) -> Seen {
    let (mut child, argv, out, err) = cmd.spawn();
    let status = wait_bounded(&mut child, Duration::from_secs(20));
    let stdout = fs::read_to_string(&out).unwrap_or_default();
    let stderr = fs::read_to_string(&err).unwrap_or_default();
    let _ = fs::remove_file(&out);
    let _ = fs::remove_file(&err);
    match status {
        Some(status) => observe(
            step,
            &Output {
                argv,
                stdout,
                stderr,
                status,
            },
            names,
        ),
        None => Seen {
            exit: -1,
            out: Value::Null,
            error: "timed out after 20 s".into(),
            warnings: Vec::new(),
        },
    }
}

fn pseudo_wait(rt: &Runtime, id: &str, want: &str) -> Seen {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let o = rt.exec(&["state", id]);
        let status = serde_json::from_str::<Value>(&o.stdout)
            .ok()
            .and_then(|v| v["status"].as_str().map(str::to_string));
        if status.as_deref() == Some(want) {
            return Seen::exit(0);
        }
        if Instant::now() > end {
            return Seen::exit(1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The names a run's output contains that differ from run to run.
struct Names {
    id: String,
    bundle: String,
    root: String,
    work: String,
}

impl Names {
    fn text(&self, s: &str) -> String {
        // The harness's own directory (poststop hooks of `delete` run there, as runc's do)
        // differs between checkouts.
        let cwd = std::env::current_dir().unwrap_or_default();
        let cwd = cwd.to_string_lossy();
        let s = if cwd.len() > 1 {
            s.replace(cwd.as_ref(), "<cwd>")
        } else {
            s.to_string()
        };
        s.replace(&self.bundle, "<bundle>")
            .replace(&self.root, "<root>")
            .replace(&self.work, "<work>")
            .replace(&self.id, "<id>")
            .replace("\r\n", "\n")
    }
}

fn observe(step: &Step, out: &Output, names: &Names) -> Seen {
    let exit = out.status.code().unwrap_or_else(|| {
        128 + out.status.signal().unwrap_or(0) // the runtime itself died of a signal
    });
    let mut error = String::new();
    let mut warnings = Vec::new();
    for line in out.stderr.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let msg = names.text(v["msg"].as_str().unwrap_or_default());
        match v["level"].as_str() {
            Some("error") => error = msg,
            Some("warning") => warnings.push(msg),
            _ => {}
        }
    }
    let stdout = names.text(&out.stdout);
    let out_value = match step.observe {
        Observe::Exit => Value::Null,
        Observe::Text => Value::String(stdout),
        Observe::Json | Observe::Keys => match serde_json::from_str::<Value>(&stdout) {
            Ok(mut v) => {
                // `ps --format json`: host pids, of which only the count compares.
                if let Some(a) = v.as_array_mut() {
                    for x in a.iter_mut().filter(|x| x.is_number()) {
                        *x = json!(1);
                    }
                }
                normalize_json(&mut v);
                if step.observe == Observe::Keys {
                    shape(&v)
                } else {
                    v
                }
            }
            Err(_) => Value::String(format!("<not JSON> {stdout}")),
        },
    };
    Seen {
        exit,
        out: out_value,
        error,
        warnings,
    }
}

/// Values that differ between any two runs: pids, times, cgroup paths. Keys are kept.
fn normalize_json(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                match k.as_str() {
                    "pid" if x.as_i64().is_some_and(|p| p > 0) => *x = json!(1),
                    "created" if x.is_string() => *x = json!("<time>"),
                    // Which page sizes `events --stats` lists depends on the host, not the
                    // runtime: whether hugetlb is a v1 hierarchy or delegated in the unified
                    // root on a hybrid host (a test that enabled it leaves it on).
                    "hugetlb" if x.is_object() => *x = json!({}),
                    _ => normalize_json(x),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalize_json),
        _ => {}
    }
}

/// A JSON value's shape: objects keep their keys, everything else becomes its type's name;
/// arrays become the set of their elements' shapes.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), shape(x))).collect()),
        Value::Array(a) => {
            let mut shapes: Vec<Value> = Vec::new();
            for s in a.iter().map(shape) {
                if !shapes.contains(&s) {
                    shapes.push(s);
                }
            }
            Value::Array(shapes)
        }
        Value::Null => json!("null"),
        Value::Bool(_) => json!("bool"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
    }
}

/// How what husk did differs from what runc did, one line per difference (empty: same).
pub fn compare(case: &Case, runc: &[Seen], husk: &[Seen]) -> Vec<String> {
    let mut diffs = Vec::new();
    for (i, (step, (r, h))) in case.steps.iter().zip(runc.iter().zip(husk)).enumerate() {
        let at = format!("step {i} `{}`", step.argv.join(" "));
        if r.exit != h.exit {
            diffs.push(format!(
                "{at}: exit {} (runc {}); husk error {:?}, runc error {:?}",
                h.exit, r.exit, h.error, r.error
            ));
        }
        if r.out != h.out {
            diffs.push(format!("{at}: output\n{}", line_diff(&h.out, &r.out)));
        }
        if let Some(p) = &step.phrase {
            if !h.error.to_lowercase().contains(&p.to_lowercase()) {
                diffs.push(format!("{at}: error {:?} lacks {p:?}", h.error));
            }
        }
        if let Some(p) = &step.warn {
            let has = |w: &[String]| w.iter().any(|m| m.contains(p.as_str()));
            if has(&r.warnings) != has(&h.warnings) {
                diffs.push(format!(
                    "{at}: warning {p:?}: husk {:?}, runc {:?}",
                    h.warnings, r.warnings
                ));
            }
        }
    }
    diffs
}

/// Two outputs side by side; for multi-line texts, only the lines that differ.
fn line_diff(husk: &Value, runc: &Value) -> String {
    match (husk.as_str(), runc.as_str()) {
        (Some(h), Some(r)) if h.lines().count() > 3 || r.lines().count() > 3 => {
            let (hl, rl): (Vec<&str>, Vec<&str>) = (h.lines().collect(), r.lines().collect());
            let mut out = String::new();
            for l in hl.iter().filter(|l| !rl.contains(l)) {
                out += &format!("  husk only: {l}\n");
            }
            for l in rl.iter().filter(|l| !hl.contains(l)) {
                out += &format!("  runc only: {l}\n");
            }
            if out.is_empty() {
                out = format!("  same lines, other order:\n  husk: {h:?}\n  runc: {r:?}\n");
            }
            out.trim_end().to_string()
        }
        _ => format!("  husk: {husk}\n  runc: {runc}"),
    }
}

/// Checks a recording: each step's phrase is in runc's error, or the case is wrong.
pub fn check_recording(case: &Case, runc: &[Seen]) -> Result<(), String> {
    for (step, r) in case.steps.iter().zip(runc) {
        if let Some(p) = &step.phrase {
            if !r.error.to_lowercase().contains(&p.to_lowercase()) {
                return Err(format!(
                    "{}: runc's error {:?} lacks the phrase {p:?}",
                    case.name, r.error
                ));
            }
        }
    }
    Ok(())
}

/// The cases kept different on purpose: the first column of the table under "## Kept
/// differences" in docs/oracle.md, one case name (in backquotes) per row, and the reason.
pub fn kept_differences() -> Vec<(String, String)> {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/oracle.md");
    let text = fs::read_to_string(doc).expect("read docs/oracle.md");
    let mut kept = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("## ") {
            inside = line.trim() == "## Kept differences";
            continue;
        }
        let Some(row) = line.strip_prefix("| `") else {
            continue;
        };
        if inside {
            if let Some((name, rest)) = row.split_once('`') {
                let reason = rest.trim_start_matches(" |").trim_end_matches('|').trim();
                kept.push((name.to_string(), reason.to_string()));
            }
        }
    }
    kept
}

/// Runs `f` over `items` on `threads` worker threads, results in order.
pub fn par_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= items.len() {
                    break;
                }
                let r = f(&items[i]);
                results.lock().unwrap()[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(Option::unwrap)
        .collect()
}
