// What this browser is (viewport and screen in CSS pixels, device pixel ratio, pointer, phone or
// tablet): sent with the welcome form (the server's gates decide a screen-out) and by the trial
// page once the window fits.  Nothing identifying beyond what every page request carries.
(function () {
  "use strict";
  function environment() {
    const coarse = matchMedia("(pointer: coarse)").matches;
    const fine = matchMedia("(any-pointer: fine)").matches;
    const pointer = coarse ? "coarse" : (matchMedia("(pointer: fine)").matches ? "fine" : "none");
    const uaMobile = /Mobi|Android|iPhone|iPad|iPod/i.test(navigator.userAgent)
      || (navigator.userAgentData && navigator.userAgentData.mobile === true);
    return {
      viewport: [window.innerWidth, window.innerHeight], screen: [screen.width, screen.height],
      dpr: window.devicePixelRatio, pointer: pointer,
      mobile: Boolean(uaMobile || (coarse && !fine && navigator.maxTouchPoints > 0)),
    };
  }
  window.stylestudyEnvironment = environment;
  const form = document.getElementById("start-form");
  if (form) {
    form.addEventListener("submit", () => {
      document.getElementById("environment").value = JSON.stringify(environment());
    });
  }
})();
