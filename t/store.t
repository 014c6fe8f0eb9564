# The store under a running nginx: imports seen by the next request, the
# lock file handed to the workers' user, a replaced store picked up on
# reload, and bad stores refused without stopping service.

use lib 't/lib';
use Loyalty::Harness;
use Time::HiRes qw(sleep);

my $TIERS = <<'END';
[tiers]
{"name":"silver","rank":1}
{"name":"gold","rank":3}
END

my $CONFIG = <<'END';
location / {
    return 200 "[$loyalty_identity][$loyalty_member][$loyalty_tier][$loyalty_stage][$loyalty_points]\n";
}
END

my $HTTP = "loyalty_store %%STORE%%;\nloyalty_keys %%KEYS%%;\n";

sub get_as {
    my ($h, $id) = @_;
    my ($status, undef, $body) = http_request($h, 'GET', '/',
        { Cookie => 'loyalty_member=' . sign_member($id, 3600) });
    return ($status // 'none') . " $body";
}

sub import_members {
    my ($store, $jsonl) = @_;
    my $file = "$store.import.jsonl";
    open my $fh, '>', $file or die "$file: $!";
    print $fh $jsonl;
    close $fh;
    my ($rc, $out, $err) = loyaltyctl('-s', $store, 'import', 'members',
                                      $file);
    unlink $file;
    return ($rc, $err);
}

sub no_trouble {
    my ($h, $name) = @_;
    my $log = error_log_text($h);
    unlike($log, qr/exited on signal|\[alert\]|\[emerg\]|\[crit\]/,
           "$name: no crash, alert or emerg");
}


# imports are visible to the next request, with no reload

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $TIERS . <<'END');
[members]
{"id":"alice","tier":"silver","stage":"fan"}
END

    is(get_as($h, 'alice'), "200 [valid][alice][silver][fan][0]\n",
       'served from the imported store');
    is(get_as($h, 'carol'), "200 [unknown][][][prospect][]\n",
       'carol is not a member yet');

    my ($rc, $err) = import_members($h->{store}, <<'END');
{"id":"alice","tier":"gold","stage":"member","points":50}
{"id":"carol","tier":"silver","stage":"customer"}
END
    is($rc, 0, 'import while nginx serves') or diag $err;

    is(get_as($h, 'alice'), "200 [valid][alice][gold][member][50]\n",
       'the next request sees the new tier, stage and points');
    is(get_as($h, 'carol'), "200 [valid][carol][silver][customer][0]\n",
       'the next request sees a new member');

    ($rc, $err) = import_members($h->{store}, <<'END');
{"id":"alice","tier":"silver","stage":"partner"}
{"id":"dave","tier":"platinum","stage":"fan"}
END
    is($rc, 1, 'a bad file is refused');
    is(get_as($h, 'alice'), "200 [valid][alice][gold][member][50]\n",
       'a refused import changes nothing that nginx serves');

    if ($> == 0) {
        my @lock = stat "$h->{store}/lock.mdb";
        my @data = stat "$h->{store}/data.mdb";
        is(scalar getpwuid($lock[4]), $h->{worker_user} // 'www-data',
           'the master handed the lock file to the workers\' user');
        is($data[4], 0, 'the data file stays root\'s, read-only to workers');
    }

    no_trouble($h, 'imports');
    stop_nginx($h);
}


# tiers are cached per worker by snapshot: a tier change is seen at once

{
    my $h = start_nginx(http_config => $HTTP, config => <<'END',
location / {
    loyalty_price_sku tea;
    return 200 "[$loyalty_tier][$loyalty_tier_rank][$loyalty_price]\n";
}
END
                        store => $TIERS . <<'END');
[members]
{"id":"alice","tier":"gold","stage":"member"}
[prices]
{"sku":"tea","retail":1000}
END

    is(get_as($h, 'alice'), "200 [gold][3][1000]\n", 'rank and price cached');
    is(get_as($h, 'alice'), "200 [gold][3][1000]\n", 'served from the cache');

    my $file = "$h->{prefix}/tiers2.jsonl";
    open my $fh, '>', $file or die;
    print $fh qq({"name":"gold","rank":7,"discount_bp":2000}\n);
    close $fh;
    is((loyaltyctl('-s', $h->{store}, 'import', 'tiers', $file))[0], 0,
       'a tier changes rank and discount');

    is(get_as($h, 'alice'), "200 [gold][7][800]\n",
       'the next request sees the new rank and price');

    no_trouble($h, 'tier cache');
    stop_nginx($h);
}


# two workers answer while imports rewrite the members beside them

{
    my $members = sub {
        my ($tier) = @_;
        join '', map { qq({"id":"m$_","tier":"$tier","stage":"member"}\n) }
                 1 .. 500;
    };

    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        workers => 2,
                        store => $TIERS . "[members]\n" . $members->('gold'));

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        for my $i (1 .. 20) {
            my ($rc) = import_members($h->{store},
                                      $members->($i % 2 ? 'silver' : 'gold'));
            exit 1 if $rc;
        }
        exit 0;
    }

    my ($ok, $n) = (0, 0);
    while (waitpid($pid, POSIX::WNOHANG()) == 0) {
        $n++;
        $ok++ if get_as($h, 'm' . (1 + $n % 500))
                 =~ /^200 \[valid\]\[m\d+\]\[(gold|silver)\]\[member\]/;
    }
    is($?, 0, 'the importer finished');
    cmp_ok($n, '>', 10, "requests were made during the imports ($n)");
    is($ok, $n, 'every request during the imports found its member');
    is(get_as($h, 'm7'), "200 [valid][m7][gold][member][0]\n",
       'the last import is what nginx serves');

    no_trouble($h, 'concurrent imports');
    stop_nginx($h);
}


# a store replaced on disk is picked up by a reload; a broken one is refused

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $TIERS . <<'END');
[members]
{"id":"alice","tier":"silver","stage":"fan"}
END

    my $new = "$h->{prefix}/store.new";
    is((loyaltyctl('-s', $new, 'init'))[0], 0, 'a second store');
    my $tiers = "$h->{prefix}/tiers.jsonl";
    open my $fh, '>', $tiers or die;
    print $fh qq({"name":"gold","rank":3}\n);
    close $fh;
    is((loyaltyctl('-s', $new, 'import', 'tiers', $tiers))[0], 0,
       'tiers into the second store');
    is((import_members($new,
            qq({"id":"alice","tier":"gold","stage":"partner"}\n)))[0], 0,
       'members into the second store');

    rename $h->{store}, "$h->{store}.old" or die;
    rename $new, $h->{store} or die;

    # no check of what serves before the reload: a worker may already have
    # taken up the replaced store on its own (tested below)
    ok(reload_nginx($h), 'reload');
    is(get_as($h, 'alice'), "200 [valid][alice][gold][partner][0]\n",
       'after a reload the replaced store is served');

    # schema version 2 is a store this build cannot read
    my $v2 = "$h->{prefix}/store.v2";
    loyaltyctl('-s', $v2, 'init');
    open my $load, '|-', "mdb_load -T -s meta $v2" or die;
    print $load "schema_version\n\\02\\00\\00\\00\n";
    close $load;
    is($?, 0, 'schema version 2 written with mdb_load');

    ok(!reload_nginx($h, http_config =>
                         "loyalty_store $v2;\nloyalty_keys %%KEYS%%;\n"),
       'a reload onto a store of another schema is refused');
    like(error_log_text($h),
         qr/\[emerg\].*loyalty_store: store "\Q$v2\E" has schema version 2, this build reads version 1/,
         'the refusal names the store and the versions');
    is(get_as($h, 'alice'), "200 [valid][alice][gold][partner][0]\n",
       'the old configuration serves on');

    stop_nginx($h);
}


# a store replaced on disk is taken up without a reload, if it can be

if ($> == 0) {
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG, workers => 2,
                        store => $TIERS . <<'END');
[members]
{"id":"alice","tier":"silver","stage":"fan"}
END
    is(get_as($h, 'alice'), "200 [valid][alice][silver][fan][0]\n",
       'the first store');

    my $snapshot = sub {
        my ($dir, $stage, $give) = @_;
        loyaltyctl('-s', $dir, 'init');
        my $f = "$dir.jsonl";
        open my $fh, '>', $f or die;
        print $fh qq({"name":"silver","rank":1}\n);
        close $fh;
        loyaltyctl('-s', $dir, 'import', 'tiers', $f);
        import_members($dir,
            qq({"id":"alice","tier":"silver","stage":"$stage"}\n));
        # what an operator shipping snapshots does for the workers
        chown scalar(getpwnam($h->{worker_user} // 'www-data')), -1,
              "$dir/lock.mdb" if $give;
    };

    $snapshot->("$h->{prefix}/next", 'member', 1);
    rename $h->{store}, "$h->{store}.old" or die;
    rename "$h->{prefix}/next", $h->{store} or die;

    my $seen = 0;
    for (1 .. 40) {
        $seen++ if get_as($h, 'alice') eq "200 [valid][alice][silver][member][0]\n";
        last if $seen >= 4;
        sleep 0.1;
    }
    cmp_ok($seen, '>=', 4, 'the replaced store is served, no reload');
    like(error_log_text($h), qr/\[notice\].*replaced on disk, reopened/,
         'and the take-up is logged');

    # a snapshot whose lock file the workers cannot write: keep the old
    $snapshot->("$h->{prefix}/bad", 'partner', 0);
    rename $h->{store}, "$h->{store}.prev" or die;
    rename "$h->{prefix}/bad", $h->{store} or die;

    my $kept = 0;
    for (1 .. 25) {
        $kept++ if get_as($h, 'alice') eq "200 [valid][alice][silver][member][0]\n";
        sleep 0.1;
    }
    is($kept, 25, 'a replacement that cannot be opened: the old store serves on');
    my @lines = error_log_text($h)
                =~ /replaced on disk by a store that cannot be opened/g;
    cmp_ok(scalar @lines, '<=', 2, 'logged once per worker, not per request');
    cmp_ok(scalar @lines, '>=', 1, 'but logged');

    no_trouble($h, 'replaced store');
    stop_nginx($h);
}


# nginx -t on a damaged store fails with LMDB's own message

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG);
    my $bad = "$h->{prefix}/damaged";
    mkdir $bad or die;
    open my $fh, '>', "$bad/data.mdb" or die;
    print $fh "this is not an LMDB file\n" x 1000;
    close $fh;

    ok(!reload_nginx($h, http_config => "loyalty_store $bad;\n"),
       'a reload onto a damaged store is refused');
    like(error_log_text($h),
         qr/loyalty_store: store "\Q$bad\E": MDB_INVALID: File is not an LMDB file/,
         'with LMDB\'s message');

    my ($status) = http_request($h, 'GET', '/');
    is($status, 200, 'nginx serves on');

    stop_nginx($h);
}


# records written around loyaltyctl: refused at nginx -t, or logged once

sub mdb_load_raw {
    my ($store, $db, $key, $bytes) = @_;
    open my $load, '|-', "mdb_load -T -s $db $store" or die;
    print $load "$key\n", join('', map { sprintf '\\%02x', ord }
                                    split //, $bytes), "\n";
    close $load;
    return $? == 0;
}

{
    my $h = start_nginx(http_config => $HTTP, config => <<'END',
location /prices { loyalty_price_api; }
END
                        store => $TIERS . "[prices]\n"
                                 . qq({"sku":"tea","retail":1000}\n));

    my $v2 = "$h->{prefix}/store.longtier";
    loyaltyctl('-s', $v2, 'init');
    ok(mdb_load_raw($v2, 'tiers', 'x' x 511, pack('C C v l< v', 1, 0, 0, 1, 0)),
       'a tier with a 511-byte name, loaded with mdb_load');
    ok(!reload_nginx($h, http_config => "loyalty_store $v2;\n"),
       'nginx refuses a store whose tiers cannot be read');
    like(error_log_text($h),
         qr/\[emerg\].*loyalty_store: store "\Q$v2\E": cannot read its tiers/,
         'and says so');

    ok(mdb_load_raw($h->{store}, 'prices', 'bad', "\x01\x00garbage"),
       'a damaged price record');
    for (1 .. 3) {
        my ($status, undef, $body) =
            http_request($h, 'GET', '/prices?sku=bad,bad,bad,tea');
        like($body, qr/"sku":"bad","error":"unknown sku".*"sku":"tea","retail":1000/,
             "request $_: the damaged record reads as unknown");
    }
    stop_nginx($h);
    my @lines = error_log_text($h) =~ /price "bad" does not decode/g;
    is(scalar @lines, 1, 'logged once for the snapshot, not per request');
    like(error_log_text($h), qr/\(1 damaged records seen by this worker\)/,
         'with a count');
}


# the root master does not follow a link in place of the lock file

if ($> == 0) {
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG,
                        store => $TIERS);
    stop_nginx($h);

    my $victim = "$h->{prefix}/victim";
    open my $fh, '>', $victim or die;
    print $fh "precious\n";
    close $fh;
    unlink "$h->{store}/lock.mdb" or die;
    symlink $victim, "$h->{store}/lock.mdb" or die;

    my ($rc, $out, $err) = nginx_run($h, '-t', '-q');
    is($rc, 0, 'nginx -t checks the store without its lock file');
    open $fh, '<', $victim or die;
    is(scalar <$fh>, "precious\n", 'the link target is untouched');
    is((stat $victim)[4], 0, 'and still root\'s');
    like(error_log_text($h), qr/open\("\Q$h->{store}\E\/lock.mdb"\) failed/,
         'the refusal to follow the link is logged');
}


# a world-readable keys file is worth a warning

{
    my $h = start_nginx(http_config => $HTTP, config => $CONFIG);
    chmod 0644, $h->{keys};
    ok(reload_nginx($h), 'reload with a world-readable keys file');
    like(error_log_text($h),
         qr/\[warn\].*keys file "\Q$h->{keys}\E" is readable by every user/,
         'warned');
    stop_nginx($h);
}

done_testing();
