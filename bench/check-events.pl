#!/usr/bin/perl
# Checks for the benchmark cases that post events (bench/cases/events.inc).
#
#   check-events.pl api BASE TOKEN MEMBER RULES
#       Before a round is loaded, against the running nginx: BASE is the
#       admin location's URL (http://127.0.0.1:PORT/admin), MEMBER a member
#       in the store, RULES the rules document the store holds.  Requests
#       without the token, or with a wrong one, answer 401; a batch of an
#       order (with the SKU that makes a member) and an action answers
#       {"events":2,"applied":2,"duplicates":0} and moves the member's
#       orders, spend, points, stage, tier and ledger as the rules say; the
#       same batch again is all duplicates and changes nothing; a batch
#       with an unknown member answers 422 and changes nothing.  The
#       checks leave 2 events in the store.
#
#   check-events.pl store PRISTINE STORE LOYALTYCTL SAMPLES SEED
#       After a round, once nginx has stopped: STORE is PRISTINE (the
#       store the round started from) plus the round's events.  Reads the
#       events the round added from the events database, adds up what
#       each should have done to each member (orders, spend, points of
#       the buyer and of their level-1 and level-2 referrers, ledger
#       entries), and compares it with SAMPLES members drawn with SEED
#       from those touched (half of them among referrers credited, when
#       there are any): loyaltyctl's record in STORE against PRISTINE, and
#       their ledger in STORE, whose entries must sum to their points.  The
#       ledger database must have grown by the entries the events imply.
#       Prints "events=N orders=N actions=N members=N ledger=N sampled=N".
#
# Dies with the reason on any mismatch.

use strict;
use warnings;
use JSON::PP;
use HTTP::Tiny;
use POSIX qw(strftime);

my $json = JSON::PP->new->canonical;
my $mode = shift // '';

if ($mode eq 'api') {
    check_api(@ARGV);
} elsif ($mode eq 'store') {
    check_store(@ARGV);
} else {
    die "usage: $0 api BASE TOKEN MEMBER RULES\n"
      . "       $0 store PRISTINE STORE LOYALTYCTL SAMPLES SEED\n";
}

# ------------------------------------------------------------------ api

sub check_api {
    my ($base, $token, $member, $rules_file) = @_;
    die "api: missing arguments\n" unless defined $rules_file;
    my $rules = read_json($rules_file);
    my $http = HTTP::Tiny->new(timeout => 30);
    my %auth = (Authorization => "Bearer $token");
    my $ctype = { 'Content-Type' => 'application/json' };

    my $req = sub {
        my ($method, $path, $body, $headers) = @_;
        my $r = $http->request($method, "$base$path", {
            headers => { %$ctype, %{ $headers // \%auth } },
            defined $body ? (content => $body) : (),
        });
        return ($r->{status}, $r->{content});
    };
    my $get_member = sub {
        my ($s, $b) = $req->('GET', "/members/$member");
        $s == 200 or die "api: GET /members/$member: $s $b\n";
        return decode_json($b);
    };

    my ($s, $b) = $req->('GET', "/members/$member", undef, {});
    $s == 401 or die "api: GET without a token answered $s, want 401\n";
    ($s, $b) = $req->('POST', '/events', '[]',
                      { Authorization => 'Bearer not-the-bench-token-0' });
    $s == 401 or die "api: POST with a wrong token answered $s, want 401\n";

    my $before = $get_member->();
    my $at = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime);
    my $amount = 12800;
    my $batch = $json->encode([
        { type => 'order', member => $member, order_id => 'bench-check-order',
          amount => $amount, items => [{ sku => 'pack-128', qty => 1 }],
          at => $at },
        { type => 'action', member => $member, kind => 'share',
          id => 'bench-check-action', at => $at },
    ]);

    ($s, $b) = $req->('POST', '/events', $batch);
    want_answer('the check batch', $s, $b, 2, 2, 0);

    my $after = $get_member->();
    my $spp = $rules->{points}{spend_per_point};
    my $points = ($spp ? int($amount / $spp) : 0)
               + ($rules->{points}{actions}{share} // 0);
    my @diff;
    push @diff, "orders $before->{orders} -> $after->{orders}"
        unless $after->{orders} == $before->{orders} + 1;
    push @diff, "spend $before->{spend} -> $after->{spend}"
        unless $after->{spend} == $before->{spend} + $amount;
    push @diff, "points $before->{points} -> $after->{points}, want +$points"
        unless $after->{points} == $before->{points} + $points;
    push @diff, "stage $after->{stage}, want member or partner"
        unless $after->{stage} =~ /^(member|partner)$/;
    push @diff, "last_order_at $after->{last_order_at}, want $at"
        unless ($after->{last_order_at} // '') eq $at;
    my %rank = map { $_ => 1 } qw(silver gold partner);
    push @diff, "tier $after->{tier}, want silver or above"
        unless $rank{$after->{tier}};
    die "api: member $member after the check batch: " . join('; ', @diff)
        . "\n" if @diff;

    ($s, $b) = $req->('GET', "/members/$member/ledger");
    $s == 200 or die "api: GET /members/$member/ledger: $s $b\n";
    my $ledger = decode_json($b);
    my %got = map { ($_->{event} // '') => $_ } @{ $ledger->{entries} };
    my $sum = 0;
    $sum += $_->{delta} for @{ $ledger->{entries} };
    die "api: ledger of $member: balance $ledger->{balance}, entries sum"
      . " $sum, points $after->{points}\n"
        unless $sum == $ledger->{balance} && $sum == $after->{points};
    for my $e (['bench-check-order', 'order'], ['bench-check-action', 'action']) {
        my $x = $got{ $e->[0] };
        die "api: ledger of $member has no $e->[1] entry for $e->[0]\n"
            unless $x && $x->{reason} eq $e->[1];
    }

    # a retry is a no-op
    ($s, $b) = $req->('POST', '/events', $batch);
    want_answer('the check batch again', $s, $b, 2, 0, 2);
    $json->encode($get_member->()) eq $json->encode($after)
        or die "api: the retried batch changed member $member\n";

    # all or nothing
    ($s, $b) = $req->('POST', '/events', $json->encode([
        { type => 'order', member => $member, order_id => 'bench-check-bad',
          amount => 100, at => $at },
        { type => 'order', member => 'nobody-in-the-bench-store',
          order_id => 'bench-check-bad2', amount => 100, at => $at },
    ]));
    $s == 422 or die "api: a batch with an unknown member answered $s: $b\n";
    my $err = eval { decode_json($b) } // {};
    die "api: 422 without the bad event's index: $b\n"
        unless ref $err->{errors} eq 'ARRAY' && @{ $err->{errors} } == 1
            && $err->{errors}[0]{index} == 1;
    $json->encode($get_member->()) eq $json->encode($after)
        or die "api: a rejected batch changed member $member\n";

    print "api: 401 without the token; $member moved by the rules;"
        . " retry all duplicates; bad batch 422, nothing applied\n";
}

sub want_answer {
    my ($what, $s, $b, $events, $applied, $dups) = @_;
    my $want = qq({"events":$events,"applied":$applied,"duplicates":$dups});
    chomp $b;
    my $got = eval { $json->encode(decode_json($b)) } // $b;
    $s == 200 && $got eq $json->encode(decode_json($want))
        or die "api: $what answered $s $b, want 200 $want\n";
}

sub read_json {
    my ($file) = @_;
    open my $fh, '<', $file or die "$file: $!\n";
    local $/;
    return decode_json(<$fh>);
}

# ---------------------------------------------------------------- store

# dump_db STORE DB: { hex key => raw value } of one database
sub dump_db {
    my ($store, $db) = @_;
    my (%kv, $key, $data);
    open my $fh, '-|', 'mdb_dump', '-s', $db, $store
        or die "mdb_dump: $!\n";
    while (<$fh>) {
        if (/^HEADER=END/) { $data = 1; next }
        next unless $data && /^ ([0-9a-f]*)$/;
        if (defined $key) { $kv{$key} = pack 'H*', $1; undef $key }
        else              { $key = $1 }
    }
    close $fh or die "mdb_dump -s $db $store failed\n";
    return \%kv;
}

sub ctl {
    my ($ctl, $store, @args) = @_;
    open my $fh, '-|', $ctl, '-s', $store, @args
        or die "$ctl: $!\n";
    local $/;
    my $out = <$fh>;
    close $fh or die "loyaltyctl -s $store @args failed\n";
    return $out;
}

sub db_entries {
    my ($ctl, $store, $db) = @_;
    ctl($ctl, $store, 'stat') =~ /^db $db\s+(\d+)$/m
        or die "loyaltyctl stat: no count for $db\n";
    return $1;
}

sub check_store {
    my ($pristine, $store, $ctl, $samples, $seed) = @_;
    die "store: missing arguments\n" unless defined $seed;

    my $old = dump_db($pristine, 'events');
    my $new = dump_db($store, 'events');
    my (%want, %referrers, %n);
    for my $k (keys %$new) {
        next if exists $old->{$k};
        my $v = $new->{$k};
        my ($ver, $type, $m, $o, $r1, $r2, undef, undef, $at, $amount,
            $points, undef, $l1, $l2) = unpack 'C8 q<6', $v;
        die "store: event $k: version $ver\n" unless $ver == 1;
        die "store: event $k: length " . length($v) . "\n"
            unless length($v) == 56 + $m + $o + $r1 + $r2;
        my ($member, undef, $ref1, $ref2) = unpack "x56 a$m a$o a$r1 a$r2", $v;
        $n{events}++;
        if ($type == 2) {
            $n{orders}++;
            $want{$member}{orders}++;
            $want{$member}{spend} += $amount;
            add_points(\%want, $member, $points);
            if ($r1) { add_points(\%want, $ref1, $l1); $referrers{$ref1} = 1 }
            if ($r2) { add_points(\%want, $ref2, $l2); $referrers{$ref2} = 1 }
        } elsif ($type == 4) {
            $n{actions}++;
            add_points(\%want, $member, $points);
        } else {
            die "store: event $k of type $type: the bench posts none\n";
        }
    }
    $n{$_} //= 0 for qw(events orders actions);
    die "store: no events were applied\n" unless $n{events};

    my $ledger = 0;
    $ledger += $_->{entries} // 0 for values %want;
    my $grown = db_entries($ctl, $store, 'ledger')
              - db_entries($ctl, $pristine, 'ledger');
    die "store: the ledger grew by $grown entries, the events imply"
      . " $ledger\n" unless $grown == $ledger;

    # half the sample among credited referrers, the rest among all touched
    srand($seed);
    my @all = sort keys %want;
    my @refs = sort keys %referrers;
    my %pick;
    my $half = int($samples / 2);
    while (@refs && keys %pick < $half && keys %pick < @refs) {
        $pick{ $refs[int rand @refs] } = 1;
    }
    while (keys %pick < $samples && keys %pick < @all) {
        $pick{ $all[int rand @all] } = 1;
    }

    for my $id (sort keys %pick) {
        my $w = $want{$id};
        my $b = decode_json(ctl($ctl, $pristine, 'get', 'member', $id));
        my $a = decode_json(ctl($ctl, $store, 'get', 'member', $id));
        my @diff;
        for my $f (qw(orders spend points)) {
            my $d = $a->{$f} - $b->{$f};
            push @diff, "$f +$d, want +" . ($w->{$f} // 0)
                unless $d == ($w->{$f} // 0);
        }
        my $lb = decode_json(ctl($ctl, $pristine, 'get', 'ledger', $id));
        my $la = decode_json(ctl($ctl, $store, 'get', 'ledger', $id));
        my $sum = 0;
        $sum += $_->{delta} for @{ $la->{entries} };
        push @diff, "ledger sums to $sum, balance $la->{balance}"
            unless $sum == $la->{balance} && $sum == $a->{points};
        my $e = @{ $la->{entries} } - @{ $lb->{entries} };
        push @diff, "ledger +$e entries, want +" . ($w->{entries} // 0)
            unless $e == ($w->{entries} // 0);
        die "store: member $id: " . join('; ', @diff) . "\n" if @diff;
    }

    printf "events=%d orders=%d actions=%d members=%d ledger=%d sampled=%d\n",
        $n{events}, $n{orders}, $n{actions}, scalar @all, $ledger,
        scalar keys %pick;
}

# points change the balance, and each non-zero change is a ledger entry
sub add_points {
    my ($want, $id, $points) = @_;
    $want->{$id}{points} += $points;
    $want->{$id}{entries}++ if $points;
}
