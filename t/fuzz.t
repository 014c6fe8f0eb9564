# The libFuzzer harnesses of t/fuzz, briefly: every saved crash must stay
# fixed, and a few seconds of fuzzing each must find nothing new.  Longer
# runs: FUZZ_SECONDS=600 sh t/fuzz/run

use strict;
use warnings;
use Test::More;

my $seconds = $ENV{FUZZ_SECONDS} // 3;
my $out = `FUZZ_SECONDS=$seconds sh t/fuzz/run 2>&1`;
my $rc = $? >> 8;

is($rc, 0, "t/fuzz/run: saved crashes fixed, ${seconds}s of fuzzing clean")
    or diag($out);
like($out, qr/^== all passed$/m, 'every harness ran');

for my $h (qw(cookie keys record json price util code bots
               events rules due ref lua)) {
    like($out, qr/^\Q$h\E: \d+ runs, .* 0 crashing inputs/m,
         "$h harness ran without crashing");
}

done_testing();
