// What the browser scripts read of a page, in one evaluation, and how they act on it without
// racing a navigation: a page that is navigating has no state (null), and the loop looks again;
// nothing waits for an element that may already be gone.

// pageState returns the elements the scripts act on, or null while the page navigates.
export async function pageState(page) {
  try {
    return await page.evaluate(() => {
      const el = (sel) => document.querySelector(sel);
      const text = (sel) => (el(sel) ? el(sel).innerText : "");
      const cap = el("#capture");
      const video = el("#video");
      return {
        error: el("#error-message") ? text("#error-message") : null,
        username: !!el('form[action="/login"] input[name="username"]'),
        consent: !!el('button[value="allow"]'),
        capture: !!cap,
        // The capture button is enabled and the camera has played half a second of frames.
        captureReady: !!cap && !cap.disabled && !!video && video.readyState >= 2 && video.currentTime > 0.5,
        status: el("#status") ? el("#status").dataset.status || "" : "",
        statusText: text("#status"),
        sessionStatus: el("#session-status") ? el("#session-status").dataset.status || "" : null,
        sessionText: text("#session-status"),
        decide: !!el("form#decide"),
      };
    });
  } catch {
    return null; // the execution context went away with a navigation
  }
}

// clickAndLeave clicks selector (a form button) and waits for the navigation it causes, so that
// the next look never sees the page it just submitted.
export async function clickAndLeave(page, selector, timeout) {
  await Promise.all([
    page.waitForEvent("framenavigated", { predicate: (f) => f === page.mainFrame(), timeout }),
    page.locator(selector).click(),
  ]);
}

// clickAndSettle clicks selector and waits until the page either navigates or shows a
// data-status answer on #status (the capture scripts do one or the other).
export async function clickAndSettle(page, selector, timeout) {
  const from = page.url();
  await page.evaluate(() => { const s = document.getElementById("status"); if (s) delete s.dataset.status; });
  await page.locator(selector).click();
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    if (page.url() !== from) return;
    const st = await pageState(page);
    if (st === null || st.status) return;
    await page.waitForTimeout(100); // poll interval, not a wait for something to happen
  }
}

// waitCaptureReady waits until the capture button can take a selfie of a running camera.
export async function waitCaptureReady(page, timeout) {
  await page.waitForFunction(() => {
    const cap = document.getElementById("capture");
    const video = document.getElementById("video");
    return cap && !cap.disabled && video && video.readyState >= 2 && video.currentTime > 0.5;
  }, null, { timeout });
}
