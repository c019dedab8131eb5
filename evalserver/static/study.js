// The timed trial loop. The server owns the state; this page shows the current trial, measures
// how long each image was really on screen (requestAnimationFrame / performance.now), and posts
// the answers: a rating per image (paired, acr) or one choice (pairwise: 1, 2, 0 = no preference).
// A refresh simply asks the server for the current trial again.
// When the server is busy (503) or unreachable, the page backs off (exponential, capped) and
// keeps the ratings in memory and in sessionStorage until the server acknowledges them, so a
// refresh during an outage loses nothing: the pending answer is sent first when the page loads.
//
// Viewing (evalserver/viewing.py, engine/study/screens.py): images are shown at the study's display
// scale ("native": one image pixel per CSS pixel, "device": per device pixel, "fit": 70% of the
// window height, "scale_down": native where the window holds the study, else one smaller scale that
// fits); references take the stimuli's scale.  The stimuli sit in a row, Image 1 on the left, the
// references after them (on a phone, in a row below), the answer controls beneath, all inside the
// window.  Before every trial the window must hold the largest stimulus at a fixed scale (else a
// message names the size needed and nothing starts until it fits); each picture's rendered size and
// the device pixel ratio are sent with the answer, and a resize or zoom change is flagged.
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
  const flags = JSON.parse(root.dataset.flags);  // answer keys of the flags the page raises (evalserver/flags.py)
  const say = (template, values) => template.replace(/\{(\w+)\}/g, (_, k) => String(values[k]));
  const GAP = 16;  // px between images of a row: matches #stage .row's gap in style.css
  const CAPTION = 24, PAD = 2 * 8;  // figcaption height, #stage padding (style.css)
  const phone = () => matchMedia("(max-width: 600px)").matches;  // references below the stimuli, not beside
  const groupGap = () => (phone() ? 8 : 32);  // between the stimuli and the references (#stage gap)
  let blurred = false;
  let fullscreenLeft = false;
  let environmentSent = false;
  window.addEventListener("blur", () => { blurred = true; });
  document.addEventListener("visibilitychange", () => { if (document.hidden) blurred = true; });
  document.addEventListener("fullscreenchange", () => { if (!document.fullscreenElement) fullscreenLeft = true; });

  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));

  // --- the window the study needs -------------------------------------------------------------
  function outer(el) {  // an element's height with its vertical margins
    const cs = getComputedStyle(el);
    return el.offsetHeight + parseFloat(cs.marginTop) + parseFloat(cs.marginBottom);
  }

  // The stage's width and height as a * scale + b, one (a, b) per row or column it lays out; the
  // window must hold the largest.  n stimuli of w x h image px, references refWs wide, refH high.
  function stageConstraints(n, w, h, refWs, refH) {
    const k = refWs.length;
    const refW = refWs.reduce((a, b) => a + b, 0);
    const stimB = (n - 1) * GAP + PAD, refB = (k - 1) * GAP + PAD;
    if (!k) return { widths: [[n * w, stimB]], heights: [[h, CAPTION + PAD]] };
    if (phone()) {
      return { widths: [[n * w, stimB], [refW, refB]], heights: [[h + refH, 2 * CAPTION + groupGap() + PAD]] };
    }
    return { widths: [[n * w + refW, stimB + refB - PAD + groupGap()]], heights: [[Math.max(h, refH), CAPTION + PAD]] };
  }

  const most = (pairs, s) => Math.max(...pairs.map(([a, b]) => a * s + b));

  function answerBox() {  // the answer controls as laid out at this width (and the narrowest they can be)
    const wasHidden = ratingBox.hidden, noInstruction = instruction.hidden;
    ratingBox.hidden = false; ratingBox.style.visibility = "hidden";
    if (noInstruction) { instruction.textContent = "\u00a0"; instruction.hidden = false; }  // a line kept for checks
    const h = outer(ratingBox);
    if (noInstruction) { instruction.hidden = true; instruction.textContent = ""; }
    ratingBox.style.width = "min-content";  // the narrowest the controls can be (text wraps), not the window's
    const w = ratingBox.offsetWidth;
    ratingBox.hidden = wasHidden; ratingBox.style.visibility = ""; ratingBox.style.width = "";
    return { w: w, h: h };
  }

  function page() {  // what the page takes besides the stage: main's padding and the progress line
    const cs = getComputedStyle(main);
    return { x: parseFloat(cs.paddingLeft) + parseFloat(cs.paddingRight),
             y: parseFloat(cs.paddingTop) + parseFloat(cs.paddingBottom) + outer(progress) };
  }

  const fixedScale = () => (view.display === "native" ? 1 : view.display === "device" ? 1 / window.devicePixelRatio
    : null);

  function needed() {
    const least = view.min_viewport.length ? { w: view.min_viewport[0], h: view.min_viewport[1] } : { w: 0, h: 0 };
    const s = fixedScale();
    if (s === null) return least;  // fit, scale_down: the images take the window's size
    const around = page(), answer = answerBox();
    const box = (n) => {
      if (n === 0) return { w: 0, h: 0 };
      const c = stageConstraints(n, view.width, view.height, view.reference_widths, view.reference_height);
      return { w: Math.ceil(most(c.widths, s)), h: Math.ceil(most(c.heights, s)) };
    };
    const shown = box(view.display_slots), answering = box(view.answer_slots);
    const w = Math.max(shown.w, answering.w, answer.w) + around.x;
    const high = Math.max(around.y + shown.h, around.y + answering.h + answer.h);
    return { w: Math.max(least.w, Math.ceil(w)), h: Math.max(least.h, Math.ceil(high)) };
  }

  // The scale (CSS px per image px) of this trial's stimuli and references: fixed (native, device),
  // or the largest at which the stage (and the answer controls, when they share the screen) fits
  // the window: fit up to 70% of the window's height, scale_down never above 1.
  function trialScale(images, refImages, keep) {
    const fixed = fixedScale();
    if (fixed !== null) return fixed;
    const n = Math.max(view.display_slots, view.answer_slots, 1);
    const study = view.display === "scale_down";  // one scale for the whole study: from its largest images
    const w = study ? view.width : Math.max(...images.map((im) => im.naturalWidth));
    const h = study ? view.height : Math.max(...images.map((im) => im.naturalHeight));
    const refWs = study ? view.reference_widths : refImages.map((im) => im.naturalWidth);
    const refH = study ? view.reference_height : Math.max(0, ...refImages.map((im) => im.naturalHeight));
    const around = page();
    const room = { w: window.innerWidth - around.x - 1, h: window.innerHeight - around.y - (keep ? answerBox().h : 0) - 1 };
    const c = stageConstraints(n, w, h, refWs, refH);
    const fits = Math.min(...c.widths.map(([a, b]) => (room.w - b) / a), ...c.heights.map(([a, b]) => (room.h - b) / a));
    const top = study ? 1 : 0.7 * window.innerHeight / h;
    return Math.max(1 / 100, Math.min(top, fits));  // a window too small for any scale still shows something
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
  function place(im, scale) {  // the image's CSS size at the trial's scale
    im.style.width = (im.naturalWidth * scale) + "px";
    im.style.height = (im.naturalHeight * scale) + "px";
  }

  // The picture's rendered size (CSS px), not its element's box: object-fit can draw it smaller.
  function pictureSize(im) {
    const box = im.getBoundingClientRect();
    const cs = getComputedStyle(im);
    const edge = (a, b) => parseFloat(cs[a]) + parseFloat(cs[b]);
    const w = box.width - edge("paddingLeft", "paddingRight") - edge("borderLeftWidth", "borderRightWidth");
    const h = box.height - edge("paddingTop", "paddingBottom") - edge("borderTopWidth", "borderBottomWidth");
    const nw = im.naturalWidth, nh = im.naturalHeight;
    let r = null;
    if (cs.objectFit === "contain") r = Math.min(w / nw, h / nh);
    else if (cs.objectFit === "scale-down") r = Math.min(1, w / nw, h / nh);
    else if (cs.objectFit === "none") r = 1;
    return r === null ? [w, h] : [nw * r, nh * r];  // fill, cover: the box is covered
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

  // The stage: the stimuli in a row (Image 1 on the left), the references after them.
  const stimRow = document.createElement("div"), refRow = document.createElement("div");
  stimRow.className = "row stimuli"; refRow.className = "row references";
  function fill(stimFigures, refFigures) {
    stimRow.replaceChildren(...stimFigures);
    refRow.replaceChildren(...refFigures);
    stage.replaceChildren(...(stimFigures.length ? [stimRow] : []), ...(refFigures.length ? [refRow] : []));
  }

  // Pairwise with the images in view: the "Image 1"/"Image 2" buttons centred under their images.
  function alignChoices(figures) {
    const group = document.querySelector("#rating .group.choice");
    if (!group) return;
    group.style.gridTemplateColumns = ""; group.style.columnGap = ""; group.style.marginLeft = "";
    if (figures.length !== 2 || ratingBox.hidden) return;
    const labels = Array.from(group.querySelectorAll("label")).slice(0, 2);
    const [a, b] = figures.map((f) => f.querySelector("img").getBoundingClientRect());
    const cols = [Math.max(a.width, labels[0].offsetWidth), Math.max(b.width, labels[1].offsetWidth)];
    const centres = [a.left + a.width / 2, b.left + b.width / 2];
    const left = Math.max(0, centres[0] - cols[0] / 2 - group.getBoundingClientRect().left);
    group.style.marginLeft = left + "px";
    group.style.gridTemplateColumns = cols[0] + "px " + cols[1] + "px";
    group.style.columnGap = Math.max(8, centres[1] - centres[0] - cols[0] / 2 - cols[1] / 2) + "px";
  }

  async function show(stimFigures, refFigures, ms, keep, painted) {
    // Time from the frame that first paints the image(s) to the frame that first paints without
    // (keep: the images stay for the answer; the time is until the answer opens).
    stage.hidden = false;
    fill(stimFigures, refFigures);
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

  function rate(ms, opening) {
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
      if (opening) opening();
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
    const keep = Boolean(state.answer_with_images);
    const scale = trialScale(images, refImages, keep);
    refImages.forEach((im) => place(im, scale));
    const refFigures = refImages.map((im) => { const f = figure(im, im.alt); f.classList.add("reference"); return f; });
    const started = windowNow();
    let resized = false;
    const onResize = () => { if (windowNow() !== started) resized = true; };
    window.addEventListener("resize", onResize);
    images.forEach((im) => place(im, scale));
    const captioned = images.length > 1;
    const figures = images.map((im, i) => figure(im, captioned ? imageAlt(state, i) : ""));
    const together = state.protocol === "pairwise" && state.layout === "side_by_side";
    stage.classList.toggle("side-by-side", together || (keep && captioned));
    stage.classList.toggle("keep", keep);
    const shown = [];
    const sizes = images.map(() => null);
    const measure = (i) => {
      sizes[i] = pictureSize(images[i]).map((v) => Math.round(v * 100) / 100);
    };
    if (together) {
      const ms = await show(figures, refFigures, state.image_ms, keep, () => images.forEach((_, i) => measure(i)));
      images.forEach(() => shown.push(ms));
    } else {
      for (let i = 0; i < figures.length; i++) {
        stage.classList.remove("side-by-side");
        const last = i === figures.length - 1;
        shown.push(await show([figures[i]], refFigures, state.image_ms, false, () => measure(i)));
        if (last && keep) {  // then all of them together, labelled, for the answer
          stage.classList.toggle("side-by-side", captioned);
          fill(figures, refFigures);
        }
      }
    }
    if (!keep) stage.hidden = true;  // the answer controls take the screen
    const result = await rate(state.rating_ms, () => { if (keep) alignChoices(figures); });
    stage.replaceChildren();
    window.removeEventListener("resize", onResize);
    const url = root.dataset.submitUrl.replace(/0$/, String(state.trial));
    const answer_fields = state.protocol === "pairwise"
      ? { choice: result.ratings[0], response_ms: [result.response[0]] }
      : { ratings: result.ratings, response_ms: result.response };
    const body = JSON.stringify(Object.assign(answer_fields, {
      shown_ms: shown, sizes: sizes, dpr: window.devicePixelRatio,
      [flags.BLUR]: blurred,
      [flags.RESIZED]: resized || windowNow() !== started,
      [flags.FULLSCREEN_EXIT]: view.fullscreen && (fullscreenLeft || !document.fullscreenElement),
    }));
    const answer = await deliver({ url, body });
    if (answer && answer.done) { window.location.href = answer.redirect; return; }
    runTrial();
  }
  runTrial();
})();
