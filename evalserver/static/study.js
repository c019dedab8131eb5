// The timed trial loop. The server owns the state; this page shows the current trial, measures
// how long each image was really on screen (requestAnimationFrame / performance.now), and posts
// the answers: a rating per image (paired, acr) or one choice (pairwise: 1, 2, 0 = no preference).
// A refresh simply asks the server for the current trial again.
// When the server is busy (503) or unreachable, the page backs off (exponential, capped) and
// keeps the ratings in memory and in sessionStorage until the server acknowledges them, so a
// refresh during an outage loses nothing: the pending answer is sent first when the page loads.
//
// Viewing (evalserver/viewing.py): images are shown at the study's display scale ("native": one
// image pixel per CSS pixel, "device": per device pixel, "fit": 70% of the window height); before
// every trial the window must hold the largest stimulus at that scale (else a message names the
// size needed and nothing starts until it fits); each image's rendered size and the device pixel
// ratio are sent with the answer, and a resize or zoom change during the trial is flagged.
(function () {
  "use strict";
  const PENDING = "stylestudy-pending";
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const backoff = (attempt, retryAfter) => Math.min(8000, Math.max(500 * 2 ** attempt, 1000 * (retryAfter || 0)));
  const root = document.getElementById("trial");
  const main = document.getElementById("main");
  const stage = document.getElementById("stage");
  const ratingBox = document.getElementById("rating");
  const progress = document.getElementById("progress");
  const timerBar = document.getElementById("timer-bar");
  const instruction = document.getElementById("instruction");
  const fitBox = document.getElementById("fit");
  const fitMessage = document.getElementById("fit-message");
  const fullscreenGate = document.getElementById("fullscreen-gate");
  const groups = Array.from(document.querySelectorAll("#rating .group"));  // one per answer
  const view = JSON.parse(root.dataset.view);
  const text = JSON.parse(root.dataset.text);
  const say = (template, values) => template.replace(/\{(\w+)\}/g, (_, k) => String(values[k]));
  const GAP = 16;  // px between images: matches #stage's gap in style.css
  let blurred = false;
  let fullscreenLeft = false;
  let environmentSent = false;
  window.addEventListener("blur", () => { blurred = true; });
  document.addEventListener("visibilitychange", () => { if (document.hidden) blurred = true; });
  document.addEventListener("fullscreenchange", () => { if (!document.fullscreenElement) fullscreenLeft = true; });

  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  const stacked = () => matchMedia("(max-width: 600px)").matches;  // phones: side-by-side stacks

  // --- the window the study needs -------------------------------------------------------------
  function outer(el) {  // an element's height with its vertical margins
    const cs = getComputedStyle(el);
    return el.offsetHeight + parseFloat(cs.marginTop) + parseFloat(cs.marginBottom);
  }

  function imageBox(n) {  // CSS px of n of the largest stimuli with their captions, at the display scale
    const scale = view.display === "device" ? 1 / window.devicePixelRatio : 1;
    const w = Math.ceil(view.width * scale), h = Math.ceil(view.height * scale);
    const pad = 2 * 8, caption = 24;  // #stage padding, figcaption height (style.css)
    const refs = view.reference_widths.map((r) => Math.ceil(r * scale));  // shown beside, never rated
    const refH = Math.ceil(view.reference_height * scale);
    const gaps = (n + refs.length - 1) * GAP;
    if (n === 0) return { w: 0, h: 0 };
    if (stacked()) {
      return { w: Math.max(w, ...refs) + pad, h: n * (h + caption) + refs.length * (refH + caption) + gaps + pad };
    }
    return { w: n * w + refs.reduce((a, b) => a + b, 0) + gaps + pad, h: Math.max(h, refH) + caption + pad };
  }

  function needed() {
    const least = view.min_viewport.length ? { w: view.min_viewport[0], h: view.min_viewport[1] } : { w: 0, h: 0 };
    if (view.display === "fit") return least;
    const cs = getComputedStyle(main);
    const padX = parseFloat(cs.paddingLeft) + parseFloat(cs.paddingRight);
    const padY = parseFloat(cs.paddingTop) + parseFloat(cs.paddingBottom);
    const wasHidden = ratingBox.hidden;
    ratingBox.hidden = false; ratingBox.style.visibility = "hidden";
    const h = outer(ratingBox);
    ratingBox.style.width = "min-content";  // the narrowest the controls can be (text wraps), not the window's
    const answer = { w: ratingBox.offsetWidth, h: h };
    ratingBox.hidden = wasHidden; ratingBox.style.visibility = ""; ratingBox.style.width = "";
    const top = outer(progress) + padY;
    const shown = imageBox(view.display_slots);
    const answering = imageBox(view.answer_slots);
    const w = Math.max(shown.w, answering.w, answer.w) + padX;
    const high = Math.max(top + shown.h, top + answering.h + answer.h);
    return { w: Math.max(least.w, Math.ceil(w)), h: Math.max(least.h, Math.ceil(high)) };
  }

  async function untilItFits() {
    // No trial starts until the window holds the study (and, when asked, it is in full screen).
    for (;;) {
      const need = needed();
      const fits = window.innerWidth >= need.w && window.innerHeight >= need.h;
      fitBox.hidden = fits;
      if (!fits) {
        fitMessage.textContent = say(text.too_small, { width: need.w, height: need.h,
                                                      have_width: window.innerWidth, have_height: window.innerHeight });
        await new Promise((resolve) => window.addEventListener("resize", resolve, { once: true }));
        continue;
      }
      if (view.fullscreen && !document.fullscreenElement && document.fullscreenEnabled) {
        fullscreenGate.hidden = false;
        await new Promise((resolve) => document.getElementById("enter-fullscreen").addEventListener("click", () => {
          document.documentElement.requestFullscreen().catch(() => {}).finally(resolve);
        }, { once: true }));
        fullscreenGate.hidden = true;
        continue;
      }
      break;
    }
    if (!environmentSent) {
      environmentSent = true;
      fetch(root.dataset.environmentUrl, { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(window.stylestudyEnvironment()) })
        .catch(() => {});
    }
  }

  // --- showing ----------------------------------------------------------------------------------
  function place(im) {  // the image's CSS size at the display scale (fit: style.css sizes it)
    if (view.display === "fit") return;
    const scale = view.display === "device" ? 1 / window.devicePixelRatio : 1;
    im.style.width = (im.naturalWidth * scale) + "px";
    im.style.height = (im.naturalHeight * scale) + "px";
  }

  function figure(im, caption) {
    const f = document.createElement("figure");
    f.className = "slot";
    f.append(im);
    if (caption) {
      const c = document.createElement("figcaption");
      c.textContent = caption;
      c.setAttribute("aria-hidden", "true");  // the image's alt says the same
      f.append(c);
    }
    return f;
  }

  async function show(figures, ms, keep, painted) {
    // Time from the frame that first paints the image(s) to the frame that first paints without
    // (keep: the images stay for the answer; the time is until the answer opens).
    stage.hidden = false;
    stage.replaceChildren(...figures);
    await frame();
    const start = performance.now();
    painted();
    let now = start;
    while (now - start < ms - 8) { now = await frame(); }
    if (!keep) {
      stage.replaceChildren();
      await frame();
    }
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
      const setActive = (i) => {  // highlights the group digits answer; focuses nothing (no answer pre-selected)
        active = i;
        groups.forEach((g, k) => g.classList.toggle("active", k === i && groups.length > 1));
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
      if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
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
      progress.textContent = what + " " + text.busy;
    }
  }

  // Send a stored answer and wait for the server's acknowledgement (or its "already past that").
  async function deliver(pending) {
    sessionStorage.setItem(PENDING, JSON.stringify(pending));
    const reply = await patiently(pending.url, { method: "POST", headers: { "Content-Type": "application/json" },
                                                 body: pending.body }, text.saving);
    const answer = await reply.json().catch(() => null);
    sessionStorage.removeItem(PENDING);  // stored, a duplicate of what was stored, or refused (4xx): settled
    return answer;
  }

  // Neutral alt text: the image's place, never anything about how it was made.
  function imageAlt(state, i) {
    return state.images.length === 1 ? text.image : say(text.image_n, { n: i + 1 });
  }

  const windowNow = () => [window.innerWidth, window.innerHeight, window.devicePixelRatio].join("x");

  async function runTrial() {
    const stored = sessionStorage.getItem(PENDING);
    if (stored) {  // a refresh (or a crash) before the last answer was acknowledged: send it first
      const answer = await deliver(JSON.parse(stored));
      if (answer && answer.done) { window.location.href = answer.redirect; return; }
    }
    await untilItFits();
    const reply = await patiently(root.dataset.stateUrl, {}, text.next);
    const state = await reply.json();
    if (!reply.ok) { window.location.href = state.redirect || "/"; return; }
    if (state.done) { window.location.href = state.redirect; return; }
    const practiceTotal = state.practice_total || 0;
    progress.textContent = state.practice
      ? say(text.practice, { n: state.trial, total: practiceTotal })
      : say(text.trial, { n: state.trial - practiceTotal, total: state.total - practiceTotal });
    progress.classList.toggle("practice", Boolean(state.practice));
    instruction.hidden = !state.instruction;
    instruction.textContent = state.instruction || "";
    blurred = false;
    fullscreenLeft = false;
    const images = state.images.map((src, i) => {
      const im = new Image(); im.src = src; im.alt = imageAlt(state, i); return im;
    });
    const refImages = (state.references || []).map((r) => {
      const im = new Image(); im.src = r.url; im.alt = text["ref_" + r.kind]; return im;
    });
    // all fetched and decoded before the first is shown
    await Promise.all(images.concat(refImages).map((im) => im.decode()));
    refImages.forEach(place);
    const refFigures = refImages.map((im) => { const f = figure(im, im.alt); f.classList.add("reference"); return f; });
    const started = windowNow();
    let resized = false;
    const onResize = () => { if (windowNow() !== started) resized = true; };
    window.addEventListener("resize", onResize);
    images.forEach(place);
    const captioned = images.length > 1;
    const figures = images.map((im, i) => figure(im, captioned ? imageAlt(state, i) : ""));
    const together = state.protocol === "pairwise" && state.layout === "side_by_side";
    const keep = Boolean(state.answer_with_images);
    stage.classList.toggle("side-by-side", together || (keep && captioned));
    stage.classList.toggle("keep", keep);
    const shown = [];
    const sizes = images.map(() => null);
    const measure = (i) => {
      const box = images[i].getBoundingClientRect();
      sizes[i] = [Math.round(box.width * 100) / 100, Math.round(box.height * 100) / 100];
    };
    if (together) {
      const ms = await show(refFigures.concat(figures), state.image_ms, keep, () => images.forEach((_, i) => measure(i)));
      images.forEach(() => shown.push(ms));
    } else {
      for (let i = 0; i < figures.length; i++) {
        stage.classList.remove("side-by-side");
        const last = i === figures.length - 1;
        shown.push(await show(refFigures.concat([figures[i]]), state.image_ms, false, () => measure(i)));
        if (last && keep) {  // then all of them together, labelled, for the answer
          stage.classList.toggle("side-by-side", captioned);
          stage.replaceChildren(...refFigures, ...figures);
        }
      }
    }
    if (!keep) stage.hidden = true;  // the answer controls take the screen
    const result = await rate(state.rating_ms);
    stage.replaceChildren();
    window.removeEventListener("resize", onResize);
    const url = root.dataset.submitUrl.replace(/0$/, String(state.trial));
    const answer_fields = state.protocol === "pairwise"
      ? { choice: result.ratings[0], response_ms: [result.response[0]] }
      : { ratings: result.ratings, response_ms: result.response };
    const body = JSON.stringify(Object.assign(answer_fields, {
      shown_ms: shown, blur: blurred, sizes: sizes, dpr: window.devicePixelRatio,
      resized: resized || windowNow() !== started,
      fullscreen_exit: view.fullscreen && (fullscreenLeft || !document.fullscreenElement),
    }));
    const answer = await deliver({ url, body });
    if (answer && answer.done) { window.location.href = answer.redirect; return; }
    runTrial();
  }
  runTrial();
})();
