//! The library over TLS against the real docker-registry with a certificate from a test CA:
//! the typed errors callers branch on (untrusted certificate, TLS server spoken to in plain
//! HTTP, plain server tried over TLS), and [`ChartRepository`] pulling a chart that was pushed
//! over TLS, verified.

use std::sync::Arc;

use bytes::Bytes;
use kantup_bundle::Digest;
use kantup_bundle::archive::ImageArchive;
use kantup_registry::bundle_source::plan_archive;
use kantup_registry::chart_repo::ChartRepository;
use kantup_registry::chart_target::{ChartTarget, PackagedChart};
use kantup_registry::credentials::CredentialResolver;
use kantup_registry::net::{HttpOptions, TlsProblem};
use kantup_registry::{
    ClientOptions, PushOptions, RegistryClient, RegistryError, RelocationRule, push_images,
};
use kantup_test_support::image_gen::{GenSpec, generate_layout};
use kantup_test_support::registry_server::{RegistryAuth, RegistryServer};
use kantup_test_support::{require_tool, workspace_root};

fn client(host: &str, http: HttpOptions) -> RegistryClient {
    RegistryClient::new(
        host,
        ClientOptions {
            http,
            ..ClientOptions::default()
        },
    )
    .unwrap()
}

fn tls_problem(error: RegistryError) -> TlsProblem {
    match error {
        RegistryError::Tls(tls) => tls.problem,
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_tls_errors_name_the_host() {
    let tls = RegistryServer::start_tls(RegistryAuth::None);
    let untrusted = client(&tls.host(), HttpOptions::default())
        .list_tags("any/repo")
        .await
        .unwrap_err();
    let shown = untrusted.to_string();
    assert!(
        shown.contains(&tls.host()) && shown.contains("--ca-file"),
        "{shown}"
    );
    assert!(matches!(tls_problem(untrusted), TlsProblem::Untrusted(_)));

    let plain = client(&tls.host(), HttpOptions::with_tls(None, false, true))
        .list_tags("any/repo")
        .await
        .unwrap_err();
    assert_eq!(tls_problem(plain), TlsProblem::ServerRequiresTls);

    // A plain-HTTP registry on 127.0.0.1 works through the fallback; the base URL says so.
    let plain_registry = RegistryServer::start();
    let fallback = client(&plain_registry.host(), HttpOptions::default());
    assert_eq!(
        fallback.list_tags("any/repo").await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        fallback.base_url().await.unwrap(),
        format!("http://{}", plain_registry.host())
    );
    let trusted = client(
        &tls.host(),
        HttpOptions::with_tls(tls.ca_file(), false, false),
    );
    assert_eq!(
        trusted.base_url().await.unwrap(),
        format!("https://{}", tls.host())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_over_tls_and_pull_a_chart_through_chart_repository() {
    let registry = RegistryServer::start_tls(RegistryAuth::None);
    let host = registry.host();
    let http = HttpOptions::with_tls(registry.ca_file(), false, false);
    let dir = tempfile::tempdir().unwrap();
    let images = generate_layout(
        dir.path(),
        &GenSpec {
            images: 3,
            ..GenSpec::default()
        },
    )
    .unwrap();
    let archive = Arc::new(ImageArchive::open(dir.path()).unwrap());
    let plan = plan_archive(archive, &RelocationRule::new(host.as_str(), "tls")).unwrap();
    let registry_client = Arc::new(client(&host, http.clone()));
    let report = push_images(&registry_client, &plan, &PushOptions::default(), None).await;
    assert_eq!(report.failures().count(), 0, "{:#?}", report.images);
    assert_eq!(report.images.len(), images.len());

    // skopeo reads each manifest back over TLS, trusting the test CA through --cert-dir.
    let cert_dir = registry.cert_dir().unwrap();
    for push in &plan {
        let out = std::process::Command::new(require_tool("skopeo"))
            .args(["inspect", "--raw", "--cert-dir"])
            .arg(&cert_dir)
            .arg(format!("docker://{}", push.target_name(&host)))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(Digest::of(&out.stdout), push.manifest_digest);
    }

    // A chart pushed over TLS, then pulled through the one chart repository API.
    let tgz = kantup_bundle::chart::package(
        &kantup_bundle::Bundle::open(
            workspace_root().join("examples/bundles/testchart.bundle.tar"),
        )
        .unwrap()
        .chart()
        .unwrap(),
    )
    .unwrap();
    let chart = PackagedChart::from_tgz(Bytes::from(tgz.clone())).unwrap();
    let target = ChartTarget::Oci {
        client: registry_client.clone(),
        repository_prefix: "charts".into(),
    };
    target.upload(&chart, false).await.unwrap();
    let repo = ChartRepository::open(
        &format!("oci://{host}/charts"),
        &http,
        &CredentialResolver::new(),
    )
    .unwrap();
    let versions = repo.versions("testchart").await.unwrap();
    assert_eq!(versions[0].version, "0.1.0");
    let pulled = repo.pull("testchart", None).await.unwrap();
    assert_eq!(
        (pulled.name.as_str(), pulled.version.as_str()),
        ("testchart", "0.1.0")
    );
    assert_eq!(pulled.bytes.as_ref(), tgz.as_slice());
    assert_eq!(pulled.digest, Digest::of(&tgz));
    assert!(pulled.verified);
    let missing = repo.pull("testchart", Some("9.9.9")).await.unwrap_err();
    assert!(missing.is_not_found(), "{missing}");

    // Without the CA the same API fails with the TLS error.
    let untrusted = ChartRepository::open(
        &format!("oci://{host}/charts"),
        &HttpOptions::default(),
        &CredentialResolver::new(),
    )
    .unwrap();
    let error = untrusted.pull("testchart", None).await.unwrap_err();
    assert!(
        matches!(error, kantup_registry::chart_repo::RepoError::Tls(_)),
        "{error:?}"
    );
}
