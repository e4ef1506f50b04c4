// A second, independent relying party: openid-client (panva) runs discovery, the authorization
// code flow with PKCE (S256) through a real browser sign-in, and a refresh, against Visage.
// It prints one JSON object with what it saw; the Go end-to-end test asserts on it.
//
//   node openid-client.mjs --issuer URL --client-id ID --client-secret S --redirect URL --video FILE --username U [--alg ES256]
// It authenticates with client_secret_post.
import * as client from "openid-client";
import { signIn } from "./browser.mjs";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const out = {};
try {
  const metadata = { client_secret: args["client-secret"], id_token_signed_response_alg: args.alg || "RS256" };
  const config = await client.discovery(new URL(args.issuer), args["client-id"], metadata,
    client.ClientSecretPost(args["client-secret"]), { execute: [client.allowInsecureRequests] });
  out.issuer = config.serverMetadata().issuer;
  const verifier = client.randomPKCECodeVerifier();
  const challenge = await client.calculatePKCECodeChallenge(verifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authURL = client.buildAuthorizationUrl(config, {
    redirect_uri: args.redirect, scope: "openid profile email offline_access",
    code_challenge: challenge, code_challenge_method: "S256", state, nonce,
  });
  const res = await signIn({ start: authURL.href, video: args.video, until: args.redirect, username: args.username });
  out.browser = res;
  if (res.outcome !== "redirected") throw new Error("sign-in did not reach the redirect URI: " + JSON.stringify(res));
  const tokens = await client.authorizationCodeGrant(config, new URL(res.final_url), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  });
  const claims = tokens.claims();
  out.claims = claims;
  out.has_refresh_token = !!tokens.refresh_token;
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  out.userinfo = info;
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  out.refreshed = { rotated: !!refreshed.refresh_token && refreshed.refresh_token !== tokens.refresh_token, sub: refreshed.claims()?.sub };
  out.ok = true;
} catch (e) {
  out.ok = false;
  out.error = String((e && e.message) || e);
}
console.log(JSON.stringify(out));
