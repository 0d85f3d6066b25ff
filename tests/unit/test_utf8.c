/*
 * test_utf8.c - strict UTF-8 validation: every length class at its
 * boundaries, overlong forms, surrogates, code points over U+10FFFF and
 * truncated sequences.
 */
#include "check.h"
#include "utf8.h"

static void test_valid(void)
{
	CHECK(utf8_valid("", 0));
	CHECK(utf8_valid("abc", 3));
	CHECK(utf8_valid("\xc2\x80", 2));
	CHECK(utf8_valid("\xdf\xbf", 2));
	CHECK(utf8_valid("\xe0\xa0\x80", 3));
	CHECK(utf8_valid("\xef\xbf\xbf", 3));
	CHECK(utf8_valid("\xf0\x90\x80\x80", 4));
	CHECK(utf8_valid("\xf4\x8f\xbf\xbf", 4));
	CHECK(utf8_valid("a\0b", 3)); /* NUL is valid UTF-8; topics refuse it elsewhere */
	CHECK(!utf8_valid("\x80", 1));
	CHECK(!utf8_valid("\xc1\xbf", 2));
	CHECK(!utf8_valid("\xc2", 1));
	CHECK(!utf8_valid("\xe0\x9f\xbf", 3));
	CHECK(!utf8_valid("\xed\xbf\xbf", 3));
	CHECK(!utf8_valid("\xe2\x82", 2));
	CHECK(!utf8_valid("\xf0\x8f\xbf\xbf", 4));
	CHECK(!utf8_valid("\xf4\x90\x80\x80", 4));
	CHECK(!utf8_valid("\xf5\x80\x80\x80", 4));
	CHECK(!utf8_valid("\xfe", 1));
	CHECK(!utf8_valid("ab\xe2\x82", 4));
}

static void test_char_len(void)
{
	CHECK_INT(utf8_char_len((const unsigned char *)"a", 1), 1);
	CHECK_INT(utf8_char_len((const unsigned char *)"\xc3\xa9", 2), 2);
	CHECK_INT(utf8_char_len((const unsigned char *)"\xe2\x82\xac", 3), 3);
	CHECK_INT(utf8_char_len((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4);
	CHECK_INT(utf8_char_len((const unsigned char *)"\xf0\x9f\x98\x80", 3), 0);
	CHECK_INT(utf8_char_len((const unsigned char *)"\xc0\x80", 2), 0);
	CHECK_INT(utf8_char_len((const unsigned char *)"\xa0", 1), 0);
}

int main(void)
{
	test_valid();
	test_char_len();
	return check_summary("test_utf8");
}
