# nginx-loyalty
#
#   make            the module (build/ngx_http_loyalty_module.so) and
#                   build/loyaltyctl
#   make test       installs what is missing, builds, runs the whole suite
#   make demo       installs, builds, starts a demo nginx on 127.0.0.1:8080
#   make demo-cluster  three edges and a three-node NATS cluster
#   make bench      installs, builds, runs the benchmarks in bench/
#   make bench-scale  how cost grows with the store (bench/scale)
#   make vectors    remakes docs/member-cookie-vectors.json and
#                   docs/attribution-cookie-vectors.json from the code

NGX_SRC     ?= /usr/share/nginx/src
NGX_BUILD   := build/nginx
CC          ?= cc
CFLAGS      ?= -O2 -g
WARN        := -Wall -Wextra -Werror -Wno-unused-parameter
# LuaJIT 2.1 (Debian: libluajit2-5.1-dev), found by pkg-config if it can
LUA_CFLAGS  := $(shell pkg-config --cflags luajit 2>/dev/null \
                 || echo -I/usr/include/luajit-2.1)
LUA_LIBS    := $(shell pkg-config --libs luajit 2>/dev/null \
                 || echo -lluajit-5.1)

CORE_SRC    := $(wildcard ngx_module/core/*.c)
CORE_HDR    := $(wildcard ngx_module/core/*.h)
CLI_SRC     := $(wildcard ngx_module/cli/*.c)
MOD_SRC     := $(wildcard ngx_module/*.c ngx_module/*.h)
UNIT_SRC    := $(wildcard t/unit/*.c)
UNIT_BIN    := $(patsubst t/unit/%.c,build/unit/%.t,$(UNIT_SRC))

# the project's Lua library, compiled into the core
LUA_LIB_H   := build/loyalty_lua_lib.h
LUA_LIB_SRC := ngx_module/core/loyalty_lua_lib.sh $(wildcard lua/loyalty/*.lua)

LIBS        := -llmdb -ljansson -lcrypto $(LUA_LIBS) -lm
# the NATS C client (Debian: libnats-dev), for a cluster of edges
NATS_LIBS   := $(shell pkg-config --libs libnats 2>/dev/null || echo -lnats)

# The sanitized build (build/asan/): the same module, loyaltyctl and unit
# tests with AddressSanitizer and UBSan, for the second pass of `make test`.
# clang, whose ASan runtime carries UBSan (gcc's separate libubsan writes
# its reports to stderr whatever log_path says): the module is loaded into
# the stock nginx, which then runs with that runtime preloaded
# (SAN_PRELOAD, see t/sanitize); executables link it statically.
SAN_CC      ?= clang
SAN         := -fsanitize=address,undefined -fno-sanitize-recover=all
SAN_CFLAGS  := -g -O1 -fno-omit-frame-pointer $(SAN)
SAN_PRELOAD  = $(shell $(SAN_CC) -print-file-name=libclang_rt.asan-x86_64.so)
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)

OBJ         := $(patsubst ngx_module/%.c,build/%.o,$(CORE_SRC) $(CLI_SRC))
SAN_OBJ     := $(patsubst ngx_module/%.c,build/asan/%.o,$(CORE_SRC) $(CLI_SRC))
SAN_UNIT    := $(patsubst t/unit/%.c,build/asan/unit/%.t,$(UNIT_SRC))
# t/build-clang.t and t/fuzz.t build their own binaries (fuzz.t with
# the sanitizers already): the sanitized pass leaves them out
# t/deb.t builds and installs the packages, which the plain pass checks
SAN_TESTS   := $(filter-out t/build-clang.t t/fuzz.t t/deb.t, \
                 $(wildcard t/*.t))

.PHONY: all asan deps test test-build test-plain test-asan demo demo-stop \
        demo-cluster bench-nats \
        bench bench-stats bench-scale vectors clean dashboard

all: build/ngx_http_loyalty_module.so build/loyaltyctl

asan: build/asan/ngx_http_loyalty_module.so build/asan/loyaltyctl $(SAN_UNIT)

deps:
	@sh .ci/install-deps

# The module is built by nginx's own build system with the flags Debian's
# nginx was configured with, so that the stock binary accepts it:
# $(call ngx_configure,DIR,CC_OPT,LD_OPT[,MORE_OPTIONS])
define ngx_configure
	rm -rf $(1)
	mkdir -p $(dir $(1))
	cp -r $(NGX_SRC) $(1)
	cd $(1) && bash -c '. ./conf_flags; \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="$(2)" --with-ld-opt="$(3)" $(4) \
	        --add-dynamic-module=$(CURDIR)' > configure.log 2>&1 \
	    || { cat $(1)/configure.log; exit 1; }
endef

NGX_CC_OPT  := -g -O2 -fPIC -fstack-protector-strong -D_FORTIFY_SOURCE=2
NGX_LD_OPT  := -Wl,-z,relro -Wl,-z,now -Wl,-Bsymbolic-functions -fPIC

# nginx's configure lists the sources (config globs them): the folders'
# times make a file added or removed configure the build again
NGX_CONF_DEP := config ngx_module/bots.txt $(LUA_LIB_SRC) ngx_module \
                ngx_module/core

$(NGX_BUILD)/objs/Makefile: $(NGX_CONF_DEP)
	$(call ngx_configure,$(NGX_BUILD),$(NGX_CC_OPT),$(NGX_LD_OPT))

build/asan/nginx/objs/Makefile: $(NGX_CONF_DEP) t/asan.ignore
	$(call ngx_configure,build/asan/nginx,$(SAN_CFLAGS) -fPIC \
	    -fsanitize-ignorelist=$(CURDIR)/t/asan.ignore,-fPIC $(SAN),\
	    --with-cc=$(SAN_CC))

# by rename: a running nginx keeps the old mapping instead of crashing
define ngx_module_build
	+$(MAKE) -C $(1) -f objs/Makefile modules
	cp $(1)/objs/ngx_http_loyalty_module.so $@.tmp
	mv $@.tmp $@
endef

build/ngx_http_loyalty_module.so: $(NGX_BUILD)/objs/Makefile $(MOD_SRC) \
                                  $(CORE_SRC) $(CORE_HDR)
	$(call ngx_module_build,$(NGX_BUILD))

build/asan/ngx_http_loyalty_module.so: build/asan/nginx/objs/Makefile \
                                       $(MOD_SRC) $(CORE_SRC) $(CORE_HDR)
	$(call ngx_module_build,build/asan/nginx)

$(LUA_LIB_H): $(LUA_LIB_SRC)
	@mkdir -p build
	sh ngx_module/core/loyalty_lua_lib.sh lua/loyalty > $@.tmp
	mv $@.tmp $@

# The core, compiled once into an archive that loyaltyctl and the unit
# tests link, plain and sanitized.
INC         := -Ingx_module/core -Ingx_module/cli -It/unit -Ibuild \
               $(LUA_CFLAGS)

build/%.o: ngx_module/%.c $(CORE_HDR) $(LUA_LIB_H) \
           $(wildcard ngx_module/cli/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(INC) -c -o $@ $<

build/asan/%.o: ngx_module/%.c $(CORE_HDR) $(LUA_LIB_H) \
                $(wildcard ngx_module/cli/*.h)
	@mkdir -p $(@D)
	$(SAN_CC) $(SAN_CFLAGS) $(WARN) $(INC) -c -o $@ $<

build/libloyaltycore.a: $(filter build/core/%,$(OBJ))
build/asan/libloyaltycore.a: $(filter build/asan/core/%,$(SAN_OBJ))

build/libloyaltycore.a build/asan/libloyaltycore.a:
	rm -f $@
	$(AR) rcs $@ $^

build/loyaltyctl: $(filter build/cli/%,$(OBJ)) build/libloyaltycore.a
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS) $(NATS_LIBS)

build/asan/loyaltyctl: $(filter build/asan/cli/%,$(SAN_OBJ)) \
                       build/asan/libloyaltycore.a
	$(SAN_CC) $(SAN_CFLAGS) -o $@ $^ $(LIBS) $(NATS_LIBS)

build/unit/%.t: t/unit/%.c t/unit/tap.h build/libloyaltycore.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(INC) -o $@ $< build/libloyaltycore.a $(LIBS)

build/asan/unit/%.t: t/unit/%.c t/unit/tap.h build/asan/libloyaltycore.a
	@mkdir -p $(@D)
	$(SAN_CC) $(SAN_CFLAGS) $(WARN) $(INC) -o $@ $< \
	    build/asan/libloyaltycore.a $(LIBS)

# the tests of a store share t/unit/store_fixture.h, and a rules document
# t/unit/rules_fixture.h
build/unit/cadence.t build/unit/events.t build/unit/rules.t \
build/unit/store.t build/asan/unit/cadence.t build/asan/unit/events.t \
build/asan/unit/rules.t build/asan/unit/store.t build/unit/walk.t \
build/asan/unit/walk.t: t/unit/store_fixture.h
build/unit/events.t build/unit/rules.t build/asan/unit/events.t \
build/asan/unit/rules.t: t/unit/rules_fixture.h

# the cookies' vector programs share t/unit/vectors.h
build/unit/cookie_vectors.t build/unit/ref_vectors.t \
build/asan/unit/cookie_vectors.t build/asan/unit/ref_vectors.t: \
    t/unit/vectors.h

# Two passes, both run whatever the first gave: the suite against the
# plain build, then against the sanitized one (t/sanitize), where any
# AddressSanitizer, LeakSanitizer or UBSan report fails the run.
test: deps
	$(MAKE) -j$(JOBS) test-build
	@rc=0; \
	$(MAKE) test-plain || rc=1; \
	$(MAKE) test-asan || rc=1; \
	exit $$rc

# the benchmark's own programs are built too, so that a change to the
# core they call cannot leave `make bench-stats` broken unseen
BENCH_BIN   := build/bench/stats_bench build/bench/loyaltyctl-nocounters

test-build: all $(UNIT_BIN) asan dashboard $(BENCH_BIN)

# the slowest scripts first, so that two jobs end together
SLOW_TESTS  := t/build-clang.t t/deb.t t/fuzz.t t/nats.t t/cli-codes.t \
               t/schema.t
TESTS       := $(SLOW_TESTS) $(filter-out $(SLOW_TESTS),$(wildcard t/*.t))

test-plain: all $(UNIT_BIN)
	prove -j2 --timer $(TESTS) $(UNIT_BIN)

test-asan: asan
	SAN_PRELOAD="$(SAN_PRELOAD)" sh t/sanitize prove -j2 --timer \
	    $(filter $(SAN_TESTS),$(TESTS)) $(SAN_UNIT)

demo: deps all dashboard
	sh t/demo/run

demo-stop:
	sh t/demo/run stop
	sh t/demo/cluster stop

# the cluster's figures: follower apply, admin API through NATS, lag, reads
bench-nats: deps all
	perl bench/nats.pl

# three edges on a three-node NATS JetStream cluster (README, Several edges)
demo-cluster: deps all
	sh t/demo/cluster

bench: deps all
	bash bench/run

# the conversion counters over a store of 1,000,000 members: minutes to
# build, so apart from `make bench` (bench/stats.sh, bench/README.md)
build/bench/stats_bench: bench/stats_bench.c build/libloyaltycore.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(INC) -o $@ $< build/libloyaltycore.a $(LIBS)

# the same loyaltyctl without the counters: the other side of the ratio
build/bench/nocounters/loyalty_stats.o: ngx_module/core/loyalty_stats.c \
                                        $(wildcard ngx_module/core/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(INC) -DLOYALTY_STATS_BENCH_OFF -c -o $@ $<

build/bench/loyaltyctl-nocounters: $(filter build/cli/%,$(OBJ)) \
                                   build/bench/nocounters/loyalty_stats.o \
                                   build/libloyaltycore.a
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS) $(NATS_LIBS)

bench-stats: all $(BENCH_BIN)
	bash bench/stats.sh

# stores of 100,000 to 10,000,000 members and 10,000 to 1,000,000 codes:
# GBs under bench/work/scale and half an hour (bench/scale, bench/README.md)
bench-scale: deps all
	bash bench/scale

# docs/member-cookie-vectors.json and docs/attribution-cookie-vectors.json,
# remade by the core's own signing code; build/unit/cookie_vectors.t and
# build/unit/ref_vectors.t fail when a file and the code differ
vectors: build/unit/cookie_vectors.t build/unit/ref_vectors.t
	build/unit/cookie_vectors.t --write > docs/member-cookie-vectors.json.tmp
	mv docs/member-cookie-vectors.json.tmp docs/member-cookie-vectors.json
	build/unit/ref_vectors.t --write \
	    > docs/attribution-cookie-vectors.json.tmp
	mv docs/attribution-cookie-vectors.json.tmp \
	    docs/attribution-cookie-vectors.json

clean:
	rm -rf build

# The dashboard (ADMIN/dashboard): the page, its script and style, and
# Apache ECharts from npm (dashboard/package-lock.json pins it, `npm ci`
# in .ci/install-deps installs it), copied into build/dashboard, the
# folder loyalty_admin_dashboard names; nothing is fetched when it runs.
DASH_SRC    := dashboard/index.html dashboard/app.js dashboard/app.css
DASH_ECHARTS := dashboard/node_modules/echarts

dashboard: build/dashboard/index.html

$(DASH_ECHARTS)/dist/echarts.min.js: dashboard/package-lock.json
	cd dashboard && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

build/dashboard/index.html: $(DASH_SRC) $(DASH_ECHARTS)/dist/echarts.min.js
	rm -rf build/dashboard.tmp
	mkdir -p build/dashboard.tmp
	cp $(DASH_SRC) $(DASH_ECHARTS)/dist/echarts.min.js build/dashboard.tmp/
	cp $(DASH_ECHARTS)/LICENSE build/dashboard.tmp/echarts-LICENSE.txt
	cp $(DASH_ECHARTS)/NOTICE build/dashboard.tmp/echarts-NOTICE.txt
	rm -rf build/dashboard
	mv build/dashboard.tmp build/dashboard

# The version is debian/changelog's, one source for loyaltyctl, the
# module (config makes its own copy of the header), the man pages and the
# packages.
VERSION     := $(shell sh ngx_module/version.sh -n debian/changelog)

build/loyalty_version.h: debian/changelog ngx_module/version.sh
	@mkdir -p build
	sh ngx_module/version.sh debian/changelog > $@.tmp
	mv $@.tmp $@

$(filter build/cli/%,$(OBJ)) $(filter build/asan/cli/%,$(SAN_OBJ)): \
    build/loyalty_version.h
$(NGX_BUILD)/objs/Makefile: debian/changelog ngx_module/version.sh

# The man pages: loyaltyctl(1) from loyaltyctl's own --help, loyalty(8)
# from the README's directives, so that neither can drift.
.PHONY: man deb

man: build/man/loyaltyctl.1 build/man/loyalty.8

build/man/loyaltyctl.1: build/loyaltyctl man/mkman debian/changelog
	@mkdir -p build/man
	perl man/mkman loyaltyctl build/loyaltyctl $(VERSION) > $@.tmp
	mv $@.tmp $@

build/man/loyalty.8: README.md man/mkman debian/changelog
	@mkdir -p build/man
	perl man/mkman directives README.md $(VERSION) > $@.tmp
	mv $@.tmp $@

# The Debian packages, libnginx-mod-http-loyalty and loyalty-tools, built
# by dpkg-buildpackage from a copy of the tree (dpkg writes next to the
# source directory) and left in build/deb/, with the build's log (no
# -dbgsym packages, so that `apt-get install ./build/deb/*.deb` installs
# just the two).
DEB_SRC     := build/deb/nginx-loyalty-$(VERSION)

deb: dashboard
	rm -rf build/deb
	mkdir -p $(DEB_SRC)
	if git rev-parse --git-dir >/dev/null 2>&1; then \
	    git ls-files -z --cached --others --exclude-standard; \
	else \
	    find . -path ./build -prune -o -path ./.git -prune \
	           -o -type f -print0; \
	fi | perl -0 -ne 'chomp; print "$$_\0" if -f' \
	   | xargs -0 cp --parents -t $(DEB_SRC)
	cp -r build/dashboard $(DEB_SRC)/debian/dashboard
	cd $(DEB_SRC) && DEB_BUILD_OPTIONS="noddebs parallel=2" \
	    dpkg-buildpackage -us -uc -b > ../build.log 2>&1 \
	    || { tail -40 ../build.log; exit 1; }
	rm -rf $(DEB_SRC)
	@ls -1 build/deb/*.deb
