'use strict';
// Runs docs/snippets/member-cookie.js for t/cookie-snippets.t:
//   driver.js SNIPPET vectors FILE      one JSON line per vector, see
//                                       t/cookie-snippets.t
//   driver.js SNIPPET sign KEYS ID TTL  a cookie value, signed now
//   driver.js SNIPPET verify KEYS VALUE the member id, or "REFUSED"

const fs = require('fs');
const path = require('path');
const mc = require(path.resolve(process.argv[2]));

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

function signs(member, ttl, keys, now) {
    try {
        return mc.sign(member, ttl, keys, now);
    } catch (e) {
        return null;
    }
}

function parses(text) {
    try {
        return mc.parseKeys(text);
    } catch (e) {
        return null;
    }
}

function vectors(file) {
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    const keys = parses(doc.keys_file) || [];
    out({ keys: keys.map(([kid, s]) => [kid, s.toString('hex')]) });
    doc.valid.forEach((v, i) => {
        const signer = keys.filter(([kid]) => kid === v.kid);
        out({ valid: i, signed: signs(v.member, v.ttl, signer, v.now),
              at_now: mc.verify(v.cookie, keys, v.now),
              at_expiry: mc.verify(v.cookie, keys, v.expires),
              after: mc.verify(v.cookie, keys, v.expires + 1) });
    });
    doc.invalid.forEach((v, i) => {
        out({ invalid: i, verified: mc.verify(v.cookie, keys, v.now) });
    });
    doc.unsignable.forEach((v, i) => {
        out({ unsignable: i, signed: signs(v.member, v.ttl, keys, v.now) });
    });
    doc.bad_keys_files.forEach((v, i) => {
        out({ bad_keys: i, parsed: parses(v.text) !== null });
    });
}

const keysOf = (file) => mc.parseKeys(fs.readFileSync(file, 'utf8'));
const [, , , cmd, a, b, c] = process.argv;

if (cmd === 'vectors') {
    vectors(a);
} else if (cmd === 'sign') {
    console.log(mc.sign(b, Number(c), keysOf(a)));
} else {
    console.log(mc.verify(b, keysOf(a)) || 'REFUSED');
}
