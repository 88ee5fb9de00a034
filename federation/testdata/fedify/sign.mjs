// Signs deliveries with Fedify's signRequest, for fedigate's federation
// tests. stdin: a JSON array of {url, body, keyId, spec, time}; spec is
// "draft-cavage-http-signatures-12" or "rfc9421", time Unix seconds (0 =
// now). stdout: a JSON array of the signed requests' headers.
import { signRequest } from "@fedify/fedify/sig";
import { Temporal } from "@js-temporal/polyfill";

const input = JSON.parse(await new Response(process.stdin).text());
const { privateKey } = await crypto.subtle.generateKey(
  { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
  true, ["sign", "verify"]);
const out = [];
for (const d of input) {
  const req = new Request(d.url, {
    method: "POST", body: d.body,
    headers: { "Content-Type": "application/activity+json", "Accept": "application/activity+json" },
  });
  const opts = { spec: d.spec };
  if (d.time) opts.currentTime = Temporal.Instant.fromEpochMilliseconds(d.time * 1000);
  const signed = await signRequest(req, privateKey, new URL(d.keyId), opts);
  out.push(Object.fromEntries(signed.headers));
}
process.stdout.write(JSON.stringify(out));
