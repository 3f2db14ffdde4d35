//! The case generator: a builder, the process cases (environment, user, capabilities,
//! rlimits, process fields), and the seeded random combinations. Mounts, cgroups, hooks and
//! bad input are in cases_config.rs; lifecycle, exec and update in cases_ops.rs.

use super::*;

/// Every case for `seed`, in a stable order with unique names.
pub fn cases(seed: u64) -> Vec<Case> {
    let mut all = Vec::new();
    env_cases(&mut all);
    process_cases(&mut all);
    cases_config::mount_cases(&mut all);
    cases_config::cgroup_cases(&mut all);
    cases_config::hook_cases(&mut all);
    cases_config::bad_input_cases(&mut all);
    cases_ops::lifecycle_cases(&mut all);
    cases_ops::exec_cases(&mut all);
    cases_ops::update_cases(&mut all);
    cases_env::more_cases(&mut all);
    cases_hooks::more_cases(&mut all);
    cases_mounts::more_cases(&mut all);
    random_cases(seed, &mut all);
    let mut names = std::collections::HashSet::new();
    for c in &all {
        assert!(names.insert(c.name.clone()), "duplicate case {}", c.name);
    }
    all
}

/// What a case's container prints about itself.
pub const STATUS: &str =
    "grep -E '^(Cap|NoNewPrivs|Uid|Gid|Groups|Umask|Seccomp:)' /proc/self/status";
pub const LIMITS: &str = "cat /proc/self/limits";
/// Mount point, mount options, fs type and super options of every mount (no ids, no sources).
pub const MOUNTS: &str =
    "awk '{for(i=7;$i!=\"-\";i++);print $5,$6,$(i+1),$(i+3)}' /proc/self/mountinfo";
pub const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `run --bundle B ID`.
pub fn run() -> Vec<&'static str> {
    vec!["run", "--bundle", "{bundle}", "{id}"]
}

/// A case under construction.
pub struct B {
    case: Case,
}

pub fn case(name: &str) -> B {
    B {
        case: Case {
            name: name.to_string(),
            patch: Value::Null,
            raw_config: None,
            files: Vec::new(),
            steps: Vec::new(),
        },
    }
}

/// Merges two patches, keeping nulls (they delete when the patch is applied).
fn accumulate(acc: &mut Value, p: &Value) {
    match (acc, p) {
        (Value::Object(a), Value::Object(p)) => {
            for (k, v) in p {
                accumulate(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (a, p) => *a = p.clone(),
    }
}

impl B {
    pub fn patch(mut self, p: Value) -> Self {
        accumulate(&mut self.case.patch, &p);
        self
    }
    /// The container runs `sh -c SCRIPT`.
    pub fn sh(self, script: &str) -> Self {
        self.patch(json!({"process": {"args": ["sh", "-c", script]}}))
    }
    pub fn args(self, args: &[&str]) -> Self {
        self.patch(json!({"process": {"args": args}}))
    }
    pub fn raw(mut self, text: &str) -> Self {
        self.case.raw_config = Some(text.to_string());
        self
    }
    pub fn file(mut self, path: &str, content: &str) -> Self {
        self.case.files.push(BundleFile {
            path: path.into(),
            content: content.into(),
            mode: 0o644,
        });
        self
    }
    pub fn file_mode(mut self, path: &str, content: &str, mode: u32) -> Self {
        self.case.files.push(BundleFile {
            path: path.into(),
            content: content.into(),
            mode,
        });
        self
    }
    pub fn step_as(mut self, argv: &[&str], observe: Observe) -> Self {
        self.case.steps.push(Step {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            observe,
            phrase: None,
            warn: None,
        });
        self
    }
    pub fn step(self, argv: &[&str]) -> Self {
        self.step_as(argv, Observe::Exit)
    }
    pub fn text(self, argv: &[&str]) -> Self {
        self.step_as(argv, Observe::Text)
    }
    pub fn json(self, argv: &[&str]) -> Self {
        self.step_as(argv, Observe::Json)
    }
    pub fn keys(self, argv: &[&str]) -> Self {
        self.step_as(argv, Observe::Keys)
    }
    /// The last step's error must contain `phrase`.
    pub fn phrase(mut self, phrase: &str) -> Self {
        self.case.steps.last_mut().unwrap().phrase = Some(phrase.into());
        self
    }
    /// Whether the last step warns with `phrase` is compared.
    pub fn warn(mut self, phrase: &str) -> Self {
        self.case.steps.last_mut().unwrap().warn = Some(phrase.into());
        self
    }
    /// `run`, its output compared as text.
    pub fn run_text(self) -> Self {
        self.text(&run())
    }
    pub fn done(self) -> Case {
        self.case
    }
}

/// The mounts of the default config plus `extra`.
pub fn mounts_plus(extra: Value) -> Value {
    let mut m = default_config(&["true"])["mounts"]
        .as_array()
        .unwrap()
        .clone();
    m.extend(extra.as_array().unwrap().iter().cloned());
    Value::Array(m)
}

/// One `run` case per (name, `process` patch, probe script; empty: the patched args).
pub fn process_field_cases(all: &mut Vec<Case>, fields: &[(&str, Value, &str)]) {
    for (name, proc_patch, probe) in fields {
        let mut b = with_users(&format!("process/{name}")).patch(json!({ "process": proc_patch }));
        if !probe.is_empty() {
            b = b.sh(probe);
        }
        all.push(b.run_text().done());
    }
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:u:/home/user:/bin/sh\n\
                      nohome:x:1001:1001:n::/bin/sh\n";
const GROUP: &str = "root:x:0:\nuser:x:1000:\nextra:x:2000:user\n";

/// A case whose rootfs has users 1000 (home /home/user) and 1001 (empty home).
pub fn with_users(name: &str) -> B {
    case(name)
        .file("rootfs/etc/passwd", PASSWD)
        .file("rootfs/etc/group", GROUP)
}

fn env_cases(all: &mut Vec<Case>) {
    let envs: &[(&str, Value)] = &[
        ("default", json!([PATH, "TERM=xterm"])),
        ("dup-later-wins", json!([PATH, "A=1", "B=2", "A=3"])),
        ("home-set", json!([PATH, "HOME=/srv"])),
        ("home-empty", json!([PATH, "HOME="])),
        ("newline", json!([PATH, "A=line1\nline2"])),
        ("empty-value", json!([PATH, "A="])),
        ("equals-in-value", json!([PATH, "A=b=c"])),
        ("no-path", json!(["A=1"])),
        ("empty", json!([])),
    ];
    let users: &[(&str, Value)] = &[
        ("root", json!({"uid": 0, "gid": 0})),
        ("user", json!({"uid": 1000, "gid": 1000})),
        ("nohome", json!({"uid": 1001, "gid": 1001})),
        ("unlisted", json!({"uid": 4242, "gid": 4242})),
    ];
    for (en, env) in envs {
        for (un, user) in users {
            all.push(
                with_users(&format!("env/{en}/{un}"))
                    .args(&["env"])
                    .patch(json!({"process": {"env": env, "user": user}}))
                    .run_text()
                    .done(),
            );
        }
    }
    all.push(
        case("env/absent")
            .args(&["env"])
            .patch(json!({"process": {"env": null}}))
            .run_text()
            .done(),
    );
    all.push(
        case("env/entry-without-equals")
            .args(&["env"])
            .patch(json!({"process": {"env": [PATH, "FOO"]}}))
            .run_text()
            .done(),
    );
    all.push(
        case("env/empty-entry")
            .args(&["env"])
            .patch(json!({"process": {"env": [PATH, ""]}}))
            .run_text()
            .done(),
    );
    all.push(
        case("env/empty-name")
            .args(&["env"])
            .patch(json!({"process": {"env": [PATH, "=x"]}}))
            .run_text()
            .done(),
    );
}

fn process_cases(all: &mut Vec<Case>) {
    let fields: &[(&str, Value, &str)] = &[
        ("cwd-missing-dir", json!({"cwd": "/no/such/dir"}), "pwd"),
        ("cwd-relative", json!({"cwd": "tmp"}), "pwd"),
        ("cwd-absent", json!({"cwd": null}), "pwd"),
        ("cwd-file", json!({"cwd": "/etc/passwd"}), "pwd"),
        (
            "umask-077",
            json!({"user": {"uid": 0, "gid": 0, "umask": 63}}),
            "umask",
        ),
        ("umask-absent", json!({}), "umask"),
        (
            "oom-score-adj",
            json!({"oomScoreAdj": 500}),
            "cat /proc/self/oom_score_adj",
        ),
        (
            "oom-score-adj-bad",
            json!({"oomScoreAdj": 5000}),
            "cat /proc/self/oom_score_adj",
        ),
        ("nnp-false", json!({"noNewPrivileges": false}), STATUS),
        ("nnp-absent", json!({"noNewPrivileges": null}), STATUS),
        (
            "additional-gids",
            json!({"user": {"uid": 1000, "gid": 1000, "additionalGids": [5, 2000, 70000]}}),
            STATUS,
        ),
        ("user-absent", json!({"user": null}), STATUS),
        (
            "user-1000",
            json!({"user": {"uid": 1000, "gid": 1000}}),
            STATUS,
        ),
        ("user-gid-only", json!({"user": {"gid": 1000}}), STATUS),
        (
            "user-username",
            json!({"user": {"uid": 0, "gid": 0, "username": "user"}}),
            STATUS,
        ),
        ("caps-absent", json!({"capabilities": null}), STATUS),
        ("caps-empty", json!({"capabilities": {}}), STATUS),
        ("rlimits-absent", json!({"rlimits": null}), LIMITS),
        (
            "args-relative",
            json!({"args": ["bin/sh", "-c", "echo ok"]}),
            "",
        ),
        ("args-path-search", json!({"args": ["echo", "ok"]}), ""),
        (
            "args-missing-binary",
            json!({"args": ["/no/such/binary"]}),
            "",
        ),
        ("args-not-executable", json!({"args": ["/etc/passwd"]}), ""),
        ("args-directory", json!({"args": ["/bin"]}), ""),
        ("args-empty", json!({"args": []}), ""),
        ("args-absent", json!({"args": null}), ""),
        ("exit-3", json!({"args": ["sh", "-c", "exit 3"]}), ""),
        ("exit-255", json!({"args": ["sh", "-c", "exit 255"]}), ""),
        (
            "killed-by-signal",
            json!({"args": ["sh", "-c", "kill -9 $$"]}),
            "",
        ),
        (
            "terminal-false",
            json!({"terminal": false}),
            "test -t 0; echo $?",
        ),
        (
            "sched-other",
            json!({"scheduler": {"policy": "SCHED_OTHER", "nice": 5}}),
            "cat /proc/self/stat | cut -d' ' -f19",
        ),
        (
            "sched-batch",
            json!({"scheduler": {"policy": "SCHED_BATCH"}}),
            "grep -c . /proc/self/sched",
        ),
        (
            "sched-bad-policy",
            json!({"scheduler": {"policy": "SCHED_NOPE"}}),
            "",
        ),
        (
            "io-priority",
            json!({"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4}}),
            "true",
        ),
    ];
    process_field_cases(all, fields);
    all.push(
        case("process/personality")
            .sh("uname -m")
            .patch(json!({"linux": {"personality": {"domain": "LINUX32"}}}))
            .run_text()
            .done(),
    );
    all.push(
        case("process/hostname-domainname")
            .sh("hostname; cat /proc/sys/kernel/domainname")
            .patch(json!({"hostname": "h1", "domainname": "d1"}))
            .run_text()
            .done(),
    );
    all.push(
        case("process/sysctl")
            .sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax")
            .patch(
                json!({"linux": {"sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "4096"}}}),
            )
            .run_text()
            .done(),
    );
    all.push(
        case("process/sysctl-host-net")
            .sh("true")
            .patch(json!({"linux": {"sysctl": {"net.ipv4.ip_forward": "1"},
                "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]}}))
            .run_text()
            .done(),
    );
    for (name, caps) in [
        ("unknown-name", json!(["CAP_KILL", "CAP_NO_SUCH"])),
        ("lowercase", json!(["cap_kill"])),
        ("without-prefix", json!(["KILL"])),
        ("all-known", json!(all_caps())),
    ] {
        all.push(
            case(&format!("caps/{name}"))
                .sh(STATUS)
                .patch(json!({"process": {"capabilities": {"bounding": caps, "effective": caps, "permitted": caps}}}))
                .text(&run())
                .warn("CAP_NO_SUCH")
                .done(),
        );
    }
    all.push(
        case("caps/ambient-not-inheritable")
            .sh(STATUS)
            .patch(json!({"process": {"capabilities": {
                "bounding": ["CAP_KILL", "CAP_CHOWN"], "permitted": ["CAP_KILL", "CAP_CHOWN"],
                "effective": ["CAP_KILL"], "inheritable": ["CAP_KILL"],
                "ambient": ["CAP_KILL", "CAP_CHOWN"]}}}))
            .text(&run())
            .warn("CAP_CHOWN")
            .done(),
    );
    all.push(
        case("caps/ambient-non-root")
            .sh(STATUS)
            .patch(
                json!({"process": {"user": {"uid": 1000, "gid": 1000}, "capabilities": {
                "bounding": ["CAP_KILL", "CAP_CHOWN"], "permitted": ["CAP_KILL", "CAP_CHOWN"],
                "effective": ["CAP_KILL"], "inheritable": ["CAP_KILL", "CAP_CHOWN"],
                "ambient": ["CAP_KILL", "CAP_CHOWN"]}}}),
            )
            .run_text()
            .done(),
    );
    let rlimits: &[(&str, Value)] = &[
        (
            "nofile-soft-above-hard",
            json!([{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}]),
        ),
        (
            "unknown-type",
            json!([{"type": "RLIMIT_NOPE", "soft": 1, "hard": 1}]),
        ),
        (
            "duplicate-type",
            json!([{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 100}, {"type": "RLIMIT_NOFILE", "soft": 200, "hard": 200}]),
        ),
        (
            "core-unlimited",
            json!([{"type": "RLIMIT_CORE", "soft": u64::MAX, "hard": u64::MAX}]),
        ),
        (
            "nproc-zero",
            json!([{"type": "RLIMIT_NPROC", "soft": 0, "hard": 0}]),
        ),
        ("empty", json!([])),
        (
            "fsize-zero",
            json!([{"type": "RLIMIT_FSIZE", "soft": 0, "hard": 0}]),
        ),
    ];
    for (name, r) in rlimits {
        all.push(
            case(&format!("rlimits/{name}"))
                .sh(LIMITS)
                .patch(json!({"process": {"rlimits": r}}))
                .run_text()
                .done(),
        );
    }
}

/// Not RLIMIT_FSIZE: it limits writes to the harness's output file, which runc's foreground
/// `run` copies through pipes and husk hands the container (rlimits/fsize-zero shows it).
const RLIMIT_TYPES: &[&str] = &[
    "RLIMIT_AS",
    "RLIMIT_CORE",
    "RLIMIT_CPU",
    "RLIMIT_DATA",
    "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_NOFILE",
    "RLIMIT_NPROC",
    "RLIMIT_RSS",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
    "RLIMIT_SIGPENDING",
    "RLIMIT_STACK",
];

const CAP_POOL: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_KILL",
    "CAP_SETUID",
    "CAP_SETGID",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_ADMIN",
    "CAP_SYS_PTRACE",
    "CAP_AUDIT_WRITE",
    "CAP_SETPCAP",
    "CAP_NET_RAW",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// xorshift64*: the same sequence everywhere, so a seed names the same cases.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn subset<'a>(&mut self, pool: &[&'a str], percent: u64) -> Vec<&'a str> {
        pool.iter()
            .copied()
            .filter(|_| self.chance(percent))
            .collect()
    }
}

/// Seeded combinations: capability sets (with users and ambient), rlimit sets, and user
/// plus environment combinations, each run under `run` with the status probe.
fn random_cases(seed: u64, all: &mut Vec<Case>) {
    let mut rng = Rng::new(seed);
    for i in 0..40 {
        let bounding = rng.subset(CAP_POOL, 60);
        let permitted: Vec<&str> = bounding
            .iter()
            .copied()
            .filter(|_| rng.chance(70))
            .collect();
        let effective: Vec<&str> = permitted
            .iter()
            .copied()
            .filter(|_| rng.chance(70))
            .collect();
        let inheritable = rng.subset(CAP_POOL, 30);
        let ambient: Vec<&str> = inheritable
            .iter()
            .copied()
            .filter(|c| permitted.contains(c) && rng.chance(60))
            .collect();
        let uid = [0, 0, 1000, 4242][rng.below(4) as usize];
        let mut caps = json!({"bounding": bounding, "permitted": permitted,
            "effective": effective, "inheritable": inheritable, "ambient": ambient});
        if rng.chance(15) {
            caps.as_object_mut().unwrap().remove("inheritable");
        }
        all.push(
            with_users(&format!("random/caps-{seed}-{i}"))
                .sh(STATUS)
                .patch(json!({"process": {"capabilities": caps,
                    "user": {"uid": uid, "gid": uid},
                    "noNewPrivileges": rng.chance(50)}}))
                .run_text()
                .done(),
        );
    }
    for i in 0..25 {
        let types = rng.subset(RLIMIT_TYPES, 25);
        let limits: Vec<Value> = types
            .iter()
            .map(|t| {
                let hard = [0u64, 1, 64, 4096, 1 << 20, u64::MAX][rng.below(6) as usize];
                let soft = if rng.chance(85) {
                    hard.min(1 << (rng.below(20) + 1))
                } else {
                    hard
                };
                // A few bytes of stack, data or address space, or a CPU second or less, make the
                // shell crash or not depending on the layout or the time of the moment (runc's
                // Go init burns CPU time before the exec, husk's does not): a coin toss.
                let small = ["RLIMIT_STACK", "RLIMIT_AS", "RLIMIT_DATA", "RLIMIT_CPU"];
                let (soft, hard) = if small.contains(t) {
                    (soft.max(1 << 26), hard.max(1 << 26))
                } else {
                    (soft, hard)
                };
                json!({"type": t, "soft": soft, "hard": hard})
            })
            .collect();
        all.push(
            case(&format!("random/rlimits-{seed}-{i}"))
                .sh(LIMITS)
                .patch(json!({"process": {"rlimits": limits}}))
                .run_text()
                .done(),
        );
    }
}
