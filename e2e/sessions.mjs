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

// snap clicks #capture once the camera runs and waits for the server's answer: a navigation,
// or the status line's data-status.
async function snap(page) {
  await page.waitForFunction(() => !document.getElementById("capture").disabled, null, { timeout: 20000 });
  await page.waitForTimeout(700); // let the fake camera deliver a few frames
  await page.evaluate(() => { const s = document.getElementById("status"); if (s) delete s.dataset.status; });
  await page.locator("#capture").click();
}

async function hosted(args) {
  const { browser, page } = await open(args.video);
  const out = { final_url: "", outcome: "timeout", message: "", status: "", captures: 0 };
  const deadline = Date.now() + Number(args["timeout-ms"] || 60000);
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
      if (await page.locator("#session-status").count()) {
        out.outcome = "done";
        out.status = await page.locator("#session-status").getAttribute("data-status");
        out.message = await page.locator("#session-status").innerText();
        break;
      }
      if (await page.locator("#error-message").count()) {
        out.outcome = "error_page"; out.message = await page.locator("#error-message").innerText(); break;
      }
      const st = page.locator("#status");
      if (await page.locator("#capture").count()) {
        const answered = await st.getAttribute("data-status");
        if (out.captures === 0 || answered === "retry") {
          if (out.captures >= maxCaptures) { out.outcome = "too_many_captures"; out.message = await st.innerText(); break; }
          out.captures++;
          await snap(page);
        } else if (answered) {
          out.outcome = "refused"; out.status = answered; out.message = await st.innerText(); break;
        }
      }
      await page.waitForTimeout(200);
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
  const deadline = Date.now() + Number(args["timeout-ms"] || 90000);
  let captured = false;
  let decided = false;
  try {
    await page.goto(args.start);
    while (Date.now() < deadline) {
      if (await page.locator("#error-message").count()) {
        out.outcome = "error_page"; out.message = await page.locator("#error-message").innerText(); break;
      }
      if (await page.locator('form[action="/login"] input[name="username"]').count()) {
        steps.push("username");
        await page.locator('form[action="/login"] input[name="username"]').fill(args.username);
        await Promise.all([page.waitForLoadState("load"), page.locator("#next").click()]);
        await page.waitForTimeout(100);
        continue;
      }
      if (await page.locator('button[value="allow"]').count()) {
        steps.push("consent");
        await page.locator('button[value="allow"]').click();
        await page.waitForTimeout(300);
        continue;
      }
      if (await page.locator("#capture").count()) {
        const st = await page.locator("#status").getAttribute("data-status");
        if (!captured) { steps.push("selfie"); captured = true; await snap(page); }
        else if (st) { out.outcome = "refused"; out.message = await page.locator("#status").innerText(); break; }
        await page.waitForTimeout(200);
        continue;
      }
      if (await page.locator("form#decide").count() && !decided) {
        steps.push("decide");
        decided = true;
        await page.locator('form#decide textarea[name="comment"]').fill(args.comment);
        const button = args.decision === "Declined" ? "#decline" : "#approve";
        await Promise.all([page.waitForLoadState("load"), page.locator(button).click()]);
        await page.waitForTimeout(200);
        continue;
      }
      if (await page.locator("#session-status").count()) {
        out.status = await page.locator("#session-status").getAttribute("data-status");
        if (decided && out.status === args.decision) { out.outcome = "decided"; break; }
        if (!decided && !(await page.locator("form#decide").count())) { out.outcome = "not_decidable"; break; }
      }
      await page.waitForTimeout(200);
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
