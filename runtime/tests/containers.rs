//! Real containers through the runtime (needs root, as CI has): a busybox rootfs mounted as an
//! overlay, containers run by `rkube-runtime-shim` (the shim entry points of the `rkube`
//! binary), exec sessions, stop/kill, OOM, usage, and cleanup of state, cgroups and mounts.
//!
//! Every test owns a fixture (`Env`) with its own runtime root, rootfs and parent cgroup
//! `rkube-test-<pid>-<n>`; dropping it (also on panic) removes its containers, unmounts the
//! overlay and removes the cgroups.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use runtime::Error;
use runtime::container::{ContainerStatus, ExitInfo, Runtime, ShimCommand};
use runtime::exec::ExecRequest;
use runtime::logs::{LogStream, parse_line};
use runtime::rootfs::Rootfs;
use runtime::spec::{ContainerSpec, Resources};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

static NEXT: AtomicU32 = AtomicU32::new(0);

const APPLETS: &[&str] = &[
    "sh", "echo", "sleep", "cat", "ls", "id", "head", "tr", "dd", "true", "false", "env", "tty",
    "stty", "pwd", "kill", "ps", "test", "[",
];

fn shim_command() -> ShimCommand {
    ShimCommand {
        program: PathBuf::from(env!("CARGO_BIN_EXE_rkube-runtime-shim")),
        args: vec!["shim".into()],
    }
}

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the container tests need root (CI runs them as root)"
    );
}

/// A busybox image layer: /bin/busybox plus applet symlinks.
fn busybox_layer(dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox"))
        .expect("copying /bin/busybox (Debian busybox-static)");
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    for d in ["proc", "dev", "sys", "tmp", "etc", "root"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
}

struct Env {
    tmp: tempfile::TempDir,
    root: PathBuf,
    rt: Runtime,
    rootfs: Rootfs,
    cgroup_parent: String,
    ids: Mutex<Vec<String>>,
}

impl Env {
    fn new() -> Env {
        require_root();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = tempfile::Builder::new()
            .prefix("rkube-ct-")
            .tempdir()
            .unwrap();
        let layer = tmp.path().join("layer");
        busybox_layer(&layer);
        let root = tmp.path().join("state");
        let rt = Runtime::new(&root, shim_command()).unwrap();
        let cgroup_parent = format!("rkube-test-{}-{n}", std::process::id());
        let env = Env {
            rootfs: Rootfs {
                dir: tmp.path().join("rootfs"),
            },
            tmp,
            root,
            rt,
            cgroup_parent,
            ids: Mutex::new(Vec::new()),
        };
        // Mounted after `env` exists, so its Drop unmounts it even if a later step panics.
        Rootfs::mount(&env.rootfs.dir, &[layer]).unwrap();
        env
    }

    fn spec(&self, name: &str, args: &[&str]) -> ContainerSpec {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("rkt-{}-{n}-{name}", std::process::id());
        self.ids.lock().unwrap().push(id.clone());
        ContainerSpec {
            id: id.clone(),
            rootfs: self.rootfs.merged(),
            args: args.iter().map(|s| s.to_string()).collect(),
            cgroup_path: format!("{}/{id}", self.cgroup_parent),
            log_path: self.tmp.path().join("logs").join(format!("{id}.log")),
            ..Default::default()
        }
    }

    /// Runs and asserts that it started.
    async fn start(&self, spec: &ContainerSpec) {
        match self.rt.run(spec).await {
            Ok(ContainerStatus::Running { pid, .. }) => assert!(pid > 0),
            Ok(ContainerStatus::Exited(_)) => {}
            other => panic!("{}: expected a started container, got {other:?}", spec.id),
        }
    }

    async fn run_to_exit(&self, spec: &ContainerSpec) -> ExitInfo {
        self.start(spec).await;
        tokio::time::timeout(Duration::from_secs(30), self.rt.wait(&spec.id))
            .await
            .expect("container exits")
            .unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let root = self.root.clone();
        let ids = self.ids.lock().map(|v| v.clone()).unwrap_or_default();
        // A runtime of its own on a thread of its own: this may run inside the test's runtime.
        let removed = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let runtime = Runtime::new(&root, shim_command()).unwrap();
                for id in ids {
                    if let Err(e) = runtime.remove(&id).await {
                        eprintln!("cleanup: removing container {id}: {e}");
                    }
                }
            })
        })
        .join();
        if removed.is_err() {
            eprintln!("cleanup: removing containers panicked");
        }
        if let Err(e) = Rootfs::remove(&self.rootfs.dir) {
            eprintln!(
                "cleanup: removing rootfs {}: {e}",
                self.rootfs.dir.display()
            );
        }
        if let Err(e) = runtime::stats::remove_cgroup(&self.cgroup_parent) {
            eprintln!("cleanup: removing cgroup {}: {e}", self.cgroup_parent);
        }
    }
}

fn log_entries(path: &Path) -> Vec<(LogStream, bool, String)> {
    let text = std::fs::read(path).unwrap_or_default();
    text.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let e = parse_line(l)
                .unwrap_or_else(|| panic!("not a CRI log line: {:?}", String::from_utf8_lossy(l)));
            (
                e.stream,
                e.partial,
                String::from_utf8_lossy(&e.content).into_owned(),
            )
        })
        .collect()
}

async fn wait_for_log(path: &Path, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if log_entries(path).iter().any(|(_, _, c)| c.contains(needle)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} never appeared in {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every mounted cgroup hierarchy (v1 controllers and the v2 mount).
fn cgroup_hierarchies() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            (fstype == "cgroup" || fstype == "cgroup2")
                .then(|| PathBuf::from(left.split(' ').nth(4).unwrap()))
        })
        .collect()
}

fn cgroup_exists(path: &str) -> bool {
    cgroup_hierarchies().iter().any(|h| h.join(path).exists())
}

fn mounted_at(path: &Path) -> usize {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = path.as_os_str().as_bytes();
    info.lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|mp| mp.as_bytes() == want))
        .count()
}

#[tokio::test]
async fn echo_exits_zero_and_is_logged() {
    let env = Env::new();
    let spec = env.spec("echo", &["echo", "hi"]);
    let exit = env.run_to_exit(&spec).await;
    assert_eq!(exit.exit_code, 0, "{exit:?}");
    assert_eq!(exit.signal, None);
    assert!(!exit.oom_killed);
    assert!(exit.message.is_none());
    let started = exit.started_at.clone().expect("started_at");
    assert!(started.parse::<jiff::Timestamp>().is_ok(), "{started}");
    assert!(
        exit.finished_at.parse::<jiff::Timestamp>().unwrap()
            >= started.parse::<jiff::Timestamp>().unwrap()
    );
    assert_eq!(
        log_entries(&spec.log_path),
        vec![(LogStream::Stdout, false, "hi".to_string())]
    );
    // The raw line: `<RFC3339Nano> stdout F hi`.
    let raw = std::fs::read_to_string(&spec.log_path).unwrap();
    assert!(raw.ends_with(" stdout F hi\n"), "{raw:?}");
    assert_eq!(
        env.rt.status(&spec.id).unwrap(),
        ContainerStatus::Exited(exit)
    );
    // The shim deleted the container's cgroup before it recorded the exit.
    assert!(!cgroup_exists(&spec.cgroup_path));
}

#[tokio::test]
async fn container_process_starts_with_default_signals_and_its_user() {
    let env = Env::new();
    // cat is the container's init itself: what it reports is what the runtime handed over
    // (a Rust parent ignores SIGPIPE, which execve would otherwise keep).
    let mut spec = env.spec("signals", &["cat", "/proc/self/status"]);
    spec.uid = 65534;
    spec.gid = 65533;
    let exit = env.run_to_exit(&spec).await;
    assert_eq!(exit.exit_code, 0, "{exit:?}");
    let lines: Vec<String> = log_entries(&spec.log_path)
        .into_iter()
        .map(|(_, _, c)| c)
        .collect();
    let field = |name: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {name} in {lines:?}"))
    };
    assert_eq!(field("SigIgn:"), "0000000000000000");
    assert_eq!(field("SigBlk:"), "0000000000000000");
    assert!(field("Uid:").starts_with("65534"), "{}", field("Uid:"));
    assert!(field("Gid:").starts_with("65533"), "{}", field("Gid:"));
    // A non-root process keeps the default capabilities through the ambient set.
    assert_ne!(field("CapEff:"), "0000000000000000");
}

#[tokio::test]
async fn nonzero_exit_code_and_stderr() {
    let env = Env::new();
    let spec = env.spec(
        "exit7",
        &["sh", "-c", "echo oops >&2; printf partial; exit 7"],
    );
    let exit = env.run_to_exit(&spec).await;
    assert_eq!(exit.exit_code, 7, "{exit:?}");
    assert_eq!(exit.signal, None);
    let entries = log_entries(&spec.log_path);
    assert!(
        entries.contains(&(LogStream::Stderr, false, "oops".into())),
        "{entries:?}"
    );
    assert!(
        entries.contains(&(LogStream::Stdout, true, "partial".into())),
        "{entries:?}"
    );
}

#[tokio::test]
async fn executable_not_found_is_a_start_error() {
    let env = Env::new();
    let spec = env.spec("notfound", &["no-such-binary", "x"]);
    let want = "exec: \"no-such-binary\": executable file not found in $PATH";
    match env.rt.run(&spec).await {
        Err(Error::Container(message)) => assert_eq!(message, want),
        other => panic!("expected a start error, got {other:?}"),
    }
    match env.rt.status(&spec.id).unwrap() {
        ContainerStatus::Exited(exit) => {
            assert_eq!(exit.exit_code, 128);
            assert_eq!(exit.message.as_deref(), Some(want));
            assert_eq!(exit.started_at, None);
        }
        other => panic!("{other:?}"),
    }
    assert!(!cgroup_exists(&spec.cgroup_path));

    // An absolute path that does not exist reads like runc's too.
    let spec = env.spec("notfound-abs", &["/bin/nope"]);
    match env.rt.run(&spec).await {
        Err(Error::Container(message)) => {
            assert_eq!(
                message,
                "exec: \"/bin/nope\": stat /bin/nope: no such file or directory"
            )
        }
        other => panic!("expected a start error, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_specs_and_duplicates_are_refused() {
    let env = Env::new();
    let mut bad = env.spec("bad", &["true"]);
    bad.args.clear();
    assert!(matches!(env.rt.run(&bad).await, Err(Error::Invalid(_))));
    assert!(matches!(
        env.rt.status(&bad.id),
        Err(Error::ContainerNotFound(_))
    ));
    assert!(!env.root.join("containers").join(&bad.id).exists());
    let mut relative_log = env.spec("bad-log", &["true"]);
    relative_log.log_path = "logs/c.log".into();
    assert!(matches!(env.rt.run(&relative_log).await, Err(Error::Invalid(_))));

    let spec = env.spec("dup", &["sleep", "1000"]);
    env.start(&spec).await;
    match env.rt.run(&spec).await {
        Err(Error::Container(m)) => assert!(m.contains("already exists"), "{m}"),
        other => panic!("expected a duplicate error, got {other:?}"),
    }
    assert!(matches!(
        env.rt.status("rkt-never-ran"),
        Err(Error::ContainerNotFound(_))
    ));
    assert!(matches!(env.rt.status("../etc"), Err(Error::Invalid(_))));
}

#[tokio::test]
async fn stop_lets_a_trapping_process_exit() {
    let env = Env::new();
    let spec = env.spec(
        "trap",
        &[
            "sh",
            "-c",
            "trap 'echo bye; exit 0' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    env.start(&spec).await;
    wait_for_log(&spec.log_path, "ready").await;
    let t = Instant::now();
    let exit = env
        .rt
        .stop(&spec.id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(exit.exit_code, 0, "{exit:?}");
    assert_eq!(exit.signal, None);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert!(log_entries(&spec.log_path).contains(&(LogStream::Stdout, false, "bye".into())));
    // Stopping an exited container just reports its exit.
    assert_eq!(
        env.rt.stop(&spec.id, Duration::from_secs(1)).await.unwrap(),
        exit
    );
    env.rt.signal(&spec.id, libc::SIGTERM).unwrap();
}

#[tokio::test]
async fn stop_kills_an_ignoring_process_after_grace() {
    let env = Env::new();
    let spec = env.spec(
        "ignore",
        &["sh", "-c", "trap '' TERM; echo ready; sleep 1000"],
    );
    env.start(&spec).await;
    wait_for_log(&spec.log_path, "ready").await;
    let t = Instant::now();
    let exit = env
        .rt
        .stop(&spec.id, Duration::from_millis(500))
        .await
        .unwrap();
    let took = t.elapsed();
    assert_eq!(exit.exit_code, 137, "{exit:?}");
    assert_eq!(exit.signal, Some(libc::SIGKILL));
    assert!(!exit.oom_killed);
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(5),
        "took {took:?}"
    );
}

#[tokio::test]
async fn oom_kill_is_reported() {
    let env = Env::new();
    let mut spec = env.spec(
        "oom",
        &[
            "sh",
            "-c",
            "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
        ],
    );
    spec.resources = Resources {
        memory_limit: Some(16 << 20),
        ..Default::default()
    };
    let exit = env.run_to_exit(&spec).await;
    assert!(exit.oom_killed, "{exit:?}");
    assert_eq!(exit.exit_code, 137, "{exit:?}");
    assert!(
        !log_entries(&spec.log_path)
            .iter()
            .any(|(_, _, c)| c == "survived")
    );
}

#[tokio::test]
async fn wait_from_a_second_runtime_sees_the_exit() {
    let env = Env::new();
    let mut spec = env.spec("restart", &["sh", "-c", "echo ready; sleep 1; exit 3"]);
    spec.labels = BTreeMap::from([("pod".to_string(), "p1".to_string())]);
    env.start(&spec).await;
    // The "agent restarts": a new Runtime on the same root, knowing nothing in memory.
    let second = Runtime::new(&env.root, shim_command()).unwrap();
    assert!(matches!(
        second.status(&spec.id).unwrap(),
        ContainerStatus::Running { .. }
    ));
    let listed = second.list().unwrap();
    let rec = listed.iter().find(|r| r.id == spec.id).expect("listed");
    assert_eq!(rec.labels, spec.labels);
    let exit = tokio::time::timeout(Duration::from_secs(20), second.wait(&spec.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.exit_code, 3);
    // Bounded latency: wait returns soon after the exit was recorded.
    let finished: jiff::Timestamp = exit.finished_at.parse().unwrap();
    let lag = jiff::Timestamp::now().duration_since(finished);
    assert!(
        lag < jiff::SignedDuration::from_millis(1000),
        "wait returned {lag:?} after the exit"
    );
    assert_eq!(env.rt.wait(&spec.id).await.unwrap(), exit);
}

#[tokio::test]
async fn list_shows_labels_and_status() {
    let env = Env::new();
    let mut a = env.spec("list-a", &["sleep", "1000"]);
    a.labels = BTreeMap::from([
        ("io.kubernetes.pod.name".to_string(), "web-0".to_string()),
        ("attempt".into(), "2".into()),
    ]);
    let mut b = env.spec("list-b", &["true"]);
    b.labels = BTreeMap::from([("io.kubernetes.pod.name".to_string(), "job-1".to_string())]);
    env.start(&a).await;
    env.run_to_exit(&b).await;
    let listed = env.rt.list().unwrap();
    let ra = listed.iter().find(|r| r.id == a.id).expect("a listed");
    let rb = listed.iter().find(|r| r.id == b.id).expect("b listed");
    assert_eq!(ra.labels, a.labels);
    assert_eq!(rb.labels, b.labels);
    assert!(matches!(ra.status, ContainerStatus::Running { .. }));
    assert!(matches!(&rb.status, ContainerStatus::Exited(e) if e.exit_code == 0));
    assert_eq!(env.rt.spec(&a.id).unwrap(), a);
}

async fn read_all<R: tokio::io::AsyncRead + Unpin>(r: Option<R>) -> String {
    let mut out = Vec::new();
    if let Some(mut r) = r {
        r.read_to_end(&mut out).await.unwrap();
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn exec_runs_in_the_container() {
    let env = Env::new();
    let mut spec = env.spec("exec", &["sleep", "1000"]);
    spec.env = vec!["FROM_SPEC=yes".into()];
    spec.cwd = "/tmp".into();
    env.start(&spec).await;

    let req = |cmd: &[&str]| ExecRequest {
        command: cmd.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let mut s = env
        .rt
        .exec(
            &spec.id,
            ExecRequest {
                env: vec!["EXTRA=1".into()],
                ..req(&[
                    "sh",
                    "-c",
                    "echo out $FROM_SPEC $EXTRA $(pwd); echo err >&2; exit 3",
                ])
            },
        )
        .await
        .unwrap();
    let (out, err) = tokio::join!(read_all(s.stdout.take()), read_all(s.stderr.take()));
    assert_eq!(out, "out yes 1 /tmp\n");
    assert_eq!(err, "err\n");
    assert_eq!(s.wait().await.unwrap(), 3);
    assert_eq!(s.wait().await.unwrap(), 3);

    // Same pid namespace as the container: its init (sleep) is pid 1 there.
    let mut s = env
        .rt
        .exec(&spec.id, req(&["cat", "/proc/1/cmdline"]))
        .await
        .unwrap();
    assert_eq!(read_all(s.stdout.take()).await, "sleep\u{0}1000\u{0}");
    assert_eq!(s.wait().await.unwrap(), 0);

    // stdin.
    let mut s = env
        .rt
        .exec(
            &spec.id,
            ExecRequest {
                stdin: true,
                ..req(&["cat"])
            },
        )
        .await
        .unwrap();
    let mut stdin = s.stdin.take().unwrap();
    stdin.write_all(b"ping\n").await.unwrap();
    drop(stdin);
    assert_eq!(read_all(s.stdout.take()).await, "ping\n");
    assert_eq!(s.wait().await.unwrap(), 0);

    // Not found: an error, not a session.
    match env.rt.exec(&spec.id, req(&["no-such-tool"])).await {
        Err(Error::Container(m)) => assert_eq!(
            m,
            "exec: \"no-such-tool\": executable file not found in $PATH"
        ),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("exec of a missing binary started"),
    }

    // kill.
    let mut s = env
        .rt
        .exec(&spec.id, req(&["sleep", "1000"]))
        .await
        .unwrap();
    s.kill().await.unwrap();
    let code = tokio::time::timeout(Duration::from_secs(10), s.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code, 137);

    // The exec runs as the container's user.
    let mut user = env.spec("exec-user", &["sleep", "1000"]);
    user.uid = 65534;
    user.gid = 65534;
    env.start(&user).await;
    let mut s = env.rt.exec(&user.id, req(&["id", "-u"])).await.unwrap();
    assert_eq!(read_all(s.stdout.take()).await, "65534\n");
    assert_eq!(s.wait().await.unwrap(), 0);

    // Exec into an exited container is refused.
    let done = env.spec("exec-done", &["true"]);
    env.run_to_exit(&done).await;
    assert!(matches!(
        env.rt.exec(&done.id, req(&["true"])).await,
        Err(Error::Container(_))
    ));
}

#[tokio::test]
async fn exec_with_a_tty() {
    let env = Env::new();
    let spec = env.spec("tty", &["sleep", "1000"]);
    env.start(&spec).await;
    let mut s = env
        .rt
        .exec(
            &spec.id,
            ExecRequest {
                command: vec![
                    "sh".into(),
                    "-c".into(),
                    "read line; tty; stty size; echo got-$line; exit 5".into(),
                ],
                tty: true,
                stdin: true,
                env: vec![],
            },
        )
        .await
        .unwrap();
    assert!(s.stderr.is_none());
    s.resize(100, 40).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut stdin = s.stdin.take().unwrap();
    stdin.write_all(b"go\n").await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(10), read_all(s.stdout.take()))
        .await
        .unwrap();
    assert_eq!(s.wait().await.unwrap(), 5);
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert!(out.contains("40 100"), "{out:?}");
    // A terminal: output lines end in CR LF.
    assert!(out.contains("got-go\r\n"), "{out:?}");
    drop(stdin);
}

#[tokio::test]
async fn usage_of_a_running_container() {
    let env = Env::new();
    let spec = env.spec(
        "usage",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo ready; sleep 1000",
        ],
    );
    env.start(&spec).await;
    wait_for_log(&spec.log_path, "ready").await;
    let u = env.rt.usage(&spec.id).unwrap();
    assert!(u.memory_usage_bytes > 0, "{u:?}");
    assert!(u.memory_working_set_bytes > 0, "{u:?}");
    assert!(u.cpu_usage_ns > 0, "{u:?}");
    assert!(u.timestamp_ns > 0);
}

#[tokio::test]
async fn logs_rotate() {
    let env = Env::new();
    let mut spec = env.spec(
        "rotate",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done",
        ],
    );
    spec.log_max_bytes = 4096;
    spec.log_max_files = 3;
    let exit = env.run_to_exit(&spec).await;
    assert_eq!(exit.exit_code, 0);
    let rotated = runtime::logs::rotated(&spec.log_path, 1);
    assert!(rotated.exists(), "no rotation happened");
    assert!(
        !runtime::logs::rotated(&spec.log_path, 3).exists(),
        "more files kept than max_files"
    );
    for path in [&spec.log_path, &rotated] {
        assert!(std::fs::metadata(path).unwrap().len() <= 4096);
    }
    // The newest line is in the current file.
    assert!(
        log_entries(&spec.log_path)
            .iter()
            .any(|(_, _, c)| c == "line-299")
    );
}

#[tokio::test]
async fn remove_cleans_state_cgroup_and_mounts() {
    let env = Env::new();
    let spec = env.spec("remove", &["sleep", "1000"]);
    env.start(&spec).await;
    let container_dir = env.root.join("containers").join(&spec.id);
    let lc_dir = env.root.join("libcontainer").join(&spec.id);
    assert!(container_dir.join("spec.json").exists());
    assert!(container_dir.join("bundle/config.json").exists());
    assert!(container_dir.join("started.json").exists());
    assert!(lc_dir.exists());
    assert!(cgroup_exists(&spec.cgroup_path));

    // Still running: remove kills it first.
    env.rt.remove(&spec.id).await.unwrap();
    assert!(!container_dir.exists());
    assert!(!lc_dir.exists());
    assert!(!cgroup_exists(&spec.cgroup_path));
    assert!(matches!(
        env.rt.status(&spec.id),
        Err(Error::ContainerNotFound(_))
    ));
    assert!(!env.rt.list().unwrap().iter().any(|r| r.id == spec.id));
    // Idempotent; logs are kept.
    env.rt.remove(&spec.id).await.unwrap();
    assert!(spec.log_path.exists());

    assert!(Rootfs::is_mounted(&env.rootfs.dir));
    Rootfs::remove(&env.rootfs.dir).unwrap();
    assert!(!Rootfs::is_mounted(&env.rootfs.dir));
    assert!(!env.rootfs.dir.exists());
    assert_eq!(mounted_at(&env.rootfs.merged()), 0);
    Rootfs::remove(&env.rootfs.dir).unwrap();
}

#[tokio::test]
async fn rootfs_overlay_layers_and_idempotent_mount() {
    require_root();
    let tmp = tempfile::Builder::new()
        .prefix("rkube-rootfs-")
        .tempdir()
        .unwrap();
    let bottom = tmp.path().join("bottom");
    let top = tmp.path().join("top");
    for (dir, content) in [(&bottom, "bottom"), (&top, "top")] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("a"), content).unwrap();
    }
    std::fs::write(bottom.join("only-bottom"), "b").unwrap();
    let dir = tmp.path().join("c1");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Rootfs::remove(&self.0);
        }
    }
    let _guard = Unmount(dir.clone());
    let layers = vec![bottom.clone(), top.clone()];
    let rootfs = Rootfs::mount(&dir, &layers).unwrap();
    assert!(Rootfs::is_mounted(&dir));
    assert_eq!(
        std::fs::read_to_string(rootfs.merged().join("a")).unwrap(),
        "top"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.merged().join("only-bottom")).unwrap(),
        "b"
    );
    // Writes go to the upper dir, never to a layer.
    std::fs::write(rootfs.merged().join("a"), "written").unwrap();
    assert_eq!(std::fs::read_to_string(top.join("a")).unwrap(), "top");
    assert_eq!(
        std::fs::read_to_string(dir.join("upper/a")).unwrap(),
        "written"
    );
    // Idempotent: the existing mount is kept, not stacked.
    Rootfs::mount(&dir, &layers).unwrap();
    assert_eq!(mounted_at(&rootfs.merged()), 1);
    assert_eq!(
        std::fs::read_to_string(rootfs.merged().join("a")).unwrap(),
        "written"
    );
    // Busy (a process has its cwd inside): lazily detached, still removed.
    let busy = std::fs::File::open(rootfs.merged().join("only-bottom")).unwrap();
    Rootfs::remove(&dir).unwrap();
    drop(busy);
    assert!(!Rootfs::is_mounted(&dir));
    assert!(!dir.exists());
    assert_eq!(std::fs::read_to_string(bottom.join("a")).unwrap(), "bottom");
}

#[test]
fn fixture_cleans_up_after_a_panic() {
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let env = Env::new();
            let spec = env.spec("panic", &["sleep", "1000"]);
            env.start(&spec).await;
            let ContainerStatus::Running { pid, .. } = env.rt.status(&spec.id).unwrap() else {
                panic!("not running")
            };
            tx.send((
                env.cgroup_parent.clone(),
                spec.cgroup_path.clone(),
                env.rootfs.merged(),
                env.root.clone(),
                pid,
            ))
            .unwrap();
            panic!("deliberate panic with a running container");
        })
    })
    .join();
    assert!(outcome.is_err());
    let (parent, cgroup, merged, root, pid) = rx.recv().unwrap();
    assert!(!cgroup_exists(&cgroup));
    assert!(!cgroup_exists(&parent));
    assert_eq!(mounted_at(&merged), 0);
    assert!(!root.exists());
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the container's process survived"
    );
}

#[tokio::test]
async fn a_container_whose_shim_died_can_still_be_stopped_and_removed() {
    let env = Env::new();
    let spec = env.spec("orphan", &["sleep", "1000"]);
    env.start(&spec).await;
    let dir = env.root.join("containers").join(&spec.id);
    let shim_pid: i32 = std::fs::read_to_string(dir.join("shim.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim_pid),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{shim_pid}")).exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The container outlives its shim, and the runtime still knows it runs.
    assert!(matches!(
        env.rt.status(&spec.id).unwrap(),
        ContainerStatus::Running { .. }
    ));
    let exit = tokio::time::timeout(
        Duration::from_secs(20),
        env.rt.stop(&spec.id, Duration::from_millis(200)),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(exit.exit_code, 255, "{exit:?}");
    assert!(exit.message.is_some());
    // Nobody deleted the cgroup and libcontainer's state: remove does.
    env.rt.remove(&spec.id).await.unwrap();
    assert!(!cgroup_exists(&spec.cgroup_path));
    assert!(!env.root.join("libcontainer").join(&spec.id).exists());
    assert!(!dir.exists());
}
