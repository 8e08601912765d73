/*
 * A ten-line test harness (after Redis's testhelp.h). Each check prints
 * "PASS: name" or "FAIL: name (file:line)"; test_report() prints the totals and
 * returns the exit status. ./build.sh test counts PASS/FAIL lines of every
 * test program and scenario.
 */
#ifndef MESH_TEST_H
#define MESH_TEST_H
#include <stdio.h>
static int test_passed, test_failed;
#define TEST(name, cond) do { if (cond) { test_passed++; printf("PASS: %s\n", name); } \
	else { test_failed++; printf("FAIL: %s (%s:%d)\n", name, __FILE__, __LINE__); } } while (0)
static inline int test_report(void)
{
	printf("%d passed, %d failed\n", test_passed, test_failed);
	return test_failed ? 1 : 0;
}
#endif
