// rampart proof-of-work worker. Finds a decimal nonce such that
// SHA-256(seed + nonce) starts with d zero bits, trying start, start+step,
// start+2*step, ... Uses WebCrypto when asked, else a pure-JavaScript
// SHA-256 (WebCrypto is missing outside secure contexts).
// In:  {seed, d, start, step, js}  or  {hex: [strings]} (self-test: digests)
// Out: {n: hashes done since last report}, {found: nonce}, {err: text},
//      {hex: [hex digests]}
"use strict";
var K = new Int32Array([
  0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,
  0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,
  0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,
  0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,
  0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,
  0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,
  0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,
  0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2]);
var IV = [0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19];
var W = new Int32Array(64);
var H = new Int32Array(8);

// compress runs one SHA-256 block of m at offset o into H.
function compress(m, o) {
  var i, x, y;
  for (i = 0; i < 16; i++, o += 4) W[i] = m[o] << 24 | m[o + 1] << 16 | m[o + 2] << 8 | m[o + 3];
  for (i = 16; i < 64; i++) {
    x = W[i - 15]; y = W[i - 2];
    W[i] = (W[i - 16] + ((x >>> 7 | x << 25) ^ (x >>> 18 | x << 14) ^ (x >>> 3)) + W[i - 7] +
      ((y >>> 17 | y << 15) ^ (y >>> 19 | y << 13) ^ (y >>> 10))) | 0;
  }
  var a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7], t1, t2;
  for (i = 0; i < 64; i++) {
    t1 = (h + ((e >>> 6 | e << 26) ^ (e >>> 11 | e << 21) ^ (e >>> 25 | e << 7)) + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
    t2 = (((a >>> 2 | a << 30) ^ (a >>> 13 | a << 19) ^ (a >>> 22 | a << 10)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
  }
  H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
}

// sha256 hashes the bytes of an ASCII/UTF-8 string and returns hex.
function sha256hex(s) {
  var data = new TextEncoder().encode(s), n = data.length;
  var len = (n + 9 + 63) & ~63, m = new Uint8Array(len), i;
  m.set(data); m[n] = 0x80;
  var bits = n * 8;
  for (i = 0; i < 8; i++) m[len - 1 - i] = i < 4 ? (bits >>> (8 * i)) & 255 : Math.floor(bits / 4294967296 / Math.pow(256, i - 4)) & 255;
  for (i = 0; i < 8; i++) H[i] = IV[i];
  for (i = 0; i < len; i += 64) compress(m, i);
  var out = "";
  for (i = 0; i < 8; i++) out += ("0000000" + (H[i] >>> 0).toString(16)).slice(-8);
  return out;
}

// block holds seed + nonce digits + padding: one SHA-256 block (seed and
// nonce together stay under 56 bytes); digits is scratch for put.
var block = new Uint8Array(64), digits = new Uint8Array(20), seedLen = 0;

// put writes nonce's digits into b at p; returns the end.
function put(b, p, nonce) {
  var k = 0, i;
  do { var r = nonce % 10; digits[k++] = 48 + r; nonce = (nonce - r) / 10; } while (nonce > 0);
  for (i = 0; i < k; i++) b[p + i] = digits[k - 1 - i];
  return p + k;
}

// runJS tries count nonces of st with the pure-JavaScript SHA-256; it
// returns the solving nonce or -1.
function runJS(st, count) {
  var i, len, n;
  for (var c = 0; c < count; c++) {
    n = st.n; st.n += st.step;
    len = put(block, seedLen, n);
    block[len] = 0x80;
    for (i = len + 1; i < 62; i++) block[i] = 0;
    block[62] = (len * 8) >>> 8; block[63] = (len * 8) & 255;
    for (i = 0; i < 8; i++) H[i] = IV[i];
    compress(block, 0);
    if (Math.clz32(H[0]) >= st.d) { postMessage({n: c + 1}); return n; }
  }
  postMessage({n: count});
  return -1;
}

// runSubtle tries one batch with WebCrypto and calls next(found) when done.
function runSubtle(st, next) {
  var batch = 256, base = st.n, ps = new Array(batch), buf = new Uint8Array(seedLen + 20), i;
  buf.set(block.subarray(0, seedLen));
  for (i = 0; i < batch; i++) {
    ps[i] = crypto.subtle.digest("SHA-256", buf.subarray(0, put(buf, seedLen, base + i * st.step))); // digest copies its input
  }
  st.n = base + batch * st.step;
  Promise.all(ps).then(function (rs) {
    for (var j = 0; j < batch; j++) {
      if (Math.clz32(new DataView(rs[j]).getUint32(0)) >= st.d) { postMessage({n: j + 1}); next(base + j * st.step); return; }
    }
    postMessage({n: batch});
    next(-1);
  }, function (e) { postMessage({err: "webcrypto: " + e}); });
}

function found(n) { postMessage({found: n}); }

function loopJS(st) {
  for (;;) { var n = runJS(st, 8192); if (n >= 0) { found(n); return; } }
}

function loopSubtle(st) {
  runSubtle(st, function (n) { if (n >= 0) found(n); else loopSubtle(st); });
}

onmessage = function (ev) {
  var m = ev.data, i;
  if (m.hex) { postMessage({hex: m.hex.map(sha256hex)}); return; }
  var st = {d: m.d, n: m.start, step: m.step};
  seedLen = m.seed.length;
  for (i = 0; i < seedLen; i++) block[i] = m.seed.charCodeAt(i);
  if (m.js || !(self.crypto && crypto.subtle)) { postMessage({engine: "js"}); loopJS(st); return; }
  // Both engines are here: keep the faster. WebCrypto's per-call overhead
  // outweighs its native speed on one-block inputs in some browsers. The
  // best of three short runs of each is compared, so that a preempted run
  // does not decide; WebCrypto must win by a fifth.
  var best = [Infinity, Infinity], round = 0;
  (function calibrate() {
    var t0 = performance.now();
    runSubtle(st, function (n) {
      if (n >= 0) { found(n); return; }
      best[0] = Math.min(best[0], (performance.now() - t0) / 256);
      var t1 = performance.now();
      n = runJS(st, 2048);
      if (n >= 0) { found(n); return; }
      best[1] = Math.min(best[1], (performance.now() - t1) / 2048);
      if (++round < 3) { calibrate(); return; }
      if (best[0] * 1.2 < best[1]) { postMessage({engine: "webcrypto"}); loopSubtle(st); }
      else { postMessage({engine: "js"}); loopJS(st); }
    });
  })();
};
