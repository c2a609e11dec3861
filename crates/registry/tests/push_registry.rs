//! Image push against a real docker-registry (no auth, basic, token), checked with skopeo;
//! resilience behind a fault-injecting proxy; resuming an interrupted push.

use std::sync::Arc;
use std::time::Duration;

use kantup_bundle::Digest;
use kantup_bundle::archive::ImageArchive;
use kantup_registry::bundle_source::plan_archive;
use kantup_registry::{
    ClientOptions, Credentials, ImageAction, ImagePush, PushOptions, RegistryClient, RegistryError,
    RelocationRule, RetryPolicy, push_images,
};
use kantup_test_support::fault_proxy::{FaultConfig, FaultProxy, RequestHead, TamperAction};
use kantup_test_support::image_gen::{GenImage, GenSpec, generate_layout};
use kantup_test_support::registry_server::RegistryServer;
use kantup_test_support::skopeo;

fn generated(dir: &std::path::Path) -> (Arc<ImageArchive>, Vec<GenImage>) {
    generated_as(
        dir,
        &GenSpec {
            images: 12,
            base_layers: 2,
            base_layer_size: 300 * 1024,
            own_layer_size: 40 * 1024,
            ..GenSpec::default()
        },
    )
}

fn generated_as(dir: &std::path::Path, spec: &GenSpec) -> (Arc<ImageArchive>, Vec<GenImage>) {
    let images = generate_layout(dir, spec).expect("generate layout");
    let archive = ImageArchive::open(dir).expect("open generated layout");
    (Arc::new(archive), images)
}

fn options(creds: Option<Credentials>) -> ClientOptions {
    ClientOptions {
        credentials: creds,
        // Small chunks so the 300 KiB base layers go up in several PATCHes.
        chunk_size: 64 * 1024,
        retry: RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(500),
        },
        ..ClientOptions::default()
    }
}

/// skopeo reads every pushed image back: manifest bytes, config bytes and layer digests are
/// the source's.
fn check_with_skopeo(host: &str, prefix: &str, images: &[GenImage], creds: Option<&str>) {
    for image in images {
        let tail = image.repository.rsplit('/').next().unwrap();
        let target = format!("docker://{host}/{prefix}/{tail}:{}", image.tag);
        let mut base = vec!["inspect", "--tls-verify=false"];
        if let Some(c) = creds {
            base.extend(["--creds", c]);
        }
        let raw = skopeo(&[&base[..], &["--raw", &target]].concat());
        assert_eq!(
            Digest::of(&raw).to_string(),
            image.manifest_digest,
            "{target} manifest"
        );
        let config = skopeo(&[&base[..], &["--config", "--raw", &target]].concat());
        assert_eq!(
            Digest::of(&config).to_string(),
            image.config.digest,
            "{target} config"
        );
        let info: serde_json::Value =
            serde_json::from_slice(&skopeo(&[&base[..], &[&target]].concat())).unwrap();
        let layers: Vec<&str> = info["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let want: Vec<&str> = image.layers.iter().map(|l| l.digest.as_str()).collect();
        assert_eq!(layers, want, "{target} layers");
        assert_eq!(info["Digest"], image.manifest_digest.as_str());
    }
}

fn pushes(archive: &Arc<ImageArchive>, host: &str, prefix: &str) -> Vec<ImagePush> {
    plan_archive(archive.clone(), &RelocationRule::new(host, prefix)).expect("plan")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_twelve_images_sharing_layers_then_skip_everything() {
    let registry = RegistryServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (archive, images) = generated(dir.path());
    let client = RegistryClient::new(&registry.host(), options(None)).unwrap();
    let plan = pushes(&archive, &registry.host(), "kant/apps");
    assert_eq!(plan.len(), 12);

    let report = push_images(&client, &plan, &PushOptions::default(), None).await;
    assert_eq!(report.failures().count(), 0, "{:#?}", report.images);
    // 2 shared base layers go up once and are mounted into the 11 other repositories;
    // every image has its own top layer and config.
    assert_eq!(report.blobs.uploaded, 2 + 12 + 12, "{report:?}");
    assert_eq!(report.blobs.mounted, 2 * 11, "{report:?}");
    assert_eq!(report.manifests_pushed, 12);
    assert!(report.images.iter().all(|i| i.action == ImageAction::Push));
    check_with_skopeo(&registry.host(), "kant/apps", &images, None);
    assert_eq!(
        client.list_tags("kant/apps/gen-app-03").await.unwrap(),
        vec!["1.0.0".to_string()]
    );

    let again = push_images(&client, &plan, &PushOptions::default(), None).await;
    assert_eq!(again.failures().count(), 0);
    assert_eq!(again.blobs.uploaded, 0, "{again:?}");
    assert_eq!(again.blobs.mounted, 0);
    assert_eq!(again.blobs.bytes_uploaded, 0);
    assert_eq!(again.manifests_pushed, 0);
    assert!(again.images.iter().all(|i| i.action == ImageAction::Skip));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_pointing_elsewhere_is_overwritten_or_refused() {
    let registry = RegistryServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (archive, _) = generated(dir.path());
    let client = RegistryClient::new(&registry.host(), options(None)).unwrap();
    let plan = pushes(&archive, &registry.host(), "kant");
    // Push image 1's content under image 0's target tag first.
    let mut wrong = plan[1].clone();
    wrong.repository = plan[0].repository.clone();
    let first = push_images(&client, &[wrong.clone()], &PushOptions::default(), None).await;
    assert_eq!(first.failures().count(), 0, "{first:?}");

    let refuse = PushOptions {
        tag_policy: kantup_registry::TagPolicy::Refuse,
        ..PushOptions::default()
    };
    let refused = push_images(&client, &plan[..1], &refuse, None).await;
    let err = refused.images[0].error.as_deref().expect("refused");
    assert!(err.contains("refusing to overwrite"), "{err}");
    assert!(err.contains(&wrong.manifest_digest.to_string()), "{err}");

    let overwritten = push_images(&client, &plan[..1], &PushOptions::default(), None).await;
    assert_eq!(overwritten.failures().count(), 0);
    assert_eq!(
        overwritten.images[0].action,
        ImageAction::Overwrite {
            previous: Some(wrong.manifest_digest)
        }
    );
    let now = client
        .head_manifest(&plan[0].repository, "1.0.0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.digest, Some(plan[0].manifest_digest));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_push_and_redacted_failure() {
    let registry = RegistryServer::start_basic("kantup", "basic-secret-pw");
    let dir = tempfile::tempdir().unwrap();
    let (archive, images) = generated(dir.path());
    let plan = pushes(&archive, &registry.host(), "auth");

    let anonymous = RegistryClient::new(&registry.host(), options(None)).unwrap();
    let err = anonymous.list_tags("auth/gen-app-00").await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");

    let wrong = RegistryClient::new(
        &registry.host(),
        options(Some(Credentials::new("kantup", "not-the-password"))),
    )
    .unwrap();
    let failed = push_images(&wrong, &plan[..1], &PushOptions::default(), None).await;
    let msg = failed.images[0]
        .error
        .clone()
        .expect("wrong password fails");
    assert!(msg.contains("authentication failed"), "{msg}");
    assert!(!msg.contains("not-the-password"), "{msg}");
    assert!(!format!("{wrong:?}").contains("not-the-password"));

    let good = RegistryClient::new(
        &registry.host(),
        options(Some(Credentials::new("kantup", "basic-secret-pw"))),
    )
    .unwrap();
    let report = push_images(&good, &plan[..3], &PushOptions::default(), None).await;
    assert_eq!(report.failures().count(), 0, "{report:?}");
    check_with_skopeo(
        &registry.host(),
        "auth",
        &images[..3],
        Some("kantup:basic-secret-pw"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_push() {
    let registry = RegistryServer::start_token("robot", "token-secret-pw");
    let dir = tempfile::tempdir().unwrap();
    let (archive, images) = generated(dir.path());
    let plan = pushes(&archive, &registry.host(), "tok");

    let wrong = RegistryClient::new(
        &registry.host(),
        options(Some(Credentials::new("robot", "nope-nope"))),
    )
    .unwrap();
    let err = wrong.list_tags("tok/gen-app-00").await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    assert!(!err.to_string().contains("nope-nope"));

    let client = RegistryClient::new(
        &registry.host(),
        options(Some(Credentials::new("robot", "token-secret-pw"))),
    )
    .unwrap();
    let report = push_images(&client, &plan[..4], &PushOptions::default(), None).await;
    assert_eq!(report.failures().count(), 0, "{report:?}");
    // Base layers were mounted across repositories: that needs a token with two scopes.
    assert!(report.blobs.mounted > 0, "{report:?}");
    let issued = registry.token_issuer().unwrap().tokens_issued();
    assert!(issued >= 4, "tokens issued: {issued}");
    check_with_skopeo(
        &registry.host(),
        "tok",
        &images[..4],
        Some("robot:token-secret-pw"),
    );
}

/// Item 4 of issue 11: 10% of the requests with a body cut in the middle of it, and on top
/// of that dropped connections, 500s and 429s with `Retry-After`; all 12 images arrive
/// digest-exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_through_faulty_proxy_keeps_digests() {
    let registry = RegistryServer::start();
    let proxy = FaultProxy::start(
        &registry.host(),
        FaultConfig {
            seed: 1234,
            fault_percent: 10,
            max_faults: 30,
            mid_body_percent: 10,
            ..FaultConfig::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let (archive, images) = generated(dir.path());
    let mut opts = options(None);
    // The fault proxy speaks plain HTTP only and never answers a TLS handshake.
    opts.http.plain_http = true;
    // A cut chunk makes docker-registry drop the session, and the blob starts over; 10% of
    // the requests failing never adds up to 12 failures in a row.
    opts.retry.max_attempts = 12;
    opts.chunk_size = 128 * 1024;
    let client = RegistryClient::new(&proxy.host(), opts).unwrap();
    let plan = pushes(&archive, &proxy.host(), "faulty");
    let report = push_images(&client, &plan, &PushOptions::default(), None).await;
    assert_eq!(report.failures().count(), 0, "{:#?}", report.images);
    let stats = proxy.stats();
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    assert!(count(&stats.dropped_mid_body) > 0, "{stats:?}");
    assert!(count(&stats.status_429) > 0, "{stats:?}");
    assert!(count(&stats.status_500) > 0, "{stats:?}");
    // Read back directly from the registry, not through the proxy.
    check_with_skopeo(&registry.host(), "faulty", &images, None);
}

/// A registry (or a proxy in front of it) that refuses `PATCH` gets every blob in one `PUT`.
/// docker-registry cannot be told to refuse chunks, so the proxy answers the `PATCH`es 405.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registry_refusing_chunks_gets_monolithic_uploads() {
    let registry = RegistryServer::start();
    let patches = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = patches.clone();
    let proxy = FaultProxy::start_tampering(
        &registry.host(),
        FaultConfig::clean(),
        Arc::new(move |request: &RequestHead| {
            if request.method == "PATCH" {
                seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                TamperAction::Respond(
                    b"HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\nContent-Length: 67\r\n\r\n{\"errors\":[{\"code\":\"UNSUPPORTED\",\"message\":\"chunked uploads off\"}]}"
                        .to_vec(),
                )
            } else {
                TamperAction::Forward
            }
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    let (archive, images) = generated(dir.path());
    let mut opts = options(None);
    opts.http.plain_http = true;
    let client = RegistryClient::new(&proxy.host(), opts).unwrap();
    let plan = pushes(&archive, &proxy.host(), "mono");
    let report = push_images(&client, &plan, &PushOptions::default(), None).await;
    assert_eq!(report.failures().count(), 0, "{:#?}", report.images);
    // The first large blob tried one PATCH (maybe a few in flight at once); then none.
    let tried = patches.load(std::sync::atomic::Ordering::Relaxed);
    assert!((1..=4).contains(&tried), "PATCHes tried: {tried}");
    check_with_skopeo(&registry.host(), "mono", &images, None);
}

/// A registry that goes down and stays down: every blob in flight gives up after its bounded
/// retries, images not started by then are not attempted, and the report says which images
/// are in and which are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registry_that_stays_down_fails_every_image_left_after_bounded_retries() {
    let registry = RegistryServer::start();
    let proxy = FaultProxy::start(
        &registry.host(),
        FaultConfig {
            fail_after_requests: Some(70),
            ..FaultConfig::clean()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let (archive, _) = generated(dir.path());
    let mut opts = options(None);
    opts.http.plain_http = true;
    opts.retry.max_attempts = 3;
    let client = RegistryClient::new(&proxy.host(), opts).unwrap();
    let plan = pushes(&archive, &proxy.host(), "down");
    let report = push_images(
        &client,
        &plan,
        &PushOptions {
            image_concurrency: 1,
            ..PushOptions::default()
        },
        None,
    )
    .await;
    let failed: Vec<&str> = report
        .failures()
        .filter_map(|i| i.error.as_deref())
        .collect();
    assert!(!failed.is_empty(), "{report:#?}");
    assert!(failed.len() < 12, "some images went in first: {report:#?}");
    assert!(
        failed
            .iter()
            .any(|e| e.contains("giving up after 3 attempts")),
        "{failed:#?}"
    );
    assert!(
        failed
            .iter()
            .any(|e| e.starts_with("not attempted:") && e.contains("stopped answering")),
        "{failed:#?}"
    );
    // What the report calls pushed is in the registry; what it calls failed is not.
    let direct = RegistryClient::new(&registry.host(), options(None)).unwrap();
    for (image, push) in report.images.iter().zip(&plan) {
        let stored = direct
            .head_manifest(&push.repository, "1.0.0")
            .await
            .unwrap();
        assert_eq!(stored.is_some(), image.error.is_none(), "{image:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interrupted_push_resumes_with_only_missing_blobs() {
    let registry = RegistryServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (archive, images) = generated(dir.path());
    let plan = pushes(&archive, &registry.host(), "resume");
    {
        let proxy = FaultProxy::start(
            &registry.host(),
            FaultConfig {
                seed: 9,
                fault_percent: 0,
                max_faults: 0,
                fail_after_requests: Some(60),
                ..FaultConfig::default()
            },
        );
        let mut opts = options(None);
        // The fault proxy speaks plain HTTP only and never answers a TLS handshake.
        opts.http.plain_http = true;
        opts.retry.max_attempts = 2;
        let client = RegistryClient::new(&proxy.host(), opts).unwrap();
        let via_proxy = pushes(&archive, &proxy.host(), "resume");
        let report = push_images(&client, &via_proxy, &PushOptions::default(), None).await;
        assert!(
            report.failures().count() > 0,
            "the proxy cut the push short"
        );
        assert!(report.blobs.uploaded > 0, "{report:?}");
    }
    let client = RegistryClient::new(&registry.host(), options(None)).unwrap();
    let mut total = 0;
    let mut missing = 0;
    for push in &plan {
        for blob in &push.blobs {
            total += 1;
            if !client
                .blob_exists(&push.repository, &blob.digest)
                .await
                .unwrap()
            {
                missing += 1;
            }
        }
    }
    assert!(
        missing > 0 && missing < total,
        "missing {missing} of {total}"
    );
    let report = push_images(&client, &plan, &PushOptions::default(), None).await;
    assert_eq!(report.failures().count(), 0, "{:#?}", report.images);
    assert_eq!(
        report.blobs.uploaded + report.blobs.mounted,
        missing,
        "{report:?}"
    );
    check_with_skopeo(&registry.host(), "resume", &images, None);
}

/// An image waiting for a shared layer that another image is still uploading does not hold up
/// the images after it: their own blobs use the free transfer slots meanwhile. The proxy holds
/// the shared layer's closing `PUT` for 1.5 s; with one image's manifest work at a time, the
/// third image's own layer still goes up before the first image is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn images_waiting_for_a_shared_layer_leave_the_slots_to_the_next_ones() {
    let registry = RegistryServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (archive, images) = generated_as(
        dir.path(),
        &GenSpec {
            images: 3,
            base_layers: 1,
            base_layer_size: 300 * 1024,
            own_layer_size: 40 * 1024,
            ..GenSpec::default()
        },
    );
    let shared = images[0].layers[0].digest.clone();
    let shared_hex = shared.trim_start_matches("sha256:").to_string();
    let proxy = FaultProxy::start_tampering(
        &registry.host(),
        FaultConfig::clean(),
        Arc::new(move |request: &RequestHead| {
            if request.method == "PUT" && request.target.contains(&shared_hex) {
                std::thread::sleep(Duration::from_millis(1500));
            }
            TamperAction::Forward
        }),
    );
    let mut opts = options(None);
    opts.http.plain_http = true;
    let client = RegistryClient::new(&proxy.host(), opts).unwrap();
    let plan = pushes(&archive, &proxy.host(), "slots");
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = events.clone();
    let observer: kantup_registry::Observer = Arc::new(move |event| {
        let line = match event {
            kantup_registry::PushEvent::BlobDone { digest, .. } => format!("blob {digest}"),
            kantup_registry::PushEvent::ImageDone { target, .. } => format!("image {target}"),
            _ => return,
        };
        seen.lock().unwrap().push(line);
    });
    let report = push_images(
        &client,
        &plan,
        &PushOptions {
            image_concurrency: 1,
            ..PushOptions::default()
        },
        Some(observer),
    )
    .await;
    assert_eq!(report.failures().count(), 0, "{:#?}", report.images);
    let events = events.lock().unwrap().clone();
    let position = |line: &str| events.iter().position(|e| e == line);
    let first_image_done = events
        .iter()
        .position(|e| e.starts_with("image "))
        .expect("images done");
    let third_own_layer = images[2].layers.last().unwrap().digest.clone();
    assert_ne!(third_own_layer, shared);
    let third_own_done = position(&format!("blob {third_own_layer}")).expect("third image's layer");
    assert!(
        third_own_done < first_image_done,
        "the third image's own layer waited for the first image: {events:#?}"
    );
    check_with_skopeo(&registry.host(), "slots", &images, None);
}
