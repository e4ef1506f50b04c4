// A second, independent relying party: openid-client (panva) runs discovery, the authorization
// code flow with PKCE (S256) through a real browser sign-in, and a refresh, against Visage.
// It prints one JSON object with what it saw; the Go end-to-end test asserts on it.
//
//   node openid-client.mjs --issuer URL --client-id ID --client-secret S --redirect URL --video FILE --username U [--alg ES256]
//   node openid-client.mjs --issuer URL --client-id ID --private-key KEY.jwk [--aud issuer|token_endpoint] --redirect URL ...
// It authenticates with client_secret_post, or with private_key_jwt when --private-key names a
// private JWK (the assertion's aud is the issuer, openid-client's default, or the token endpoint).
//
// RFC 9207: the provider advertises authorization_response_iss_parameter_supported, so
// openid-client requires iss in the authorization response and compares it with the issuer;
// the script also feeds it the same response with a forged iss and records that it refused.
import { readFileSync } from "node:fs";
import * as client from "openid-client";
import { signIn } from "./browser.mjs";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const out = {};
try {
  let metadata, auth;
  let tokenEndpoint = "";
  if (args["private-key"]) {
    const jwk = JSON.parse(readFileSync(args["private-key"], "utf8"));
    const key = await crypto.subtle.importKey("jwk", jwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    metadata = { token_endpoint_auth_method: "private_key_jwt", id_token_signed_response_alg: args.alg || "RS256" };
    auth = client.PrivateKeyJwt({ key, kid: jwk.kid }, {
      [client.modifyAssertion]: (_header, payload) => {
        if (args.aud === "token_endpoint") payload.aud = tokenEndpoint;
        out.assertion_aud = payload.aud;
      },
    });
  } else {
    metadata = { client_secret: args["client-secret"], id_token_signed_response_alg: args.alg || "RS256" };
    auth = client.ClientSecretPost(args["client-secret"]);
  }
  const config = await client.discovery(new URL(args.issuer), args["client-id"], metadata, auth, { execute: [client.allowInsecureRequests] });
  out.issuer = config.serverMetadata().issuer;
  tokenEndpoint = config.serverMetadata().token_endpoint;
  out.iss_supported = config.serverMetadata().authorization_response_iss_parameter_supported === true;
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
  const callback = new URL(res.final_url);
  out.response_iss = callback.searchParams.get("iss");
  // The same response with a forged iss: openid-client must refuse it before any token request.
  const forged = new URL(callback);
  forged.searchParams.set("iss", "https://attacker.example");
  try {
    await client.authorizationCodeGrant(config, forged, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
    out.forged_iss_refused = false;
  } catch (e) {
    out.forged_iss_refused = true;
    const cause = e && e.cause;
    out.forged_iss_error = String((e && e.message) || e) + (cause ? ": " + String(cause.message || JSON.stringify(cause)) : "");
  }
  const tokens = await client.authorizationCodeGrant(config, callback, {
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
