//! Host names resolved without the C library: hickory-dns reading `/etc/hosts` and
//! `/etc/resolv.conf` itself.
//!
//! The release binary is linked statically, so the C library's resolver (`getaddrinfo` and
//! its NSS modules, loaded at run time from the glibc the binary was built with) is not
//! there on the node it runs on. Every HTTP client of this crate resolves through
//! [`HostResolver`] instead: names in `/etc/hosts` first, then the nameservers of
//! `/etc/resolv.conf`. A node without `/etc/resolv.conf` (a minimal root, an air-gapped
//! appliance) still resolves what `/etc/hosts` lists, and IP addresses need no resolving.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfigGroup, ResolveHosts, ResolverConfig,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// reqwest's resolver for kantup's clients: `/etc/hosts`, then `/etc/resolv.conf`'s
/// nameservers. Built on first use (inside the Tokio runtime), shared by clones.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostResolver {
    resolver: Arc<OnceLock<TokioResolver>>,
}

impl Resolve for HostResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let cell = self.resolver.clone();
        Box::pin(async move {
            let resolver = cell.get_or_init(new_resolver);
            let lookup = resolver.lookup_ip(name.as_str()).await?;
            let addrs: Vec<SocketAddr> = lookup.iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The system's configuration when `/etc/resolv.conf` reads; else no nameservers, so only
/// `/etc/hosts` answers. Both address families, for happy eyeballs.
fn new_resolver() -> TokioResolver {
    let provider = TokioConnectionProvider::default();
    let mut builder = match TokioResolver::builder(provider.clone()) {
        Ok(builder) => builder,
        Err(error) => {
            tracing::debug!("no DNS configuration ({error}); resolving from /etc/hosts only");
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, Vec::new(), NameServerConfigGroup::new()),
                provider,
            )
        }
    };
    builder.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    builder.options_mut().use_hosts_file = ResolveHosts::Always;
    builder.build()
}
