// Drives the Sessions API's browser pages in headless Debian Chromium whose camera is a y4m file.
//
//   node sessions.mjs hosted --url SESSION_URL --video FILE.y4m --until CALLBACK_PREFIX [--max-captures N]
//     opens the hosted page, takes selfies (again while the server asks for another one), and
//     stops at the application's callback (outcome "redirected") or on the finished page
//     (outcome "done"). Prints {final_url, outcome, message, status, captures}.
//
//   node sessions.mjs console --start URL --video FILE.y4m --username U --decision Approved|Declined --comment TEXT
//     opens a console page, signs in through Visage (username, selfie, consent if asked), then
//     decides the session shown with the comment, and stops when the page shows the new status
//     (outcome "decided"). Prints {final_url, outcome, message, status, steps}.
import { chromium } from "playwright-core";
import { pageState, clickAndLeave, clickAndSettle, waitCaptureReady } from "./pagestate.mjs";

const CHROMIUM_ARGS = [
  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
  "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--disable-quic", "--no-first-run",
];

async function open(video) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true,
    args: [...CHROMIUM_ARGS, `--use-file-for-fake-video-capture=${video}`],
  });
  const context = await browser.newContext();
  await context.grantPermissions(["camera"]);
  return { browser, page: await context.newPage() };
}

// snap takes a selfie once the camera runs and waits for the server's answer: a navigation,
// or the status line's data-status.
async function snap(page, deadline) {
  await waitCaptureReady(page, deadline - Date.now());
  await clickAndSettle(page, "#capture", deadline - Date.now());
}

async function hosted(args) {
  const { browser, page } = await open(args.video);
  const out = { final_url: "", outcome: "timeout", message: "", status: "", captures: 0 };
  const deadline = Date.now() + Number(args["timeout-ms"] || 150000);
  const maxCaptures = Number(args["max-captures"] || 3);
  try {
    await page.goto(args.url);
    while (Date.now() < deadline) {
      const url = page.url();
      if (url.startsWith(args.until)) {
        out.outcome = "redirected";
        out.status = new URL(url).searchParams.get("status") || "";
        break;
      }
      const st = await pageState(page);
      if (st === null) { await page.waitForTimeout(100); continue; }
      if (st.sessionStatus !== null) { out.outcome = "done"; out.status = st.sessionStatus; out.message = st.sessionText; break; }
      if (st.error !== null) { out.outcome = "error_page"; out.message = st.error; break; }
      if (st.capture) {
        if (out.captures === 0 || st.status === "retry") {
          if (out.captures >= maxCaptures) { out.outcome = "too_many_captures"; out.message = st.statusText; break; }
          out.captures++;
          await snap(page, deadline);
          continue;
        } else if (st.status) {
          out.outcome = "refused"; out.status = st.status; out.message = st.statusText; break;
        }
      }
      await page.waitForTimeout(100); // poll interval
    }
  } catch (e) {
    out.outcome = "exception"; out.message = String((e && e.message) || e);
  }
  out.final_url = page.url();
  if (args.screenshot) await page.screenshot({ path: args.screenshot }).catch(() => {});
  await browser.close();
  return out;
}

async function consoleDecide(args) {
  const { browser, page } = await open(args.video);
  const steps = [];
  const out = { final_url: "", outcome: "timeout", message: "", status: "", steps };
  const deadline = Date.now() + Number(args["timeout-ms"] || 150000);
  let captured = false;
  let decided = false;
  try {
    await page.goto(args.start);
    while (Date.now() < deadline) {
      const st = await pageState(page);
      if (st === null) { await page.waitForTimeout(100); continue; }
      if (st.error !== null) { out.outcome = "error_page"; out.message = st.error; break; }
      if (st.username) {
        steps.push("username");
        await page.locator('form[action="/login"] input[name="username"]').fill(args.username);
        await clickAndLeave(page, "#next", deadline - Date.now());
        continue;
      }
      if (st.consent) {
        steps.push("consent");
        await clickAndLeave(page, 'button[value="allow"]', deadline - Date.now());
        continue;
      }
      if (st.capture) {
        if (!captured) { steps.push("selfie"); captured = true; await snap(page, deadline); continue; }
        if (st.status) { out.outcome = "refused"; out.message = st.statusText; break; }
      } else if (st.decide && !decided) {
        steps.push("decide");
        decided = true;
        await page.locator('form#decide textarea[name="comment"]').fill(args.comment);
        await clickAndLeave(page, args.decision === "Declined" ? "#decline" : "#approve", deadline - Date.now());
        continue;
      } else if (st.sessionStatus !== null) {
        out.status = st.sessionStatus;
        if (decided && out.status === args.decision) { out.outcome = "decided"; break; }
        if (!decided && !st.decide) { out.outcome = "not_decidable"; break; }
      }
      await page.waitForTimeout(100); // poll interval
    }
  } catch (e) {
    out.outcome = "exception"; out.message = String((e && e.message) || e);
  }
  out.final_url = page.url();
  if (args.screenshot) await page.screenshot({ path: args.screenshot }).catch(() => {});
  await browser.close();
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const mode = process.argv[2];
  const args = {};
  for (let i = 3; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
  const need = { hosted: ["url", "video", "until"], console: ["start", "video", "username", "decision", "comment"] }[mode];
  if (!need) { console.error("usage: node sessions.mjs hosted|console ..."); process.exit(2); }
  for (const k of need) if (!args[k]) { console.error("missing --" + k); process.exit(2); }
  console.log(JSON.stringify(mode === "hosted" ? await hosted(args) : await consoleDecide(args)));
}
