// fedigate proof-of-work worker: finds a decimal nonce such that
// SHA-256(token ":" nonce) starts with `bits` zero bits. Nonces start at
// `start` and advance by `step`, so several workers share the search.
"use strict";
var K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);
var W = new Uint32Array(64);
var H = new Uint32Array(8);

// hash the first len bytes of buf (which has room for the padding) into H.
function sha256(buf, len) {
  var total = ((len + 9 + 63) >> 6) << 6;
  buf[len] = 0x80;
  for (var i = len + 1; i < total - 8; i++) buf[i] = 0;
  var bitLen = len * 8;
  buf[total - 8] = 0; buf[total - 7] = 0; buf[total - 6] = 0; buf[total - 5] = 0;
  buf[total - 4] = bitLen >>> 24; buf[total - 3] = (bitLen >>> 16) & 255;
  buf[total - 2] = (bitLen >>> 8) & 255; buf[total - 1] = bitLen & 255;
  H[0] = 0x6a09e667; H[1] = 0xbb67ae85; H[2] = 0x3c6ef372; H[3] = 0xa54ff53a;
  H[4] = 0x510e527f; H[5] = 0x9b05688c; H[6] = 0x1f83d9ab; H[7] = 0x5be0cd19;
  for (var off = 0; off < total; off += 64) {
    for (var t = 0; t < 16; t++) {
      var j = off + t * 4;
      W[t] = (buf[j] << 24) | (buf[j + 1] << 16) | (buf[j + 2] << 8) | buf[j + 3];
    }
    for (t = 16; t < 64; t++) {
      var x = W[t - 15], y = W[t - 2];
      var s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      var s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      W[t] = (W[t - 16] + s0 + W[t - 7] + s1) | 0;
    }
    var a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
    for (t = 0; t < 64; t++) {
      var S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      var ch = (e & f) ^ (~e & g);
      var t1 = (h + S1 + ch + K[t] + W[t]) | 0;
      var S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      var maj = (a & b) ^ (a & c) ^ (b & c);
      var t2 = (S0 + maj) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
  }
}

function leadingZeros() {
  if (H[0] !== 0) return Math.clz32(H[0]);
  return 32 + Math.clz32(H[1]);
}

onmessage = function (e) {
  var prefix = e.data.token + ":";
  var buf = new Uint8Array(prefix.length + 21 + 128);
  for (var i = 0; i < prefix.length; i++) buf[i] = prefix.charCodeAt(i) & 255;
  var nonce = e.data.start, step = e.data.step, bits = e.data.bits, batch = 0;
  for (;;) {
    var s = String(nonce), len = prefix.length;
    for (i = 0; i < s.length; i++) buf[len + i] = s.charCodeAt(i);
    len += s.length;
    sha256(buf, len);
    if (leadingZeros() >= bits) { postMessage({ nonce: s }); return; }
    nonce += step;
    if (++batch === 25000) { postMessage({ tried: batch }); batch = 0; }
  }
};
