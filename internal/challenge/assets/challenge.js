(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var D = JSON.parse($("rampart-challenge").textContent);
  var T = JSON.parse($("rampart-text").textContent);
  var status = $("rampart-status"), bar = $("rampart-progress");
  var say = function (s) { status.textContent = s; };
  var get = function (k) { try { return JSON.parse(sessionStorage.getItem(k)); } catch (e) { return null; } };
  var set = function (k, v) { try { sessionStorage.setItem(k, JSON.stringify(v)); } catch (e) {} };
  var del = function (k) { try { sessionStorage.removeItem(k); } catch (e) {} };
  var key = "rampart:" + D.return, tkey = key + ":tries";
  var check = function (r, loop) {
    return D.check + "?u=" + encodeURIComponent(D.return) + "&r=" + encodeURIComponent(r) + (loop ? "&loop=1" : "");
  };
  // Loop guard: solved this URL a minute ago and challenged again? Then
  // something eats the clearance: let the server explain instead of
  // solving in circles.
  var prev = get(key);
  if (prev && prev.r && Date.now() - prev.t < 60000) { del(key); location.replace(check(prev.r, true)); return; }
  if (D.method !== "GET" && D.method !== "HEAD") $("rampart-post").hidden = false;
  if (typeof Worker === "undefined") { say(T.noworker); return; }
  var n = Math.min(Math.max(navigator.hardwareConcurrency || 2, 1), 8);
  var js = !!D.js || !(self.isSecureContext && self.crypto && crypto.subtle);
  var expected = Math.pow(2, D.difficulty), tried = 0, told = 0, done = false, workers = [], t0 = Date.now(), engine = "";
  var stop = function () { done = true; workers.forEach(function (w) { w.terminate(); }); };
  var fail = function (e) { stop(); say(T.failed.replace("{e}", e)); };
  var verify = function (nonce) {
    bar.value = 100; say(T.verifying);
    var body = new URLSearchParams();
    body.set("c", D.challenge); body.set("n", String(nonce)); body.set("u", D.return); body.set("m", D.method);
    body.set("ms", String(Date.now() - t0)); body.set("h", String(tried)); body.set("e", engine + "/" + n);
    fetch(D.verify, {method: "POST", body: body, credentials: "same-origin", cache: "no-store"})
      .then(function (r) { return r.json(); })
      .then(function (j) {
        if (j.ok) {
          del(tkey); set(key, {t: Date.now(), r: j.receipt}); say(T.done);
          location.replace(j.next);
          return;
        }
        var tries = get(tkey) || 0;
        if (j.retry && tries < 3) { set(tkey, tries + 1); location.replace(D.return); return; }
        del(tkey); fail(j.error);
      }, function () { fail("network"); });
  };
  for (var i = 0; i < n; i++) {
    var w = new Worker(D.worker);
    w.onmessage = function (ev) {
      var m = ev.data;
      if (done) return;
      if (m.n) {
        tried += m.n;
        var p = Math.min(99, Math.floor(100 * (1 - Math.exp(-tried / expected))));
        bar.value = p;
        if (p >= told + 25) { told = p - p % 25; say(T.solving.replace("{p}", told)); }
      }
      if (m.engine) engine = m.engine;
      if (m.found !== undefined) { stop(); verify(m.found); }
      if (m.err) fail(m.err);
    };
    w.onerror = function () { fail("worker"); };
    w.postMessage({seed: D.seed, d: D.difficulty, start: i, step: n, js: js});
    workers.push(w);
  }
  say(T.solving.replace("{p}", "0"));
})();
