//! A real Kubernetes for tests: kube-apiserver (and, when asked, kube-controller-manager) 1.36
//! with etcd on loopback, started by `../shared/kube/start-apiserver.sh`. The binaries are built
//! from the `k8s.io/kubernetes` Go module by `scripts/install-test-tools.sh` (through
//! `scripts/build-kube.sh`, version pinned in `tests/kube/go.mod`) into `.tools/kube/`, beside a
//! copy of the start script.
//!
//! - [`shared_cluster`]: the one server of this test binary, started on first use (about 5 s)
//!   and stopped when the test process ends (a watchdog process outlives it by at most a
//!   second). Tests running in parallel share it, so each one works in its own namespace
//!   ([`KubeCluster::namespace`]) and names its cluster-wide objects uniquely
//!   ([`unique_name`]).
//! - [`KubeCluster::start`]: a private server, stopped on drop, for a test that needs a second
//!   cluster (the manual procedure on one, kantup on the other).
//! - [`shared_cluster_with_controllers`] / [`KubeCluster::start_with_controllers`]: the same
//!   with the real kube-controller-manager (`KUBE_CONTROLLERS=1`): Deployments make ReplicaSets
//!   and Pods, namespaces finish deleting, workload status follows pod status. No scheduler or
//!   kubelet runs: a test acts as the kubelet.
//! - [`KubeCluster::user`]: a ServiceAccount with exactly the RBAC rules a test gives it and a
//!   kubeconfig holding its token (TokenRequest API: no controllers needed).
//!
//! Where no server can be started here (no `.tools/kube`: the install script has not run),
//! `KANTUP_TEST_KUBECONFIG` names a cluster to use instead; with neither, [`cluster_or_skip`]
//! records the test as skipped in `$KANTUP_SKIP_LOG` (which `scripts/test.sh` counts as
//! skipped, never as passed) and the test returns early, unless `KANTUP_REQUIRE_KUBE=1`
//! (`scripts/test.sh` sets it): then the test fails, since the suite promises every cluster
//! test ran.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::tools::workspace_root;

/// A reachable API server with an admin kubeconfig.
pub struct KubeCluster {
    kubeconfig: PathBuf,
    /// The state directory of a server this process started (`None` for an external cluster).
    state: Option<PathBuf>,
    /// Stop the server when this value drops (private servers only).
    stop_on_drop: bool,
    /// Kept alive for kubeconfigs minted for extra users.
    scratch: tempfile::TempDir,
}

/// Where `install-test-tools.sh` puts the API server and its start script.
pub fn kube_tools_dir() -> PathBuf {
    workspace_root().join(".tools/kube")
}

/// Whether a local API server can be started (`.tools/kube` is installed).
pub fn can_start_local() -> bool {
    let dir = kube_tools_dir();
    dir.join("kube-apiserver").is_file() && dir.join("start-apiserver.sh").is_file()
}

/// Whether a local API server with the controller-manager can be started.
pub fn can_start_local_with_controllers() -> bool {
    can_start_local() && kube_tools_dir().join("kube-controller-manager").is_file()
}

static SHARED: OnceLock<Option<KubeCluster>> = OnceLock::new();
static SHARED_WITH_CONTROLLERS: OnceLock<Option<KubeCluster>> = OnceLock::new();

/// The cluster with the real kube-controller-manager shared by this test binary, started on
/// first use, or `None` when none can be started here (see [`cluster_with_controllers_or_skip`]).
/// `KANTUP_TEST_KUBECONFIG` is not used for it: an external cluster's controllers and kubelets
/// would act on the test's pods.
pub fn shared_cluster_with_controllers() -> Option<&'static KubeCluster> {
    SHARED_WITH_CONTROLLERS
        .get_or_init(|| {
            can_start_local_with_controllers().then(|| KubeCluster::start_inner(false, true))
        })
        .as_ref()
}

/// [`shared_cluster_with_controllers`], or `None` after recording `test` as skipped (a
/// failure under `KANTUP_REQUIRE_KUBE=1`).
pub fn cluster_with_controllers_or_skip(test: &str) -> Option<&'static KubeCluster> {
    let cluster = shared_cluster_with_controllers();
    if cluster.is_none() {
        skip_or_fail(
            test,
            "no kube-controller-manager in .tools/kube: run scripts/install-test-tools.sh",
        );
    }
    cluster
}

/// The cluster of this test binary: a local API server started on first use, else the one
/// `KANTUP_TEST_KUBECONFIG` names, else `None`.
pub fn shared_cluster() -> Option<&'static KubeCluster> {
    SHARED
        .get_or_init(|| {
            if can_start_local() {
                Some(KubeCluster::start_inner(false, false))
            } else {
                std::env::var_os("KANTUP_TEST_KUBECONFIG")
                    .filter(|p| !p.is_empty())
                    .map(|p| KubeCluster::external(PathBuf::from(p)))
            }
        })
        .as_ref()
}

/// The shared cluster, or `None` after recording `test` as skipped (see the module docs).
///
/// ```no_run
/// let Some(cluster) = kantup_test_support::kube_cluster::cluster_or_skip("my_test") else {
///     return;
/// };
/// # let _ = cluster;
/// ```
pub fn cluster_or_skip(test: &str) -> Option<&'static KubeCluster> {
    let cluster = shared_cluster();
    if cluster.is_none() {
        skip_or_fail(
            test,
            "no Kubernetes API server: run scripts/install-test-tools.sh (it builds one into \
             .tools/kube), or set KANTUP_TEST_KUBECONFIG",
        );
    }
    cluster
}

/// Records `test` as skipped for want of a cluster, or panics with `reason` when
/// `KANTUP_REQUIRE_KUBE=1`.
pub fn skip_or_fail(test: &str, reason: &str) {
    if std::env::var_os("KANTUP_REQUIRE_KUBE").is_some_and(|v| v == "1") {
        panic!("{test}: KANTUP_REQUIRE_KUBE=1 and {reason}");
    }
    record_skip(test, reason);
}

/// Appends `test: reason` to `$KANTUP_SKIP_LOG` (when set) and says so on stderr.
pub fn record_skip(test: &str, reason: &str) {
    eprintln!("SKIPPED {test}: {reason}");
    if let Some(log) = std::env::var_os("KANTUP_SKIP_LOG")
        && let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
    {
        let _ = writeln!(file, "{test}: {reason}");
    }
}

/// A name unique in this test process and across runs against the same cluster:
/// `<prefix>-<pid>-<n>`, lower case, valid as a namespace or DNS label.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// One RBAC rule for [`KubeCluster::user`].
#[derive(Debug, Clone)]
pub struct Rule {
    /// API groups (`""` for core).
    pub api_groups: Vec<String>,
    /// Resources (`secrets`, `customresourcedefinitions`).
    pub resources: Vec<String>,
    /// Verbs (`get`, `list`, ...).
    pub verbs: Vec<String>,
}

impl Rule {
    /// A rule from string slices.
    pub fn new(api_groups: &[&str], resources: &[&str], verbs: &[&str]) -> Self {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Self {
            api_groups: own(api_groups),
            resources: own(resources),
            verbs: own(verbs),
        }
    }

    fn yaml(&self) -> String {
        let list = |v: &[String]| {
            v.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "- apiGroups: [{}]\n  resources: [{}]\n  verbs: [{}]\n",
            list(&self.api_groups),
            list(&self.resources),
            list(&self.verbs)
        )
    }
}

impl KubeCluster {
    /// A private API server, stopped (and its state removed) when the value drops. Panics
    /// when none can be started here; check [`can_start_local`] first.
    pub fn start() -> Self {
        Self::start_inner(true, false)
    }

    /// A private API server with the real kube-controller-manager, stopped on drop. Panics when
    /// none can be started here; check [`can_start_local_with_controllers`] first.
    pub fn start_with_controllers() -> Self {
        Self::start_inner(true, true)
    }

    fn start_inner(stop_on_drop: bool, controllers: bool) -> Self {
        assert!(
            if controllers {
                can_start_local_with_controllers()
            } else {
                can_start_local()
            },
            "no API server{} in {}: run scripts/install-test-tools.sh",
            if controllers {
                " and controller-manager"
            } else {
                ""
            },
            kube_tools_dir().display()
        );
        let scratch = tempfile::tempdir().expect("temp dir");
        let state = scratch.path().join("apiserver");
        let tools = kube_tools_dir();
        let mut last_error = String::new();
        // A free port can be taken between choosing and binding it: try a few times.
        for _ in 0..3 {
            let output = Command::new(tools.join("start-apiserver.sh"))
                .arg(&state)
                .env("KUBE_APISERVER_BIN", tools.join("kube-apiserver"))
                .env(
                    "KUBE_CONTROLLER_MANAGER_BIN",
                    tools.join("kube-controller-manager"),
                )
                .env("KUBE_CONTROLLERS", if controllers { "1" } else { "" })
                .stdin(Stdio::null())
                .output()
                .expect("run start-apiserver.sh");
            if output.status.success() {
                let kubeconfig = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
                if !stop_on_drop {
                    // Statics are never dropped: a watchdog stops the server when this test
                    // process has ended, however it ended.
                    spawn_watchdog(&state, scratch.path());
                }
                return KubeCluster {
                    kubeconfig,
                    state: Some(state),
                    stop_on_drop,
                    scratch,
                };
            }
            last_error = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            let _ = std::fs::remove_dir_all(&state);
        }
        panic!("the API server did not start: {last_error}");
    }

    fn external(kubeconfig: PathBuf) -> Self {
        assert!(
            kubeconfig.is_file(),
            "KANTUP_TEST_KUBECONFIG={} is not a file",
            kubeconfig.display()
        );
        KubeCluster {
            kubeconfig,
            state: None,
            stop_on_drop: false,
            scratch: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The admin kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Whether this is a server this process started (not `KANTUP_TEST_KUBECONFIG`).
    pub fn is_local(&self) -> bool {
        self.state.is_some()
    }

    /// The API server's log (local servers only).
    pub fn log_path(&self) -> Option<PathBuf> {
        self.state.as_ref().map(|s| s.join("apiserver.log"))
    }

    /// `kubectl ARGS` as admin; the output whatever the exit status.
    pub fn kubectl_output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = Command::new(crate::tools::kubectl());
        command
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn kubectl");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())
                .expect("write kubectl stdin");
        }
        child.wait_with_output().expect("wait for kubectl")
    }

    /// `kubectl ARGS` as admin; panics naming the command when it fails; returns stdout.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let output = self.kubectl_output(args, None);
        assert!(
            output.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("kubectl prints UTF-8")
    }

    /// `kubectl apply -f -` of `yaml` as admin.
    pub fn apply_yaml(&self, yaml: &str) {
        let output = self.kubectl_output(&["apply", "-f", "-"], Some(yaml));
        assert!(
            output.status.success(),
            "kubectl apply: {}\n{yaml}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A new namespace named `<prefix>-<pid>-<n>`. Namespaces are never deleted (without the
    /// controller-manager, deletion never finishes); each test gets its own.
    pub fn namespace(&self, prefix: &str) -> String {
        let name = unique_name(prefix);
        self.kubectl(&["create", "namespace", &name]);
        name
    }

    /// A ServiceAccount `name` in namespace `kantup-test-users` bound to a ClusterRole with
    /// `cluster_rules` and, in `namespace`, a Role with `namespace_rules`; returns a kubeconfig
    /// that authenticates as it (a token from the TokenRequest API, valid for an hour).
    pub fn user(
        &self,
        name: &str,
        cluster_rules: &[Rule],
        namespace: Option<(&str, &[Rule])>,
    ) -> PathBuf {
        let users_ns = "kantup-test-users";
        let _ = self.kubectl_output(&["create", "namespace", users_ns], None);
        let mut yaml = format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n  namespace: {users_ns}\n"
        );
        if !cluster_rules.is_empty() {
            yaml.push_str(&format!(
                "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {name}\nrules:\n{}",
                cluster_rules.iter().map(Rule::yaml).collect::<String>()
            ));
            yaml.push_str(&format!(
                "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: {name}\n\
                 roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {name}}}\n\
                 subjects: [{{kind: ServiceAccount, name: {name}, namespace: {users_ns}}}]\n"
            ));
        }
        if let Some((ns, rules)) = namespace {
            yaml.push_str(&format!(
                "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: {name}\n  namespace: {ns}\nrules:\n{}",
                rules.iter().map(Rule::yaml).collect::<String>()
            ));
            yaml.push_str(&format!(
                "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: {name}\n  namespace: {ns}\n\
                 roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {name}}}\n\
                 subjects: [{{kind: ServiceAccount, name: {name}, namespace: {users_ns}}}]\n"
            ));
        }
        self.apply_yaml(&yaml);
        let token = self
            .kubectl(&["create", "token", name, "-n", users_ns, "--duration", "1h"])
            .trim()
            .to_string();
        let server = self
            .kubectl(&[
                "config",
                "view",
                "--minify",
                "-o",
                "jsonpath={.clusters[0].cluster.server}",
            ])
            .trim()
            .to_string();
        let path = self.scratch.path().join(format!("{name}.kubeconfig"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster: {{server: \"{server}\", insecure-skip-tls-verify: true}}\n\
                 users:\n- name: {name}\n  user: {{token: \"{token}\"}}\n\
                 contexts:\n- name: test\n  context: {{cluster: test, user: {name}, namespace: default}}\ncurrent-context: test\n"
            ),
        )
        .expect("write user kubeconfig");
        path
    }

    /// `helm ARGS` with `helm` (a path from [`crate::helm3`] / [`crate::helm4`]) against this
    /// cluster; the output whatever the exit status. Helm's caches stay in a scratch directory.
    pub fn helm_output(&self, helm: &Path, args: &[&str]) -> Output {
        let home = self.scratch.path().join("helm-home");
        Command::new(helm)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .stdin(Stdio::null())
            .output()
            .expect("spawn helm")
    }

    /// `helm ARGS` as [`KubeCluster::helm_output`]; panics naming the command on failure;
    /// returns stdout.
    pub fn helm(&self, helm: &Path, args: &[&str]) -> String {
        let output = self.helm_output(helm, args);
        assert!(
            output.status.success(),
            "{} {}: {}",
            helm.display(),
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("helm prints UTF-8")
    }
}

impl Drop for KubeCluster {
    fn drop(&mut self) {
        if self.stop_on_drop
            && let Some(state) = &self.state
        {
            let _ = Command::new(state.join("stop")).status();
        }
    }
}

/// Stops the server in `state` once this process has exited, then removes `scratch`.
fn spawn_watchdog(state: &Path, scratch: &Path) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \"{stop}\"; sleep 2; rm -rf \"{scratch}\"",
        pid = std::process::id(),
        stop = state.join("stop").display(),
        scratch = scratch.display()
    );
    // Never waited for: it outlives this process by design.
    #[allow(clippy::zombie_processes)]
    let _watchdog = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the API server watchdog");
}

impl KubeCluster {
    /// [`KubeCluster::helm_output`] with extra environment variables, e.g.
    /// `[("HELM_DRIVER", "configmap")]` for Helm's ConfigMap storage driver (tests in one
    /// process run in parallel, so the driver cannot be set process-wide).
    pub fn helm_output_with_env(&self, helm: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
        let home = self.scratch.path().join("helm-home");
        Command::new(helm)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("spawn helm")
    }
}
