// dashboard.test.mjs - the dashboard page (web/dashboard.html) in real headless
// Chromium, driven by playwright-core; e2e 59 runs it beside `mesh demo` with
// the reviews canary at 80/20.
//
//   node dashboard.test.mjs URL GOFILE
//
// It starts Chromium and opens URL at once (the slow part, while e2e 59 waits
// for the canary and sends traffic), then waits (bounded) for GOFILE to hold
// "V1N V2N": the reviews calls that reviews v1 and v2 counted themselves, the
// split the page must show. Then it reloads the page and checks it.
// Environment: CHROMIUM (default /usr/bin/chromium), ART (screenshots go there),
// SCENARIO (the name in PASS/FAIL lines). Prints one PASS: or FAIL: line per
// check, like tests/e2e/lib.sh, and note: lines with its timing; exits 1 after
// a failure.
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";

const [url, gofile] = process.argv.slice(2);
const art = process.env.ART || ".";
const scenario = process.env.SCENARIO || "browser";
let failed = 0;
const ok = (name) => console.log(`PASS: ${scenario}: ${name}`);
const bad = (name, why) => { failed++; console.log(`FAIL: ${scenario}: ${name}: ${why}`); };
const expect = (name, cond, why) => (cond ? ok(name) : bad(name, why));
const shot = (page, name) => page.screenshot({ path: path.join(art, name), fullPage: true });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const T = 10000;   // every wait is bounded
const t0 = Date.now();
const note = (what) => console.log(`note: ${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);

if (!url || !gofile) {
	console.log(`FAIL: ${scenario}: usage: node dashboard.test.mjs URL GOFILE`);
	process.exit(1);
}

const browser = await chromium.launch({
	executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
	// root on CI: Chromium's sandbox needs an unprivileged user
	args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
	timeout: 30000,
});
const problems = [];   // console errors, uncaught exceptions, failed or refused requests
try {
	const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
	page.setDefaultTimeout(T);
	page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
	page.on("pageerror", (e) => problems.push(`exception: ${e.message}`));
	page.on("requestfailed", (r) => {   // (a reload cancels a refresh in flight: ERR_ABORTED)
		if (r.failure()?.errorText !== "net::ERR_ABORTED") { problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`); }
	});
	page.on("response", (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
	const resp = await page.goto(url, { waitUntil: "load" });
	expect("the page loads (200, title 'mesh dashboard')", resp.status() === 200 && (await page.title()) === "mesh dashboard",
		`HTTP ${resp.status()}, title '${await page.title()}'`);
	note("Chromium has the page");

	// ---- e2e 59 says when the traffic is in the dashboard
	let go = "";
	for (let i = 0; i < 1200 && !go.includes("\n"); i++) {   // 120 s
		try { go = fs.readFileSync(gofile, "utf8"); } catch { /* not yet */ }
		if (!go.includes("\n")) { await sleep(100); }
	}
	const [v1n, v2n] = go.trim().split(/\s+/).map(Number);
	if (!(v1n > 0) || !(v2n > 0)) { throw new Error(`no 'V1N V2N' line in ${gofile} after 120 s: '${go}'`); }
	note("traffic done");
	await page.reload({ waitUntil: "load" });

	// ---- graph: nodes and edges after traffic
	await page.waitForSelector("#graph svg .edge");
	const nodes = await page.$$eval("#graph svg .node", (els) => els.map((e) => e.getAttribute("data-n")));
	const want = ["bookinfo-gateway", "productpage v1", "details v1", "reviews v1", "reviews v2", "reviews v3", "ratings v1"];
	const missing = want.filter((n) => !nodes.includes(n));
	expect("graph: the Bookinfo nodes (gateway, productpage, details, reviews v1 v2 v3, ratings)", missing.length === 0,
		`missing ${missing.join(", ")} in ${nodes.join(", ")}`);
	const edges = await page.$$eval("#graph svg .edge", (els) => els.map((e) => ({
		from: e.getAttribute("data-from"), to: e.getAttribute("data-to"),
		label: e.querySelector("text")?.textContent || "",
		lock: !!e.querySelector(".lock"),
		visible: e.getBoundingClientRect().width > 0,
	})));
	const edge = (from, to) => edges.find((e) => e.from === from && e.to === to);
	const rps = (e) => { const m = /^([0-9.]+) rps/.exec(e?.label || ""); return m ? Number(m[1]) : NaN; };
	const calls = [["bookinfo-gateway", "productpage v1"], ["productpage v1", "details v1"], ["productpage v1", "reviews v1"],
		["productpage v1", "reviews v2"], ["reviews v2", "ratings v1"]];
	const dead = calls.filter(([a, b]) => !(rps(edge(a, b)) > 0 && edge(a, b).visible));
	expect("graph: edges gateway -> productpage -> details, reviews v1/v2 -> ratings, each labelled with a non-zero rps",
		dead.length === 0, `no rate on ${JSON.stringify(dead)}; edges: ${JSON.stringify(edges)}`);
	const plain = calls.filter(([a, b]) => !edge(a, b)?.lock);
	expect("graph: a lock on every one of those edges (all mTLS)", plain.length === 0, `no lock on ${JSON.stringify(plain)}`);
	expect("graph: no traffic to reviews v3 under the canary (v1 80 / v2 20)", !(rps(edge("productpage v1", "reviews v3")) > 0),
		edge("productpage v1", "reviews v3")?.label);
	const hidden = await page.$$eval("#graph svg", ([svg]) => {
		const boxes = [...svg.querySelectorAll(".node rect")].map((r) => r.getBoundingClientRect());
		const over = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
		return [...svg.querySelectorAll(".edge text")].filter((t) => boxes.some((b) => over(t.getBoundingClientRect(), b)))
			.map((t) => t.textContent);
	});
	expect("graph: no edge label under a node", hidden.length === 0, JSON.stringify(hidden));
	const r1 = rps(edge("productpage v1", "reviews v1")), r2 = rps(edge("productpage v1", "reviews v2"));
	// the split is random per call: allow 4 standard deviations of a binomial sample of that size
	const share = r2 / (r1 + r2), truth = v2n / (v1n + v2n), tol = 4 * Math.sqrt(0.2 * 0.8 / (v1n + v2n));
	expect(`graph: the canary split on the edges: reviews v2 gets ${(share * 100).toFixed(1)}% of the rate ` +
		`(${r1} / ${r2} rps; configured 20% ± ${(tol * 100).toFixed(1)}, the proxies counted ${(truth * 100).toFixed(1)}%)`,
		Math.abs(share - 0.2) <= tol && Math.abs(share - truth) < 0.02, `v1 ${r1} v2 ${r2} rps, proxies ${v1n}/${v2n}`);
	await shot(page, "graph.png");
	note("graph checked");

	// ---- click the canary edge: the side panel, then one of its traces
	await page.locator('#graph .edge[data-from="productpage v1"][data-to="reviews v2"] path.hit').click({ force: true });
	await page.waitForSelector("#side h3");
	const side = await page.locator("#side").innerText();
	expect("side panel: the clicked edge with its rate and mTLS", /productpage v1 → reviews v2/.test(side) && /rps/.test(side) &&
		/mTLS/.test(side), side.slice(0, 200));
	const trow = page.locator("#sidetr .trow").first();
	await trow.waitFor();
	expect("side panel: recent traces of reviews", (await page.locator("#sidetr .trow").count()) > 0, "none");
	await shot(page, "edge.png");
	const traceId = await trow.getAttribute("data-t");
	await trow.click();
	await page.waitForSelector("#t-traces.on #wf h3");
	const rows = await page.$$eval("#wf tr.trow", (els) => els.map((r) => ({
		service: r.querySelector("b")?.textContent,
		pad: parseFloat(r.cells[0].style.paddingLeft),
		bar: r.querySelector(".wf div")?.getBoundingClientRect().width || 0,
	})));
	const head = await page.locator("#wf h3").innerText();
	const services = new Set(rows.map((r) => r.service.split(".")[0]));
	expect(`a trace opens in the waterfall (${rows.length} spans: ${[...services].join(", ")})`,
		head.includes(traceId) && rows.length >= 4 && services.has("productpage") && services.has("reviews"),
		`${head}; ${JSON.stringify(rows)}`);
	expect("waterfall: every span has a bar, children indented under their parents",
		rows.every((r) => r.bar > 0) && rows[0].pad < Math.max(...rows.map((r) => r.pad)), JSON.stringify(rows));
	expect("waterfall: the Traces tab is the one shown", await page.locator("#t-traces").isVisible() &&
		!(await page.locator("#t-graph").isVisible()), "graph still shown");
	await shot(page, "waterfall.png");
	note("waterfall checked");

	// ---- services tab
	await page.click('nav button[data-t="services"]');
	await page.waitForSelector("#svc table");
	const row = await page.$$eval("#svc table:first-of-type tr", (trs) => trs.map((r) => [...r.cells].map((c) => c.innerText.trim()))
		.find((c) => c[0].startsWith("reviews")));
	expect("services tab: reviews with versions v1, v2, v3, three endpoints, SYNCED", row &&
		row[2].split(", ").sort().join() === "v1,v2,v3" && row[3].split("\n").length === 3 && row[5] === "SYNCED", JSON.stringify(row));
	await shot(page, "services.png");

	await page.waitForTimeout(200);   // a last look for late errors
	expect("no console errors, exceptions or failed requests", problems.length === 0, problems.join(" | "));
} catch (e) {
	bad("browser", `${e.message.split("\n")[0]} (console: ${problems.join(" | ") || "clean"})`);
} finally {
	await browser.close();
	note("Chromium closed");
}
process.exit(failed ? 1 : 0);
