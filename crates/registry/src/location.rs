//! Where charts are read from or written to: the one parser of the locations kantup takes for
//! chart repositories and chart targets: `oci://host/path` (an OCI registry repository),
//! `http://` and `https://` URLs (an index-based repository: Harbor, ChartMuseum, a static
//! server), and anything else, a directory (charts-syncer's LOCAL).

use std::path::Path;

use url::Url;

/// A chart location, by its scheme.
///
/// ```
/// use kantup_registry::location::ChartLocation;
/// assert_eq!(ChartLocation::parse("oci://reg:5000/charts"), ChartLocation::Oci("reg:5000/charts"));
/// assert_eq!(ChartLocation::parse("https://h/chartrepo/p"), ChartLocation::Http("https://h/chartrepo/p"));
/// assert!(ChartLocation::parse("./charts").is_directory());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartLocation<'a> {
    /// `oci://REFERENCE`: what follows `oci://` (`host[:port]/path`).
    Oci(&'a str),
    /// An `http://` or `https://` URL, as given.
    Http(&'a str),
    /// Anything else: a directory.
    Directory(&'a Path),
}

impl<'a> ChartLocation<'a> {
    /// Reads `text` by its scheme (nothing is checked or fetched).
    pub fn parse(text: &'a str) -> Self {
        if let Some(reference) = text.strip_prefix("oci://") {
            ChartLocation::Oci(reference)
        } else if text.starts_with("http://") || text.starts_with("https://") {
            ChartLocation::Http(text)
        } else {
            ChartLocation::Directory(Path::new(text))
        }
    }

    /// Whether the location is a directory (not a URL).
    pub fn is_directory(&self) -> bool {
        matches!(self, ChartLocation::Directory(_))
    }
}

/// An OCI registry location: the registry host, the repository path below it, and whether it
/// is spoken to over plain HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciLocation {
    /// `host[:port]`.
    pub host: String,
    /// The repository path below the host, without slashes at either end; may be empty.
    pub path: String,
    /// The location was an `http://` URL.
    pub plain_http: bool,
}

impl OciLocation {
    /// An OCI registry location as charts-syncer's `target.repo.url` takes it:
    /// `oci://host/path`, `https://host/path`, `http://host/path` (plain HTTP) or
    /// `host/path`. `None` when it names no host.
    ///
    /// ```
    /// use kantup_registry::location::OciLocation;
    /// let l = OciLocation::parse("http://reg:5000/charts/").unwrap();
    /// assert_eq!((l.host.as_str(), l.path.as_str(), l.plain_http), ("reg:5000", "charts", true));
    /// assert_eq!(OciLocation::parse("oci://reg").unwrap().path, "");
    /// assert!(OciLocation::parse("oci://").is_none());
    /// ```
    pub fn parse(text: &str) -> Option<Self> {
        let (plain_http, rest) = if let Some(rest) = text.strip_prefix("http://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("https://") {
            (false, rest)
        } else {
            (false, text.strip_prefix("oci://").unwrap_or(text))
        };
        let rest = rest.trim_end_matches('/');
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        (!host.is_empty()).then(|| OciLocation {
            host: host.to_owned(),
            path: path.to_owned(),
            plain_http,
        })
    }
}

/// `host` and `repository` of an `oci://` reference (what follows `oci://`), both present.
pub(crate) fn split_reference(reference: &str) -> Option<(&str, &str)> {
    reference
        .split_once('/')
        .map(|(host, repo)| (host, repo.trim_matches('/')))
        .filter(|(host, repo)| !host.is_empty() && !repo.is_empty())
}

/// `host[:port]` of a parsed URL: what credentials are looked up by and messages name.
pub fn authority(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => String::new(),
    }
}

/// `host[:port]` of a URL as written (user-info, path, query and fragment cut off), for one
/// that may not parse.
///
/// ```
/// use kantup_registry::location::url_authority;
/// assert_eq!(url_authority("https://u:p@h.example:8443/chartrepo/lib?x#y"), "h.example:8443");
/// assert_eq!(url_authority("h.example/charts"), "h.example");
/// ```
pub fn url_authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit('@').next().unwrap_or(authority).to_owned()
}
