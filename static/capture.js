// Visage selfie capture: opens the front camera, shows it with a face guide, captures one frame
// as JPEG on #capture and posts it with the form's fields to the form's data-post URL. The server
// answers JSON {status, message, redirect}; nothing the page says about itself is trusted.
(function () {
  "use strict";
  const form = document.getElementById("selfie-form");
  const video = document.getElementById("video");
  const button = document.getElementById("capture");
  const status = document.getElementById("status");
  if (!form || !video || !button) return;
  // The form is never submitted: the capture button posts the frame (no inline handler, the
  // Content-Security-Policy forbids them).
  form.addEventListener("submit", (e) => e.preventDefault());

  function say(text, kind) {
    status.textContent = text;
    status.className = kind || "muted";
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
      say("Centre your face in the oval, then take the selfie.");
      button.disabled = false;
    } catch (e) {
      say("Could not open the camera: " + e.message, "error");
    }
  }

  function grab() {
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth || 640;
    canvas.height = video.videoHeight || 480;
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
  }

  button.addEventListener("click", async () => {
    if (!form.reportValidity()) return;
    button.disabled = true;
    say("Checking…");
    try {
      const blob = await grab();
      const body = new FormData(form);
      body.append("image", blob, "selfie.jpg");
      const resp = await fetch(form.dataset.post, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "X-CSRF-Token": body.get("csrf_token") || "" },
      });
      let out = {};
      try { out = await resp.json(); } catch (e) { out = { message: "Unexpected answer (" + resp.status + ")" }; }
      if (out.redirect) {
        say(out.message || "Approved.", "ok");
        window.location.assign(out.redirect);
        return;
      }
      say(out.message || "Not accepted. Try again.", "error");
      status.dataset.status = out.status || "error";
    } catch (e) {
      say("Network error: " + e.message, "error");
    }
    button.disabled = false;
  });

  start();
})();
