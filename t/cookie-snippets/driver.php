<?php
// Runs docs/snippets/member-cookie.php for t/cookie-snippets.t:
//   driver.php SNIPPET vectors FILE      one JSON line per vector, see
//                                        t/cookie-snippets.t
//   driver.php SNIPPET sign KEYS ID TTL  a cookie value, signed now
//   driver.php SNIPPET verify KEYS VALUE the member id, or "REFUSED"

require $argv[1];

function out(array $obj): void
{
    echo json_encode($obj, JSON_UNESCAPED_SLASHES), "\n";
}

function signs(string $member, int $ttl, array $keys, int $now): ?string
{
    try {
        return LoyaltyMemberCookie::sign($member, $ttl, $keys, $now);
    } catch (InvalidArgumentException $e) {
        return null;
    }
}

function parses(string $text): ?array
{
    try {
        return LoyaltyMemberCookie::parseKeys($text);
    } catch (InvalidArgumentException $e) {
        return null;
    }
}

function vectors(string $file): void
{
    $doc = json_decode(file_get_contents($file), true, 512,
                       JSON_THROW_ON_ERROR);
    $keys = parses($doc['keys_file']) ?? [];
    out(['keys' => array_map(fn($k) => [$k[0], bin2hex($k[1])], $keys)]);
    foreach ($doc['valid'] as $i => $v) {
        $signer = array_values(array_filter($keys,
                                            fn($k) => $k[0] === $v['kid']));
        $verify = fn($now) => LoyaltyMemberCookie::verify($v['cookie'],
                                                          $keys, $now);
        out(['valid' => $i,
             'signed' => signs($v['member'], $v['ttl'], $signer, $v['now']),
             'at_now' => $verify($v['now']),
             'at_expiry' => $verify($v['expires']),
             'after' => $verify($v['expires'] + 1)]);
    }
    foreach ($doc['invalid'] as $i => $v) {
        out(['invalid' => $i, 'verified' => LoyaltyMemberCookie::verify(
            $v['cookie'], $keys, $v['now'])]);
    }
    foreach ($doc['unsignable'] as $i => $v) {
        out(['unsignable' => $i,
             'signed' => signs($v['member'], $v['ttl'], $keys, $v['now'])]);
    }
    foreach ($doc['bad_keys_files'] as $i => $v) {
        out(['bad_keys' => $i, 'parsed' => parses($v['text']) !== null]);
    }
}

$keysOf = fn($file) => LoyaltyMemberCookie::parseKeys(
    file_get_contents($file));

if ($argv[2] === 'vectors') {
    vectors($argv[3]);
} elseif ($argv[2] === 'sign') {
    echo LoyaltyMemberCookie::sign($argv[4], (int) $argv[5],
                                   $keysOf($argv[3])), "\n";
} else {
    echo LoyaltyMemberCookie::verify($argv[4], $keysOf($argv[3]))
         ?? 'REFUSED', "\n";
}
