// An application's selfie re-authentication, written from the examples of Didit's biometric
// re-authentication guide alone (../shared/reference/didit-biometric-reauth.txt), with nothing
// of Visage in it but the base URL it is pointed at. It plays both sides of one sign-in:
//
//   - the application: STEP 1 opens a re-auth session (POST /v3/session/ with workflow_type
//     "biometric_authentication", vendor_data, callback, metadata and the portrait_image) and
//     redirects the user to session_url; STEP 2 reads the signed verdict on its webhook after
//     checking X-Signature-V2 = HMAC-SHA256 of the raw body bytes; STEP 3 branches on the status
//     (Approved -> sign in, Declined -> block, In Review -> hold, Not Finished -> re-prompt);
//     it also reads GET /v3/session/{id}/decision/ with face.similarity_score;
//   - the user: headless Chromium whose fake camera is a y4m clip opens session_url, and either
//     takes the selfie (--user selfie) or leaves (--user leave).
//
//   node guide-client.mjs --base URL --api-key KEY --webhook-secret SECRET --listen PORT
//     --workflow-id ID --vendor-data TEXT --portrait FILE.jpg --video FILE.y4m --user selfie|leave
//
// It prints one JSON line: {outcome, status, session_id, similarity_score, webhook, decision,
// signatures: {checked, failed}, responses: [{method, path, status, content_type, body}],
// webhook_bodies: [raw body, ...]}.
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import { chromium } from "playwright-core";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
for (const k of ["base", "api-key", "webhook-secret", "listen", "workflow-id", "vendor-data", "portrait", "video", "user"]) {
  if (!args[k]) { console.error("missing --" + k); process.exit(2); }
}
const BASE = args.base.replace(/\/$/, "");
const DIDIT_API_KEY = args["api-key"];
const WEBHOOK_SECRET = args["webhook-secret"];
const APP = `http://127.0.0.1:${args.listen}`;
const deadline = Date.now() + Number(args["timeout-ms"] || 90000);

const responses = []; // every answer of the API, for the caller to check against the OpenAPI document
async function api(method, path, body) {
  const res = await fetch(BASE + path, {
    method,
    headers: { "x-api-key": DIDIT_API_KEY, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  responses.push({ method, path, status: res.status, content_type: res.headers.get("content-type") || "", body: text });
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

// STEP 2's receiver: "Verify X-Signature-V2 BEFORE trusting the body - HMAC SHA-256 of the raw
// bytes with your webhook secret."
const webhooks = [];
const webhookBodies = []; // as received, for the caller's schema check
const signatures = { checked: 0, failed: 0 };
let callbackStatus = "";
const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url.startsWith("/reauth/callback")) {
    callbackStatus = new URL(req.url, APP).searchParams.get("status") || "";
    res.writeHead(200, { "Content-Type": "text/plain" }).end("back in the application");
    return;
  }
  if (req.method !== "POST" || req.url !== "/webhooks/didit") { res.writeHead(404).end(); return; }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const raw = Buffer.concat(chunks);
    const expected = crypto.createHmac("sha256", WEBHOOK_SECRET).update(raw).digest("hex");
    const got = String(req.headers["x-signature-v2"] || "");
    signatures.checked++;
    if (got.length !== expected.length || !crypto.timingSafeEqual(Buffer.from(got), Buffer.from(expected))) {
      signatures.failed++;
      res.writeHead(401).end("bad signature");
      return;
    }
    webhooks.push(JSON.parse(raw.toString("utf8")));
    webhookBodies.push(raw.toString("utf8"));
    res.writeHead(200).end("ok");
  });
});
await new Promise((resolve) => server.listen(Number(args.listen), "127.0.0.1", resolve));

const out = { outcome: "timeout", status: "", session_id: "", similarity_score: null, webhook: null, decision: null, signatures, responses, webhook_bodies: webhookBodies, callback_status: "" };
let browser;
try {
  // STEP 1 - Open a re-auth session.
  const created = await api("POST", "/v3/session/", {
    workflow_id: args["workflow-id"],
    workflow_type: "biometric_authentication",
    vendor_data: args["vendor-data"],
    callback: `${APP}/reauth/callback`,
    metadata: { purpose: "returning_user_signin", device_id: "e2e-device", from_ip: "127.0.0.1" },
    portrait_image: fs.readFileSync(args.portrait).toString("base64"),
  });
  if (created.status !== 201 || !created.json.session_url) throw new Error(`create: ${created.status} ${JSON.stringify(created.json)}`);
  const sessionId = created.json.session_id;
  out.session_id = sessionId;

  // "Redirect the user." The user, in a browser with a camera, takes the selfie or leaves.
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true,
    args: ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", `--use-file-for-fake-video-capture=${args.video}`,
      "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const context = await browser.newContext();
  await context.grantPermissions(["camera"]);
  const page = await context.newPage();
  await page.goto(created.json.session_url);
  const backHome = page.waitForURL((u) => u.href.startsWith(`${APP}/reauth/callback`), { timeout: Math.max(deadline - Date.now(), 1000) });
  if (args.user === "leave") {
    await page.locator("#not-now").click();
  } else {
    await page.waitForFunction(() => !document.getElementById("capture").disabled, null, { timeout: 30000 });
    await page.waitForFunction(() => { const v = document.getElementById("video"); return v && v.readyState >= 2 && v.videoWidth > 0; }, null, { timeout: 30000 });
    await page.locator("#capture").click();
  }
  await backHome;
  out.callback_status = callbackStatus;

  // STEP 2 - the signed verdict arrives on the webhook (the In Progress event comes first).
  let verdict = null;
  while (!verdict && Date.now() < deadline) {
    verdict = webhooks.find((w) => w.session_id === sessionId && !["Not Started", "In Progress"].includes(w.status));
    if (!verdict) await new Promise((r) => setTimeout(r, 100));
  }
  if (!verdict) throw new Error("no verdict webhook");
  out.webhook = { status: verdict.status, vendor_data: verdict.vendor_data, liveness: verdict.liveness ?? null, face: verdict.face ?? null };

  // The decision endpoint says the same.
  const decision = await api("GET", `/v3/session/${sessionId}/decision/`);
  out.decision = { status: decision.json.status, vendor_data: decision.json.vendor_data, liveness: decision.json.liveness, face: decision.json.face };
  out.status = verdict.status;
  out.similarity_score = verdict.face ? verdict.face.similarity_score : null;

  // STEP 3 - Branch your sign-in logic on the verdict.
  switch (verdict.status) {
    case "Approved": out.outcome = "signed_in"; out.session_token = crypto.randomBytes(16).toString("hex"); break;
    case "Declined": out.outcome = "blocked"; break;
    case "In Review": out.outcome = "held"; break;
    case "Not Finished": out.outcome = "re_prompt"; break;
    default: out.outcome = "fallback";
  }
} catch (e) {
  out.outcome = "exception";
  out.message = String((e && e.message) || e);
} finally {
  if (browser) await browser.close();
  server.close();
}
console.log(JSON.stringify(out));
