// The timed trial loop. The server owns the state; this page shows the current trial, measures
// how long each image was really on screen (requestAnimationFrame / performance.now), and posts
// the answers: a rating per image (paired, acr) or one choice (pairwise: 1, 2, 0 = no preference).
// A refresh simply asks the server for the current trial again.
// When the server is busy (503) or unreachable, the page backs off (exponential, capped) and
// keeps the ratings in memory and in sessionStorage until the server acknowledges them, so a
// refresh during an outage loses nothing: the pending answer is sent first when the page loads.
(function () {
  "use strict";
  const PENDING = "stylestudy-pending";
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const backoff = (attempt, retryAfter) => Math.min(8000, Math.max(500 * 2 ** attempt, 1000 * (retryAfter || 0)));
  const root = document.getElementById("trial");
  const stage = document.getElementById("stage");
  const ratingBox = document.getElementById("rating");
  const progress = document.getElementById("progress");
  const timerBar = document.getElementById("timer-bar");
  const instruction = document.getElementById("instruction");
  const groups = Array.from(document.querySelectorAll("#rating .group"));  // one per answer
  let blurred = false;
  window.addEventListener("blur", () => { blurred = true; });
  document.addEventListener("visibilitychange", () => { if (document.hidden) blurred = true; });

  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));

  async function show(imgs, ms) {
    // Time from the frame that first paints the image(s) to the frame that first paints without.
    stage.replaceChildren(...imgs);
    await frame();
    const start = performance.now();
    let now = start;
    while (now - start < ms - 8) { now = await frame(); }
    stage.replaceChildren();
    await frame();
    return performance.now() - start;
  }

  function rate(ms) {
    return new Promise((resolve) => {
      const ratings = groups.map(() => null);
      const response = groups.map(() => null);
      const opened = performance.now();
      let active = 0;
      let finished = false;
      const inputs = groups.map((g) => Array.from(g.querySelectorAll("input")));
      inputs.flat().forEach((input) => { input.checked = false; });
      const setActive = (i) => {
        active = i;
        groups.forEach((g, k) => g.classList.toggle("active", k === i));
        inputs[i][0].tabIndex = 0;
        (inputs[i].find((x) => x.checked) || inputs[i][0]).focus({ preventScroll: true });
      };
      const finish = () => {
        if (finished) return;
        finished = true;
        document.removeEventListener("keydown", onKey, true);
        groups.forEach((g) => g.removeEventListener("change", onChange));
        clearInterval(tick);
        ratingBox.hidden = true;
        resolve({ ratings, response });
      };
      const record = (i, value) => {
        ratings[i] = value;
        response[i] = performance.now() - opened;
        inputs[i].find((x) => parseInt(x.value, 10) === value).checked = true;
        const next = ratings.indexOf(null);
        if (next < 0) { finish(); return; }
        if (next > i) setActive(next);
      };
      const onChange = (event) => {
        const i = groups.indexOf(event.currentTarget);
        record(i, parseInt(event.target.value, 10));
      };
      const onKey = (event) => {
        // a digit answers the first unanswered group (then the active one) if that group has such a key
        const target = ratings.indexOf(null) >= 0 ? ratings.indexOf(null) : active;
        const input = inputs[target].find((x) => x.dataset.key === event.key);
        if (input) {
          event.preventDefault();
          record(target, parseInt(input.value, 10));
        } else if (event.key === "Enter") {
          const checked = inputs[active].find((x) => x.checked);
          if (checked) record(active, parseInt(checked.value, 10));
          else if (active + 1 < groups.length) setActive(active + 1);
          event.preventDefault();
        }
      };
      groups.forEach((g) => g.addEventListener("change", onChange));
      document.addEventListener("keydown", onKey, true);
      ratingBox.hidden = false;
      setActive(0);
      const tick = setInterval(() => {
        const left = Math.max(0, 1 - (performance.now() - opened) / ms);
        timerBar.style.width = (100 * left) + "%";
        if (left <= 0) finish();
      }, 50);
    });
  }

  // fetch() until the server answers something other than "busy" (503) or a network failure.
  async function patiently(url, options, what) {
    for (let attempt = 0; ; attempt++) {
      try {
        const reply = await fetch(url, Object.assign({ credentials: "same-origin", cache: "no-store" }, options));
        if (reply.status !== 503) { progress.classList.remove("waiting"); return reply; }
        await sleep(backoff(attempt, parseFloat(reply.headers.get("Retry-After"))));
      } catch (e) {
        await sleep(backoff(attempt, 0));
      }
      progress.classList.add("waiting");
      progress.textContent = what + " The study server is busy; retrying…";
    }
  }

  // Send a stored answer and wait for the server's acknowledgement (or its "already past that").
  async function deliver(pending) {
    sessionStorage.setItem(PENDING, JSON.stringify(pending));
    const reply = await patiently(pending.url, { method: "POST", headers: { "Content-Type": "application/json" },
                                                 body: pending.body }, "Saving your ratings.");
    const answer = await reply.json().catch(() => null);
    sessionStorage.removeItem(PENDING);  // stored, a duplicate of what was stored, or refused (4xx): settled
    return answer;
  }

  // Neutral alt text: the image's place, never anything about how it was made.
  function imageAlt(state, i) {
    return state.images.length === 1 ? "Image" : "Image " + (i + 1);
  }

  async function runTrial() {
    const stored = sessionStorage.getItem(PENDING);
    if (stored) {  // a refresh (or a crash) before the last answer was acknowledged: send it first
      const answer = await deliver(JSON.parse(stored));
      if (answer && answer.done) { window.location.href = answer.redirect; return; }
    }
    const reply = await patiently(root.dataset.stateUrl, {}, "Loading the next trial.");
    const state = await reply.json();
    if (!reply.ok) { window.location.href = state.redirect || "/"; return; }
    if (state.done) { window.location.href = state.redirect; return; }
    progress.textContent = "Trial " + state.trial + " of " + state.total;
    instruction.hidden = !state.instruction;
    instruction.textContent = state.instruction || "";
    blurred = false;
    const images = state.images.map((src, i) => {
      const im = new Image(); im.src = src; im.alt = imageAlt(state, i); return im;
    });
    await Promise.all(images.map((im) => im.decode()));  // all fetched and decoded before the first is shown
    const together = state.protocol === "pairwise" && state.layout === "side_by_side";
    stage.classList.toggle("side-by-side", together);
    const shown = [];
    if (together) {
      const ms = await show(images, state.image_ms);
      images.forEach(() => shown.push(ms));
    } else {
      for (const im of images) { shown.push(await show([im], state.image_ms)); }
    }
    const result = await rate(state.rating_ms);
    const url = root.dataset.submitUrl.replace(/0$/, String(state.trial));
    const answer_fields = state.protocol === "pairwise"
      ? { choice: result.ratings[0], response_ms: [result.response[0]] }
      : { ratings: result.ratings, response_ms: result.response };
    const body = JSON.stringify(Object.assign(answer_fields, { shown_ms: shown, blur: blurred }));
    const answer = await deliver({ url, body });
    if (answer && answer.done) { window.location.href = answer.redirect; return; }
    runTrial();
  }
  runTrial();
})();
