// Visage liveness capture for the ACTIVE_3D (head turn) and FLASHING (screen colours) checks.
// Nothing this page says about itself is trusted: it only shows the server's challenge and sends
// the frames it captured, with their capture times; the server decides.
//
// Markup (templates/liveness.templ): form#liveness-form with data-method ("ACTIVE_3D" or
// "FLASHING", for the page's guidance only), data-challenge (URL that issues a challenge) and
// data-post (URL that verifies the answer); video#video; #instruction; #flash (the full-screen
// colour layer); #status; button#capture. The form carries csrf_token, authRequestID and username.
//
// HTTP contract (implemented by authn/web):
//  1. POST data-challenge, body = the form's fields (multipart/form-data: csrf_token,
//     authRequestID, username), header X-CSRF-Token = csrf_token. The server picks the method
//     from its policy, calls liveness.Challenger.Issue and answers 200 application/json with the
//     liveness.Challenge:
//       {"id", "method", "steps": ["left"|"right"|"center", ...], "step_ms", "frame_interval_ms",
//        "colors": [{"color": "#rrggbb", "start_ms", "duration_ms"}, ...], "frames_per_color",
//        "issued_at", "expires_at", "max_frames", "max_frame_bytes", "max_burst_bytes"}
//     (steps/step_ms/frame_interval_ms for ACTIVE_3D, colors/frames_per_color for FLASHING).
//     On failure it answers a non-2xx status with JSON {status, message}.
//  2. POST data-post, multipart/form-data: the form's fields (csrf_token, authRequestID,
//     username), challenge_id, then for each frame in capture order one file part "frames"
//     (image/jpeg) and one field "frame_times" (capture time, milliseconds since the Unix epoch
//     with up to 3 decimals, e.g. "1767323045678.125"); header X-CSRF-Token = csrf_token. The
//     server parses the times with liveness.ParseFrameTimes, calls Challenger.Verify and answers
//     JSON {status, message, redirect}: with redirect the page goes there, otherwise it shows the
//     message and offers a new attempt (a challenge is single-use: every attempt fetches a new
//     one).
//
// ACTIVE_3D: the page asks the user to look at the camera for step_ms, then shows each step for
// step_ms ("left" is the user's own left; the preview is mirrored like a mirror), capturing a
// frame every frame_interval_ms throughout. FLASHING: the page captures one frame under its
// normal light; that frame's capture time is the sequence start; then it fills the screen with
// each colour from start_ms for duration_ms and captures frames_per_color frames in the second
// half of each colour (at 50 % and 85 % of its duration), then restores the page.
(function () {
  "use strict";
  const form = document.getElementById("liveness-form");
  const video = document.getElementById("video");
  const button = document.getElementById("capture");
  const status = document.getElementById("status");
  const instruction = document.getElementById("instruction");
  const flash = document.getElementById("flash");
  if (!form || !video || !button || !status) return;
  // The form is never submitted: the capture button posts the frames (no inline handler, the
  // Content-Security-Policy forbids them).
  form.addEventListener("submit", (e) => e.preventDefault());
  const method = form.dataset.method || "ACTIVE_3D";

  // Frames are at most this wide (the face engine works at 480 px; the passive models need a
  // face of about 100 px).
  const MAX_WIDTH = 640;
  const JPEG_QUALITY = 0.85;

  function say(text, kind) {
    status.textContent = text;
    status.className = kind || "muted";
  }

  function instruct(text) {
    if (instruction) instruction.textContent = text;
  }

  // Milliseconds since the Unix epoch, sub-millisecond where the browser allows.
  function nowMS() {
    return performance.timeOrigin + performance.now();
  }

  function sleepUntil(t) {
    return new Promise((resolve) => setTimeout(resolve, Math.max(0, t - nowMS())));
  }

  async function start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say("This browser cannot open a camera.", "error");
      return;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } },
        audio: false,
      });
      video.srcObject = stream;
      await video.play();
      if (method === "FLASHING") {
        say("Keep your face in the oval. The screen will flash a few colours for about 4 seconds.");
      } else {
        say("Keep your face in the oval, then follow the instructions to turn your head.");
      }
      button.disabled = false;
    } catch (e) {
      say("Could not open the camera: " + e.message, "error");
    }
  }

  // grab draws the current video frame; the capture time is taken as the frame is drawn.
  function grab() {
    const vw = video.videoWidth || 640;
    const vh = video.videoHeight || 480;
    const scale = Math.min(1, MAX_WIDTH / vw);
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(vw * scale);
    canvas.height = Math.round(vh * scale);
    const at = nowMS();
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    return { at: at, blob: new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", JPEG_QUALITY)) };
  }

  // Burst collects frames within the challenge's limits.
  function Burst(ch) {
    this.ch = ch;
    this.frames = [];
  }
  Burst.prototype.capture = function () {
    if (this.frames.length >= this.ch.max_frames) return;
    this.frames.push(grab());
  };
  Burst.prototype.resolve = async function () {
    const out = [];
    let total = 0;
    for (const f of this.frames) {
      const blob = await f.blob;
      if (!blob || blob.size > this.ch.max_frame_bytes || total + blob.size > this.ch.max_burst_bytes) continue;
      total += blob.size;
      out.push({ at: f.at, blob: blob });
    }
    return out;
  };

  async function postForm(url, body) {
    const resp = await fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": body.get("csrf_token") || "" },
    });
    let out = {};
    try { out = await resp.json(); } catch (e) { out = { message: "Unexpected answer (" + resp.status + ")" }; }
    return { ok: resp.ok, out: out };
  }

  async function challenge() {
    const r = await postForm(form.dataset.challenge, new FormData(form));
    if (!r.ok || !r.out.id) throw new Error(r.out.message || "Could not start the check.");
    return r.out;
  }

  const stepText = {
    left: "Slowly turn your head to your left ←",
    right: "Slowly turn your head to your right →",
    center: "Look straight at the camera again",
  };

  async function runActive(ch) {
    const burst = new Burst(ch);
    const phases = ["look"].concat(ch.steps);
    const t0 = nowMS();
    const timer = setInterval(() => burst.capture(), ch.frame_interval_ms);
    burst.capture();
    try {
      for (let i = 0; i < phases.length; i++) {
        instruct(phases[i] === "look" ? "Look straight at the camera" : stepText[phases[i]] || phases[i]);
        await sleepUntil(t0 + (i + 1) * ch.step_ms);
      }
    } finally {
      clearInterval(timer);
      instruct("");
    }
    return burst.resolve();
  }

  function showColor(color) {
    if (!flash) return;
    if (color) {
      const s = flash.style;
      s.position = "fixed";
      s.left = s.top = "0";
      s.width = s.height = "100%";
      s.zIndex = "1000";
      s.background = color;
      flash.hidden = false;
    } else {
      flash.hidden = true;
    }
  }

  async function runFlashing(ch) {
    const burst = new Burst(ch);
    // Frame 0 under the page's normal light; its capture time starts the sequence.
    burst.capture();
    const t0 = burst.frames[0].at;
    const shots = [];
    ch.colors.forEach((c) => {
      for (let j = 0; j < ch.frames_per_color; j++) {
        const frac = ch.frames_per_color === 1 ? 0.7 : 0.5 + (0.35 * j) / (ch.frames_per_color - 1);
        shots.push(t0 + c.start_ms + c.duration_ms * frac);
      }
    });
    const end = ch.colors.length ? t0 + ch.colors[ch.colors.length - 1].start_ms + ch.colors[ch.colors.length - 1].duration_ms : t0;
    const changes = ch.colors.map((c) => ({ at: t0 + c.start_ms, color: c.color }));
    instruct("Keep still and look at the screen");
    try {
      // Walk the colour changes and the captures in time order.
      const events = changes.map((c) => ({ at: c.at, color: c.color }))
        .concat(shots.map((at) => ({ at: at, shot: true })))
        .sort((a, b) => a.at - b.at);
      for (const e of events) {
        await sleepUntil(e.at);
        if (e.shot) burst.capture();
        else showColor(e.color);
      }
      await sleepUntil(end);
    } finally {
      showColor(null);
      instruct("");
    }
    return burst.resolve();
  }

  button.addEventListener("click", async () => {
    if (!form.reportValidity()) return;
    button.disabled = true;
    say("Starting the check…");
    try {
      const ch = await challenge();
      say(ch.method === "FLASHING" ? "Hold still…" : "Follow the instructions…");
      const frames = ch.method === "FLASHING" ? await runFlashing(ch) : await runActive(ch);
      say("Checking…");
      const body = new FormData(form);
      body.append("challenge_id", ch.id);
      frames.forEach((f, i) => {
        body.append("frames", f.blob, "frame-" + String(i).padStart(3, "0") + ".jpg");
        body.append("frame_times", f.at.toFixed(3));
      });
      const r = await postForm(form.dataset.post, body);
      if (r.out.redirect) {
        say(r.out.message || "Approved.", "ok");
        window.location.assign(r.out.redirect);
        return;
      }
      say(r.out.message || "Not accepted. Try again.", "error");
      status.dataset.status = r.out.status || "error";
    } catch (e) {
      showColor(null);
      say(e.message || "Network error.", "error");
    }
    button.disabled = false;
    button.textContent = "Try again";
  });

  start();
})();
