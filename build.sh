#!/usr/bin/env bash
# build.sh - fetch, verify and build the dependencies, then link the static `mesh`.
#
#   ./build.sh          deps (cached) + ./mesh (static, musl)
#   ./build.sh test     the above + ./mesh-asan (glibc, ASan/UBSan), unit tests and
#                       end-to-end scenarios against both binaries, and a check that the
#                       fuzz targets compile; ends "N passed, N failed"
#   ./build.sh bench    wrk: direct vs mesh vs HAProxy vs nginx (see docs/benchmarks.md)
#   ./build.sh fuzz [S] libFuzzer on every tests/fuzz/fuzz_*.c, S seconds each (default 30)
#   ./build.sh asan     only ./mesh-asan
#   ./build.sh clean    remove build outputs (keeps the dependency cache)
#
# Dependencies come as Debian *source packages* from the archive this machine's apt is
# already configured for (its URI is read from apt, never written here): mbedTLS 3.6 from
# trixie, libev 4.33 and inih from trixie or, failing that, from this machine's release.
# apt verifies the signed Sources index and the files' hashes; dpkg-source checks the
# .dsc checksums again on extraction. Everything lands in .cache/ (git-ignored); a second
# build needs no network.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
CACHE=$ROOT/.cache
MESH_VERSION=0.1.0
JOBS=$(nproc 2>/dev/null || echo 2)

say() { printf '==> %s\n' "$*"; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- host tools
need_tools() {
	local missing=() t pkg
	for t in "$@"; do
		pkg=${t#*:}; t=${t%%:*}
		command -v "$t" >/dev/null 2>&1 || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing Debian packages: ${missing[*]}"
	[ "$(id -u)" -eq 0 ] || die "need root to apt-get install ${missing[*]} (or install them yourself)"
	if [ ! -f "$CACHE/.apt-updated" ]; then
		apt-get update -qq || die "apt-get update failed: check the machine's apt sources"
		mkdir -p "$CACHE" && touch "$CACHE/.apt-updated"
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
		|| die "apt-get install ${missing[*]} failed"
}

# ---------------------------------------------------------------- sources
APT_DIR=$CACHE/apt
apt_tmp() {
	apt-get -o Dir::Etc::SourceList="$APT_DIR/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$APT_DIR/lists" -o Dir::Cache="$APT_DIR/cache" \
		-o Dir::State::Status=/var/lib/dpkg/status -o Debug::NoLocking=1 \
		-o APT::Sandbox::User=root "$@"
}

fetch_sources() {
	local src=$CACHE/src
	if [ -f "$src/.done" ]; then return 0; fi
	need_tools dpkg-source:dpkg-dev apt-get:apt
	say "fetching source packages (mbedtls, libev, libinih) from the machine's Debian archive"
	local codename uri
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[ -n "$codename" ] || die "cannot tell this machine's Debian release from /etc/os-release"
	uri=$(apt-get indextargets --format '$(REPO_URI) $(CODENAME)' 2>/dev/null \
		| awk -v c="$codename" '$2 == c { print $1; exit }')
	[ -n "$uri" ] || die "no apt source for '$codename' found (apt-get indextargets); configure apt first"
	local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	[ -f "$keyring" ] || need_tools gpgv:debian-archive-keyring
	rm -rf "$APT_DIR" "$src.tmp"
	mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$src.tmp"
	{
		echo "deb-src [signed-by=$keyring] $uri trixie main"
		[ "$codename" = trixie ] || echo "deb-src [signed-by=$keyring] $uri $codename main"
	} >"$APT_DIR/sources.list"
	apt_tmp update -qq >"$APT_DIR/update.log" 2>&1 \
		|| { cat "$APT_DIR/update.log" >&2; die "apt-get update of the source index failed (network or signature)"; }
	local p got
	for p in mbedtls libev libinih; do
		got=
		for suite in trixie "$codename"; do
			[ "$p" = mbedtls ] && [ "$suite" != trixie ] && continue # only trixie has 3.6
			if (cd "$src.tmp" && apt_tmp source -qq --download-only "$p/$suite" >"$APT_DIR/$p.log" 2>&1); then
				got=$suite; break
			fi
		done
		[ -n "$got" ] || { cat "$APT_DIR/$p.log" >&2; die "could not fetch source package $p"; }
		say "  $p from $got: $(cd "$src.tmp" && ls "${p}"_*.dsc)"
		(cd "$src.tmp" && dpkg-source --require-strong-checksums -x "${p}"_*.dsc "$p" >"$APT_DIR/$p.x.log" 2>&1) \
			|| { cat "$APT_DIR/$p.x.log" >&2; die "dpkg-source could not verify/extract $p"; }
	done
	grep -q '^#define MBEDTLS_VERSION_STRING  *"3\.6' "$src.tmp/mbedtls/include/mbedtls/build_info.h" \
		|| die "fetched mbedtls is not 3.6.x"
	grep -q 'EV_VERSION_MINOR 33' "$src.tmp/libev/ev.h" || die "fetched libev is not 4.33"
	rm -rf "$src"; mv "$src.tmp" "$src"; touch "$src/.done"
	rm -rf "$APT_DIR"
}

# ---------------------------------------------------------------- deps build
# Same defines for the libraries and for our code that includes their headers.
DEP_DEFS="-DEV_STANDALONE=1 -DEV_USE_EPOLL=1 -DEV_USE_POLL=1 -DEV_USE_SELECT=0 \
 -DEV_USE_MONOTONIC=1 -DEV_USE_REALTIME=1 -DEV_USE_NANOSLEEP=1 -DEV_USE_EVENTFD=1 \
 -DEV_USE_SIGNALFD=1 -DEV_USE_INOTIFY=1 -DEV_USE_TIMERFD=1 -DEV_USE_CLOCK_SYSCALL=0 \
 -DEV_COMPAT3=0 -DEV_VERIFY=0 -DEV_USE_IOURING=0 -DEV_USE_LINUXAIO=0 \
 -DINI_HANDLER_LINENO=1 -DINI_MAX_LINE=4096 -DINI_USE_STACK=1 -DINI_ALLOW_MULTILINE=0 \
 -DINI_CALL_HANDLER_ON_NEW_SECTION=1 -DINI_STOP_ON_FIRST_ERROR=0 -DINI_ALLOW_INLINE_COMMENTS=1"

build_deps() { # $1 = target name (musl|glibc), $2 = cc
	local t=$1 cc=$2
	local out=$CACHE/$t src=$CACHE/src
	local stamp="$out/.stamp" want
	want=$( (cat "$ROOT/modules/mesh_mbedtls_config.h"; echo "$DEP_DEFS $cc") | sha256sum | cut -c1-16)
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
	say "building dependencies for $t with $cc"
	rm -rf "$out"; mkdir -p "$out/lib" "$out/include" "$out/obj"
	local cf="-O2 -g0 -fPIC -ffunction-sections -fdata-sections -w $DEP_DEFS -I$ROOT/modules"
	# mbedTLS: our config header replaces the default one; the library's own Makefile
	rm -rf "$out/mbedtls"; cp -r "$src/mbedtls" "$out/mbedtls"
	cp "$ROOT/modules/mesh_mbedtls_config.h" "$out/mbedtls/include/mbedtls/mbedtls_config.h"
	make -s -C "$out/mbedtls/library" -j"$JOBS" CC="$cc" AR=ar CFLAGS="$cf" \
		libmbedcrypto.a libmbedx509.a libmbedtls.a >"$out/mbedtls.log" 2>&1 \
		|| { tail -30 "$out/mbedtls.log" >&2; die "mbedTLS build failed ($out/mbedtls.log)"; }
	cp "$out/mbedtls/library/"lib*.a "$out/lib/"
	cp -r "$out/mbedtls/include/mbedtls" "$out/mbedtls/include/psa" "$out/include/"
	rm -rf "$out/mbedtls"
	# libev: one translation unit, configured by DEP_DEFS instead of ./configure
	$cc $cf -c "$src/libev/ev.c" -o "$out/obj/ev.o" || die "libev build failed"
	ar rcs "$out/lib/libev.a" "$out/obj/ev.o"
	cp "$src/libev/ev.h" "$out/include/"
	# inih
	$cc $cf -c "$src/libinih/ini.c" -o "$out/obj/ini.o" || die "inih build failed"
	ar rcs "$out/lib/libinih.a" "$out/obj/ini.o"
	cp "$src/libinih/ini.h" "$out/include/"
	rm -rf "$out/obj"
	echo "$want" >"$stamp"
}

dep_versions() { # -D flags carrying the library versions for `mesh version`
	local inih_v libev_v
	inih_v=$(ls -d "$CACHE"/src/libinih_*.dsc 2>/dev/null | sed -n 's/.*libinih_\([0-9.]*\).*/r\1/p' | head -1)
	libev_v=$(sed -n 's/^#define EV_VERSION_MAJOR *\([0-9]*\).*/\1/p' "$CACHE/src/libev/ev.h").$(sed -n 's/^#define EV_VERSION_MINOR *\([0-9]*\).*/\1/p' "$CACHE/src/libev/ev.h")
	printf '%s' "-DMESH_VERSION=\"$MESH_VERSION\" -DMESH_INIH_VERSION=\"${inih_v:-unknown}\" -DMESH_LIBEV_VERSION=\"$libev_v\""
}

# ---------------------------------------------------------------- mesh
# libev's watcher macros need -fno-strict-aliasing (as its manual says)
WARN="-Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -fno-strict-aliasing -D_GNU_SOURCE"
SRCS() { echo mesh.c modules/*.c build/demo_conf.c build/dashboard_page.c; }

# conf/bookinfo/*.ini, embedded for `mesh demo` (modules/demo.h): one C string per file
gen_demo_conf() {
	local f
	mkdir -p build
	{
		printf '/* generated by build.sh from conf/bookinfo/NAME.ini: do not edit */\n#include "demo.h"\n'
		printf 'const struct demo_file demo_files[] = {\n'
		for f in conf/bookinfo/*.ini; do
			printf '\t{ "%s",\n' "$(basename "$f")"
			sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/\t  "/' -e 's/$/\\n"/' "$f"
			printf '\t},\n'
		done
		printf '\t{ 0, 0 }\n};\n'
	} >build/demo_conf.c.tmp
	mv build/demo_conf.c.tmp build/demo_conf.c
}

# web/dashboard.html, embedded for `mesh dashboard` (modules/dashboard.h): one C string
gen_dashboard_page() {
	mkdir -p build
	{
		printf '/* generated by build.sh from web/dashboard.html: do not edit */\n#include <stddef.h>\n#include "dashboard.h"\n'
		printf 'const char dashboard_page[] =\n'
		sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/\t"/' -e 's/$/\\n"/' web/dashboard.html
		printf ';\nconst size_t dashboard_page_len = sizeof(dashboard_page) - 1;\n'
	} >build/dashboard_page.c.tmp
	mv build/dashboard_page.c.tmp build/dashboard_page.c
}

build_mesh() {
	need_tools musl-gcc:musl-tools make:make gcc:gcc ar:binutils file:file
	fetch_sources
	build_deps musl musl-gcc
	gen_demo_conf
	gen_dashboard_page
	say "linking ./mesh (static, musl)"
	local inc="-I$CACHE/musl/include -Imodules" lib="$CACHE/musl/lib"
	# shellcheck disable=SC2046
	musl-gcc -std=gnu11 -O2 $WARN $DEP_DEFS $(dep_versions) $inc -ffunction-sections -fdata-sections \
		-static -Wl,--gc-sections -s -o mesh $(SRCS) \
		"$lib/libmbedtls.a" "$lib/libmbedx509.a" "$lib/libmbedcrypto.a" "$lib/libev.a" "$lib/libinih.a" -lm \
		|| die "compiling mesh failed"
	say "$(file -b mesh | cut -d, -f1-2,4-5), $(stat -c %s mesh) bytes"
}

build_asan() {
	need_tools gcc:gcc
	fetch_sources
	build_deps glibc gcc
	gen_demo_conf
	gen_dashboard_page
	say "linking ./mesh-asan (glibc, -fsanitize=address,undefined)"
	local inc="-I$CACHE/glibc/include -Imodules" lib="$CACHE/glibc/lib"
	# shellcheck disable=SC2046
	gcc -std=gnu11 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined \
		$WARN $DEP_DEFS $(dep_versions) $inc -o mesh-asan $(SRCS) \
		"$lib/libmbedtls.a" "$lib/libmbedx509.a" "$lib/libmbedcrypto.a" "$lib/libev.a" "$lib/libinih.a" -lm \
		|| die "compiling mesh-asan failed"
}

# ---------------------------------------------------------------- tests
# Every test program / scenario prints "PASS: ..." / "FAIL: ..." lines; we count them.
TOTAL_PASS=0; TOTAL_FAIL=0
count_output() { # $1 = log file, $2 = exit status, $3 = name, $4 = seconds taken
	local p f
	p=$(grep -c '^PASS: ' "$1" || true); f=$(grep -c '^FAIL: ' "$1" || true)
	if [ "$2" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1; echo "FAIL: $3 exited with status $2 without reporting a failure"
	fi
	grep '^FAIL: ' "$1" | sed "s|^|  [$3] |" || true
	TOTAL_PASS=$((TOTAL_PASS + p)); TOTAL_FAIL=$((TOTAL_FAIL + f))
	printf '  %-40s %3d passed, %d failed  (%ss)\n' "$3" "$p" "$f" "${4:-?}"
}

# Slow scenarios start first so that no lane is left with a long one at the end.
E2E_SLOW="20_bookinfo 59_browser 43_identity 46_controller 57_stat 32_resilience 45_demo 55_dashboard 58_prometheus 33_lb 50_tracing 35_lab2"

# one unit test: compile (glibc, ASan/UBSan) and run; output in $art/NAME.log
unit_job() {
	local art=$1 name=$2 inc="-I$CACHE/glibc/include -Imodules" lib="$CACHE/glibc/lib"
	# shellcheck disable=SC2046
	if ! gcc -std=gnu11 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined $WARN \
		$DEP_DEFS $(dep_versions) $inc -Itests/unit -o "$art/bin/$name" "tests/unit/$name.c" \
		"$lib/libmbedtls.a" "$lib/libmbedx509.a" "$lib/libmbedcrypto.a" "$lib/libev.a" "$lib/libinih.a" -lm \
		>"$art/$name.build.log" 2>&1; then
		{ cat "$art/$name.build.log"; echo "FAIL: $name does not compile"; } >"$art/$name.log"
		return 1
	fi
	(cd tests/unit && timeout 300 "$art/bin/$name") >"$art/$name.log" 2>&1
}

run_tests() {
	need_tools curl:curl python3:python3 timeout:coreutils flock:util-linux
	# e2e 58 runs a real Prometheus, e2e 59 the dashboard in Chromium through tests/browser (docs/dashboard.md)
	need_tools prometheus:prometheus chromium:chromium node:nodejs npm:npm
	need_tools clang:clang   # the fuzz targets are checked to compile
	[ tests/browser/node_modules/.package-lock.json -nt tests/browser/package-lock.json ] ||
		(cd tests/browser && npm ci --no-audit --no-fund >/dev/null) || die "npm ci in tests/browser failed (it needs the npm registry)"
	build_mesh
	build_asan
	local art=$ROOT/tests/artifacts t name rc q lane lanes=${E2E_LANES:-2} job kind started
	rm -rf "$art"; mkdir -p "$art/bin" "$art/pybin"
	# the scenarios call python3 often: straight, not through a version manager's shim
	# (pyenv's runs several bash processes per call: seconds each on a loaded machine)
	for t in /usr/bin/python3 /usr/local/bin/python3; do
		[ -x "$t" ] && ln -s "$t" "$art/pybin/python3" && PATH=$art/pybin:$PATH && break
	done
	# helper programs the scenarios use (backends), plain glibc builds
	for t in tests/e2e/*.c; do
		[ -e "$t" ] || continue
		gcc -std=gnu11 -O2 -Wall -Wextra -Werror -pthread -o "$art/bin/$(basename "$t" .c)" "$t" \
			|| die "cannot build $t"
	done
	# One queue of jobs: every unit test, and every scenario once per binary (static
	# ./mesh and ./mesh-asan). E2E_LANES workers (default 2, one per core: the
	# sanitizer build is busy; MESH_TEST_SERIAL=1 means one) take the
	# next job under a lock. Each worker has its own port slot (tests/e2e/lib.sh;
	# E2E_SLOT_BASE=N shifts them, for two test runs on one machine).
	[ "${MESH_TEST_SERIAL:-0}" = 1 ] && lanes=1
	q=$art/queue
	{
		for name in $E2E_SLOW; do
			[ -e "tests/e2e/$name.sh" ] && printf 'mesh %s\nmesh-asan %s\n' "$name" "$name"
		done
		for t in tests/unit/test_*.c; do [ -e "$t" ] && echo "unit $(basename "$t" .c)"; done
		for t in tests/e2e/[0-9]*.sh; do
			name=$(basename "$t" .sh)
			case " $E2E_SLOW " in *" $name "*) continue ;; esac
			printf 'mesh %s\nmesh-asan %s\n' "$name" "$name"
		done
	} >"$q"
	say "unit tests and end-to-end scenarios: $(wc -l <"$q") jobs on $lanes lanes"
	for ((lane = 1; lane <= lanes; lane++)); do
		(
			while job=$(flock "$q.lock" sh -c 'head -n 1 "$1"; sed -i 1d "$1"' _ "$q") && [ -n "$job" ]; do
				kind=${job%% *}; name=${job#* }; rc=0; started=$SECONDS
				if [ "$kind" = unit ]; then
					unit_job "$art" "$name" || rc=$?
				else
					E2E_SLOT=$((lane + ${E2E_SLOT_BASE:-0})) MESH="$ROOT/$kind" BIN="$art/bin" ART="$art/$kind-$name" \
						timeout 240 bash "tests/e2e/$name.sh" >"$art/$kind-$name.log" 2>&1 || rc=$?
				fi
				echo "$name $rc $((SECONDS - started))" >>"$art/$kind.results"
			done
		) &
	done
	wait
	for kind in unit mesh mesh-asan; do
		case $kind in
		unit) say "unit tests (glibc, ASan/UBSan)" ;;
		*) say "end-to-end scenarios with ./$kind" ;;
		esac
		[ -f "$art/$kind.results" ] || continue
		while read -r name rc secs; do
			if [ "$kind" = unit ]; then
				count_output "$art/$name.log" "$rc" "$name" "$secs"
			else
				count_output "$art/$kind-$name.log" "$rc" "$kind:$name" "$secs"
			fi
		done < <(sort "$art/$kind.results")
	done
	# the fuzz targets (./build.sh fuzz runs them) at least compile against today's modules
	say "fuzz targets compile (clang -fsyntax-only)"
	local inc="-I$CACHE/glibc/include -Imodules"
	started=$SECONDS
	: >"$art/fuzz-compile.log"
	for t in tests/fuzz/fuzz_*.c; do
		name=$(basename "$t" .c)
		# shellcheck disable=SC2046
		if clang -fsyntax-only -Werror -D_GNU_SOURCE $DEP_DEFS $(dep_versions) $inc "$t" >"$art/$name.check.log" 2>&1; then
			echo "PASS: $name compiles"
		else
			head -5 "$art/$name.check.log"; echo "FAIL: $name does not compile"
		fi >>"$art/fuzz-compile.log"
	done
	count_output "$art/fuzz-compile.log" 0 "fuzz targets" "$((SECONDS - started))"
	echo "$TOTAL_PASS passed, $TOTAL_FAIL failed"
	[ "$TOTAL_FAIL" -eq 0 ]
}

run_fuzz() {
	local secs=${1:-30} t name inc="-I$CACHE/glibc/include -Imodules"
	need_tools clang:clang
	fetch_sources; build_deps glibc gcc
	mkdir -p tests/artifacts/fuzz
	for t in tests/fuzz/fuzz_*.c; do
		name=$(basename "$t" .c)
		say "fuzzing $name for ${secs}s"
		# shellcheck disable=SC2046
		clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE $DEP_DEFS $(dep_versions) $inc -o "tests/artifacts/fuzz/$name" "$t" \
			"$CACHE/glibc/lib/libinih.a" "$CACHE/glibc/lib/libmbedtls.a" "$CACHE/glibc/lib/libmbedx509.a" \
			"$CACHE/glibc/lib/libmbedcrypto.a" "$CACHE/glibc/lib/libev.a" -lm -pthread || die "cannot build $t"
		mkdir -p "tests/artifacts/fuzz/$name.corpus"
		"tests/artifacts/fuzz/$name" -max_total_time="$secs" -print_final_stats=1 \
			"tests/artifacts/fuzz/$name.corpus" tests/fuzz/corpus/"${name#fuzz_}" 2>&1 | tail -5
	done
}

case "${1:-build}" in
build | "") build_mesh ;;
asan) build_asan ;;
test) run_tests ;;
bench) build_mesh; exec bash tests/bench/run.sh "${@:2}" ;;
fuzz) run_fuzz "${2:-30}" ;;
clean) rm -rf mesh mesh-asan tests/artifacts ;;
-h | --help | help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' ;;
*) die "unknown command '$1' (try: ./build.sh help)" ;;
esac
