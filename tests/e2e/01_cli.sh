#!/usr/bin/env bash
# 01_cli: the command line, `mesh version`, the static binary in an empty root,
# and config errors reported as file:line.
. "$(dirname "$0")/lib.sh"

# ---- --help and usage errors
out=$("$MESH" --help 2>&1); rc=$?
expect_eq "--help exits 0" 0 "$rc"
expect_match "--help lists the proxy mode" '(^|[^a-z])proxy([^a-z]|$)' "$out"
expect_match "--help lists the version mode" '(^|[^a-z])version([^a-z]|$)' "$out"

out=$("$MESH" no-such-mode 2>&1); rc=$?
expect_eq "unknown mode exits 2" 2 "$rc"
expect_match "unknown mode prints usage" '[Uu]sage' "$out"

out=$("$MESH" proxy --no-such-flag 2>&1); rc=$?
expect_eq "unknown proxy flag exits 2" 2 "$rc"
expect_match "unknown proxy flag prints usage" '[Uu]sage' "$out"

out=$("$MESH" version --no-such-flag 2>&1); rc=$?
expect_eq "unknown version flag exits 2" 2 "$rc"

out=$("$MESH" 2>&1); rc=$?
expect_eq "no mode exits 2" 2 "$rc"

# ---- version
out=$("$MESH" version 2>&1); rc=$?
expect_eq "version exits 0" 0 "$rc"
expect_match "version names mesh" '^mesh [0-9]+\.[0-9]+' "$out"
expect_match "version names mbedTLS 3.6" 'mbedTLS 3\.6\.[0-9]+' "$out"
expect_match "version names libev 4.33" 'libev 4\.33' "$out"
expect_match "version names inih" 'inih r?[0-9]+' "$out"

# ---- static binary, runs alone in an empty root (a scratch image)
if [ "$MESH_STATIC" -eq 1 ]; then
	pass "file says statically linked ($(file -b -L "$MESH" | cut -d, -f1-2))"
	root=$(mktemp -d "$ART/root.XXXXXX")
	cp "$MESH" "$root/mesh"
	if [ "$(id -u)" -eq 0 ]; then runner=(chroot "$root"); else runner=(unshare -r chroot "$root"); fi
	out=$(timeout 10 "${runner[@]}" /mesh version 2>&1); rc=$?
	if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q '^mesh '; then
		pass "runs in an empty root holding only the binary ($(ls "$root" | tr '\n' ' '))"
	else
		fail "runs in an empty root" "status $rc: ${out:0:300}"
	fi
	rm -rf "$root"
else
	case $(file -b -L "$MESH") in
	*dynamically*) note "$(basename "$MESH") is dynamically linked (sanitizer build): static and empty-root checks skipped" ;;
	*) fail "file says statically linked" "$(file -b -L "$MESH")" ;;
	esac
fi

# ---- config errors: non-zero exit, "file:line: message" naming the right line
ports ADM OUT
# conf_error NAME WHERE FILE [regex] : mesh proxy -c FILE must exit non-zero at once
# with "WHERE: message" on stderr (WHERE = name:line), the message matching regex
conf_error() {
	local name=$1 where=$2 f=$3 extra=${4:-} out rc
	out=$(timeout 10 "$MESH" proxy -c "$f" 2>&1); rc=$?
	if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
		fail "$name" "mesh proxy -c $(basename "$f") exited $rc (want a non-zero exit at once): ${out:0:300}"
		return
	fi
	if ! printf '%s' "$out" | grep -q "$where: "; then
		fail "$name" "stderr does not name $where: ${out:0:400}"
		return
	fi
	if [ -n "$extra" ] && ! printf '%s' "$out" | grep "$where: " | grep -Eq -- "$extra"; then
		fail "$name" "message lacks /$extra/: ${out:0:400}"
		return
	fi
	pass "$name ($(printf '%s' "$out" | grep -m1 "$where: " | cut -c1-120))"
}

good_head() { # a valid workload part, 8 lines
	cat <<EOF
[workload]
service = client
namespace = default

[listen]
outbound = 127.0.0.1:$OUT
admin = 127.0.0.1:$ADM

EOF
}

{ good_head; printf '[proxy]\nheader_timeot = 1s\n'; } >"$ART/unknown-key.ini"
conf_error "unknown key names its line, with a suggestion" unknown-key.ini:10 "$ART/unknown-key.ini" 'header_timeout'

{ good_head; printf '[proxy]\nheader_timeout = 5 parsecs\n'; } >"$ART/bad-duration.ini"
conf_error "bad duration names its line" bad-duration.ini:10 "$ART/bad-duration.ini"

{ good_head; printf '[proxy]\nmax_header_size = lots\n'; } >"$ART/bad-size.ini"
conf_error "bad size names its line" bad-size.ini:10 "$ART/bad-size.ini"

{ good_head; printf '[proxyy]\nheader_timeout = 1s\n'; } >"$ART/unknown-section.ini"
conf_error "unknown section names its line" unknown-section.ini:9 "$ART/unknown-section.ini" 'proxy'

{ good_head; printf '[service hello]\nendpoint = 127.0.0.1:notaport\n'; } >"$ART/bad-addr.ini"
conf_error "bad address names its line" bad-addr.ini:10 "$ART/bad-addr.ini"

{ good_head; printf '[service hello]\nendpoint = 127.0.0.1:9\n\n[service hello]\nendpoint = 127.0.0.1:10\n'; } >"$ART/dup-service.ini"
conf_error "duplicate service names its line" dup-service.ini:12 "$ART/dup-service.ini" 'hello'

# a mesh file named by [control] mesh: the error names that file and its line
printf '[service hello]\nport = 80\nendpoint = 127.0.0.1:9\nweight_of_the_world = 3\n' >"$ART/bad-mesh.ini"
{ good_head; printf '[control]\nmesh = bad-mesh.ini\n'; } >"$ART/uses-bad-mesh.ini"
conf_error "error in the mesh file names that file and line" bad-mesh.ini:4 "$ART/uses-bad-mesh.ini" 'weight_of_the_world'

out=$(timeout 10 "$MESH" proxy -c "$ART/does-not-exist.ini" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && printf '%s' "$out" | grep -q 'does-not-exist.ini'; then
	pass "missing config file: non-zero exit naming the file"
else
	fail "missing config file" "status $rc: ${out:0:300}"
fi
exit 0
