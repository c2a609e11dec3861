// The sigstore-js oracle of kantup's offline image-signature verifier: sigstore-js's own
// verifier (@sigstore/verify, installed with the npm package `sigstore` into
// .tools/sigstore-js by scripts/install-test-tools.sh) checks one Sigstore bundle with one
// public key, fully offline: an empty trusted root (no TUF fetch), no transparency log, no
// certificate, no timestamp required (the thresholds a key-only, tlog-free signature has).
//
//   node verify.js BUNDLE.json KEY.pem [ARTIFACT]
//
// ARTIFACT is the signed message of a message-signature bundle (for an image: its manifest).
// Prints `verified` (exit 0) or `refused: CODE message` (exit 1).
const fs = require('fs');
const { Verifier, toTrustMaterial, toSignedEntity } = require('@sigstore/verify');
const { bundleFromJSON } = require('@sigstore/bundle');
const { crypto } = require('@sigstore/core');
const { TrustedRoot } = require('@sigstore/protobuf-specs');

const [bundlePath, keyPath, artifactPath] = process.argv.slice(2);
const root = TrustedRoot.fromJSON({
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [],
});
const pem = fs.readFileSync(keyPath, 'utf8');
// Whatever key the bundle hints at, the one key given is the one tried.
const keys = () => ({ publicKey: crypto.createPublicKey(pem), validFor: () => true });
const verifier = new Verifier(toTrustMaterial(root, keys), {
  tlogThreshold: 0,
  ctlogThreshold: 0,
  timestampThreshold: 0,
});
try {
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, 'utf8')));
  const artifact = artifactPath ? fs.readFileSync(artifactPath) : undefined;
  verifier.verify(toSignedEntity(bundle, artifact), {});
  console.log('verified');
} catch (e) {
  console.log(`refused: ${e.code || e.name} ${e.message}`);
  process.exit(1);
}
