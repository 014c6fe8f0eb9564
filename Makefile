# nginx-loyalty
#
#   make            the module (build/ngx_http_loyalty_module.so) and
#                   build/loyaltyctl
#   make test       installs what is missing, builds, runs the whole suite
#   make demo       installs, builds, starts a demo nginx on 127.0.0.1:8080
#   make bench      installs, builds, runs the benchmarks in bench/
#   make vectors    remakes docs/member-cookie-vectors.json from the code

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

.PHONY: all deps test demo demo-stop bench vectors clean

all: build/ngx_http_loyalty_module.so build/loyaltyctl

deps:
	@sh .ci/install-deps

# The module is built by nginx's own build system with the flags Debian's
# nginx was configured with, so that the stock binary accepts it.
$(NGX_BUILD)/objs/Makefile: config ngx_module/bots.txt $(LUA_LIB_SRC)
	rm -rf $(NGX_BUILD)
	mkdir -p build
	cp -r $(NGX_SRC) $(NGX_BUILD)
	cd $(NGX_BUILD) && bash -c '. ./conf_flags; \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="-g -O2 -fPIC -fstack-protector-strong \
	            -D_FORTIFY_SOURCE=2" \
	        --with-ld-opt="-Wl,-z,relro -Wl,-z,now -fPIC" \
	        --add-dynamic-module=$(CURDIR)' > configure.log 2>&1 \
	    || { cat $(NGX_BUILD)/configure.log; exit 1; }

build/ngx_http_loyalty_module.so: $(NGX_BUILD)/objs/Makefile $(MOD_SRC) \
                                  $(CORE_SRC) $(CORE_HDR)
	$(MAKE) -C $(NGX_BUILD) -f objs/Makefile modules
	@# by rename: a running nginx keeps the old mapping instead of crashing
	cp $(NGX_BUILD)/objs/ngx_http_loyalty_module.so $@.tmp
	mv $@.tmp $@

$(LUA_LIB_H): $(LUA_LIB_SRC)
	@mkdir -p build
	sh ngx_module/core/loyalty_lua_lib.sh lua/loyalty > $@.tmp
	mv $@.tmp $@

build/loyaltyctl: $(CORE_SRC) $(CORE_HDR) $(LUA_LIB_H) $(CLI_SRC) \
                  $(wildcard ngx_module/cli/*.h)
	@mkdir -p build
	$(CC) $(CFLAGS) $(WARN) -Ingx_module/core -Ingx_module/cli -Ibuild \
	    $(LUA_CFLAGS) -o $@ $(CORE_SRC) $(CLI_SRC) $(LIBS)

build/unit/%.t: t/unit/%.c t/unit/tap.h $(CORE_SRC) $(CORE_HDR) $(LUA_LIB_H)
	@mkdir -p build/unit
	$(CC) $(CFLAGS) $(WARN) -Ingx_module/core -It/unit -Ibuild \
	    $(LUA_CFLAGS) -o $@ $< $(CORE_SRC) $(LIBS)

test: deps all $(UNIT_BIN)
	prove -j2 t/*.t $(UNIT_BIN)

demo: deps all
	sh t/demo/run

demo-stop:
	sh t/demo/run stop

bench: deps all
	bash bench/run

# docs/member-cookie-vectors.json, remade by the core's own signing code;
# build/unit/cookie_vectors.t fails when the file and the code differ
vectors: build/unit/cookie_vectors.t
	build/unit/cookie_vectors.t --write > docs/member-cookie-vectors.json.tmp
	mv docs/member-cookie-vectors.json.tmp docs/member-cookie-vectors.json

clean:
	rm -rf build

# The version is debian/changelog's, one source for loyaltyctl, the
# module (config makes its own copy of the header), the man pages and the
# packages.
VERSION     := $(shell sh ngx_module/version.sh -n debian/changelog)

build/loyalty_version.h: debian/changelog ngx_module/version.sh
	@mkdir -p build
	sh ngx_module/version.sh debian/changelog > $@.tmp
	mv $@.tmp $@

build/loyaltyctl: build/loyalty_version.h
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

deb:
	rm -rf build/deb
	mkdir -p $(DEB_SRC)
	if git rev-parse --git-dir >/dev/null 2>&1; then \
	    git ls-files -z --cached --others --exclude-standard; \
	else \
	    find . -path ./build -prune -o -path ./.git -prune \
	           -o -type f -print0; \
	fi | perl -0 -ne 'chomp; print "$$_\0" if -f' \
	   | xargs -0 cp --parents -t $(DEB_SRC)
	cd $(DEB_SRC) && DEB_BUILD_OPTIONS="noddebs parallel=2" \
	    dpkg-buildpackage -us -uc -b > ../build.log 2>&1 \
	    || { tail -40 ../build.log; exit 1; }
	rm -rf $(DEB_SRC)
	@ls -1 build/deb/*.deb
