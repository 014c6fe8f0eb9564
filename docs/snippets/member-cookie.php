<?php
// nginx-loyalty member cookie: sign it at login, verify it where needed.
// PHP 7.3 or later (64-bit), no extension beyond the core.  Copy this file
// into the shop's code.
//
// The value is ID~EXPIRES~KID~MAC, MAC the unpadded base64url of
// HMAC-SHA256(secret, "member~ID~EXPIRES~KID"): docs/member-cookie.md.
//
//   $keys = LoyaltyMemberCookie::parseKeys(
//       file_get_contents('/etc/nginx/loyalty.keys'));
//   $value = LoyaltyMemberCookie::sign($memberId, 30 * 86400, $keys);
//   // setrawcookie, not setcookie: setcookie() would send "~" as "%7E"
//   setrawcookie('loyalty_member', $value, ['expires' => time()
//       + 30 * 86400, 'path' => '/', 'secure' => true, 'httponly' => true,
//       'samesite' => 'Lax']);
//   $memberId = LoyaltyMemberCookie::verify($_COOKIE['loyalty_member']
//       ?? '', $keys);

final class LoyaltyMemberCookie
{
    const ID = '/\A[A-Za-z0-9_.-]{1,64}\z/';
    const KID = '/\A[A-Za-z0-9_-]{1,16}\z/';
    const SECRET_HEX = '/\A(?:[0-9A-Fa-f]{2}){32,128}\z/';
    const COOKIE = '/\A([A-Za-z0-9_.-]{1,64})~(0|[1-9][0-9]{0,11})~'
                   . '([A-Za-z0-9_-]{1,16})~[A-Za-z0-9_-]{43}\z/';
    const EXPIRES_MAX = 999999999999;   // 12 digits
    const COOKIE_MAX = 138;             // 64 + 1 + 12 + 1 + 16 + 1 + 43

    // The keys file nginx reads (loyalty_keys): "KID SECRET_HEX" lines,
    // "#" comments.  Returns [[kid, secret bytes]], the signing key first.
    public static function parseKeys(string $text): array
    {
        $keys = [];
        foreach (explode("\n", $text) as $i => $raw) {
            $line = rtrim(ltrim($raw, " \t"), " \t\r");
            if ($line === '' || $line[0] === '#') {
                continue;
            }
            $f = preg_split('/[ \t]+/', $line);
            if (count($f) !== 2 || !preg_match(self::KID, $f[0])
                || !preg_match(self::SECRET_HEX, $f[1])
                || in_array($f[0], array_column($keys, 0), true)
                || count($keys) === 16)
            {
                throw new InvalidArgumentException('keys line ' . ($i + 1)
                    . ': want "KID SECRET_HEX", a new KID of [A-Za-z0-9_-],'
                    . ' 32-128 bytes of hex');
            }
            $keys[] = [$f[0], hex2bin($f[1])];
        }
        if (!$keys) {
            throw new InvalidArgumentException('keys: none');
        }
        return $keys;
    }

    // the "member~" in front keeps other values signed with the same keys
    // from passing for a member cookie
    private static function mac(string $secret, string $payload): string
    {
        $raw = hash_hmac('sha256', 'member~' . $payload, $secret, true);
        return rtrim(strtr(base64_encode($raw), '+/', '-_'), '=');
    }

    // The cookie value for $member, valid for $ttl seconds; $keys[0]
    // signs.  The member id is the shop's opaque id, never an email.
    public static function sign(string $member, int $ttl, array $keys,
        ?int $now = null): string
    {
        if (!preg_match(self::ID, $member)) {
            throw new InvalidArgumentException(
                'member id: 1-64 characters of [A-Za-z0-9_.-]');
        }
        $expires = ($now ?? time()) + $ttl;
        if (!isset($keys[0]) || !is_int($expires) || $expires < 0
            || $expires > self::EXPIRES_MAX)
        {
            throw new InvalidArgumentException(
                'no key, or expiry out of range');
        }
        [$kid, $secret] = $keys[0];
        $payload = $member . '~' . $expires . '~' . $kid;
        return $payload . '~' . self::mac($secret, $payload);
    }

    // The member id of a genuine cookie value not yet expired, else null.
    // Valid through its EXPIRES second, as nginx counts.
    public static function verify(string $cookie, array $keys,
        ?int $now = null): ?string
    {
        if (strlen($cookie) > self::COOKIE_MAX
            || !preg_match(self::COOKIE, $cookie, $m))
        {
            return null;
        }
        $secret = null;
        foreach ($keys as [$kid, $s]) {
            if ($kid === $m[3]) {
                $secret = $s;
            }
        }
        // compare the text, in constant time: only the one encoding passes
        if ($secret === null
            || !hash_equals(self::mac($secret, substr($cookie, 0, -44)),
                            substr($cookie, -43)))
        {
            return null;
        }
        if ((int) $m[2] < ($now ?? time())) {
            return null;
        }
        return $m[1];
    }
}
