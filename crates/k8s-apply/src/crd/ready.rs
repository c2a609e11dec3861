//! Waiting for applied CRDs to be served: `NamesAccepted` and `Established`.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use super::apply::CrdApplier;
use crate::error::{Error, Result};

impl CrdApplier {
    /// Polls (with backoff, 100 ms doubling up to 2 s) until the CRD's `Established` and
    /// `NamesAccepted` conditions are `True`. Fails at once when `NamesAccepted` is `False` (a
    /// name conflict does not heal by waiting), and after the timeout otherwise, naming the
    /// condition and the server's reason and message.
    pub async fn wait_ready(&self, name: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.options.timeout;
        let mut delay = Duration::from_millis(100);
        loop {
            let crd = self
                .api
                .get(name)
                .await
                .map_err(|e| Error::api(format!("get CustomResourceDefinition {name}"), e))?;
            let not_ready = first_unready_condition(&crd);
            let Some((condition, status, reason, message)) = not_ready else {
                return Ok(());
            };
            let failed_now = condition == "NamesAccepted" && status == "False";
            let now = tokio::time::Instant::now();
            if failed_now || now >= deadline {
                return Err(Error::CrdNotReady {
                    name: name.to_string(),
                    condition,
                    status,
                    detail: crate::error::detail_suffix(&reason, &message),
                    timeout: self.options.timeout,
                });
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }
}

/// The first condition not `True`: (type, status, reason, message).
type Unready = (String, String, Option<String>, Option<String>);

fn first_unready_condition(crd: &CustomResourceDefinition) -> Option<Unready> {
    let conditions = crd
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    // NamesAccepted first: when it fails, Established never comes and its reason says why.
    for wanted in ["NamesAccepted", "Established"] {
        match conditions.iter().find(|c| c.type_ == wanted) {
            Some(c) if c.status == "True" => {}
            Some(c) => {
                return Some((
                    wanted.to_string(),
                    c.status.clone(),
                    c.reason.clone().filter(|r| !r.is_empty()),
                    c.message.clone().filter(|m| !m.is_empty()),
                ));
            }
            None => return Some((wanted.to_string(), "missing".to_string(), None, None)),
        }
    }
    None
}
