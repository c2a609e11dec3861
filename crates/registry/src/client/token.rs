//! Registry auth: parsing `WWW-Authenticate` challenges, switching to basic auth, and fetching
//! bearer tokens per scope from the registry's token realm.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use reqwest::header::AUTHORIZATION;
use reqwest::{Method, Response, StatusCode};

use super::RegistryClient;
use crate::error::{RegistryError, Result};

/// One parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="..."`.
    Basic,
    /// `Bearer realm="...",service="...",scope="..."`.
    Bearer {
        /// Where to ask for a token.
        realm: String,
        /// The `service` to ask the token for, if named.
        service: Option<String>,
        /// The scope the registry asked for, if named.
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses a header value such as `Bearer realm="https://auth",service="reg",scope="a:b:c"`.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(rest);
        let realm = params.get("realm")?.clone();
        Some(Challenge::Bearer {
            realm,
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        })
    }
}

/// `k="v",k2="v, with comma",k3=v3`
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n)
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        out.insert(key, value);
    }
    out
}

impl RegistryClient {
    /// Answers a 401: fetches a token for `scope` or switches to basic auth.
    pub(super) async fn handle_challenge(&self, response: &Response, scope: &str) -> Result<()> {
        let header = response
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        match Challenge::parse(&header) {
            Some(Challenge::Basic) => {
                if self.credentials.is_none() {
                    return Err(RegistryError::Unauthorized {
                        registry: self.host.clone(),
                        reason: "basic auth required and no credentials configured".into(),
                    });
                }
                // Concurrent requests may all see this challenge; the caller re-sends once
                // and treats a second 401 as rejected credentials.
                self.use_basic.store(true, Ordering::Relaxed);
                Ok(())
            }
            Some(Challenge::Bearer { realm, service, .. }) => {
                let token = self.fetch_token(&realm, service.as_deref(), scope).await?;
                self.tokens
                    .lock()
                    .expect("token cache")
                    .insert(scope.to_string(), token);
                Ok(())
            }
            None => Err(RegistryError::BadChallenge {
                registry: self.host.clone(),
                reason: format!("unsupported WWW-Authenticate {header:?}"),
            }),
        }
    }

    async fn fetch_token(&self, realm: &str, service: Option<&str>, scope: &str) -> Result<String> {
        let mut url = url::Url::parse(realm).map_err(|e| RegistryError::BadChallenge {
            registry: self.host.clone(),
            reason: format!("realm {realm:?}: {e}"),
        })?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for part in scope.split(' ').filter(|s| !s.is_empty()) {
                q.append_pair("scope", part);
            }
        }
        let mut rb = self.http.get(url.clone());
        // The registry named this realm as the place to trade its credentials for a token
        // (docker, helm and skopeo do the same); the token itself goes only to the registry.
        if let Some(c) = &self.credentials {
            rb = rb.header(AUTHORIZATION, c.basic_header());
        }
        let response = rb
            .send()
            .await
            .map_err(|source| self.request_error(&Method::GET, realm, source))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RegistryError::Unauthorized {
                registry: self.host.clone(),
                reason: format!("token endpoint {realm} answered {status}"),
            });
        }
        if !status.is_success() {
            return Err(RegistryError::Status {
                method: "GET".into(),
                url: realm.to_string(),
                status: status.as_u16(),
                body: String::new(),
            });
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let answer: TokenAnswer =
            response
                .json()
                .await
                .map_err(|e| RegistryError::BadChallenge {
                    registry: self.host.clone(),
                    reason: format!("token answer from {realm}: {e}"),
                })?;
        answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| RegistryError::BadChallenge {
                registry: self.host.clone(),
                reason: format!("token answer from {realm} has no token"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let cases = [
            ("Basic realm=\"Registry Realm\"", Some(Challenge::Basic)),
            (
                "Bearer realm=\"https://auth.example/token\",service=\"reg\",scope=\"repository:a/b:pull,push\"",
                Some(Challenge::Bearer {
                    realm: "https://auth.example/token".into(),
                    service: Some("reg".into()),
                    scope: Some("repository:a/b:pull,push".into()),
                }),
            ),
            (
                "Bearer realm=http://127.0.0.1:1/t, service=x",
                Some(Challenge::Bearer {
                    realm: "http://127.0.0.1:1/t".into(),
                    service: Some("x".into()),
                    scope: None,
                }),
            ),
            ("Bearer service=\"no-realm\"", None),
            ("Negotiate abc", None),
        ];
        for (header, want) in cases {
            assert_eq!(Challenge::parse(header), want, "{header}");
        }
    }
}
