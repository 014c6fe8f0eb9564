'use strict';
// nginx-loyalty member cookie: sign it at login, verify it where needed.
// Node.js, the crypto module only.  Copy this file into the shop's code.
//
// The value is ID~EXPIRES~KID~MAC, MAC the unpadded base64url of
// HMAC-SHA256(secret, "member~ID~EXPIRES~KID"): docs/member-cookie.md.
//
//   const mc = require('./member-cookie');
//   const keys = mc.parseKeys(fs.readFileSync('/etc/nginx/loyalty.keys',
//                                             'utf8'));
//   const value = mc.sign(memberId, 30 * 86400, keys);
//   // Express: res.cookie('loyalty_member', value, { maxAge: 30 * 86400e3,
//   //     secure: true, httpOnly: true, sameSite: 'lax' });
//   const memberId = mc.verify(req.cookies.loyalty_member || '', keys);

const crypto = require('crypto');

const ID = /^[A-Za-z0-9_.-]{1,64}$/;
const KID = /^[A-Za-z0-9_-]{1,16}$/;
const SECRET_HEX = /^(?:[0-9A-Fa-f]{2}){32,128}$/;
const COOKIE = new RegExp('^([A-Za-z0-9_.-]{1,64})~(0|[1-9][0-9]{0,11})~'
                          + '([A-Za-z0-9_-]{1,16})~[A-Za-z0-9_-]{43}$');
const EXPIRES_MAX = 999999999999;   // 12 digits
const COOKIE_MAX = 138;             // 64 + 1 + 12 + 1 + 16 + 1 + 43

// The keys file nginx reads (loyalty_keys): "KID SECRET_HEX" lines, "#"
// comments.  Returns [[kid, secret Buffer]], the signing key first.
function parseKeys(text) {
    const keys = [];
    text.split('\n').forEach((raw, i) => {
        const line = raw.replace(/^[ \t]+|[ \t\r]+$/g, '');
        if (line === '' || line[0] === '#') {
            return;
        }
        const f = line.split(/[ \t]+/);
        if (f.length !== 2 || !KID.test(f[0]) || !SECRET_HEX.test(f[1])
            || keys.some(([kid]) => kid === f[0]) || keys.length === 16) {
            throw new Error(`keys line ${i + 1}: want "KID SECRET_HEX", a `
                            + 'new KID of [A-Za-z0-9_-], 32-128 bytes of hex');
        }
        keys.push([f[0], Buffer.from(f[1], 'hex')]);
    });
    if (keys.length === 0) {
        throw new Error('keys: none');
    }
    return keys;
}

// the "member~" in front keeps other values signed with the same keys
// from passing for a member cookie
function mac(secret, payload) {
    return crypto.createHmac('sha256', secret).update('member~' + payload)
        .digest('base64url');
}

// The cookie value for memberId, valid for ttl seconds; keys[0] signs.
// The member id is the shop's opaque id, never an email address.
function sign(memberId, ttl, keys, now = Math.floor(Date.now() / 1000)) {
    if (typeof memberId !== 'string' || !ID.test(memberId)) {
        throw new Error('member id: 1-64 characters of [A-Za-z0-9_.-]');
    }
    if (!Number.isSafeInteger(ttl) || !Number.isSafeInteger(now)) {
        throw new Error('ttl and now: whole seconds');
    }
    const expires = now + ttl;
    if (expires < 0 || expires > EXPIRES_MAX) {
        throw new Error('expiry out of range');
    }
    const [kid, secret] = keys[0];
    const payload = `${memberId}~${expires}~${kid}`;
    return payload + '~' + mac(secret, payload);
}

// The member id of a genuine cookie value not yet expired, else null.
// Valid through its EXPIRES second, as nginx counts.
function verify(cookie, keys, now = Math.floor(Date.now() / 1000)) {
    if (typeof cookie !== 'string' || cookie.length > COOKIE_MAX) {
        return null;
    }
    const m = COOKIE.exec(cookie);
    if (m === null) {
        return null;
    }
    const key = keys.find(([kid]) => kid === m[3]);
    if (key === undefined) {
        return null;
    }
    // compare the text, in constant time: only the one encoding passes
    const want = Buffer.from(mac(key[1], cookie.slice(0, -44)));
    if (!crypto.timingSafeEqual(Buffer.from(cookie.slice(-43)), want)) {
        return null;
    }
    if (Number(m[2]) < now) {
        return null;
    }
    return m[1];
}

module.exports = { parseKeys, sign, verify };
