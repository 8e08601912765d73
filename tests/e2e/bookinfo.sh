# bookinfo.sh - sourced after lib.sh by the scenarios that run Bookinfo from
# the shipped conf/bookinfo/ (the seed's labs): the six sidecars and the
# gateway (`mesh proxy`), the six apps (`mesh sample-app`), all moved to this
# run's ports. The same start-up as 20_bookinfo.sh, in functions:
#
#   bookinfo_ports          allocates GW GW_OUT GW_ADM and, per workload,
#                           <W>_APP <W>_IN <W>_OUT <W>_ADM for W in PP D R1 R2 R3 RA
#   bookinfo_conf           copies conf/bookinfo/*.ini to $ART with every address
#                           moved to those ports, plus [proxy] drain_timeout = 1s
#   bookinfo_start_proxies  starts the CA (ca init into $ART/ca) and the seven proxies
#                           (PROXY_PID[name]), waits for /ready
#   bookinfo_start_apps [ARGS...]  starts the six apps (APP_PID[pp|d|r1|r2|r3|ra]),
#                           each with ARGS added (e.g. --quiet), waits until they listen
#   start_app KEY LOGNAME ARGS...  one app (also to restart one)
#   BOOKINFO_PROXIES        the seven proxy names (conf/bookinfo/<name>.ini)

BOOKINFO_PROXIES=(productpage-v1 details-v1 reviews-v1 reviews-v2 reviews-v3 ratings-v1 gateway)
declare -A PROXY_PID APP_PID

bookinfo_ports() {
	ports GW GW_OUT GW_ADM BI_CA \
		PP_APP PP_IN PP_OUT PP_ADM D_APP D_IN D_OUT D_ADM \
		R1_APP R1_IN R1_OUT R1_ADM R2_APP R2_IN R2_OUT R2_ADM R3_APP R3_IN R3_OUT R3_ADM \
		RA_APP RA_IN RA_OUT RA_ADM
}

bookinfo_conf() {
	local conf=$E2E/../../conf/bookinfo i p left remap sedargs=()
	cp "$conf"/*.ini "$ART/"
	remap=(9080 "$PP_APP" 9081 "$D_APP" 9082 "$R1_APP" 9083 "$R2_APP" 9084 "$R3_APP" 9085 "$RA_APP"
		15200 "$PP_ADM" 15201 "$PP_OUT" 15206 "$PP_IN" 15210 "$D_ADM" 15211 "$D_OUT" 15216 "$D_IN"
		15220 "$R1_ADM" 15221 "$R1_OUT" 15226 "$R1_IN" 15230 "$R2_ADM" 15231 "$R2_OUT" 15236 "$R2_IN"
		15240 "$R3_ADM" 15241 "$R3_OUT" 15246 "$R3_IN" 15250 "$RA_ADM" 15251 "$RA_OUT" 15256 "$RA_IN"
		8080 "$GW" 15290 "$GW_ADM" 15291 "$GW_OUT" 15012 "$BI_CA")
	for ((i = 0; i < ${#remap[@]}; i += 2)); do
		sedargs+=(-e "s/127\.0\.0\.1:${remap[i]}\([^0-9]\|\$\)/127.0.0.1:${remap[i + 1]}\1/g")
	done
	sed -i "${sedargs[@]}" "$ART"/*.ini
	for p in "${BOOKINFO_PROXIES[@]}"; do
		# quick exits at cleanup: into the file's [proxy] section (it has one: tap = on)
		sed -i 's/^\[proxy\]$/[proxy]\ndrain_timeout = 1s/' "$ART/$p.ini"
		grep -q '^drain_timeout = 1s$' "$ART/$p.ini" || printf '\n[proxy]\ndrain_timeout = 1s\n' >>"$ART/$p.ini"
	done
	left=$(grep -ho '127\.0\.0\.1:[0-9]*' "$ART"/*.ini | awk -F: '$2 < 20000' | sort -u | tr '\n' ' ')
	expect_eq "every address of conf/bookinfo moved to this run's ports" "" "$left"
}

bookinfo_start_proxies() {
	local p a
	# the mesh's CA first (conf/bookinfo/ca.ini, moved to our port): the sidecars get their identities from it
	if ! "$MESH" ca init --dir "$ART/ca" >"$ART/ca-init.log" 2>&1; then fail "ca init" "$(cat "$ART/ca-init.log")"; return 1; fi
	start_mesh ca ca -c "$ART/ca.ini"
	if ! wait_port "$BI_CA" 10; then fail "ca start" "the CA does not listen on $BI_CA"; return 1; fi
	for p in "${BOOKINFO_PROXIES[@]}"; do
		start_mesh "proxy-$p" proxy -c "$ART/$p.ini"
		PROXY_PID[$p]=$MESH_PID
	done
	for a in "$PP_ADM" "$D_ADM" "$R1_ADM" "$R2_ADM" "$R3_ADM" "$RA_ADM" "$GW_ADM"; do
		if ! wait_ready "$a" 10; then fail "sidecars start" "admin $a not ready"; return 1; fi
	done
	pass "seven proxies ready (six sidecars and the gateway)"
}

start_app() { # KEY LOGNAME ARGS...
	local key=$1 log=$2
	shift 2
	start_mesh "$log" sample-app "$@"
	APP_PID[$key]=$MESH_PID
}

bookinfo_start_apps() {
	local p
	start_app pp app-productpage productpage --listen "127.0.0.1:$PP_APP" --proxy "127.0.0.1:$PP_OUT" "$@"
	start_app d app-details details --listen "127.0.0.1:$D_APP" "$@"
	start_app r1 app-reviews-v1 reviews --version v1 --listen "127.0.0.1:$R1_APP" --proxy "127.0.0.1:$R1_OUT" "$@"
	start_app r2 app-reviews-v2 reviews --version v2 --listen "127.0.0.1:$R2_APP" --proxy "127.0.0.1:$R2_OUT" "$@"
	start_app r3 app-reviews-v3 reviews --version v3 --listen "127.0.0.1:$R3_APP" --proxy "127.0.0.1:$R3_OUT" "$@"
	start_app ra app-ratings ratings --listen "127.0.0.1:$RA_APP" "$@"
	for p in "$PP_APP" "$D_APP" "$R1_APP" "$R2_APP" "$R3_APP" "$RA_APP"; do
		if ! wait_port "$p" 10; then fail "apps start" "nothing listens on $p"; return 1; fi
	done
	pass "six Bookinfo apps listening"
}
