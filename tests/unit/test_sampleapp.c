/*
 * sampleapp: the pure parts of the Bookinfo apps. The JSON reader (valid and
 * invalid documents, escapes, lookups), the JSON the apps answer, and the
 * product page for reviews v1 (no stars), v2 (black), v3 (red), ratings
 * errors, missing details or reviews, and hostile values. Star counts are
 * counted the way the seed lab does: lines containing "glyphicon-star".
 */
#include <string.h>

#include "../../modules/buf.c"
#include "../../modules/conf.c"
#include "../../modules/http1.c"
#include "../../modules/log.c"
#include "../../modules/sampleapp.c"
#include "test.h"

/* lines of s that contain needle (grep -c) */
static int grep_c(const char *s, const char *needle)
{
	int n = 0;

	while (s && *s) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		char line[4096];

		if (len >= sizeof(line))
			len = sizeof(line) - 1;
		memcpy(line, s, len);
		line[len] = 0;
		if (strstr(line, needle))
			n++;
		s = nl ? nl + 1 : s + len;
	}
	return n;
}

/* occurrences of needle in s */
static int count(const char *s, const char *needle)
{
	int n = 0;

	for (const char *p = s; p && (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static int is_obj(const char *s)
{
	return json_is_object(s, strlen(s));
}

static char *page(const char *user, const char *details, const char *reviews)
{
	struct strbuf o = { 0 };
	struct sa_page pg = { .user = user, .served_by = "productpage-v1" };

	pg.details_ok = details != NULL;
	pg.details = details;
	pg.details_len = details ? strlen(details) : 0;
	pg.reviews_ok = reviews != NULL;
	pg.reviews = reviews;
	pg.reviews_len = reviews ? strlen(reviews) : 0;
	render_productpage(&o, &pg);
	return o.p;
}

static char *reviews_json(const char *version, int ratings, const char *color, long s1, long s2)
{
	struct strbuf o = { 0 };
	char pod[32];

	snprintf(pod, sizeof(pod), "reviews-%s", version);
	render_reviews_json(&o, 0, pod, version, ratings, color, s1, s2);
	return o.p;
}

static void test_json_reader(void)
{
	const char *d = "{\"a\": 1, \"b\" : [10, {\"c\": \"x\\\"y\"}, null], \"k\\u0065y\": true, \"n\": -12}";
	const char *end = d + strlen(d), *b;
	char t[64];
	long v;

	TEST("json: {} is an object", is_obj("{}"));
	TEST("json: whitespace around", is_obj(" \r\n\t{ \"a\" : [ ] } \n"));
	TEST("json: nested document", is_obj(d));
	TEST("json: numbers with fraction and exponent", is_obj("{\"a\":-0.5e+10,\"b\":1E3,\"c\":0}"));
	TEST("json: an array is not an object", !is_obj("[1]"));
	TEST("json: truncated", !is_obj("{\"a\":1"));
	TEST("json: missing value", !is_obj("{\"a\":}"));
	TEST("json: trailing comma", !is_obj("{\"a\":1,}"));
	TEST("json: leading zero", !is_obj("{\"a\":01}"));
	TEST("json: bare word", !is_obj("{\"a\":yes}"));
	TEST("json: control character in a string", !is_obj("{\"a\":\"x\ny\"}"));
	TEST("json: bad escape", !is_obj("{\"a\":\"\\x\"}"));
	TEST("json: short \\u escape", !is_obj("{\"a\":\"\\u12\"}"));
	TEST("json: garbage after the object", !is_obj("{} x"));
	TEST("json: empty input", !is_obj("") && !json_is_object(NULL, 0));
	{
		char deep[200];
		int i;

		for (i = 0; i < 40; i++)
			deep[i] = '[';
		for (; i < 80; i++)
			deep[i] = ']';
		deep[80] = 0;
		memmove(deep + 5, deep, 81);
		memcpy(deep, "{\"a\":", 5);
		strcat(deep, "}");
		TEST("json: nesting deeper than 32 refused", !is_obj(deep));
	}
	TEST("json_member finds a", json_int(json_member(d, end, "a"), end, &v) == 0 && v == 1);
	TEST("json_member finds an escaped key", json_text(json_member(d, end, "key"), end, t, sizeof(t)) == 0 &&
	     !strcmp(t, "true"));
	TEST("json_member: negative int", json_int(json_member(d, end, "n"), end, &v) == 0 && v == -12);
	TEST("json_member: missing key", json_member(d, end, "zz") == NULL);
	b = json_member(d, end, "b");
	TEST("json_index 0", json_int(json_index(b, end, 0), end, &v) == 0 && v == 10);
	TEST("json_index 1 then member, unescaped",
	     json_text(json_member(json_index(b, end, 1), end, "c"), end, t, sizeof(t)) == 0 && !strcmp(t, "x\"y"));
	TEST("json_index 2 is null: no text", json_text(json_index(b, end, 2), end, t, sizeof(t)) < 0);
	TEST("json_index past the end", json_index(b, end, 3) == NULL);
	TEST("json_int refuses a fraction", json_int("1.5", "1.5" + 3, &v) < 0);
	TEST("json_int refuses a string", json_int("\"5\"", "\"5\"" + 3, &v) < 0);
	TEST("json_text: \\u00e9 is UTF-8", json_text("\"caf\\u00e9\"", "\"caf\\u00e9\"" + 11, t, sizeof(t)) == 0 &&
	     !strcmp(t, "caf\xc3\xa9"));
	{
		const char *s = "\"\\ud83d\\ude00!\"";

		TEST("json_text: a surrogate pair is one 4-byte character",
		     json_text(s, s + strlen(s), t, sizeof(t)) == 0 && !strcmp(t, "\xf0\x9f\x98\x80!"));
		s = "\"\\ud83dx\"";
		TEST("json_text: a lone surrogate becomes U+FFFD",
		     json_text(s, s + strlen(s), t, sizeof(t)) == 0 && !strcmp(t, "\xef\xbf\xbdx"));
		s = "\"abcdefghij\"";
		TEST("json_text truncates to the buffer", json_text(s, s + strlen(s), t, 5) == 0 && !strcmp(t, "abcd"));
		s = "\"\\u00e9\\u00e9\"";
		TEST("json_text never cuts a character in half", json_text(s, s + strlen(s), t, 4) == 0 && !strcmp(t, "\xc3\xa9"));
	}
}

static void test_app_json(void)
{
	struct strbuf o = { 0 };
	const char *end;
	char *j;
	long s1, s2;

	render_details_json(&o, 0);
	TEST("details JSON is Bookinfo's", !strcmp(o.p, "{\"id\":0,\"author\":\"William Shakespeare\",\"year\":1595,"
	     "\"type\":\"paperback\",\"pages\":200,\"publisher\":\"PublisherA\",\"language\":\"English\","
	     "\"ISBN-10\":\"1234567890\",\"ISBN-13\":\"123-1234567890\"}"));
	strbuf_free(&o);
	render_ratings_json(&o, 7);
	TEST("ratings JSON", !strcmp(o.p, "{\"id\":7,\"ratings\":{\"Reviewer1\":5,\"Reviewer2\":4}}"));
	parse_ratings(o.p, o.len, &s1, &s2);
	TEST("parse_ratings reads our ratings", s1 == 5 && s2 == 4);
	strbuf_free(&o);
	parse_ratings("{\"ratings\":{\"Reviewer1\":3}}", 27, &s1, &s2);
	TEST("parse_ratings: a missing reviewer is -1", s1 == 3 && s2 == -1);
	parse_ratings("<html>", 6, &s1, &s2);
	TEST("parse_ratings: not JSON", s1 == -1 && s2 == -1);
	parse_ratings(NULL, 0, &s1, &s2);
	TEST("parse_ratings: nothing", s1 == -1 && s2 == -1);
	render_products_json(&o);
	TEST("products JSON is an array starting with the book", o.p[0] == '[' && strstr(o.p, "\"title\":\"The Comedy of Errors\"") &&
	     strstr(o.p, "<b>William Shakespeare's</b>"));
	strbuf_free(&o);
	render_error_json(&o, "say \"no\"\n");
	TEST("error JSON escapes", !strcmp(o.p, "{\"error\":\"say \\\"no\\\"\\u000a\"}") && is_obj(o.p));
	strbuf_free(&o);

	j = reviews_json("v1", 0, NULL, -1, -1);
	TEST("reviews v1 JSON: valid, two reviews, no rating", is_obj(j) && count(j, "\"reviewer\"") == 2 && !strstr(j, "rating") &&
	     strstr(j, "\"version\": \"v1\"") && strstr(j, "\"podname\": \"reviews-v1\""));
	free(j);
	j = reviews_json("v2", 1, "black", 5, 4);
	end = j + strlen(j);
	TEST("reviews v2 JSON: valid, black stars 5 and 4", is_obj(j) && strstr(j, "\"rating\": {\"stars\": 5, \"color\": \"black\"}") &&
	     strstr(j, "\"rating\": {\"stars\": 4, \"color\": \"black\"}"));
	{
		long v;
		const char *r = json_index(json_member(j, end, "reviews"), end, 1);

		TEST("reviews v2 JSON reads back", json_int(json_member(json_member(r, end, "rating"), end, "stars"), end, &v) == 0 && v == 4);
	}
	free(j);
	j = reviews_json("v3", 1, "red", -1, -1);
	TEST("reviews v3 without ratings: the error for both", is_obj(j) &&
	     count(j, "\"rating\": {\"error\": \"Ratings service is currently unavailable\"}") == 2);
	free(j);
}

static void test_page(void)
{
	char det[512], *j, *p;
	struct strbuf o = { 0 };

	render_details_json(&o, 0);
	snprintf(det, sizeof(det), "%s", o.p);
	strbuf_free(&o);

	j = reviews_json("v1", 0, NULL, -1, -1);
	p = page("", det, j);
	TEST("page: the title", strstr(p, "<title>Simple Bookstore App</title>") != NULL && grep_c(p, "<title>") == 1);
	TEST("page v1: grep -c glyphicon-star is 0", grep_c(p, "glyphicon-star") == 0);
	TEST("page v1: details rendered", strstr(p, "<dt>ISBN-10:</dt>1234567890") && strstr(p, "<dt>Pages:</dt>200") &&
	     strstr(p, "<dt>Type:</dt>paperback"));
	TEST("page v1: both reviews and who served them", strstr(p, "<small>Reviewer1</small>") && strstr(p, "<small>Reviewer2</small>") &&
	     strstr(p, "Reviews served by: reviews-v1"));
	TEST("page: not signed in shows the login form", strstr(p, "action=\"login\"") && !strstr(p, "sign out"));
	TEST("page: the book and its summary", strstr(p, "The Comedy of Errors") && strstr(p, "<a href=\"https://en.wikipedia.org/wiki/The_Comedy_of_Errors\">"));
	free(p);
	free(j);

	j = reviews_json("v2", 1, "black", 5, 4);
	p = page("jason", det, j);
	TEST("page v2: grep -c glyphicon-star is 10 (9 full, 1 empty)", grep_c(p, "glyphicon-star") == 10 &&
	     count(p, "class=\"glyphicon glyphicon-star\"></span>") == 9 &&
	     count(p, "class=\"glyphicon glyphicon-star-empty\"></span>") == 1);
	TEST("page v2: black, nothing red", count(p, "<font color=\"black\">") == 2 && !strstr(p, "color: red") &&
	     !strstr(p, "color=\"red\""));
	TEST("page: signed-in user shown", strstr(p, "jason ( <a href=\"logout\">sign out</a> )") != NULL);
	free(p);
	free(j);

	j = reviews_json("v3", 1, "red", 5, 4);
	p = page("", det, j);
	TEST("page v3: grep -c glyphicon-star is 10", grep_c(p, "glyphicon-star") == 10);
	TEST("page v3: every star red and still a glyphicon-star",
	     count(p, "<span class=\"glyphicon glyphicon-star\" style=\"color: red\"></span>") == 9 &&
	     count(p, "<span class=\"glyphicon glyphicon-star-empty\" style=\"color: red\"></span>") == 1 &&
	     count(p, "<font color=\"red\">") == 2);
	free(p);
	free(j);

	j = reviews_json("v2", 1, "black", 4, 0);
	p = page("", det, j);
	TEST("page: 4 stars = 4 full + 1 empty; 0 stars = no stars (Bookinfo's `if stars`)",
	     count(p, "glyphicon-star\"") == 4 && count(p, "glyphicon-star-empty") == 1 && count(p, "<font") == 1);
	free(p);
	free(j);

	j = reviews_json("v2", 1, "black", -1, 5);
	p = page("", det, j);
	TEST("page: ratings error shown for one reviewer, stars for the other",
	     count(p, "<p><i>Ratings service is currently unavailable</i></p>") == 1 && grep_c(p, "glyphicon-star") == 5);
	free(p);
	free(j);

	j = reviews_json("v1", 0, NULL, -1, -1);
	p = page("", NULL, j);
	TEST("page: details failed", strstr(p, "Error fetching product details!") && strstr(p, "Sorry, product details are currently unavailable") &&
	     !strstr(p, "Book Details") && strstr(p, "Book Reviews"));
	free(p);
	p = page("", det, NULL);
	TEST("page: reviews failed", strstr(p, "Error fetching product reviews!") && strstr(p, "Book Details") &&
	     !strstr(p, "Book Reviews") && grep_c(p, "glyphicon-star") == 0);
	free(p);
	free(j);

	/* values from the network are escaped, colors limited to names, stars clamped */
	p = page("", "{\"type\":\"<b>x</b>\",\"pages\":\"a&b\"}",
	         "{\"podname\":\"<i>pod</i>\",\"reviews\":[{\"reviewer\":\"<script>\",\"text\":\"\\\"q\\\"\","
	         "\"rating\":{\"stars\":9,\"color\":\"red\\\" onload=\\\"x\"}}]}");
	TEST("page: HTML in details escaped", strstr(p, "<dt>Type:</dt>&lt;b&gt;x&lt;/b&gt;") && strstr(p, "<dt>Pages:</dt>a&amp;b"));
	TEST("page: HTML in reviews escaped", strstr(p, "<small>&lt;script&gt;</small>") && strstr(p, "<p>&quot;q&quot;</p>") &&
	     strstr(p, "served by: &lt;i&gt;pod&lt;/i&gt;") && !strstr(p, "<script>"));
	TEST("page: a color that is not a plain name becomes black", count(p, "<font color=\"black\">") == 1 && !strstr(p, "onload"));
	TEST("page: more than 5 stars shows 5", count(p, "glyphicon-star\"") == 5 && !strstr(p, "glyphicon-star-empty"));
	free(p);
	p = page("", "{}", "{\"reviews\":[]}");
	TEST("page: empty details and no reviews still render", strstr(p, "<dt>ISBN-13:</dt>\n") && strstr(p, "Book Reviews") &&
	     strstr(p, "</html>"));
	free(p);
	render_index(&o);
	TEST("index page links the product page", strstr(o.p, "href=\"/productpage?u=normal\"") != NULL);
	strbuf_free(&o);
}

static void test_text(void)
{
	struct strbuf o = { 0 };
	char v[16];

	html_escape(&o, "a<b>&\"c'", 9);
	TEST("html_escape", !strcmp(o.p, "a&lt;b&gt;&amp;&quot;c&#39;"));
	strbuf_free(&o);
	TEST("form_value: username", form_value("username=jason&passwd=x", 23, "username", v, sizeof(v)) == 0 && !strcmp(v, "jason"));
	TEST("form_value: last field", form_value("passwd=x&username=bob", 21, "username", v, sizeof(v)) == 0 && !strcmp(v, "bob"));
	TEST("form_value: + and %XX decoded", form_value("user=a+b%40c", 12, "user", v, sizeof(v)) == 0 && !strcmp(v, "a b@c"));
	TEST("form_value: no prefix match", form_value("xuser=a", 7, "user", v, sizeof(v)) < 0);
	TEST("form_value: bad %", form_value("user=%4", 7, "user", v, sizeof(v)) < 0);
	TEST("form_value: too long for the buffer", form_value("user=0123456789abcdefgh", 23, "user", v, sizeof(v)) < 0);
	TEST("form_value: empty value", form_value("user=", 5, "user", v, sizeof(v)) == 0 && v[0] == 0);
	TEST("cookie_value: among others", cookie_value("a=1; user=jason; b=2", 20, "user", v, sizeof(v)) == 0 && !strcmp(v, "jason"));
	TEST("cookie_value: first", cookie_value("user=x;y=1", 10, "user", v, sizeof(v)) == 0 && !strcmp(v, "x"));
	TEST("cookie_value: not a prefix of another name", cookie_value("username=x", 10, "user", v, sizeof(v)) < 0);
	TEST("valid_user", valid_user("jason", 5) && valid_user("a.b@c-d_e", 9) && valid_user("a.b@c-d+e", 9) &&
	     !valid_user("", 0) && !valid_user("a b", 3) && !valid_user("a\r\nb", 4) && !valid_user("<x>", 3));
	TEST("product_id", product_id("/details/0", 10, "/details/") == 0 && product_id("/details/42", 11, "/details/") == 42 &&
	     product_id("/details/", 9, "/details/") == -1 && product_id("/details/x", 10, "/details/") == -1 &&
	     product_id("/details/1234567890", 19, "/details/") == -1 && product_id("/ratings/1", 10, "/details/") == -1);
	{
		struct sa_buf b = { 0 };

		TEST("sa_buf_reserve within max", sa_buf_reserve(&b, 100, 10000) == 0 && b.cap >= 100 && b.cap <= 10000);
		b.len = 4000;
		TEST("sa_buf_reserve gives what max allows", sa_buf_reserve(&b, 5000, 6000) == 0 && b.cap == 6000);
		b.len = 6000;
		TEST("sa_buf_reserve refuses beyond max", sa_buf_reserve(&b, 1, 6000) < 0);
		memcpy(b.p, "0123456789", 10);
		sa_buf_consume(&b, 5995);
		TEST("sa_buf_consume keeps the rest", b.len == 5);
		sa_buf_free(&b);
	}
}

int main(void)
{
	test_json_reader();
	test_app_json();
	test_page();
	test_text();
	return test_report();
}
