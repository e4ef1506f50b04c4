// Clickjacking check in a real Chromium: a victim signs in up to the consent page of a
// non-first-party client; then, in the same browser (same cookies), the victim opens the
// attacker's page, which frames Visage's /login and /consent for that request next to a page of
// its own (the control: it shows that this check sees a frame that does render). It prints one
// JSON object: {consent_url, frames: {login, consent, control}: {url, rendered, visage_markup}}.
//
//   node frame.mjs --start AUTHORIZE_URL --issuer URL --attacker URL --video FILE.y4m --username U
import { signIn } from "./browser.mjs";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const out = { frames: {}, console: [] };

async function inspect(page, name) {
  const f = page.frames().find((x) => x.name() === name);
  if (!f) return { url: "", rendered: false, visage_markup: false };
  const url = f.url();
  let markup = false;
  let rendered = false;
  try {
    markup = (await f.locator('input[name="username"], button[value="allow"], #capture').count()) > 0;
    rendered = (await f.locator("body *").count()) > 0 && !url.startsWith("chrome-error:");
  } catch (e) {
    rendered = false;
  }
  return { url, rendered, visage_markup: markup };
}

const res = await signIn({
  // Stop on the consent page (decided from the page itself, so a navigation between two polls
  // cannot make the script press Allow).
  start: args.start, video: args.video, until: args.issuer + "/consent", consent: "stop", username: args.username,
  after: async (page) => {
    out.consent_url = page.url();
    const id = new URL(page.url()).searchParams.get("authRequestID") || "";
    const login = args.issuer + "/login?authRequestID=" + encodeURIComponent(id);
    page.on("console", (m) => out.console.push(m.text()));
    const attack = new URL(args.attacker);
    attack.searchParams.set("login", login);
    attack.searchParams.set("consent", out.consent_url);
    await page.goto(attack.href);
    // Wait until every frame has finished loading (a refused frame loads Chromium's error page).
    await page.waitForLoadState("load");
    await page.waitForFunction(() => [...document.querySelectorAll("iframe")].every((f) => f.dataset.loaded === "1"), null, { timeout: 20000 })
      .catch(() => out.console.push("not every frame fired load"));
    for (const name of ["login", "consent", "control"]) out.frames[name] = await inspect(page, name);
  },
});
out.browser = res;
console.log(JSON.stringify(out));
