// Drives a real sign-in in headless Debian Chromium whose camera is a y4m file, the way a user
// would: it opens --start, types the username, takes the selfie, allows consent, and stops when
// the browser reaches a URL starting with --until (the relying party's redirect URI) or when the
// selfie is refused. It prints one JSON object: {final_url, outcome, message, steps}.
//
//   node browser.mjs --start URL --video FILE.y4m --until PREFIX [--username U] [--consent allow|deny|stop]
//                    [--profile DIR] [--timeout-ms N] [--screenshot FILE]
import { chromium } from "playwright-core";
import { pageState, clickAndLeave, clickAndSettle, waitCaptureReady } from "./pagestate.mjs";


const CHROMIUM_ARGS = [
  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
  "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--disable-quic", "--no-first-run",
];

// signIn runs one sign-in and returns {final_url, outcome, message, steps}.
export async function signIn(args) {
  const timeout = Number(args["timeout-ms"] || 150000);
  const opts = {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true,
    args: [...CHROMIUM_ARGS, `--use-file-for-fake-video-capture=${args.video}`],
  };
  let browser = null;
  const context = args.profile
    ? await chromium.launchPersistentContext(args.profile, opts)
    : await (browser = await chromium.launch(opts)).newContext();
  await context.grantPermissions(["camera"]);
  const page = context.pages()[0] || (await context.newPage());
  const steps = [];
  const out = { final_url: "", outcome: "timeout", message: "", steps };
  const deadline = Date.now() + timeout;
  let captures = 0;
  try {
    await page.goto(args.start);
    while (Date.now() < deadline) {
      const url = page.url();
      if (url.startsWith(args.until)) { out.outcome = "redirected"; break; }
      const st = await pageState(page);
      if (st === null) { await page.waitForTimeout(100); continue; }
      if (st.error !== null) { out.outcome = "error_page"; out.message = st.error; break; }
      if (st.username) {
        const input = page.locator('form[action="/login"] input[name="username"]');
        if (args.username) await input.fill(args.username);
        steps.push("username");
        await clickAndLeave(page, "#next", deadline - Date.now());
        continue;
      }
      if (st.consent) {
        steps.push("consent");
        if (args.consent === "stop") { out.outcome = "consent"; break; } // leave the user on the consent page
        await clickAndLeave(page, `button[value="${args.consent || "allow"}"]`, deadline - Date.now());
        continue;
      }
      if (st.capture) {
        if (captures >= 1) {
          if (st.status) { out.outcome = "refused"; out.message = st.statusText; break; }
        } else {
          await waitCaptureReady(page, deadline - Date.now());
          steps.push("selfie");
          captures++;
          await clickAndSettle(page, "#capture", deadline - Date.now());
          continue;
        }
      }
      await page.waitForTimeout(100); // poll interval
    }
  } catch (e) {
    out.outcome = "exception"; out.message = String((e && e.message) || e);
  }
  out.final_url = page.url();
  if (args.screenshot) await page.screenshot({ path: args.screenshot }).catch(() => {});
  // A caller in JavaScript may go on in the same browser (same cookies) before it closes.
  if (typeof args.after === "function") {
    try { await args.after(page, context, out); } catch (e) { out.after_error = String((e && e.message) || e); }
  }
  await context.close();
  if (browser) await browser.close();
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = {};
  for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
  for (const k of ["start", "video", "until"]) if (!args[k]) { console.error("missing --" + k); process.exit(2); }
  console.log(JSON.stringify(await signIn(args)));
}
