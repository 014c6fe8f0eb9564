package Loyalty::Nats;
# A NATS JetStream cluster for the tests: nats-server processes on free
# loopback ports, JetStream and authentication on (user and password for
# clients, another for the routes), under a temporary directory, stopped
# at the end of the script.  A few requests in NATS's own text protocol
# (no client library needed): raw publishes, stream management.
#
#   my $c = nats_cluster(3);        # started, meta leader elected
#   nats_urls($c)                   "nats://U:P@127.0.0.1:P1,..." (nginx)
#   nats_plain_urls($c)             without user info (loyaltyctl --user)
#   nats_kill($c, $i), nats_start($c, $i)
#   nats_request($c, $subject, $payload)    the reply's payload
#   nats_stream($c, $name, $replicas)       makes it; its info
#   nats_last_seq($c, $name)
use strict;
use warnings;

use Carp qw(croak);
use Loyalty::Harness ();
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(sleep time);

use Exporter 'import';
our @EXPORT = qw(
    nats_cluster nats_urls nats_plain_urls nats_kill nats_start
    nats_stop_all nats_request nats_stream nats_last_seq nats_alive
    $NATS_USER $NATS_PASSWORD
);

our $NATS_USER = 'loyalty';
our $NATS_PASSWORD = 'nats-test-5b0f27c3e9a1';
my $ROUTE_PASSWORD = 'route-test-91c4d7e02b6f';
my $JSON = JSON::PP->new->canonical;
my @CLUSTERS;
my $OWNER = $$;


END {
    if ($$ == $OWNER) {
        local $?;
        nats_stop_all($_) for @CLUSTERS;
    }
}


sub _free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp', Listen => 1)
        or croak "no free port: $!";
    return $s->sockport;
}


sub nats_cluster {
    my ($n) = @_;
    my $dir = Loyalty::Harness::test_dir(name => 'nats', keep => 1);
    my $c = { dir => $dir, nodes => [] };

    for my $i (0 .. $n - 1) {
        push @{$c->{nodes}}, { port => _free_port(), route => _free_port(),
                               name => "n$i" };
    }

    for my $i (0 .. $n - 1) {
        my $node = $c->{nodes}[$i];
        my $cluster = $n < 2 ? '' : "cluster {\n    name: loyalty-test\n"
            . "    listen: 127.0.0.1:$node->{route}\n"
            . "    authorization { user: route, password: $ROUTE_PASSWORD }\n"
            . "    routes: [ %ROUTES% ]\n}\n";
        my $routes = join ', ',
            map { "nats-route://route:$ROUTE_PASSWORD\@127.0.0.1:$_->{route}" }
            grep { $_ != $node } @{$c->{nodes}};
        $cluster =~ s/%ROUTES%/$routes/;
        $node->{conf} = "$dir/$node->{name}.conf";
        $node->{log} = "$dir/$node->{name}.log";
        open my $fh, '>', $node->{conf} or croak "$node->{conf}: $!";
        print $fh <<"END";
server_name: $node->{name}
listen: 127.0.0.1:$node->{port}
jetstream {
    store_dir: "$dir/$node->{name}"
    max_memory_store: 64MB
    max_file_store: 1GB
}
authorization {
    users = [ { user: $NATS_USER, password: $NATS_PASSWORD } ]
}
$cluster
END
        close $fh;
    }

    push @CLUSTERS, $c;
    nats_start($c, $_) for 0 .. $n - 1;

    return $c;
}


sub nats_start {
    my ($c, $i) = @_;
    my $node = $c->{nodes}[$i];

    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $node->{log};
        open STDERR, '>&', \*STDOUT;
        { exec "nats-server", "-c", $node->{conf} };
        POSIX::_exit(127);
    }

    $node->{pid} = $pid;

    my $deadline = time + 10;
    while (time < $deadline) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $node->{port});
        return 1 if $s;
        sleep 0.05;
    }

    croak "nats-server $node->{name} did not start:\n" . _slurp($node->{log});
}


sub nats_kill {
    my ($c, $i, $sig) = @_;
    my $node = $c->{nodes}[$i];
    my $pid = delete $node->{pid} or return;
    kill $sig // 'KILL', $pid;
    waitpid $pid, 0;
}


sub nats_alive {
    my ($c, $i) = @_;
    return defined $c->{nodes}[$i]{pid};
}


sub nats_stop_all {
    my ($c) = @_;
    nats_kill($c, $_, 'TERM') for 0 .. $#{$c->{nodes}};
}


sub nats_urls {
    my ($c) = @_;
    return join ',', map { "nats://$NATS_USER:$NATS_PASSWORD\@127.0.0.1:"
                           . $_->{port} } @{$c->{nodes}};
}


sub nats_plain_urls {
    my ($c) = @_;
    return join ',', map { "nats://127.0.0.1:$_->{port}" } @{$c->{nodes}};
}


sub _slurp {
    my ($path) = @_;
    open my $fh, '<', $path or return '';
    local $/;
    return <$fh> // '';
}


# one request in the text protocol, to the first live node: the reply's
# payload, or undef after $wait seconds
sub nats_request {
    my ($c, $subject, $payload, $wait) = @_;
    $wait //= 5;

    for my $node (grep { $_->{pid} } @{$c->{nodes}}) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $node->{port},
                                      Timeout => 2) or next;
        my $buf = '';
        my $inbox = "_INBOX.t$$." . int(rand(1e9));
        my $hello = $JSON->encode({ user => $NATS_USER,
                                    pass => $NATS_PASSWORD,
                                    verbose => JSON::PP::false,
                                    pedantic => JSON::PP::false });
        print $s "CONNECT $hello\r\nSUB $inbox 1\r\n"
                 . "PUB $subject $inbox " . length($payload) . "\r\n"
                 . "$payload\r\nPING\r\n";

        my $deadline = time + $wait;
        while (time < $deadline) {
            my $sel = IO::Select->new($s);
            next unless $sel->can_read(0.2);
            my $got = sysread $s, $buf, 65536, length $buf;
            last unless $got;

            while ($buf =~ s/^PING\r\n//) {
                print $s "PONG\r\n";
            }
            if ($buf =~ /^-ERR\s*(.*?)\r\n/m) {
                croak "NATS: $1";
            }
            print STDERR "BUF[$buf]\n" if $ENV{NATS_DEBUG};
            if ($buf =~ /MSG [^\r\n]*?(\d+)\r\n/) {
                my $len = $1;
                my $at = $+[0];
                return substr($buf, $at, $len)
                    if length($buf) >= $at + $len;
            }
        }
        return undef;
    }

    return undef;
}


# makes the stream (R replicas) when JetStream is up: its info, decoded
sub nats_stream {
    my ($c, $name, $replicas) = @_;
    my $config = $JSON->encode({
        name => $name, subjects => ["loyalty.$name.>"],
        num_replicas => $replicas, storage => 'file',
        duplicate_window => 120 * 1e9,
    });

    my $deadline = time + 30;
    my $last = '';
    while (time < $deadline) {
        my $reply = eval {
            nats_request($c, "\$JS.API.STREAM.CREATE.$name", $config, 3)
        };
        if (defined $reply) {
            my $r = eval { $JSON->decode($reply) } // {};
            return $r if $r->{config};
            $last = $reply;
        }
        sleep 0.25;
    }

    croak "the stream $name was not made: $last";
}


sub nats_last_seq {
    my ($c, $name) = @_;
    my $reply = nats_request($c, "\$JS.API.STREAM.INFO.$name", '') // '{}';
    my $r = eval { $JSON->decode($reply) } // {};
    return $r->{state}{last_seq};
}


1;
