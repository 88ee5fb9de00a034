// fedigate sign-up check: runs the proof of work in Web Workers, shows the
// progress, and submits the answer. No third-party code, no data leaves
// but the answer posted to this server.
(function () {
  "use strict";
  var form = document.getElementById("solve");
  if (!form) return;
  var status = document.getElementById("status");
  var bar = document.getElementById("bar");
  var bits = parseInt(form.getAttribute("data-bits"), 10);
  var token = form.elements.token.value;
  var expected = Math.pow(2, bits);
  var count = Math.max(1, Math.min(navigator.hardwareConcurrency || 2, 4));
  var workers = [], tried = 0, done = false, started = Date.now();
  function finish(nonce) {
    done = true;
    workers.forEach(function (w) { w.terminate(); });
    bar.value = 1;
    status.textContent = "Done. Taking you on…";
    form.elements.nonce.value = nonce;
    form.submit();
  }
  function fail() {
    if (done) return;
    done = true;
    status.textContent = "Your browser could not run the check. Please reload the page.";
  }
  status.textContent = "Checking… this takes a few seconds.";
  try {
    for (var i = 0; i < count; i++) {
      var w = new Worker("/.fedigate/pow-worker.js");
      w.onmessage = function (e) {
        if (done) return;
        if (e.data.nonce !== undefined) { finish(e.data.nonce); return; }
        tried += e.data.tried;
        var p = 1 - Math.exp(-tried / expected);
        bar.value = p;
        var secs = Math.round((Date.now() - started) / 1000);
        status.textContent = "Checking… " + Math.round(p * 100) + "% likely done" + (secs > 2 ? " (" + secs + " s)" : "");
      };
      w.onerror = fail;
      w.postMessage({ token: token, bits: bits, start: i, step: count });
      workers.push(w);
    }
  } catch (err) { fail(); }
})();
